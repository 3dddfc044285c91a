// Checkpoint: single-file and sharded model folders, lookups with shape checks, and the error
// messages callers show.
#include "engine/checkpoint.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace ttc::engine {
namespace {

using testing::SharedDir;
using testing::TempDir;

OwnedTensor Tensor(const std::string& name, std::vector<int64_t> shape, float base) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i);
  return MakeF32Tensor(name, std::move(shape), v);
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Writes a two-shard checkpoint with an index, HF layout.
void WriteSharded(const std::filesystem::path& dir) {
  ASSERT_TRUE(WriteSafetensors(dir / "model-00001-of-00002.safetensors",
                               {Tensor("model.embed_tokens.weight", {4, 2}, 0.0f),
                                Tensor("model.layers.0.mlp.up_proj.weight", {3, 2}, 100.0f)},
                               {{"format", "pt"}})
                  .ok());
  ASSERT_TRUE(WriteSafetensors(dir / "model-00002-of-00002.safetensors",
                               {Tensor("model.layers.1.mlp.up_proj.weight", {3, 2}, 200.0f),
                                Tensor("model.norm.weight", {2}, 300.0f)},
                               {{"format", "pt"}})
                  .ok());
  nlohmann::json index = {
      {"metadata", {{"total_size", 4 * (8 + 6 + 6 + 2)}}},
      {"weight_map",
       {{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
        {"model.layers.0.mlp.up_proj.weight", "model-00001-of-00002.safetensors"},
        {"model.layers.1.mlp.up_proj.weight", "model-00002-of-00002.safetensors"},
        {"model.norm.weight", "model-00002-of-00002.safetensors"}}}};
  WriteText(dir / "model.safetensors.index.json", index.dump(2));
}

TEST(Checkpoint, OpensGoldenModelFolder) {
  const auto dir = SharedDir() / "golden" / "models" / "llama";
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->size(), 29u);
  // golden.safetensors in the same folder is not part of the weights.
  EXPECT_FALSE(ckpt->Has("prefill_logits"));
  EXPECT_TRUE(ckpt->Has("model.layers.2.mlp.up_proj.weight"));
  auto names = ckpt->names();
  ASSERT_EQ(names.size(), 29u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.front(), "model.embed_tokens.weight");
  auto embed = ckpt->Get("model.embed_tokens.weight", {512, 128});
  ASSERT_TRUE(embed.ok()) << embed.status().ToString();
  EXPECT_EQ((*embed)->dtype, DType::kBF16);
  EXPECT_NE(ckpt->FileOf("model.norm.weight").find("model.safetensors"), std::string::npos);
}

TEST(Checkpoint, MissingTensorAndWrongShapeMessages) {
  auto ckpt = Checkpoint::Open(SharedDir() / "golden" / "models" / "llama");
  ASSERT_TRUE(ckpt.ok());
  auto missing = ckpt->Get("model.layers.3.mlp.up_proj.weight");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(
                "model.safetensors: missing tensor model.layers.3.mlp.up_proj.weight"),
            std::string::npos)
      << missing.status().message();
  auto wrong = ckpt->Get("model.embed_tokens.weight", {128, 512});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(wrong.status().message().find(
                "model.embed_tokens.weight has shape [512, 128], expected [128, 512]"),
            std::string::npos)
      << wrong.status().message();
  EXPECT_FALSE(ckpt->Get("nope", {1}).ok());
}

TEST(Checkpoint, OpensASingleFileDirectly) {
  auto ckpt = Checkpoint::Open(SharedDir() / "golden" / "models" / "mamba" / "model.safetensors");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->size(), 32u);
  EXPECT_TRUE(ckpt->Has("backbone.embeddings.weight"));
}

TEST(Checkpoint, EveryGoldenModelFolderOpens) {
  for (const char* name : {"llama", "llamba", "mamba", "mamba2", "mambainllama"}) {
    auto ckpt = Checkpoint::Open(SharedDir() / "golden" / "models" / name);
    ASSERT_TRUE(ckpt.ok()) << name << ": " << ckpt.status().ToString();
    EXPECT_GT(ckpt->size(), 20u) << name;
    EXPECT_EQ(ckpt->files().size(), 1u);
  }
}

TEST(Checkpoint, ShardedFolder) {
  TempDir dir;
  WriteSharded(dir.path());
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->size(), 4u);
  EXPECT_EQ(ckpt->files().size(), 2u);
  EXPECT_NE(ckpt->source().find("model.safetensors.index.json"), std::string::npos);
  EXPECT_NE(ckpt->FileOf("model.norm.weight").find("model-00002-of-00002"), std::string::npos);
  EXPECT_NE(ckpt->FileOf("model.embed_tokens.weight").find("model-00001-of-00002"),
            std::string::npos);
  auto t = ckpt->Get("model.layers.1.mlp.up_proj.weight", {3, 2});
  ASSERT_TRUE(t.ok());
  auto v = ToFloat32(**t);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)[0], 200.0f);
  EXPECT_EQ((*v)[5], 205.0f);
  auto missing = ckpt->Get("model.layers.3.mlp.up_proj.weight");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("model.safetensors.index.json: missing tensor "
                                            "model.layers.3.mlp.up_proj.weight"),
            std::string::npos);
  // Moving the checkpoint keeps views valid.
  const TensorView* before = *ckpt->Get("model.norm.weight");
  Checkpoint moved = std::move(*ckpt);
  EXPECT_EQ(*moved.Get("model.norm.weight"), before);
  EXPECT_EQ(ToFloat32(*before)->at(1), 301.0f);
}

TEST(Checkpoint, IndexWinsOverSingleFile) {
  TempDir dir;
  WriteSharded(dir.path());
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", {Tensor("other", {1}, 0.0f)}).ok());
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok());
  EXPECT_FALSE(ckpt->Has("other"));
  EXPECT_EQ(ckpt->size(), 4u);
}

}  // namespace
}  // namespace ttc::engine
