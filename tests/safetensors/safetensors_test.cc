// Safetensors reader and writer: round trips for every dtype, dtype conversion, and the real golden
// files written by the Hugging Face safetensors library (their expected values were read with that
// library, not with ttc).
#include "engine/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace ttc::engine {
namespace {

using testing::SharedDir;
using testing::TempDir;

std::vector<std::byte> PatternBytes(size_t n, uint8_t salt) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + salt) & 0xff);
  return v;
}

std::vector<std::byte> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

constexpr DType kAllDTypes[] = {DType::kBF16, DType::kF16, DType::kF32, DType::kF64, DType::kI64,
                                DType::kI32,  DType::kI16, DType::kI8,  DType::kU8,  DType::kBool};

TEST(DType, NamesSizesAndParsing) {
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(DTypeSize(DType::kBool), 1u);
  for (DType d : kAllDTypes) {
    auto parsed = ParseDType(DTypeName(d));
    ASSERT_TRUE(parsed.has_value()) << DTypeName(d);
    EXPECT_EQ(*parsed, d);
  }
  EXPECT_FALSE(ParseDType("bf16").has_value());  // case matters in the format
  EXPECT_FALSE(ParseDType("F8_E4M3").has_value());
  EXPECT_FALSE(ParseDType("").has_value());
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{2, 3}), "[2, 3]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{}), "[]");
}

TEST(Safetensors, RoundTripEveryDtypeThroughAFile) {
  TempDir dir;
  std::vector<OwnedTensor> tensors;
  uint8_t salt = 1;
  for (DType d : kAllDTypes) {
    std::vector<int64_t> shape = {3, 5};
    tensors.push_back(
        {std::string("t.") + DTypeName(d), d, shape, PatternBytes(15 * DTypeSize(d), salt++)});
  }
  tensors.push_back({"scalar", DType::kF32, {}, PatternBytes(4, 99)});
  tensors.push_back({"empty", DType::kBF16, {0, 7}, {}});
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "round trip \xc3\xa9"}};
  const auto path = dir / "rt.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->metadata(), metadata);
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  for (const OwnedTensor& t : tensors) {
    const TensorView* v = (*file)->Find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(v->dtype, t.dtype) << t.name;
    EXPECT_EQ(v->shape, t.shape) << t.name;
    ASSERT_EQ(v->nbytes, t.data.size()) << t.name;
    EXPECT_EQ(std::memcmp(v->data, t.data.data(), t.data.size()), 0) << t.name;
  }
  EXPECT_EQ((*file)->Find("scalar")->numel(), 1);
  EXPECT_EQ((*file)->Find("empty")->numel(), 0);
  EXPECT_EQ((*file)->Find("nope"), nullptr);
  // tensors() is sorted by name.
  for (size_t i = 1; i < (*file)->tensors().size(); ++i) {
    EXPECT_LT((*file)->tensors()[i - 1].name, (*file)->tensors()[i].name);
  }
}

TEST(Safetensors, WriterPadsHeaderAndMatchesInMemoryParse) {
  std::vector<OwnedTensor> tensors = {{"a", DType::kF32, {2}, PatternBytes(8, 3)}};
  auto image = SerializeSafetensors(tensors);
  ASSERT_TRUE(image.ok());
  uint64_t n = 0;
  std::memcpy(&n, image->data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(image->size(), 8 + n + 8);
  auto file = SafetensorsFile::FromBuffer(*image, "mem");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->path(), "mem");
  EXPECT_TRUE((*file)->metadata().empty());
  const TensorView* a = (*file)->Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(std::memcmp(a->data, tensors[0].data.data(), 8), 0);
}

TEST(Safetensors, WriterRejectsBadTensors) {
  EXPECT_FALSE(
      SerializeSafetensors({{"a", DType::kF32, {3}, PatternBytes(8, 0)}}).ok());  // size mismatch
  EXPECT_FALSE(SerializeSafetensors({{"", DType::kU8, {1}, PatternBytes(1, 0)}}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"__metadata__", DType::kU8, {1}, PatternBytes(1, 0)}}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"a", DType::kU8, {-1}, {}}}).ok());
  auto dup = SerializeSafetensors(
      {{"a", DType::kU8, {1}, PatternBytes(1, 0)}, {"a", DType::kU8, {1}, PatternBytes(1, 0)}});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate tensor a"), std::string::npos);
  TempDir dir;
  auto st = WriteSafetensors(dir / "missing-dir" / "x.safetensors", {});
  EXPECT_EQ(st.code(), StatusCode::kIo) << st.ToString();
}

