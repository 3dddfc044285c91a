// Answer-equivalence graders: the 35 tricky cases of evaluation.md §4.7 in both modes,
// Math-Verify's public test cases as data, every MATH-500 gold against itself and its own solution,
// GSM8K golds against final-answer sentences, and equivalence-class grouping.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/grade.h"
#include "experiments/sal_math.h"
#include "tests/test_util.h"

namespace ttc::experiments {
namespace {

struct Tricky {
  int row;
  const char* gold;
  const char* pred;
  int strict;  // the `exp` column (Math-Verify semantics)
  int sal;     // the `QW` column (SAL/Qwen semantics)
};

// evaluation.md §4.7. Rows where exp and QW differ: 6 (QW ignores open/closed brackets), 11 (QW
// keeps
// "\textnormal{}"), 15 (QW's unit list eats the `c`), 17, 20, 29-32 (QW has no
// solve/trig/tuple-lhs/± logic), 26 (QW drops thousands commas before the space matters).
const Tricky kTricky[] = {
    {1, "7425000", "7,425,000", 1, 1},
    {2, "1000", "1000.0", 1, 1},
    {3, "1000.99", "1000,99", 1, 1},
    {4, "0.4", ".4", 1, 1},
    {5, "1000.99", "\\$1,000.99", 1, 1},
    {6, "(0,9)", "[0,9)", 0, 1},
    {7, "1/3", "\\frac13", 1, 1},
    {8, "1/3", "\\frac{1}{3} \\text{meters}", 1, 1},
    {9, "1/3", "k = \\frac{1}{3}", 1, 1},
    {10, "28\\%", "28 percent", 1, 1},
    {11, "125", "125\\textnormal{ miles}", 1, 0},
    {12, "\\sqrt{2}+\\sqrt{5}", "\\sqrt 2+\\sqrt 5", 1, 1},
    {13, "\\frac{9}{4}\\pi", "\\frac94\\pi", 1, 1},
    {14, "x \\leq 5", "5 \\geq x", 1, 1},
    {15, "7 = 11a+c", "11a+c", 0, 1},
    {16, "2x + z = 1", "1", 0, 0},
    {17, "2x+4y-3=0", "y=-\\frac{1}{2}x+\\frac{3}{4}", 1, 0},
    {18, "\\frac{1}{12}", "0.0833333333333333", 1, 1},
    {19, "(1,\\frac{9}{2})", "(1,4.5)", 1, 1},
    {20, "\\tan^2(y)+1", "\\sec^2(y)", 1, 0},
    {21, "34x+45y-20z+100=0", "-34x-45y+20z-100=0", 1, 1},
    {22, "2", "\\frac{1+\\sqrt{5}}{2}", 0, 0},
    {23, "(\\frac{3}{5},\\frac{8}{3}]", "(0.6,2.6667]", 1, 1},
    {24, "(3,1)", "\\{1,3\\}", 0, 0},
    {25, "\\text{C}", "\\text{(C)}", 1, 1},
    {26, "32349", "32, 349", 0, 1},
    {27, "4", "4\\sqrt{2}", 0, 0},
    {28, "\\begin{bmatrix}0 & 0 \\\\0 & 0\\end{bmatrix}",
     "\\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix}", 1, 1},
    {29, "(p,q)=(3,2)", "(3,2)", 1, 0},
    {30, "0<f(x)<1", "(0,1)", 1, 0},
    {31, "\\pm 2021", "2021", 0, 0},
    {32, "\\pm 2021", "\\{-2021, 2021\\}", 1, 0},
    {33, "10, 4, -2", "4, 10, -2", 0, 0},
    {34, "10\\%", "10", 1, 1},
    {35, "5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0", 0, 0},
};

// Strict mode departs from `exp` on purpose in one row: Math-Verify reads a bare comma list as a
// set, so the strict grader treats "10, 4, -2" and "4, 10, -2" as the same answer (the Hendrycks
// test expects them apart).
bool StrictDeviates(int row) { return row == 33; }

TEST(Graders, TrickyCasesStrict) {
  for (const Tricky& t : kTricky) {
    bool got = AnswersEquivalent(t.gold, t.pred, Task::kMath, GraderMode::kStrict);
    int want = StrictDeviates(t.row) ? 1 - t.strict : t.strict;
    EXPECT_EQ(got, want == 1) << "row " << t.row << ": " << t.gold << " vs " << t.pred;
  }
}

TEST(Graders, TrickyCasesSal) {
  for (const Tricky& t : kTricky) {
    bool got = AnswersEquivalent(t.gold, t.pred, Task::kMath, GraderMode::kSal);
    EXPECT_EQ(got, t.sal == 1) << "row " << t.row << ": " << t.gold << " vs " << t.pred;
  }
}

std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

TEST(Graders, MathVerifyCasesStrict) {
  auto rows = ReadJsonl((testing::SourceDir() / "tests/graders/math_verify_cases.jsonl").string());
  ASSERT_GE(rows.size(), 150u);
  int agree = 0;
  std::string disagreements;
  for (const auto& r : rows) {
    bool want = r["expected"].get<int>() == 1;
    bool got = AnswersEquivalent(r["gold"].get<std::string>(), r["pred"].get<std::string>(),
                                 Task::kMath, GraderMode::kStrict);
    if (got == want) {
      ++agree;
    } else {
      disagreements += "  [" + r["source"].get<std::string>() + "] expected " + (want ? "1" : "0") +
                       ": gold=" + r["gold"].dump() + " pred=" + r["pred"].dump() + "\n";
    }
  }
  double rate = static_cast<double>(agree) / rows.size();
  std::printf("strict agrees with Math-Verify's verdicts on %d/%zu cases (%.1f%%)\n%s", agree,
              rows.size(), 100 * rate, disagreements.c_str());
  EXPECT_GE(rate, 0.97) << disagreements;
}

std::string LastBoxed(const std::string& s) {
  size_t at = s.rfind("\\boxed");
  if (at == std::string::npos) return "";
  size_t open = s.find('{', at);
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return s.substr(open + 1, i - open - 1);
  }
  return "";
}

TEST(Graders, Math500GoldsMatchThemselvesAndTheirSolutions) {
  auto rows = ReadJsonl((testing::SharedDir() / "data/math500.jsonl").string());
  ASSERT_EQ(rows.size(), 500u);
  for (GraderMode mode : {GraderMode::kStrict, GraderMode::kSal}) {
    int failures = 0;
    for (const auto& r : rows) {
      std::string gold = r["answer"].get<std::string>();
      std::string boxed = LastBoxed(r["solution"].get<std::string>());
      bool self = AnswersEquivalent(gold, gold, Task::kMath, mode);
      bool sol = AnswersEquivalent(gold, boxed, Task::kMath, mode);
      bool wrapped = AnswersEquivalent(gold, "The final answer is $\\boxed{" + boxed + "}$.",
                                       Task::kMath, mode);
      if (!self || !sol || (mode == GraderMode::kStrict && !wrapped)) {
        ++failures;
        ADD_FAILURE() << GraderModeName(mode) << " " << r["unique_id"] << ": " << gold << " vs "
                      << boxed;
      }
    }
    EXPECT_EQ(failures, 0);
  }
}

TEST(Graders, Math500GoldsRejectPerturbations) {
  auto rows = ReadJsonl((testing::SharedDir() / "data/math500.jsonl").string());
  int accepted = 0, tried = 0;
  for (const auto& r : rows) {
    std::string gold = r["answer"].get<std::string>();
    if (gold.find_first_not_of("0123456789") != std::string::npos) continue;
    ++tried;
    std::string wrong = std::to_string(std::stoll(gold) + 1);
    accepted += AnswersEquivalent(gold, wrong, Task::kMath, GraderMode::kStrict);
  }
  EXPECT_GT(tried, 250);
  EXPECT_EQ(accepted, 0);
}

TEST(Graders, Gsm8kGoldsAgainstFinalAnswerSentences) {
  auto rows = ReadJsonl((testing::SharedDir() / "data/gsm8k_test.jsonl").string());
  ASSERT_EQ(rows.size(), 1319u);
  for (GraderMode mode : {GraderMode::kStrict, GraderMode::kSal}) {
    int bad = 0;
    for (const auto& r : rows) {
      std::string answer = r["answer"].get<std::string>();
      std::string gold = answer.substr(answer.rfind("####") + 4);
      gold.erase(std::remove(gold.begin(), gold.end(), ','), gold.end());
      gold.erase(0, gold.find_first_not_of(' '));
      std::string with_commas = answer.substr(answer.rfind("####") + 4);
      with_commas.erase(0, with_commas.find_first_not_of(' '));
      long long g = std::stoll(gold);
      bool ok = AnswersEquivalent(gold, gold, Task::kGsm8k, mode) &&
                AnswersEquivalent(gold, "$" + with_commas, Task::kGsm8k, mode) &&
                AnswersEquivalent(gold, gold + ".00", Task::kGsm8k, mode) &&
                AnswersEquivalent(gold, "\\boxed{" + gold + "}", Task::kGsm8k, mode) &&
                // SAL compares numbers within rel_tol 1e-4 (so 70001 == 70000 there): be off by 1%.
                !AnswersEquivalent(gold, std::to_string(g + 1 + g / 100), Task::kGsm8k, mode) &&
                !AnswersEquivalent(gold, "", Task::kGsm8k, mode);
      if (!ok) {
        ++bad;
        ADD_FAILURE() << GraderModeName(mode) << " gold " << gold;
      }
    }
    EXPECT_EQ(bad, 0);
  }
  // Strict mode reads a final-answer sentence's math and its units.
  EXPECT_TRUE(
      AnswersEquivalent("18", "The final answer is $18$.", Task::kGsm8k, GraderMode::kStrict));
  EXPECT_TRUE(AnswersEquivalent("1450000", "$1,450,000", Task::kGsm8k, GraderMode::kStrict));
  EXPECT_TRUE(AnswersEquivalent("5", "5 dollars", Task::kGsm8k, GraderMode::kStrict));
  EXPECT_TRUE(AnswersEquivalent("18", "18 eggs per day", Task::kGsm8k, GraderMode::kStrict));
  EXPECT_FALSE(AnswersEquivalent("18", "17 eggs", Task::kGsm8k, GraderMode::kStrict));
  EXPECT_TRUE(AnswersEquivalent("1450000", "$1,450,000", Task::kGsm8k, GraderMode::kSal));
}

TEST(Graders, StrictFeatures) {
  auto eq = [](const char* g, const char* p) {
    return AnswersEquivalent(g, p, Task::kMath, GraderMode::kStrict);
  };
  EXPECT_TRUE(eq("\\frac{1}{2}", "0.5"));
  EXPECT_TRUE(eq("2^{100}", "1267650600228229401496703205376"));
  EXPECT_FALSE(eq("2^{100}", "1267650600228229401496703205377"));
  EXPECT_TRUE(eq("\\sqrt{8}", "2\\sqrt{2}"));
  EXPECT_TRUE(eq("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"));
  EXPECT_TRUE(eq("e^{i\\pi}", "-1"));
  EXPECT_TRUE(eq("3+4i", "4i+3"));
  EXPECT_TRUE(eq("i", "\\sqrt{-1}"));
  EXPECT_TRUE(eq("x=3 \\text{ or } x=-3", "3, -3"));
  EXPECT_TRUE(eq("\\$18.90", "18.9"));
  EXPECT_TRUE(eq("\\binom{5}{2}", "10"));
  EXPECT_TRUE(eq("5!", "120"));
  EXPECT_TRUE(eq("\\log_2 8", "3"));
  EXPECT_TRUE(eq("\\sin^2 x + \\cos^2 x", "1"));
  EXPECT_TRUE(eq("(x+1)^2", "x^2+2x+1"));
  EXPECT_FALSE(eq("(x+1)^2", "x^2+x+1"));
  EXPECT_TRUE(eq("52_8", "42"));
  EXPECT_FALSE(eq("52_8", "52"));
  EXPECT_TRUE(eq("10,\\!080", "10080"));
  EXPECT_TRUE(
      eq("1\xe2\x80\x89"
         "000",
         "1000"));
  EXPECT_TRUE(eq("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"));
  EXPECT_TRUE(eq("864 \\mbox{ inches}^2", "864"));
  EXPECT_TRUE(eq("30^\\circ", "30\xc2\xb0"));
  EXPECT_TRUE(eq("(-\\infty, 3]", "(-\\infty,3]"));
  EXPECT_FALSE(eq("(-\\infty, 3]", "(-\\infty,3)"));
  EXPECT_TRUE(eq("x \\ge 3", "[3, \\infty)"));
  EXPECT_TRUE(eq("(3,4]", "(3,4]"));
  EXPECT_FALSE(eq("(3,4]", "(3,4)"));
  EXPECT_TRUE(eq("1,-2", "-2,1"));
  EXPECT_TRUE(eq("\\text{(B)}", "B"));
  EXPECT_TRUE(eq("0.\\overline{3}", "\\frac13"));
  EXPECT_TRUE(eq("1.2\\overline{45}", "\\frac{137}{110}"));
  EXPECT_FALSE(eq("0.\\overline{3}", "0.3"));
  EXPECT_TRUE(eq("y = -2x", "y=-2x"));
  EXPECT_TRUE(eq("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)"));
}

TEST(Graders, GroupEquivalentNumbersClassesInFirstAppearanceOrder) {
  std::vector<std::string> answers = {"\\frac12", "0.5", "2", "", "1/2", "\\boxed{2}", "", "3"};
  auto ids = GroupEquivalent(answers, Task::kMath, GraderMode::kStrict);
  std::vector<int> want = {0, 0, 1, 2, 0, 1, 2, 3};
  EXPECT_EQ(ids, want);
  auto sal = GroupEquivalent(answers, Task::kMath, GraderMode::kSal);
  EXPECT_EQ(sal, want);
}

TEST(Graders, ParseGraderMode) {
  EXPECT_EQ(ParseGraderMode("sal").value(), GraderMode::kSal);
  EXPECT_EQ(ParseGraderMode("strict").value(), GraderMode::kStrict);
  auto bad = ParseGraderMode("lenient");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("lenient"), std::string::npos);
}

}  // namespace
}  // namespace ttc::experiments
