// Bad input for the safetensors reader and the checkpoint loader: every malformed file gives a
// clear error naming the file (and the tensor when one is at fault), never a crash. Runs under
// AddressSanitizer/UBSan in tools/test.sh.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "tests/test_util.h"

namespace ttc::engine {
namespace {

using testing::SharedDir;
using testing::TempDir;

// A file image from a header text and a data buffer of `data_size` bytes.
std::vector<std::byte> Image(const std::string& header, size_t data_size,
                             uint64_t header_len_override = ~0ull) {
  std::vector<std::byte> out(8 + header.size() + data_size, std::byte{0});
  const uint64_t n = header_len_override == ~0ull ? header.size() : header_len_override;
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

Status Parse(const std::vector<std::byte>& bytes) {
  auto r = SafetensorsFile::FromBuffer(bytes, "bad.safetensors");
  return r.ok() ? Status::Ok() : r.status();
}

// Expects a kCorrupt error whose message names the file and contains every fragment.
void ExpectCorrupt(const Status& st, std::initializer_list<const char*> fragments) {
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt) << st.ToString();
  EXPECT_NE(st.message().find("bad.safetensors"), std::string::npos) << st.message();
  for (const char* f : fragments)
    EXPECT_NE(st.message().find(f), std::string::npos) << st.message();
}

TEST(SafetensorsRobust, ValidMinimalImagesParse) {
  EXPECT_TRUE(Parse(Image("{}", 0)).ok());
  EXPECT_TRUE(Parse(Image(R"({"__metadata__":{"a":"b"}})", 0)).ok());
  EXPECT_TRUE(Parse(Image(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)).ok());
  // Header padded with trailing spaces (what writers do) is fine.
  EXPECT_TRUE(Parse(Image(R"({"x":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}    )", 1)).ok());
  // Gaps between tensors are tolerated.
  EXPECT_TRUE(Parse(Image(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[4,5]}})", 8)).ok());
  // Empty tensors may sit anywhere, even on another tensor's bytes.
  EXPECT_TRUE(Parse(Image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("b":{"dtype":"F32","shape":[0,3],"data_offsets":[2,2]}})",
                          4))
                  .ok());
}

TEST(SafetensorsRobust, TooShortAndHeaderLengthBeyondFile) {
  ExpectCorrupt(Parse({}), {"shorter than the 8-byte header length"});
  ExpectCorrupt(Parse(std::vector<std::byte>(7)), {"7 bytes"});
  ExpectCorrupt(Parse(Image("{}", 0, 100)), {"header length 100 exceeds"});
  ExpectCorrupt(Parse(Image("{}", 0, ~0ull - 1)), {"exceeds"});
  ExpectCorrupt(Parse(Image("", 0)), {"too short"});
  ExpectCorrupt(Parse(Image("{}", 0, 0)), {"too short"});
}

TEST(SafetensorsRobust, TruncatedRealFileAtEveryRegion) {
  const auto path = SharedDir() / "golden" / "models" / "llama" / "golden.safetensors";
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(chars.size(), 1000u);
  std::vector<std::byte> full(chars.size());
  std::memcpy(full.data(), chars.data(), chars.size());
  ASSERT_TRUE(Parse(full).ok());
  uint64_t n = 0;
  std::memcpy(&n, full.data(), 8);
  for (size_t cut : {size_t{0}, size_t{4}, size_t{8}, size_t{9}, static_cast<size_t>(8 + n / 2),
                     static_cast<size_t>(8 + n - 1), static_cast<size_t>(8 + n),
                     static_cast<size_t>(8 + n + 100), full.size() - 1}) {
    std::vector<std::byte> part(full.begin(), full.begin() + cut);
    Status st = Parse(part);
    ASSERT_FALSE(st.ok()) << "cut at " << cut;
    EXPECT_EQ(st.code(), StatusCode::kCorrupt);
    EXPECT_NE(st.message().find("bad.safetensors"), std::string::npos) << st.message();
  }
  // Cut inside the data buffer: the error names a tensor whose bytes are missing.
  std::vector<std::byte> part(full.begin(), full.end() - 1);
  ExpectCorrupt(Parse(part), {"prefill_logits", "out of range"});
}

TEST(SafetensorsRobust, TruncatedFileOnDisk) {
  TempDir dir;
  const auto path = dir / "model.safetensors";
  auto image = Image(R"({"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})", 8);
  image.resize(image.size() - 3);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(image.data()),
              static_cast<std::streamsize>(image.size()));
  }
  auto r = SafetensorsFile::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find(path.string()), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("tensor w"), std::string::npos) << r.status().message();
  // Empty file, missing file, a directory.
  { std::ofstream out(dir / "empty.safetensors"); }
  auto e = SafetensorsFile::Open(dir / "empty.safetensors");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("empty.safetensors"), std::string::npos);
  auto m = SafetensorsFile::Open(dir / "absent.safetensors");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find("absent.safetensors"), std::string::npos);
  auto d = SafetensorsFile::Open(dir.path());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("not a regular file"), std::string::npos);
}