TEST(Safetensors, MakeHelpers) {
  std::vector<float> f = {1.5f, -2.0f, 3.25f};
  std::vector<int64_t> i = {7, -8};
  auto image = SerializeSafetensors(
      {MakeF32Tensor("f", {3}, f), MakeI64Tensor("i", {2}, i), MakeBF16Tensor("b", {1, 3}, f)});
  ASSERT_TRUE(image.ok());
  auto file = SafetensorsFile::FromBuffer(*image);
  ASSERT_TRUE(file.ok());
  auto fv = ToFloat32(*(*file)->Find("f"));
  ASSERT_TRUE(fv.ok());
  EXPECT_EQ(*fv, f);
  auto bv = ToFloat32(*(*file)->Find("b"));
  ASSERT_TRUE(bv.ok());
  EXPECT_EQ(*bv, f);  // all three are exact in bf16
  int64_t got[2];
  std::memcpy(got, (*file)->Find("i")->data, 16);
  EXPECT_EQ(got[0], 7);
  EXPECT_EQ(got[1], -8);
}

// Reference value of a half-precision bit pattern, computed from the IEEE definition with ldexp.
double HalfReference(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  return sign * std::ldexp(1024 + mant, exp - 25);
}

TEST(Conversion, EveryHalfValueIsExactInScalarAndBulkPaths) {
  std::vector<uint16_t> bits(65536);
  for (uint32_t h = 0; h < 65536; ++h) bits[h] = static_cast<uint16_t>(h);
  TensorView view{
      "halves", DType::kF16, {65536}, reinterpret_cast<const std::byte*>(bits.data()), 2 * 65536};
  auto bulk = ToFloat32(view);
  ASSERT_TRUE(bulk.ok());
  for (uint32_t h = 0; h < 65536; ++h) {
    const double ref = HalfReference(static_cast<uint16_t>(h));
    const float scalar = F16ToFloat32(static_cast<uint16_t>(h));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(scalar)) << h;
      EXPECT_TRUE(std::isnan((*bulk)[h])) << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(scalar), ref) << "half bits " << h;
    ASSERT_EQ(static_cast<double>((*bulk)[h]), ref) << "half bits " << h;
    EXPECT_EQ(std::signbit(scalar), std::signbit(ref)) << h;
    // float -> half -> float is the identity on representable values.
    ASSERT_EQ(Float32ToF16(scalar), static_cast<uint16_t>(h)) << h;
  }
}

