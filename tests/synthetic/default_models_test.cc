// The default experiment's committed artifacts (experiments/models/, experiments/grids/demo.json):
// the trained tokenizer encodes exactly as Hugging Face `tokenizers` does (ids recorded by the
// training tools), every model folder holds the files its format needs, and the demo grid is a
// valid grid whose models and PRM exist.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/tokenizer.h"
#include "experiments/grid.h"
#include "tests/test_util.h"

namespace ttc {
namespace {

namespace fs = std::filesystem;
using testing::SourceDir;

const fs::path kModels = SourceDir() / "experiments" / "models";

nlohmann::json ReadJson(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in.good()) << p;
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

TEST(DefaultTokenizer, MatchesHuggingFaceIds) {
  const auto fixture =
      ReadJson(SourceDir() / "tests" / "synthetic" / "fixtures" / "tokenizer_hf_ids.json");
  auto tok = engine::Tokenizer::Load(SourceDir() / fixture.at("tokenizer").get<std::string>());
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->vocab_size(), 512);
  ASSERT_GE(fixture.at("cases").size(), 10u);
  for (const auto& c : fixture.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    auto ids = tok->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_EQ(*ids, c.at("ids").get<std::vector<int32_t>>()) << text;
    engine::EncodeOptions with_bos;
    with_bos.add_bos = true;
    auto ids_bos = tok->Encode(text, with_bos);
    ASSERT_TRUE(ids_bos.ok());
    EXPECT_EQ(*ids_bos, c.at("ids_with_bos").get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(tok->Decode(*ids), text);
  }
  // The ids the PRM protocol and the stop set rely on.
  EXPECT_EQ(tok->TokenToId("<|eot_id|>"), 505);
  EXPECT_EQ(tok->TokenToId("<|begin_of_text|>"), 496);
  auto plus = tok->Encode("+");
  auto minus = tok->Encode("-");
  auto sep = tok->Encode("\n\n");
  ASSERT_TRUE(plus.ok() && minus.ok() && sep.ok());
  EXPECT_EQ(plus->size(), 1u);
  EXPECT_EQ(minus->size(), 1u);
  EXPECT_EQ(sep->size(), 1u);
}

TEST(DefaultModels, FoldersHoldTheirFormatsFiles) {
  const std::vector<std::string> common = {"config.json",
                                           "model.safetensors",
                                           "tokenizer.json",
                                           "tokenizer_config.json",
                                           "generation_config.json",
                                           "golden.safetensors",
                                           "README.md"};
  for (const std::string name :
       {"teacher-llama", "student-mambainllama", "student-llamba", "prm-llama"}) {
    for (const auto& f : common) EXPECT_TRUE(fs::exists(kModels / name / f)) << name << "/" << f;
  }
  // Real checkpoint formats: Llama config, MambaInLlama split format with mamba_config.json, Llamba
  // config.
  EXPECT_EQ(ReadJson(kModels / "teacher-llama" / "config.json").at("model_type"), "llama");
  EXPECT_EQ(ReadJson(kModels / "prm-llama" / "config.json").at("model_type"), "llama");
  const auto mamba = ReadJson(kModels / "student-mambainllama" / "mamba_config.json");
  const auto attn = mamba.at("attn_layers").get<std::vector<int>>();
  EXPECT_LT(2 * attn.size(), mamba.at("n_layer").get<size_t>()) << "most layers must be Mamba";
  EXPECT_EQ(ReadJson(kModels / "student-llamba" / "config.json").at("model_type"), "llamba");
  // Stop on <|eot_id|> as Llama 3 Instruct does.
  const auto gen = ReadJson(kModels / "teacher-llama" / "generation_config.json");
  const auto eos = gen.at("eos_token_id").get<std::vector<int>>();
  EXPECT_NE(std::find(eos.begin(), eos.end(), 505), eos.end());
  // All weights together stay small enough to live in the repository.
  uintmax_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(kModels)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  EXPECT_LT(total, 30u * 1024 * 1024);
}

TEST(DemoGrid, IsValidAndComplete) {
  auto spec = experiments::LoadGridSpec(SourceDir() / "experiments" / "grids" / "demo.json");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->models.size(), 3u);
  EXPECT_EQ(spec->temperatures.size(), 2u);
  EXPECT_GE(spec->n_samples, 32);
  EXPECT_EQ(spec->k_values.back(), 32);
  ASSERT_TRUE(spec->reward_model.has_value());
  EXPECT_EQ(spec->dataset.kind, experiments::DatasetKind::kSynthetic);
  EXPECT_EQ(spec->dataset.count, 100);
}

}  // namespace
}  // namespace ttc