TEST(SafetensorsRobust, OffsetsOutOfRangeOrOverlapping) {
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 8)),
                {"tensor w", "out of range"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)),
                {"tensor w", "begin after end"});
  ExpectCorrupt(
      Parse(Image(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,)"
                  R"(18446744073709551615]}})",
                  8)),
      {"tensor w"});
  ExpectCorrupt(Parse(Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            12)),
                {"overlaps", "tensor b", "tensor a"});
  // Identical ranges overlap too.
  ExpectCorrupt(Parse(Image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                            4)),
                {"overlaps"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8)),
                {"tensor w", "data_offsets"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", 8)),
                {"tensor w", "data_offsets"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0.0,8]}})", 8)),
                {"tensor w", "data_offsets"});
}

TEST(SafetensorsRobust, DtypeAndShapeProblems) {
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", 8)),
                {"tensor w", "dtype 'F99'"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8)),
                {"tensor w", "dtype"});
  ExpectCorrupt(Parse(Image(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8)),
                {"tensor w", "dtype"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 12)),
                {"tensor w", "does not match", "[3]"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)),
                {"tensor w", "shape"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8)),
                {"tensor w", "shape"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8)),
                {"tensor w", "shape"});
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8)),
                {"tensor w", "shape"});
  // Products that overflow 64 bits must not wrap around to a small, matching size.
  ExpectCorrupt(
      Parse(Image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}})",
                  8)),
      {"tensor w", "too large"});
  ExpectCorrupt(
      Parse(Image(R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8]}})", 8)),
      {"tensor w"});
  // A zero dimension makes an otherwise huge product empty.
  EXPECT_TRUE(
      Parse(Image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})",
                  0))
          .ok());
  ExpectCorrupt(
      Parse(Image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8)),
      {"tensor w", "unknown field 'extra'"});
  ExpectCorrupt(Parse(Image(R"({"w":[1,2]})", 8)), {"tensor w", "not an object"});
  ExpectCorrupt(Parse(Image(R"({"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1)),
                {"empty name"});
}

TEST(SafetensorsRobust, MalformedJsonAndMetadata) {
  ExpectCorrupt(Parse(Image(R"({"w":{"dtype":"F32",)", 8)), {"malformed JSON"});
  ExpectCorrupt(Parse(Image(R"({"w" 1})", 0)), {"malformed JSON"});
  ExpectCorrupt(Parse(Image(R"({} trailing)", 0)), {"malformed JSON"});
  ExpectCorrupt(Parse(Image("[1,2]", 0)), {"not an object"});
  ExpectCorrupt(Parse(Image("\"str\"", 0)), {"not an object"});
  ExpectCorrupt(Parse(Image("{\"\xff\xfe\":1}", 0)), {"malformed JSON"});  // invalid UTF-8
  ExpectCorrupt(Parse(Image(std::string(4, '\0'), 0)), {"malformed JSON"});
  ExpectCorrupt(Parse(Image(R"({"__metadata__":{"a":1}})", 0)), {"__metadata__", "'a'"});
  ExpectCorrupt(Parse(Image(R"({"__metadata__":[]})", 0)), {"__metadata__"});
  ExpectCorrupt(Parse(Image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                            R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                            2)),
                {"tensor a", "duplicate"});
  std::string deep(10000, '[');
  ExpectCorrupt(Parse(Image("{\"w\":" + deep, 0)), {"nested"});
}