TEST(Conversion, FloatToHalfRoundsToNearestEven) {
  EXPECT_EQ(Float32ToF16(1.0f), 0x3c00);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(Float32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  EXPECT_EQ(Float32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(Float32ToF16(70000.0f), 0x7c00);  // overflow -> inf
  EXPECT_EQ(Float32ToF16(-INFINITY), 0xfc00);
  EXPECT_EQ(Float32ToF16(std::ldexp(1.0f, -30)), 0x0000);  // underflow -> zero
  EXPECT_EQ(Float32ToF16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_TRUE(std::isnan(F16ToFloat32(Float32ToF16(NAN))));
}

TEST(Conversion, BFloat16ExactAndRounding) {
  EXPECT_EQ(BF16ToFloat32(0x3f80), 1.0f);
  EXPECT_EQ(BF16ToFloat32(0xc000), -2.0f);
  EXPECT_EQ(BF16ToFloat32(0x7f80), INFINITY);
  EXPECT_TRUE(std::isnan(BF16ToFloat32(0x7fc0)));
  EXPECT_EQ(Float32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(Float32ToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie -> even
  EXPECT_EQ(Float32ToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(Float32ToBF16(1.0f + std::ldexp(1.0f, -7) + std::ldexp(1.0f, -12)), 0x3f81);
  EXPECT_TRUE(std::isnan(BF16ToFloat32(Float32ToBF16(NAN))));
  // Bulk path over every bf16 pattern equals the shift definition.
  std::vector<uint16_t> bits(65536);
  for (uint32_t h = 0; h < 65536; ++h) bits[h] = static_cast<uint16_t>(h);
  TensorView view{
      "b", DType::kBF16, {256, 256}, reinterpret_cast<const std::byte*>(bits.data()), 2 * 65536};
  std::vector<float> out(65536);
  ASSERT_TRUE(ToFloat32(view, out).ok());
  for (uint32_t h = 0; h < 65536; ++h) {
    uint32_t expected = h << 16, got;
    std::memcpy(&got, &out[h], 4);
    ASSERT_EQ(got, expected) << h;
  }
}

TEST(Conversion, F32F64AndUnalignedData) {
  std::vector<double> d = {1.0, -0.5, 1e300, 3.141592653589793};
  TensorView dv{"d", DType::kF64, {4}, reinterpret_cast<const std::byte*>(d.data()), 32};
  auto f = ToFloat32(dv);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)[0], 1.0f);
  EXPECT_EQ((*f)[1], -0.5f);
  EXPECT_TRUE(std::isinf((*f)[2]));
  EXPECT_EQ((*f)[3], static_cast<float>(3.141592653589793));
  // F32 data at an odd address (safetensors does not align tensors).
  std::vector<std::byte> raw(1 + 12);
  float vals[3] = {0.25f, -7.0f, 1e-20f};
  std::memcpy(raw.data() + 1, vals, 12);
  TensorView fv{"f", DType::kF32, {3}, raw.data() + 1, 12};
  auto g = ToFloat32(fv);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)[0], 0.25f);
  EXPECT_EQ((*g)[1], -7.0f);
  EXPECT_EQ((*g)[2], 1e-20f);
}

TEST(Conversion, RangeOfElements) {
  std::vector<float> values(12);
  for (int i = 0; i < 12; ++i) values[i] = 0.5f * static_cast<float>(i) - 2.0f;
  auto image = SerializeSafetensors(
      {MakeBF16Tensor("emb", {4, 3}, values), MakeF32Tensor("f", {4, 3}, values)});
  ASSERT_TRUE(image.ok());
  auto file = SafetensorsFile::FromBuffer(*image);
  ASSERT_TRUE(file.ok());
  for (const char* name : {"emb", "f"}) {
    const TensorView& t = *(*file)->Find(name);
    std::vector<float> row(3);
    ASSERT_TRUE(ToFloat32(t, 6, row).ok());  // row 2
    EXPECT_EQ(row, (std::vector<float>{1.0f, 1.5f, 2.0f})) << name;
    std::vector<float> none;
    EXPECT_TRUE(ToFloat32(t, 12, none).ok());
    EXPECT_FALSE(ToFloat32(t, 10, row).ok());  // runs past the end
    EXPECT_FALSE(ToFloat32(t, -1, row).ok());
    auto st = ToFloat32(t, 13, none);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find(name), std::string::npos);
  }
}

TEST(Conversion, ErrorsNameTheTensor) {
  int64_t x[2] = {1, 2};
  TensorView iv{"ids", DType::kI64, {2}, reinterpret_cast<const std::byte*>(x), 16};
  auto r = ToFloat32(iv);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("ids"), std::string::npos);
  EXPECT_NE(r.status().message().find("I64"), std::string::npos);
  float buf[3];
  float y[2] = {1, 2};
  TensorView fv{"w", DType::kF32, {2}, reinterpret_cast<const std::byte*>(y), 8};
  auto st = ToFloat32(fv, std::span<float>(buf, 3));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("w"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------------------------
// Golden files written by the Hugging Face safetensors library. Expected values were read with
// safetensors.torch.load_file (tensor counts, sums in float64 of the bf16 values, first elements,
// decode ids).

struct GoldenModel {
  const char* name;
  size_t tensor_count;
  const char* probe;  // a tensor to check
  std::vector<int64_t> probe_shape;
  double probe_sum;
  float probe_first[3];
  int64_t decode_ids[4];
  int64_t prompt_ids[4];
  float prefill_logit00;
  double prefill_sum;
};

const std::vector<GoldenModel>& GoldenModels() {
  static const std::vector<GoldenModel> models = {
      {"llama",
       29,
       "model.embed_tokens.weight",
       {512, 128},
       -11.082341849803925,
       {0.0771484375f, 0.01544189453125f, 0.126953125f},
       {259, 482, 30, 95},
       {114, 400, 263, 81},
       -0.5526301860809326f,
       1208.9679378190776},
      {"llamba",
       35,
       "backbone.embedding.weight",
       {512, 128},
       -32.401688765734434,
       {0.0185546875f, -0.039306640625f, 0.07861328125f},
       {218, 241, 282, 27},
       {279, 231, 236, 504},
       -1.0018417835235596f,
       16.112179471063428},
      {"mamba",
       32,
       "backbone.embeddings.weight",
       {512, 128},
       -3.318210870027542,
       {-0.1455078125f, -0.059326171875f, -0.054931640625f},
       {409, 89, 312, 90},
       {447, 362, 429, 214},
       -0.8269397616386414f,
       417.8668426054064},
      {"mamba2",
       30,
       "backbone.embeddings.weight",
       {512, 128},
       -9.115102916955948,
       {0.06396484375f, -0.015625f, -0.0233154296875f},
       {104, 37, 471, 94},
       {14, 60, 257, 495},
       -0.8742600083351135f,
       -53.525967477005906},
      {"mambainllama",
       45,
       "model.layers.0.mamba.A_log",
       {128, 16},
       3939.715362548828,
       {-0.09375f, 0.38671875f, 0.9453125f},
       {101, 57, 471, 358},
       {289, 225, 183, 502},
       3.071559190750122f,
       -158.2761221473338},
  };
  return models;
}

// Parses the header with nlohmann directly and checks the reader agrees on every entry.
void ExpectHeaderAgrees(const std::filesystem::path& path, const SafetensorsFile& file) {
  auto bytes = ReadFile(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  auto header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data()) + 8,
                                      reinterpret_cast<const char*>(bytes.data()) + 8 + n);
  size_t count = 0;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    ++count;
    const TensorView* v = file.Find(it.key());
    ASSERT_NE(v, nullptr) << it.key();
    EXPECT_EQ(DTypeName(v->dtype), it.value()["dtype"].get<std::string>()) << it.key();
    EXPECT_EQ(v->shape, it.value()["shape"].get<std::vector<int64_t>>()) << it.key();
    const uint64_t begin = it.value()["data_offsets"][0].get<uint64_t>();
    EXPECT_EQ(std::memcmp(v->data, bytes.data() + 8 + n + begin, v->nbytes), 0) << it.key();
  }
  EXPECT_EQ(count, file.tensors().size());
}

