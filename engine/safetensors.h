// Reading and writing safetensors files (the Hugging Face weight format): an 8-byte little-endian
// header length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]},
// "__metadata__": {str: str}}, then the data buffer (offsets relative to its start). Files are
// memory-mapped read-only; every header field is validated (header length vs file size, JSON
// well-formed, dtype known, shapes non-negative with product * dtype size equal to end - begin,
// offsets inside the buffer, no two tensors overlapping), and errors name the file and the tensor.
// Also dtype conversion to float32 (BF16, F16, F32, F64) and a writer.
// Thread-safety: a SafetensorsFile is immutable after Open/FromBuffer; any number of threads may
// read it and its TensorViews concurrently. TensorView::data points into the mapping and lives as
// long as the SafetensorsFile. The free functions are thread-safe. Do not rewrite or truncate a
// checkpoint file while it is open: reads from a mapping whose file shrank fault (SIGBUS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace ttc::engine {

enum class DType { kBF16, kF16, kF32, kF64, kI64, kI32, kI16, kI8, kU8, kBool };

// Bytes per element (kBool: 1).
size_t DTypeSize(DType dtype);
// The safetensors spelling: "BF16", "F16", "F32", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL".
const char* DTypeName(DType dtype);
// Parses the safetensors spelling; nullopt for anything else (including dtypes safetensors knows
// but ttc does not support, such as U16 or F8_E4M3).
std::optional<DType> ParseDType(std::string_view name);

// Shape as "[2, 3]" for messages.
std::string ShapeToString(std::span<const int64_t> shape);

// One tensor of a file. `data` is NOT necessarily aligned to the element size (read with memcpy or
// ToFloat32); data is little-endian, as the format requires.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

// A tensor that owns its bytes, for writing.
struct OwnedTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

// Helpers building OwnedTensors from typed values (shape product must equal values.size();
// asserts).
OwnedTensor MakeF32Tensor(std::string name, std::vector<int64_t> shape,
                          std::span<const float> values);
OwnedTensor MakeI64Tensor(std::string name, std::vector<int64_t> shape,
                          std::span<const int64_t> values);
// Rounds float32 values to bf16 (round to nearest even, NaN kept NaN).
OwnedTensor MakeBF16Tensor(std::string name, std::vector<int64_t> shape,
                           std::span<const float> values);

class SafetensorsFile {
 public:
  // Memory-maps and validates `path`. Errors: kNotFound (no such file), kIo (open/mmap failed),
  // kCorrupt (any header or layout problem; the message names the file and, when one is at fault,
  // the tensor).
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::filesystem::path& path);
  // Parses and validates an in-memory file image (copied). `display_name` stands for the file in
  // messages.
  static Result<std::unique_ptr<SafetensorsFile>> FromBuffer(std::span<const std::byte> bytes,
                                                             std::string display_name = "<memory>");

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // The tensor called `name`, or null.
  const TensorView* Find(std::string_view name) const;
  // All tensors, sorted by name.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The "__metadata__" object (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The path (or display name) used in messages.
  const std::string& path() const { return path_; }
  // Total file size in bytes.
  size_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  Status Parse();

  std::string path_;
  const std::byte* base_ = nullptr;  // the mapped or owned file image
  size_t size_ = 0;
  void* mapping_ = nullptr;       // non-null when base_ is an mmap
  std::vector<std::byte> owned_;  // the image for FromBuffer
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string_view, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// Converts a BF16, F16, F32 or F64 tensor to float32. Other dtypes: kInvalidArgument naming the
// tensor and dtype.
Result<std::vector<float>> ToFloat32(const TensorView& tensor);
// The same into a caller buffer; out.size() must equal tensor.numel() (kInvalidArgument otherwise).
Status ToFloat32(const TensorView& tensor, std::span<float> out);
// Converts elements [first, first + out.size()) of the flattened tensor (e.g. one embedding row):
// kInvalidArgument when the range is outside the tensor or the dtype is not a float type.
Status ToFloat32(const TensorView& tensor, int64_t first, std::span<float> out);

// Scalar conversions (exact for BF16/F16 -> F32; F32 -> BF16/F16 round to nearest even).
float BF16ToFloat32(uint16_t bits);
float F16ToFloat32(uint16_t bits);
uint16_t Float32ToBF16(float value);
uint16_t Float32ToF16(float value);

// Serialises tensors into a safetensors image (tensors laid out in the given order, header padded
// with spaces to a multiple of 8 bytes like the reference writer). Errors: duplicate or empty name,
// the name "__metadata__", data size not equal to numel * dtype size, negative dimension.
Result<std::vector<std::byte>> SerializeSafetensors(
    const std::vector<OwnedTensor>& tensors,
    const std::map<std::string, std::string>& metadata = {});
// Writes SerializeSafetensors' image to `path` (through a temporary file renamed into place).
Status WriteSafetensors(const std::filesystem::path& path, const std::vector<OwnedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace ttc::engine
