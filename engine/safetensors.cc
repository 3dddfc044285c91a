#include "engine/safetensors.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace ttc::engine {
namespace {

// The reference implementation refuses headers above 100 MB; real headers are a few hundred KB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Tensor entries need depth 2 (root object > tensor object > shape array); anything deeper is
// malformed, and the limit keeps hostile nesting from costing stack or time.
constexpr int kMaxJsonDepth = 3;
constexpr size_t kMaxRank = 64;

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kBF16, "BF16", 2}, {DType::kF16, "F16", 2}, {DType::kF32, "F32", 4},
    {DType::kF64, "F64", 8},   {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},   {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
};

// Thrown from the JSON parser callback to stop parsing at the first structural problem; caught in
// Parse.
struct HeaderRejected {
  std::string message;
};

uint64_t ReadLittleEndian64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

size_t DTypeSize(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  assert(false && "unknown DType");
  return 0;
}

const char* DTypeName(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  assert(false && "unknown DType");
  return "?";
}

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.dtype;
  return std::nullopt;
}

std::string ShapeToString(std::span<const int64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at parse time not to overflow
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::filesystem::path& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path.string();
  int fd = ::open(file->path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound("{}: no such file", file->path_);
    return IoError("{}: cannot open: {}", file->path_, std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return IoError("{}: cannot stat: {}", file->path_, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Corrupt("{}: not a regular file", file->path_);
  }
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ < 8) {
    ::close(fd);
    return Corrupt("{}: file is {} bytes, shorter than the 8-byte header length", file->path_,
                   file->size_);
  }
  void* m = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED) return IoError("{}: mmap failed: {}", file->path_, std::strerror(err));
  file->mapping_ = m;
  file->base_ = static_cast<const std::byte*>(m);
  TTC_RETURN_IF_ERROR(file->Parse());
  return file;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBuffer(
    std::span<const std::byte> bytes, std::string display_name) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = std::move(display_name);
  file->owned_.assign(bytes.begin(), bytes.end());
  file->base_ = file->owned_.data();
  file->size_ = file->owned_.size();
  if (file->size_ < 8) {
    return Corrupt("{}: file is {} bytes, shorter than the 8-byte header length", file->path_,
                   file->size_);
  }
  TTC_RETURN_IF_ERROR(file->Parse());
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Status SafetensorsFile::Parse() {
  const uint64_t header_len = ReadLittleEndian64(base_);
  const uint64_t available = size_ - 8;
  if (header_len > available) {
    return Corrupt(
        "{}: header length {} exceeds the {} bytes after the length field (truncated file?)", path_,
        header_len, available);
  }
  if (header_len > kMaxHeaderBytes) {
    return Corrupt("{}: header length {} exceeds the {}-byte limit", path_, header_len,
                   kMaxHeaderBytes);
  }
  if (header_len < 2)
    return Corrupt("{}: header length {} is too short for a JSON object", path_, header_len);
  const char* header = reinterpret_cast<const char*>(base_ + 8);
  const uint64_t buffer_size = available - header_len;
  const std::byte* buffer = base_ + 8 + header_len;

  // Parse the JSON header, rejecting duplicate top-level keys (which would hide a tensor) and deep
  // nesting.
  nlohmann::json root;
  std::set<std::string> top_keys;
  try {
    auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if (depth > kMaxJsonDepth) {
        throw HeaderRejected{
            fmt::format("JSON header nested deeper than {} levels", kMaxJsonDepth)};
      }
      if (event == nlohmann::json::parse_event_t::key && depth == 1) {
        std::string key = parsed.get<std::string>();
        if (!top_keys.insert(key).second) {
          throw HeaderRejected{fmt::format("tensor {}: duplicate entry in the JSON header", key)};
        }
      }
      return true;
    };
    root = nlohmann::json::parse(header, header + header_len, callback, /*allow_exceptions=*/true,
                                 /*ignore_comments=*/false);
  } catch (const HeaderRejected& e) {
    return Corrupt("{}: {}", path_, e.message);
  } catch (const nlohmann::json::exception& e) {
    return Corrupt("{}: malformed JSON header: {}", path_, e.what());
  }
  if (!root.is_object()) return Corrupt("{}: JSON header is not an object", path_);

  struct Span {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Span> spans;
  tensors_.clear();
  tensors_.reserve(root.size());
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return Corrupt("{}: __metadata__ is not an object", path_);
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          return Corrupt("{}: __metadata__ value for key '{}' is not a string", path_, m.key());
        }
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (name.empty()) return Corrupt("{}: a tensor has an empty name", path_);
    if (!entry.is_object()) return Corrupt("{}: tensor {}: entry is not an object", path_, name);
    for (auto f = entry.begin(); f != entry.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets") {
        return Corrupt("{}: tensor {}: unknown field '{}'", path_, name, f.key());
      }
    }
    TensorView view;
    view.name = name;

    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return Corrupt("{}: tensor {}: missing or non-string 'dtype'", path_, name);
    }
    const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
    auto dtype = ParseDType(dtype_name);
    if (!dtype)
      return Corrupt("{}: tensor {}: unknown or unsupported dtype '{}'", path_, name, dtype_name);
    view.dtype = *dtype;

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return Corrupt("{}: tensor {}: missing or non-array 'shape'", path_, name);
    }
    if (shape_it->size() > kMaxRank) {
      return Corrupt("{}: tensor {}: rank {} exceeds {}", path_, name, shape_it->size(), kMaxRank);
    }
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned() ||
          d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Corrupt("{}: tensor {}: shape {} has an entry that is not a non-negative integer",
                       path_, name, shape_it->dump());
      }
      uint64_t dim = d.get<uint64_t>();
      view.shape.push_back(static_cast<int64_t>(dim));
      if (!overflow && __builtin_mul_overflow(numel, dim, &numel)) overflow = true;
    }
    // A zero dimension makes the product 0 even if an earlier partial product overflowed.
    if (overflow && std::find(view.shape.begin(), view.shape.end(), 0) != view.shape.end()) {
      overflow = false;
      numel = 0;
    }
    uint64_t nbytes = 0;
    if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, static_cast<uint64_t>(DTypeSize(view.dtype)), &nbytes)) {
      return Corrupt("{}: tensor {}: shape {} is too large", path_, name, shape_it->dump());
    }

    auto off_it = entry.find("data_offsets");
    if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 ||
        !(*off_it)[0].is_number_unsigned() || !(*off_it)[1].is_number_unsigned()) {
      return Corrupt(
          "{}: tensor {}: 'data_offsets' must be [begin, end] with non-negative integers", path_,
          name);
    }
    const uint64_t begin = (*off_it)[0].get<uint64_t>();
    const uint64_t end = (*off_it)[1].get<uint64_t>();
    if (begin > end) {
      return Corrupt("{}: tensor {}: data_offsets [{}, {}] has begin after end", path_, name, begin,
                     end);
    }
    if (end > buffer_size) {
      return Corrupt("{}: tensor {}: data_offsets [{}, {}] out of range of the {}-byte data buffer",
                     path_, name, begin, end, buffer_size);
    }
    if (end - begin != nbytes) {
      return Corrupt(
          "{}: tensor {}: shape {} x {} ({} bytes) does not match data_offsets [{}, {}] ({} bytes)",
          path_, name, ShapeToString(view.shape), dtype_name, nbytes, begin, end, end - begin);
    }
    view.data = buffer + begin;
    view.nbytes = static_cast<size_t>(nbytes);
    spans.push_back({begin, end, tensors_.size()});
    tensors_.push_back(std::move(view));
  }

  // No two non-empty tensors may share bytes. (Gaps are tolerated: they are harmless.)
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Span* previous = nullptr;
  for (const Span& s : spans) {
    if (s.begin == s.end) continue;
    if (previous != nullptr && s.begin < previous->end) {
      return Corrupt("{}: tensor {} (bytes [{}, {}]) overlaps tensor {} (bytes [{}, {}])", path_,
                     tensors_[s.tensor].name, s.begin, s.end, tensors_[previous->tensor].name,
                     previous->begin, previous->end);
    }
    previous = &s;
  }

  // nlohmann's object iterates keys sorted, so tensors_ is sorted by name; index after the vector
  // is final.
  index_.clear();
  index_.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------------------------
