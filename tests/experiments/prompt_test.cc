// Prompts: the MATH and GSM8K instructions byte for byte, the message shapes, custom templates, and
// the full Llama 3 renderings of evaluation.md §2.3 test vectors (MATH-500 row 0 in SAL form, GSM8K
// row 0 zero-shot).
#include "experiments/prompt.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../test_util.h"
#include "experiments/dataset.h"

namespace ttc::experiments {
namespace {

// SAL's Llama 3 template as §2.3 writes it out (without the BOS the tokenizer adds): the system
// block with the date lines always, the system message trimmed, user/assistant contents verbatim.
// The engine owns the real renderer (engine/chat.h); this spelled-out copy pins what our messages
// must turn into.
std::string RenderSalForTest(const std::vector<PromptMessage>& messages, const std::string& date) {
  auto trim = [](const std::string& s) {
    const size_t b = s.find_first_not_of(" \t\n\r");
    const size_t e = s.find_last_not_of(" \t\n\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  std::string system;
  size_t first = 0;
  if (!messages.empty() && messages[0].role == "system") {
    system = trim(messages[0].content);
    first = 1;
  }
  std::string out =
      "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday "
      "Date: " +
      date + "\n\n" + system + "<|eot_id|>";
  for (size_t i = first; i < messages.size(); ++i) {
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" +
           messages[i].content + "<|eot_id|>";
  }
  out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

TEST(PromptTest, InstructionsAreByteExact) {
  EXPECT_EQ(kMathInstruction.size(), 577u);
  EXPECT_EQ(Sha256Hex(kMathInstruction),
            "fba6765edf2162ae50990853a7f310103b685c72d9b4434cccec28371f005dae");
  EXPECT_EQ(kGsm8kTemplate.size(), 203u);
  EXPECT_EQ(Sha256Hex(kGsm8kTemplate),
            "01163f30e49f9dd1980264dcff94dc7165ed8718d80ca629ba3eab8e30814b25");
  // One backslash before "boxed" in the real text (§2.1's pitfall: lm-eval's YAML renders two).
  EXPECT_NE(kMathInstruction.find("$\\boxed{answer}$"), std::string::npos);
  EXPECT_EQ(kMathInstruction.find("\\\\boxed"), std::string::npos);
}

TEST(PromptTest, MathForms) {
  auto sal = MathPromptSal("What is $1+1$?");
  ASSERT_EQ(sal.size(), 2u);
  EXPECT_EQ(sal[0], (PromptMessage{"system", std::string(kMathInstruction)}));
  EXPECT_EQ(sal[1], (PromptMessage{"user", "What is $1+1$?"}));
  auto meta = MathPromptMeta("What is $1+1$?");
  ASSERT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta[0].role, "user");
  EXPECT_EQ(meta[0].content, std::string(kMathInstruction) + "\n\nProblem: What is $1+1$?");
}

TEST(PromptTest, Gsm8kIsOneUserTurn) {
  auto m = Gsm8kPrompt("Tom has 3 apples.");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].role, "user");
  EXPECT_EQ(m[0].content,
            "Given the following problem, reason and give a final answer to the problem.\nProblem: "
            "Tom has 3 "
            "apples.\nYour response should end with \"The final answer is [answer]\" where "
            "[answer] is the "
            "response to the problem.");
}

TEST(PromptTest, Math500Row0RendersToTheTestVector) {
  auto problems = LoadMath500(testing::SharedDir() / "data" / kMath500FileName);
  ASSERT_TRUE(problems.ok());
  PromptSpec spec;  // math, sal form
  auto messages = BuildPrompt((*problems)[0], spec);
  ASSERT_TRUE(messages.ok());
  const std::string text = RenderSalForTest(*messages, spec.date);
  EXPECT_EQ(text.size(), 954u);
  EXPECT_EQ(Sha256Hex(text), "12fdf2e783d3ff56cc195555a26d260603e2575dcc9d5d48710b2b4ae5b9b1f9");
}

TEST(PromptTest, Gsm8kRow0RendersToTheTestVector) {
  auto problems = LoadGsm8k(testing::SharedDir() / "data" / kGsm8kFileName);
  ASSERT_TRUE(problems.ok());
  PromptSpec spec;
  spec.template_kind = PromptTemplate::kGsm8k;
  auto messages = BuildPrompt((*problems)[0], spec);
  ASSERT_TRUE(messages.ok());
  const std::string text = RenderSalForTest(*messages, spec.date);
  EXPECT_EQ(text.size(), 691u);
  EXPECT_EQ(Sha256Hex(text), "ed97d778525733a638e026edb6bca4906b94257813167f7adf29d2c7403a9907");
}

TEST(PromptTest, CustomTemplate) {
  auto filled = FillTemplate("Q: {question}\nAgain: {question}\n\\boxed{} stays", "2+2");
  ASSERT_TRUE(filled.ok());
  EXPECT_EQ(*filled, "Q: 2+2\nAgain: 2+2\n\\boxed{} stays");
  // The question is inserted once per placeholder and never re-scanned.
  EXPECT_EQ(*FillTemplate("<{question}>", "{question}"), "<{question}>");
  EXPECT_FALSE(FillTemplate("no placeholder", "x").ok());

  PromptSpec spec;
  spec.template_kind = PromptTemplate::kCustom;
  spec.text = "Solve: {question}";
  Problem p;
  p.id = "a";
  p.question = "1+1";
  auto m = BuildPrompt(p, spec);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0], (PromptMessage{"user", "Solve: 1+1"}));
  spec.system = "Be brief.";
  m = BuildPrompt(p, spec);
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0], (PromptMessage{"system", "Be brief."}));
  EXPECT_EQ(PlainPromptText(*m), "Be brief.\n\nSolve: 1+1");
  spec.text = "Solve it";
  m = BuildPrompt(p, spec);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("prompt.text"), std::string::npos);
}

TEST(PromptTest, BadFormIsAnError) {
  PromptSpec spec;
  spec.form = "other";
  Problem p;
  p.question = "x";
  EXPECT_FALSE(BuildPrompt(p, spec).ok());
}

}  // namespace
}  // namespace ttc::experiments