TEST(Golden, ModelFilesOpenWithExpectedTensors) {
  for (const GoldenModel& m : GoldenModels()) {
    SCOPED_TRACE(m.name);
    const auto path = SharedDir() / "golden" / "models" / m.name / "model.safetensors";
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ((*file)->tensors().size(), m.tensor_count);
    EXPECT_EQ((*file)->metadata().at("format"), "pt");
    for (const TensorView& t : (*file)->tensors()) EXPECT_EQ(t.dtype, DType::kBF16) << t.name;
    ExpectHeaderAgrees(path, **file);
    const TensorView* probe = (*file)->Find(m.probe);
    ASSERT_NE(probe, nullptr);
    EXPECT_EQ(probe->shape, m.probe_shape);
    auto values = ToFloat32(*probe);
    ASSERT_TRUE(values.ok());
    double sum = 0;
    for (float v : *values) sum += v;
    EXPECT_NEAR(sum, m.probe_sum, 1e-9 * std::max(1.0, std::abs(m.probe_sum)));
    for (int i = 0; i < 3; ++i) EXPECT_EQ((*values)[i], m.probe_first[i]);
  }
}

TEST(Golden, ReferenceOutputFilesOpen) {
  for (const GoldenModel& m : GoldenModels()) {
    SCOPED_TRACE(m.name);
    const auto path = SharedDir() / "golden" / "models" / m.name / "golden.safetensors";
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ExpectHeaderAgrees(path, **file);
    EXPECT_EQ((*file)->metadata().at("model"), m.name);
    ASSERT_EQ((*file)->tensors().size(), 4u);
    const TensorView* prompt = (*file)->Find("prompt_ids");
    const TensorView* ids = (*file)->Find("decode_ids");
    const TensorView* prefill = (*file)->Find("prefill_logits");
    const TensorView* decode = (*file)->Find("decode_logits");
    ASSERT_TRUE(prompt && ids && prefill && decode);
    EXPECT_EQ(prompt->dtype, DType::kI64);
    EXPECT_EQ(prompt->shape, (std::vector<int64_t>{24}));
    EXPECT_EQ(ids->shape, (std::vector<int64_t>{16}));
    EXPECT_EQ(prefill->dtype, DType::kF32);
    EXPECT_EQ(prefill->shape, (std::vector<int64_t>{24, 512}));
    EXPECT_EQ(decode->shape, (std::vector<int64_t>{16, 512}));
    int64_t got_ids[4], got_prompt[4];
    std::memcpy(got_ids, ids->data, sizeof got_ids);
    std::memcpy(got_prompt, prompt->data, sizeof got_prompt);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(got_ids[i], m.decode_ids[i]);
      EXPECT_EQ(got_prompt[i], m.prompt_ids[i]);
    }
    auto logits = ToFloat32(*prefill);
    ASSERT_TRUE(logits.ok());
    EXPECT_EQ((*logits)[0], m.prefill_logit00);
    double sum = 0;
    for (float v : *logits) sum += v;
    EXPECT_NEAR(sum, m.prefill_sum, 1e-6);
  }
}