// Conversion

float BF16ToFloat32(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Branch-light half -> float (F. Giesen's half_to_float_fast), exact for every input including
// subnormals.
float F16ToFloat32(uint16_t h) {
  constexpr uint32_t kShiftedExp = 0x7c00u << 13;
  uint32_t u = (static_cast<uint32_t>(h) & 0x7fffu) << 13;
  const uint32_t exp = kShiftedExp & u;
  u += (127u - 15u) << 23;
  float f;
  if (exp == kShiftedExp) {  // Inf / NaN
    u += (128u - 16u) << 23;
    std::memcpy(&f, &u, 4);
  } else if (exp == 0) {  // zero / subnormal: renormalise through a float subtraction
    u += 1u << 23;
    std::memcpy(&f, &u, 4);
    constexpr uint32_t kMagicBits = 113u << 23;
    float magic;
    std::memcpy(&magic, &kMagicBits, 4);
    f -= magic;
  } else {
    std::memcpy(&f, &u, 4);
  }
  uint32_t out;
  std::memcpy(&out, &f, 4);
  out |= (static_cast<uint32_t>(h) & 0x8000u) << 16;
  std::memcpy(&f, &out, 4);
  return f;
}

uint16_t Float32ToBF16(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Round-to-nearest-even float -> half (F. Giesen's float_to_half_fast3_rtne).
uint16_t Float32ToF16(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint16_t o;
  constexpr uint32_t kF32Infinity = 255u << 23;
  constexpr uint32_t kF16Max = (127u + 16u) << 23;
  if (u >= kF16Max) {
    o = (u > kF32Infinity) ? 0x7e00 : 0x7c00;
  } else if (u < (113u << 23)) {  // subnormal or zero half
    constexpr uint32_t kDenormMagicBits = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    float f, magic;
    std::memcpy(&f, &u, 4);
    std::memcpy(&magic, &kDenormMagicBits, 4);
    f += magic;
    std::memcpy(&u, &f, 4);
    o = static_cast<uint16_t>(u - kDenormMagicBits);
  } else {
    const uint32_t mant_odd = (u >> 13) & 1u;
    u += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu;
    u += mant_odd;
    o = static_cast<uint16_t>(u >> 13);
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

namespace {

// The hot loops of weight loading. Written as independent per-element bit operations so the
// compiler vectorises them; multiversioned so x86-64 machines with AVX2 use it without requiring
// -march flags for the whole build.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TTC_CONVERT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TTC_CONVERT_CLONES
#endif

// GCC's -O2 cost model ("very cheap") refuses loops that need an epilogue, so these few loops ask
// for the dynamic model explicitly; __restrict spares the runtime alias check.
#if defined(__GNUC__) && !defined(__clang__)
#define TTC_VECTORIZE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define TTC_VECTORIZE
#endif

TTC_CONVERT_CLONES TTC_VECTORIZE void ConvertBF16(const std::byte* __restrict src,
                                                  float* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    std::memcpy(dst + i, &u, 4);
  }
}

// Branch-free form of F16ToFloat32 (masks instead of branches) so it vectorises; same results.
TTC_CONVERT_CLONES TTC_VECTORIZE void ConvertF16(const std::byte* __restrict src,
                                                 float* __restrict dst, size_t n) {
  constexpr uint32_t kShiftedExp = 0x7c00u << 13;
  constexpr float kMagic = 6.103515625e-05f;  // 2^-14, the float with bits 113 << 23
  for (size_t i = 0; i < n; ++i) {
    uint16_t h16;
    std::memcpy(&h16, src + 2 * i, 2);
    const uint32_t h = h16;
    const uint32_t exp = kShiftedExp & (h << 13);
    uint32_t u = ((h & 0x7fffu) << 13) + ((127u - 15u) << 23);
    const uint32_t is_special = 0u - static_cast<uint32_t>(exp == kShiftedExp);  // Inf/NaN
    u += is_special & ((128u - 16u) << 23);
    const uint32_t us = u + (1u << 23);  // zero/subnormal: renormalise with an exact subtraction
    float fs;
    std::memcpy(&fs, &us, 4);
    fs -= kMagic;
    uint32_t sub;
    std::memcpy(&sub, &fs, 4);
    const uint32_t is_sub = 0u - static_cast<uint32_t>(exp == 0);
    u = (sub & is_sub) | (u & ~is_sub);
    u |= (h & 0x8000u) << 16;
    std::memcpy(dst + i, &u, 4);
  }
}

TTC_CONVERT_CLONES TTC_VECTORIZE void ConvertF64(const std::byte* __restrict src,
                                                 float* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    double d;
    std::memcpy(&d, src + 8 * i, 8);
    dst[i] = static_cast<float>(d);
  }
}

}  // namespace

Status ToFloat32(const TensorView& tensor, int64_t first, std::span<float> out) {
  const size_t numel = static_cast<size_t>(tensor.numel());
  if (first < 0 || static_cast<size_t>(first) > numel || out.size() > numel - first) {
    return InvalidArgument("tensor {}: elements [{}, {}) out of range of its {} elements",
                           tensor.name, first, first + static_cast<int64_t>(out.size()), numel);
  }
  const size_t n = out.size();
  const size_t size = DTypeSize(tensor.dtype);
  const std::byte* src = tensor.data + static_cast<size_t>(first) * size;
  switch (tensor.dtype) {
    case DType::kBF16:
      if (n > 0) ConvertBF16(src, out.data(), n);
      return Status::Ok();
    case DType::kF16:
      if (n > 0) ConvertF16(src, out.data(), n);
      return Status::Ok();
    case DType::kF32:
      if (n > 0) std::memcpy(out.data(), src, n * 4);  // little-endian host (static_assert below)
      return Status::Ok();
    case DType::kF64:
      if (n > 0) ConvertF64(src, out.data(), n);
      return Status::Ok();
    default:
      return InvalidArgument("tensor {}: dtype {} cannot be converted to float32", tensor.name,
                             DTypeName(tensor.dtype));
  }
}

Status ToFloat32(const TensorView& tensor, std::span<float> out) {
  const size_t n = static_cast<size_t>(tensor.numel());
  if (out.size() != n) {
    return InvalidArgument("tensor {}: output buffer holds {} floats, the tensor has {}",
                           tensor.name, out.size(), n);
  }
  return ToFloat32(tensor, 0, out);
}

Result<std::vector<float>> ToFloat32(const TensorView& tensor) {
  std::vector<float> out(static_cast<size_t>(tensor.numel()));
  TTC_RETURN_IF_ERROR(ToFloat32(tensor, std::span<float>(out)));
  return out;
}

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; ttc assumes a "
              "little-endian host");

// ---------------------------------------------------------------------------------------------------------------
// Writing

namespace {

[[maybe_unused]] size_t ShapeNumel(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

template <typename T>
std::vector<std::byte> BytesOf(std::span<const T> values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

}  // namespace

OwnedTensor MakeF32Tensor(std::string name, std::vector<int64_t> shape,
                          std::span<const float> values) {
  assert(ShapeNumel(shape) == values.size());
  return OwnedTensor{std::move(name), DType::kF32, std::move(shape), BytesOf(values)};
}

OwnedTensor MakeI64Tensor(std::string name, std::vector<int64_t> shape,
                          std::span<const int64_t> values) {
  assert(ShapeNumel(shape) == values.size());
  return OwnedTensor{std::move(name), DType::kI64, std::move(shape), BytesOf(values)};
}

OwnedTensor MakeBF16Tensor(std::string name, std::vector<int64_t> shape,
                           std::span<const float> values) {
  assert(ShapeNumel(shape) == values.size());
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) bits[i] = Float32ToBF16(values[i]);
  return OwnedTensor{std::move(name), DType::kBF16, std::move(shape),
                     BytesOf(std::span<const uint16_t>(bits))};
}

Result<std::vector<std::byte>> SerializeSafetensors(
    const std::vector<OwnedTensor>& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::set<std::string_view> seen;
  uint64_t offset = 0;
  for (const OwnedTensor& t : tensors) {
    if (t.name.empty()) return InvalidArgument("safetensors writer: a tensor has an empty name");
    if (t.name == "__metadata__")
      return InvalidArgument("safetensors writer: '__metadata__' is reserved");
    if (!seen.insert(t.name).second)
      return InvalidArgument("safetensors writer: duplicate tensor {}", t.name);
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) {
        return InvalidArgument("safetensors writer: tensor {} has a negative dimension in {}",
                               t.name, ShapeToString(t.shape));
      }
      numel *= static_cast<uint64_t>(d);
    }
    if (numel * DTypeSize(t.dtype) != t.data.size()) {
      return InvalidArgument("safetensors writer: tensor {} has {} bytes, shape {} x {} needs {}",
                             t.name, t.data.size(), ShapeToString(t.shape), DTypeName(t.dtype),
                             numel * DTypeSize(t.dtype));
    }
    header[t.name] = {{"dtype", DTypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  std::vector<std::byte> image(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) image[i] = static_cast<std::byte>((n >> (8 * i)) & 0xffu);
  std::memcpy(image.data() + 8, text.data(), text.size());
  std::byte* data = image.data() + 8 + text.size();
  for (const OwnedTensor& t : tensors) {
    if (!t.data.empty()) std::memcpy(data, t.data.data(), t.data.size());
    data += t.data.size();
  }
  return image;
}

Status WriteSafetensors(const std::filesystem::path& path, const std::vector<OwnedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  TTC_ASSIGN_OR_RETURN(std::vector<std::byte> image, SerializeSafetensors(tensors, metadata));
  std::filesystem::path tmp = path;
  tmp += fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError("{}: cannot open for writing", tmp.string());
    out.write(reinterpret_cast<const char*>(image.data()),
              static_cast<std::streamsize>(image.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return IoError("{}: write failed", tmp.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return IoError("{}: cannot rename into place: {}", path.string(), ec.message());
  }
  return Status::Ok();
}

}  // namespace ttc::engine