TEST(SafetensorsRobust, RandomCorruptionNeverCrashes) {
  // Valid image with several dtypes; flip bytes, truncate and extend at random (seeded, bounded)
  // and require a clean result either way. ASan/UBSan catch any out-of-bounds access.
  auto base = SerializeSafetensors({MakeF32Tensor("a", {2, 2}, std::vector<float>{1, 2, 3, 4}),
                                    MakeI64Tensor("b", {3}, std::vector<int64_t>{1, 2, 3}),
                                    MakeBF16Tensor("c", {1}, std::vector<float>{0.5f})},
                                   {{"k", "v"}});
  ASSERT_TRUE(base.ok());
  std::mt19937 rng(1234);
  int ok_count = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::byte> bytes = *base;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t pos = rng() % bytes.size();
      if (iter % 3 == 0 && pos >= 8)
        pos = 8 + rng() % std::min<size_t>(bytes.size() - 8, 200);  // header bias
      bytes[pos] = static_cast<std::byte>(rng() & 0xff);
    }
    if (iter % 7 == 0) bytes.resize(rng() % (bytes.size() + 1));
    if (iter % 11 == 0) bytes.resize(bytes.size() + rng() % 64, std::byte{'0'});
    auto r = SafetensorsFile::FromBuffer(bytes, "fuzz.safetensors");
    if (r.ok()) {
      ++ok_count;
      for (const TensorView& t : (*r)->tensors()) {
        // Reading every byte of every view must stay inside the image.
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ static_cast<uint8_t>(t.data[i]);
        auto f = ToFloat32(t);
        (void)f;
      }
    } else {
      EXPECT_NE(r.status().message().find("fuzz.safetensors"), std::string::npos)
          << r.status().message();
    }
  }
  EXPECT_GT(ok_count, 0);  // data-byte flips leave valid files
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoint folders

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

void WriteShard(const std::filesystem::path& path, const std::vector<std::string>& names) {
  std::vector<OwnedTensor> tensors;
  for (const auto& n : names) tensors.push_back(MakeF32Tensor(n, {2}, std::vector<float>{1, 2}));
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
}

Status OpenDir(const std::filesystem::path& dir) {
  auto r = Checkpoint::Open(dir);
  return r.ok() ? Status::Ok() : r.status();
}

TEST(CheckpointRobust, NoWeightsInFolder) {
  TempDir dir;
  Status st = OpenDir(dir.path());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("model.safetensors"), std::string::npos) << st.message();
  Status absent = OpenDir(dir / "nope");
  EXPECT_EQ(absent.code(), StatusCode::kNotFound);
}

TEST(CheckpointRobust, CorruptSingleFileNamesIt) {
  TempDir dir;
  WriteText(dir / "model.safetensors", "garbage!garbage!");
  Status st = OpenDir(dir.path());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("model.safetensors"), std::string::npos) << st.message();
}

TEST(CheckpointRobust, IndexProblems) {
  TempDir dir;
  WriteShard(dir / "model-00001-of-00002.safetensors", {"a", "b"});
  const auto index = dir / "model.safetensors.index.json";

  WriteText(index, "{not json");
  Status st = OpenDir(dir.path());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("model.safetensors.index.json: malformed JSON"), std::string::npos)
      << st.message();

  WriteText(index, R"({"metadata":{}})");
  st = OpenDir(dir.path());
  EXPECT_NE(st.message().find("weight_map"), std::string::npos) << st.message();

  WriteText(index, R"({"weight_map":{}})");
  st = OpenDir(dir.path());
  EXPECT_NE(st.message().find("empty"), std::string::npos) << st.message();

  WriteText(index, R"({"weight_map":{"a":7}})");
  st = OpenDir(dir.path());
  EXPECT_NE(st.message().find("tensor a"), std::string::npos) << st.message();

  // Shard file missing: names the index, the tensor and the shard.
  WriteText(
      index,
      R"({"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})");
  st = OpenDir(dir.path());
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("model.safetensors.index.json"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("tensor c"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("model-00002-of-00002.safetensors"), std::string::npos)
      << st.message();

  // Tensor mapped to a shard that lacks it.
  WriteText(
      index,
      R"({"weight_map":{"a":"model-00001-of-00002.safetensors","zz":"model-00001-of-00002.safetensors"}})");
  st = OpenDir(dir.path());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("tensor zz is mapped to"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("model-00001-of-00002.safetensors"), std::string::npos)
      << st.message();

  // Path escapes.
  WriteText(index, R"({"weight_map":{"a":"../model-00001-of-00002.safetensors"}})");
  st = OpenDir(dir.path());
  EXPECT_NE(st.message().find("not a file name inside the model folder"), std::string::npos)
      << st.message();
  WriteText(index, R"({"weight_map":{"a":"/etc/passwd"}})");
  st = OpenDir(dir.path());
  EXPECT_NE(st.message().find("not a file name inside the model folder"), std::string::npos)
      << st.message();

  // A corrupt shard: names the shard file.
  WriteText(dir / "model-00002-of-00002.safetensors", std::string(16, '\x01'));
  WriteText(
      index,
      R"({"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})");
  st = OpenDir(dir.path());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("model-00002-of-00002.safetensors"), std::string::npos)
      << st.message();

  // And the good index opens.
  WriteText(
      index,
      R"({"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}})");
  EXPECT_TRUE(OpenDir(dir.path()).ok());
}

}  // namespace
}  // namespace ttc::engine
