// Answer extraction: the SAL MATH extractor and strip_string byte for byte against outputs of the
// Python reference (data/README.md), hand-picked quirks from realistic completions, the GSM8K
// extractors, fallbacks and hostile input.
#include "experiments/extract.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "../test_util.h"

namespace ttc::experiments {
namespace {

using nlohmann::json;

std::vector<json> ReadJsonl(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

std::filesystem::path DataDir() { return testing::SourceDir() / "tests" / "experiments" / "data"; }

TEST(SalExtractTest, MatchesPythonReferenceOnRecordedCases) {
  std::vector<json> cases = ReadJsonl(DataDir() / "sal_cases.jsonl");
  ASSERT_EQ(cases.size(), 920u);
  int failures = 0;
  for (const json& c : cases) {
    const std::string input = c["input"];
    const std::string expected = c["expected"];
    const std::string got =
        c["mode"] == "extract" ? ExtractMathAnswerSal(input) : SalStripString(input);
    if (got != expected && ++failures <= 10) {
      ADD_FAILURE() << c["mode"] << " of " << json(input).dump() << ": got " << json(got).dump()
                    << ", Python " << json(expected).dump();
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(SalExtractTest, Math500GoldsMatchPythonReference) {
  std::map<std::string, json> expected;
  for (const json& row : ReadJsonl(DataDir() / "math500_sal.jsonl"))
    expected[row["unique_id"]] = row;
  std::vector<json> rows = ReadJsonl(testing::SharedDir() / "data" / "math500.jsonl");
  ASSERT_EQ(rows.size(), 500u);
  int failures = 0;
  for (const json& row : rows) {
    const json& e = expected.at(row["unique_id"].get<std::string>());
    const std::string from_solution = ExtractMathAnswerSal(row["solution"].get<std::string>());
    const std::string stripped = SalStripString(row["answer"].get<std::string>());
    if (from_solution != e["extract_solution"] && ++failures <= 10) {
      ADD_FAILURE() << row["unique_id"] << ": extract(solution) = " << from_solution << ", Python "
                    << e["extract_solution"];
    }
    if (stripped != e["strip_answer"] && ++failures <= 10) {
      ADD_FAILURE() << row["unique_id"] << ": strip(answer) = " << stripped << ", Python "
                    << e["strip_answer"];
    }
    // The gold SAL scores against (§1.1) equals the stripped answer field for every row.
    EXPECT_EQ(from_solution, stripped) << row["unique_id"];
  }
  EXPECT_EQ(failures, 0);
}

TEST(SalExtractTest, LlamaFinalAnswerLine) {
  EXPECT_EQ(ExtractMathAnswerSal(
                "## Step 1: Add\n2+3=5.\n\nTherefore, the final answer is: $\\boxed{5}$. I hope it "
                "is correct."),
            "5");
  EXPECT_EQ(ExtractMathAnswerSal(
                "Therefore, the final answer is: $\\boxed{\\dfrac{14}{3}}$. I hope it is correct."),
            "\\frac{14}{3}");
}

TEST(SalExtractTest, NestedBracesAreMatched) {
  EXPECT_EQ(ExtractMathAnswerSal("so $\\boxed{\\frac{\\sqrt{3}}{2}}$."), "\\frac{\\sqrt{3}}{2}");
  EXPECT_EQ(ExtractMathAnswerSal("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}"),
            "(3,\\frac{\\pi}{2})");
}

TEST(SalExtractTest, UnbalancedBoxKeepsEverythingToTheEnd) {
  EXPECT_EQ(ExtractMathAnswerSal("answer: \\boxed{\\frac{1}{2}"), "\\frac{1}{2}");
}

TEST(SalExtractTest, BoxWithoutBraceReadsToTheNextDollar) {
  EXPECT_EQ(ExtractMathAnswerSal("The answer is $\\boxed 5$."), "5");
  EXPECT_EQ(ExtractMathAnswerSal("\\boxed 5"), "5");
}

TEST(SalExtractTest, LastOfSeveralBoxesWins) {
  EXPECT_EQ(ExtractMathAnswerSal("First \\boxed{3}, then corrected: \\boxed{4}."), "4");
  // The plain substring "boxed" counts, even in prose after the last real box.
  EXPECT_EQ(ExtractMathAnswerSal("\\boxed{4} is what I boxed"), "");
}

TEST(SalExtractTest, NoBoxFallsBackToAnswerPhrasesThenLastNumber) {
  EXPECT_EQ(ExtractMathAnswerSal("So the answer is 42."), "42");
  EXPECT_EQ(ExtractMathAnswerSal("The final answer is 18"), "18");
  EXPECT_EQ(ExtractMathAnswerSal("We get 3 apples, then 1,234 more and finally 7.5"), "7.5");
  EXPECT_EQ(ExtractMathAnswerSal("no numbers here"), "");
  EXPECT_EQ(ExtractMathAnswerSal(""), "");
}

TEST(SalExtractTest, MinervaFormatTakesTheDollarSpan) {
  EXPECT_EQ(ExtractMathAnswerSal(
                "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct."),
            "\\frac{1}{2}");
}

TEST(SalExtractTest, Gsm8kSentenceThroughTheMathPath) {
  // §3.2: step 5 takes "$1,450,000", strip_string removes "$" and keeps the commas.
  EXPECT_EQ(ExtractMathAnswerSal("The final answer is $1,450,000."), "1,450,000");
}

TEST(SalExtractTest, StepTagsAndChineseAnchor) {
  EXPECT_EQ(ExtractMathAnswerSal("Step 1 ки\nThe answer is 12 ки"), "12");
  EXPECT_EQ(ExtractMathAnswerSal("所以答案是 7\n\n谢谢"), "7");
}

TEST(SalStripStringTest, DocumentedQuirks) {
  EXPECT_EQ(SalStripString("\\pm 2021"), "\\2021");    // "pm" is a unit word
  EXPECT_EQ(SalStripString("\\sec^2(y)"), "\\^2(y)");  // so is "sec"
  EXPECT_EQ(SalStripString("7 = 11a+c"), "11a+");      // the single letter "c" too
  EXPECT_EQ(SalStripString("Sandy"), "Sy");            // every "and" substring goes
  EXPECT_EQ(SalStripString("x \\in [2,5)"), "x\\in[2,5)");
  EXPECT_EQ(SalStripString("1000.0"), "1000");
  EXPECT_EQ(SalStripString("1.50"), "1.50");
  EXPECT_EQ(SalStripString("\\frac12"), "\\frac{1}{2}");
  EXPECT_EQ(SalStripString("3/4"), "\\frac{3}{4}");
  EXPECT_EQ(SalStripString("03/4"), "03/4");  // int("03") prints as "3": not canonical, left alone
  EXPECT_EQ(SalStripString("\\sqrt23"), "\\sqrt{23}");
  EXPECT_EQ(SalStripString("10\\%"), "10");
  EXPECT_EQ(SalStripString("\\$32,\\!348"), "32,348");
  EXPECT_EQ(SalStripString("\\dfrac{270}7\\text{ degrees}"), "\\frac{270}7");
  EXPECT_EQ(SalStripString("864 \\mbox{ inches}^2"), "864^2");
  EXPECT_EQ(SalStripString("\\text{Evelyn}"), "Evelyn");
  EXPECT_EQ(SalStripString(".5"), "0.5");
  EXPECT_EQ(SalStripString("k = 5"), "5");
  // evaluation.md §4.3 step 20 (also what the sal grader normalizes with, experiments/sal_math.h).
  EXPECT_EQ(SalStripString("\\dfrac{3}{4}"), "\\frac{3}{4}");
  EXPECT_EQ(SalStripString("90^\\circ"), "90");
  EXPECT_EQ(SalStripString("x=5"), "5");
}

TEST(SalStripStringTest, Word2NumberSemantics) {
  EXPECT_EQ(SalStripString("five"), "5");
  EXPECT_EQ(SalStripString("five million"), "5000000");
  EXPECT_EQ(SalStripString("one point five"), "1.5");
  EXPECT_EQ(SalStripString("007"), "7");
  EXPECT_EQ(SalStripString("١٢"), "12");  // Arabic-Indic digits: int() accepts them
  EXPECT_EQ(SalStripString("²"), "²");    // isdigit() but int() raises: unchanged
}

TEST(MathFallbacksTest, OnlyChangeEmptyAnswers) {
  ExtractOptions with;
  with.math_fallbacks = true;
  // "\\fbox" is not "boxed" and there is no number: SAL gives "", the fallback reads the box.
  EXPECT_EQ(ExtractMathAnswer("so \\fbox{x+y} holds", with), "x+y");
  EXPECT_EQ(ExtractMathAnswer("so \\fbox{x+y} holds", {}), "");
  // A prose "boxed" after the real box empties SAL's answer; the fallback recovers the box.
  EXPECT_EQ(ExtractMathAnswer("\\boxed{4} is what I boxed", with), "4");
  EXPECT_EQ(ExtractMathAnswer("\\boxed{4} is what I boxed", {}), "");
  // The last LaTeX environment when there is no box at all.
  EXPECT_EQ(ExtractMathAnswer("We conclude that $\\frac{x}{y}$ is it", with), "\\frac{x}{y}");
  EXPECT_EQ(ExtractMathAnswer("We conclude that $\\frac{x}{y}$ is it", {}), "");
  // With a number present SAL's last-number rule answers, and fallbacks stay out of it.
  EXPECT_EQ(ExtractMathAnswer("so \\fbox{x+1} holds", with), "1");
  // A non-empty SAL answer is never changed.
  EXPECT_EQ(ExtractMathAnswer("\\boxed{3}", with), "3");
}

TEST(Gsm8kExtractTest, FinalAnswerSentence) {
  EXPECT_EQ(ExtractGsm8kAnswer("She pays 5 * 3 = 15 dollars.\nThe final answer is 18"), "18");
  EXPECT_EQ(ExtractGsm8kAnswer("The final answer is $1,450,000."), "1450000");
  EXPECT_EQ(ExtractGsm8kAnswer("The final answer is: -3."), "-3");
  EXPECT_EQ(ExtractGsm8kAnswer("the FINAL ANSWER IS \\boxed{42}"), "42");
  EXPECT_EQ(ExtractGsm8kAnswer("The final answer is \\(7.5\\)"), "7.5");
  EXPECT_EQ(ExtractGsm8kAnswer("The final answer is .5"), ".5");
  // The last anchor wins over an earlier one.
  EXPECT_EQ(ExtractGsm8kAnswer("The final answer is 3. Wait, no. The final answer is 4."), "4");
}

TEST(Gsm8kExtractTest, Fallbacks) {
  EXPECT_EQ(ExtractGsm8kAnswer("so we get \\boxed{1,200} dollars, not 5"), "1200");
  EXPECT_EQ(ExtractGsm8kAnswer("He has 3 apples and buys 4, so 7."), "7");
  EXPECT_EQ(ExtractGsm8kAnswer("no numbers"), std::nullopt);
  EXPECT_EQ(ExtractGsm8kAnswer(""), std::nullopt);
  ExtractOptions strict;
  strict.gsm8k_fallbacks = false;
  EXPECT_EQ(ExtractGsm8kAnswer("He has 3 apples and buys 4, so 7.", strict), std::nullopt);
  EXPECT_EQ(ExtractGsm8kAnswer("The final answer is 7", strict), "7");
  // An anchor with no number after it falls through to the fallbacks.
  EXPECT_EQ(ExtractGsm8kAnswer("We add 2 and 3. The final answer is five."), "3");
}

TEST(Gsm8kExtractTest, LlamaStrictRegex) {
  EXPECT_EQ(ExtractGsm8kAnswerLlamaStrict("The final answer is $1,450,000."), "1450000");
  EXPECT_EQ(ExtractGsm8kAnswerLlamaStrict("The final answer is 5"), "5");
  EXPECT_EQ(ExtractGsm8kAnswerLlamaStrict("the final answer is 5"),
            std::nullopt);  // case-sensitive
  EXPECT_EQ(ExtractGsm8kAnswerLlamaStrict("The final answer is 3. The final answer is 18."), "18");
}

TEST(ExtractAnswerTest, DispatchesByTask) {
  EXPECT_EQ(ExtractAnswer("The final answer is $1,450,000.", Task::kGsm8k), "1450000");
  EXPECT_EQ(ExtractAnswer("The final answer is $1,450,000.", Task::kMath), "1,450,000");
  EXPECT_EQ(ExtractAnswer("nothing", Task::kGsm8k), "");
}

TEST(ExtractRobustnessTest, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(SanitizeUtf8("a\xff"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(SanitizeUtf8("\xC3"), "\xEF\xBF\xBD");  // truncated sequence
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(SanitizeUtf8("é"), "é");
  EXPECT_EQ(ExtractMathAnswerSal("\\boxed{\xff"
                                 "5}"),
            "\xEF\xBF\xBD"
            "5");
}

TEST(ExtractRobustnessTest, HostileInputsNeverCrash) {
  std::string deep(20000, '{');
  EXPECT_NO_FATAL_FAILURE(ExtractMathAnswerSal("\\boxed" + deep));
  EXPECT_NO_FATAL_FAILURE(ExtractGsm8kAnswer("\\boxed" + deep));
  std::string many_units;
  for (int i = 0; i < 2000; ++i) many_units += "a m s ";
  EXPECT_EQ(SalStripString(many_units), "");  // as Python: every piece is a unit word
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string s(rng() % 200, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    ExtractOptions all;
    all.math_fallbacks = true;
    (void)ExtractMathAnswer(s, all);
    (void)ExtractGsm8kAnswer(s);
    (void)ExtractGsm8kAnswerLlamaStrict(s);
    const std::string stripped = SalStripString(s);
    EXPECT_EQ(SanitizeUtf8(stripped), stripped);  // output is always valid UTF-8
  }
}

}  // namespace
}  // namespace ttc::experiments
