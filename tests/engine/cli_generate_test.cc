// `ttc generate` end to end on the golden models: greedy ids match the golden chain, --dump-logits
// writes the golden layout within tolerance, --json output, usage errors.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "tests/engine/engine_test_util.h"

namespace ttc {
namespace {

using testing::RunTtc;

std::string PromptIdsOf(const std::filesystem::path& dir, std::vector<int64_t>* chain) {
  auto golden = engine::SafetensorsFile::Open(dir / "golden.safetensors");
  EXPECT_TRUE(golden.ok());
  auto ids = testing::ReadI64(*(*golden)->Find("prompt_ids"));
  *chain = testing::ReadI64(*(*golden)->Find("decode_ids"));
  std::string s;
  for (auto v : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(v);
  }
  return s;
}

class CliGenerate : public ::testing::TestWithParam<const char*> {};

TEST_P(CliGenerate, GreedyJsonMatchesGoldenChain) {
  const auto dir = testing::GoldenModel(GetParam());
  std::vector<int64_t> chain;
  const std::string ids = PromptIdsOf(dir, &chain);
  auto r = RunTtc("generate --model " + dir.string() + " --prompt-ids " + ids +
                  " --greedy -n 2 --max-new-tokens 16 --stop-ids 511 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  ASSERT_EQ(j["samples"].size(), 2u);
  std::vector<int64_t> tokens = j["samples"][1]["tokens"];
  // The chain up to a 511 (the stop id given) if one occurs.
  std::vector<int64_t> expected;
  for (auto t : chain) {
    if (t == 511) break;
    expected.push_back(t);
  }
  EXPECT_EQ(tokens, expected);
  EXPECT_EQ(j["timings"]["steps"].get<int>(),
            static_cast<int>(expected.size()) - 1 + (expected.size() < 16));
}

TEST_P(CliGenerate, DumpLogitsWithinTolerance) {
  const auto dir = testing::GoldenModel(GetParam());
  std::vector<int64_t> chain;
  const std::string ids = PromptIdsOf(dir, &chain);
  testing::TempDir tmp;
  auto r = RunTtc("generate --model " + dir.string() + " --prompt-ids " + ids +
                  " --max-new-tokens 16 --threads 1" + " --dump-logits " +
                  (tmp / "out.safetensors").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto mine = engine::SafetensorsFile::Open(tmp / "out.safetensors");
  auto golden = engine::SafetensorsFile::Open(dir / "golden.safetensors");
  ASSERT_TRUE(mine.ok() && golden.ok());
  for (const char* name : {"prefill_logits", "decode_logits"}) {
    const auto* a = (*mine)->Find(name);
    const auto* b = (*golden)->Find(name);
    ASSERT_TRUE(a && b) << name;
    EXPECT_EQ(a->shape, b->shape) << name;
    auto fa = engine::ToFloat32(*a);
    auto fb = engine::ToFloat32(*b);
    EXPECT_LE(testing::MaxAbsDiff(fa->data(), fb->data(), fa->size()), 1e-3f) << name;
  }
  EXPECT_EQ(testing::ReadI64(*(*mine)->Find("decode_ids")), chain);
}

INSTANTIATE_TEST_SUITE_P(Golden, CliGenerate,
                         ::testing::Values("llama", "mambainllama", "llamba", "mamba", "mamba2"));

TEST(CliGenerateErrors, UsageAndFailures) {
  const auto dir = testing::GoldenModel("llama").string();
  EXPECT_EQ(RunTtc("generate --model " + dir).exit_code, 2);  // no prompt
  EXPECT_EQ(RunTtc("generate --model " + dir + " --prompt-ids 1,x").exit_code, 2);
  EXPECT_EQ(RunTtc("generate --model " + dir + " --prompt-ids 1 --top-p 0").exit_code, 2);
  auto r = RunTtc("generate --model " + dir + " --prompt hello");
  EXPECT_EQ(r.exit_code, 1);  // no tokenizer in the fixture folder
  EXPECT_NE(r.output.find("tokenizer"), std::string::npos) << r.output;
  r = RunTtc("generate --model " + dir + " --prompt-ids 1,99999");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("99999"), std::string::npos) << r.output;
  r = RunTtc("generate --model /nonexistent/model --prompt-ids 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("/nonexistent/model"), std::string::npos) << r.output;
  r = RunTtc("generate --model " + dir + " --prompt-ids 1 --state-dtype fp16");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown state dtype 'fp16' (expected f32, bf16 or f16)"),
            std::string::npos)
      << r.output;
  r = RunTtc("generate --model " + dir + " --prompt-ids 1 --state-dtype f16");  // CPU backend
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("state dtype f16 needs the CUDA backend"), std::string::npos) << r.output;
  r = RunTtc("generate --model " + dir + " --prompt-ids 1 --state-dtype bf16");  // CPU backend
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("needs the CUDA backend"), std::string::npos) << r.output;
  r = RunTtc("generate --model " + dir + " --prompt-ids 1 --dtype fp8");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--dtype"), std::string::npos) << r.output;
  r = RunTtc("generate --model " + dir + " --prompt-ids 1 --dtype f32 --backend cuda");
  EXPECT_EQ(r.exit_code, 1);  // refused before any device is touched
  EXPECT_NE(r.output.find("weight dtype f32 needs the CPU backend"), std::string::npos) << r.output;
  EXPECT_EQ(RunTtc("generate --model " + dir + " --prompt-ids 1 --max-new-tokens 2 --dtype f16")
                .exit_code,
            0);
}

// A model folder with a tokenizer: text in, text out (the Llama 3 tokenizer with a random
// 128256-vocab model would be too big for a unit test, so this uses --random-weights on a small
// config with the real vocab size).
TEST(CliGenerateText, PromptAndChatWithTokenizer) {
  testing::TempDir tmp;
  nlohmann::json c = {{"architectures", {"LlamaForCausalLM"}},
                      {"hidden_size", 64},
                      {"intermediate_size", 128},
                      {"num_attention_heads", 2},
                      {"num_key_value_heads", 1},
                      {"num_hidden_layers", 1},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 500000.0},
                      {"tie_word_embeddings", true},
                      {"vocab_size", 128256},
                      {"bos_token_id", 128000},
                      {"eos_token_id", {128001, 128009}}};
  {
    std::ofstream out(tmp / "config.json");
    out << c.dump();
  }
  std::filesystem::copy_file(testing::SharedDir() / "assets" / "llama3" / "tokenizer.json",
                             tmp / "tokenizer.json");
  // --random-weights still needs the weights? No: it builds the config's network from the seed.
  auto r = RunTtc(
      "generate --model " + tmp.path().string() +
      " --random-weights 1 --prompt 'Hello world' -n 2 --max-new-tokens 4 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["prompt_tokens"].get<int>(), 3);  // BOS, "Hello", " world"
  EXPECT_TRUE(j["samples"][0].contains("text"));
  r = RunTtc("generate --model " + tmp.path().string() +
             " --random-weights 1 --chat 'What is 1+1?' --system 'Be brief.' --max-new-tokens 2 "
             "--threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_GT(j["prompt_tokens"].get<int>(), 20);
}

}  // namespace
}  // namespace ttc
