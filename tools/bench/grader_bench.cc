// Grader throughput on realistic pairs, one core: every MATH-500 gold against its own last \boxed{}
// answer, a boxed final-answer sentence, and perturbations (off by one, decimal form, reordered,
// wrong sign), plus GSM8K golds against final-answer sentences. Prints the median pairs/s over
// repeats for strict and sal modes, with a baseline in the same run (whitespace-insensitive string
// equality on the same pairs). Usage: grader_bench [--repeats N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/grade.h"

namespace {

using ttc::experiments::GraderMode;
using ttc::experiments::Task;

struct Pair {
  std::string gold, pred;
  Task task;
};

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

std::vector<Pair> LoadPairs() {
  std::vector<Pair> pairs;
  std::ifstream math(std::string(TTC_SHARED_DIR) + "/data/math500.jsonl");
  std::string line;
  while (std::getline(math, line)) {
    auto j = nlohmann::json::parse(line);
    std::string gold = j["answer"], boxed = LastBoxed(j["solution"]);
    pairs.push_back({gold, boxed, Task::kMath});
    pairs.push_back(
        {gold, "Therefore, the final answer is: $\\boxed{" + boxed + "}$. I hope it is correct.",
         Task::kMath});
    if (!gold.empty() && gold.find_first_not_of("0123456789") == std::string::npos &&
        gold.size() < 15) {
      long long v = std::stoll(gold);
      pairs.push_back({gold, std::to_string(v + 1), Task::kMath});
      pairs.push_back({gold, std::to_string(v) + ".0", Task::kMath});
      pairs.push_back({gold, "-" + gold, Task::kMath});
    } else {
      pairs.push_back({gold, "(" + gold + ")", Task::kMath});
      pairs.push_back({gold, gold + "+1", Task::kMath});
      pairs.push_back({gold, "2" + gold, Task::kMath});
    }
  }
  std::ifstream gsm(std::string(TTC_SHARED_DIR) + "/data/gsm8k_test.jsonl");
  while (std::getline(gsm, line)) {
    auto j = nlohmann::json::parse(line);
    std::string a = j["answer"];
    std::string gold = a.substr(a.rfind("####") + 5);
    pairs.push_back({gold, "The final answer is $" + gold + ".", Task::kGsm8k});
    pairs.push_back({gold, gold + "0", Task::kGsm8k});
  }
  return pairs;
}

std::string Squash(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != ' ') out += c;
  }
  return out;
}

template <typename F>
double PairsPerSecond(const std::vector<Pair>& pairs, int repeats, F grade, int* equivalent) {
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    int eq = 0;
    auto start = std::chrono::steady_clock::now();
    for (const Pair& p : pairs) eq += grade(p) ? 1 : 0;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(pairs.size() / s);
    *equivalent = eq;
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 5;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--repeats") == 0) repeats = std::max(1, std::atoi(argv[i + 1]));
  }
  std::vector<Pair> pairs = LoadPairs();
  std::printf(
      "pairs: %zu (MATH-500 golds vs boxed answers, sentences and perturbations; GSM8K "
      "sentences)\n",
      pairs.size());
  int eq = 0;
  double base = PairsPerSecond(
      pairs, repeats, [](const Pair& p) { return Squash(p.gold) == Squash(p.pred); }, &eq);
  std::printf("baseline string equality: %12.0f pairs/s (%d equivalent)\n", base, eq);
  for (GraderMode mode : {GraderMode::kStrict, GraderMode::kSal}) {
    double rate = PairsPerSecond(
        pairs, repeats,
        [mode](const Pair& p) {
          return ttc::experiments::AnswersEquivalent(p.gold, p.pred, p.task, mode);
        },
        &eq);
    std::printf(
        "%-6s grader:           %12.0f pairs/s (%d equivalent), median of %d repeats, one thread\n",
        ttc::experiments::GraderModeName(mode), rate, eq, repeats);
  }
  // Grouping: 64 answers per problem (the gold's variants and perturbations), as a majority-vote
  // reporter does.
  std::vector<std::string> group;
  for (size_t i = 0; i < pairs.size() && group.size() < 64; ++i) group.push_back(pairs[i].pred);
  auto start = std::chrono::steady_clock::now();
  int rounds = 50;
  for (int r = 0; r < rounds; ++r) {
    auto ids = ttc::experiments::GroupEquivalent(group, Task::kMath, GraderMode::kStrict);
    if (ids.empty()) return 1;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("GroupEquivalent strict, 64 answers: %.2f ms per problem\n", 1000 * s / rounds);
  return 0;
}