TEST(Golden, RewritingAGoldenFileReproducesItsTensors) {
  // Read a real file, write it back with ttc's writer, read again: same names, dtypes, shapes and
  // bytes.
  const auto path = SharedDir() / "golden" / "models" / "llama" / "model.safetensors";
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  std::vector<OwnedTensor> owned;
  for (const TensorView& t : (*file)->tensors()) {
    owned.push_back({t.name, t.dtype, t.shape, std::vector<std::byte>(t.data, t.data + t.nbytes)});
  }
  TempDir dir;
  ASSERT_TRUE(WriteSafetensors(dir / "copy.safetensors", owned, (*file)->metadata()).ok());
  auto copy = SafetensorsFile::Open(dir / "copy.safetensors");
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  ASSERT_EQ((*copy)->tensors().size(), (*file)->tensors().size());
  EXPECT_EQ((*copy)->metadata(), (*file)->metadata());
  for (const TensorView& t : (*file)->tensors()) {
    const TensorView* c = (*copy)->Find(t.name);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->shape, t.shape);
    EXPECT_EQ(std::memcmp(c->data, t.data, t.nbytes), 0) << t.name;
  }
}

// Small files written by the Python safetensors library (the fuzz seeds): values read back, and
// ttc's writer reproduces them byte for byte when given the same tensor order.
TEST(Golden, PythonWrittenFilesReadAndRewriteIdentically) {
  const auto dir = testing::SourceDir() / "tests" / "fuzz" / "corpus" / "safetensors";
  auto file = SafetensorsFile::Open(dir / "all_dtypes.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->tensors().size(), 8u);
  auto w = ToFloat32(*(*file)->Find("w"));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
  auto h = ToFloat32(*(*file)->Find("h"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(static_cast<int8_t>((*file)->Find("c")->data[0]), -1);
  EXPECT_EQ(static_cast<uint8_t>((*file)->Find("u")->data[0]), 255);
  EXPECT_EQ((*file)->Find("t")->dtype, DType::kBool);

  for (const char* name : {"all_dtypes.safetensors", "f32_i64.safetensors",
                           "scalar_empty.safetensors", "no_tensors.safetensors"}) {
    SCOPED_TRACE(name);
    auto original = ReadFile(dir / name);
    auto f = SafetensorsFile::FromBuffer(original, name);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    std::vector<const TensorView*> by_offset;
    for (const TensorView& t : (*f)->tensors()) by_offset.push_back(&t);
    // The Python writer orders by data offset; zero-size tensors first among equals, then by name.
    std::stable_sort(by_offset.begin(), by_offset.end(),
                     [](const TensorView* a, const TensorView* b) {
                       return a->data != b->data ? a->data < b->data : a->nbytes < b->nbytes;
                     });
    std::vector<OwnedTensor> owned;
    for (const TensorView* t : by_offset) {
      owned.push_back(
          {t->name, t->dtype, t->shape, std::vector<std::byte>(t->data, t->data + t->nbytes)});
    }
    auto image = SerializeSafetensors(owned, (*f)->metadata());
    ASSERT_TRUE(image.ok());
    EXPECT_EQ(*image, original);
  }
}

}  // namespace
}  // namespace ttc::engine
