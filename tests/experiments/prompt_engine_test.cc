// The prompts rendered and tokenized by the engine's Llama 3 chat code (engine/chat.h) against the
// evaluation.md §2.3 test vectors: MATH-500 row 0 in SAL form (954 bytes, 206 tokens with BOS) and
// GSM8K row 0 zero-shot (691 bytes, 139 tokens). This is the path a worker takes: experiments/
// builds messages, the engine renders.
#include <gtest/gtest.h>

#include "../test_util.h"
#include "engine/chat.h"
#include "engine/tokenizer.h"
#include "experiments/dataset.h"
#include "experiments/prompt.h"

namespace ttc::experiments {
namespace {

std::vector<engine::ChatMessage> ToEngine(const std::vector<PromptMessage>& messages) {
  std::vector<engine::ChatMessage> out;
  for (const PromptMessage& m : messages) out.push_back({m.role, m.content});
  return out;
}

class PromptEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tok =
        engine::Tokenizer::Load(testing::SharedDir() / "assets" / "llama3" / "tokenizer.json");
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tokenizer_ = std::make_unique<engine::Tokenizer>(std::move(tok).value());
  }
  std::unique_ptr<engine::Tokenizer> tokenizer_;
};

TEST_F(PromptEngineTest, Math500Row0) {
  auto problems = LoadMath500(testing::SharedDir() / "data" / kMath500FileName);
  ASSERT_TRUE(problems.ok());
  PromptSpec spec;
  auto messages = BuildPrompt((*problems)[0], spec);
  ASSERT_TRUE(messages.ok());
  auto chat = ToEngine(*messages);
  engine::ChatOptions options;  // SAL template, 26 Jul 2024
  auto text = engine::RenderChat(chat, options);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(text->size(), 954u);
  EXPECT_EQ(Sha256Hex(*text), "12fdf2e783d3ff56cc195555a26d260603e2575dcc9d5d48710b2b4ae5b9b1f9");
  auto ids = engine::EncodeChat(*tokenizer_, chat, options);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_EQ(ids->size(), 206u);
  const std::vector<int32_t> head = {128000, 128006, 9125, 128007, 271,  38766,
                                     1303,   33025,  2696, 25,     6790, 220};
  EXPECT_EQ(std::vector<int32_t>(ids->begin(), ids->begin() + 12), head);
  const std::vector<int32_t> tail = {128009, 128006, 78191, 128007, 271};
  EXPECT_EQ(std::vector<int32_t>(ids->end() - 5, ids->end()), tail);
}

TEST_F(PromptEngineTest, Gsm8kRow0) {
  auto problems = LoadGsm8k(testing::SharedDir() / "data" / kGsm8kFileName);
  ASSERT_TRUE(problems.ok());
  PromptSpec spec;
  spec.template_kind = PromptTemplate::kGsm8k;
  auto messages = BuildPrompt((*problems)[0], spec);
  ASSERT_TRUE(messages.ok());
  auto chat = ToEngine(*messages);
  engine::ChatOptions options;
  auto text = engine::RenderChat(chat, options);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(text->size(), 691u);
  EXPECT_EQ(Sha256Hex(*text), "ed97d778525733a638e026edb6bca4906b94257813167f7adf29d2c7403a9907");
  auto ids = engine::EncodeChat(*tokenizer_, chat, options);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(ids->size(), 139u);
  EXPECT_EQ((*ids)[0], 128000);
}

}  // namespace
}  // namespace ttc::experiments
