#include "experiments/synthetic.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace ttc::experiments {

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int64_t SplitMix64::Uniform(int64_t lo, int64_t hi) {
  assert(hi >= lo);
  const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>((Next() >> 11) % range);
}

namespace {

constexpr std::array<std::string_view, 16> kNames = {"Mia",  "Tom",  "Ava",  "Leo", "Zoe",  "Sam",
                                                     "Ivy",  "Max",  "Eva",  "Ben", "Lily", "Jack",
                                                     "Nora", "Owen", "Ruby", "Finn"};
constexpr std::array<std::string_view, 12> kItems = {"apples", "marbles", "stickers", "coins",
                                                     "books",  "pencils", "cookies",  "cards",
                                                     "shells", "stamps",  "candies",  "toys"};

enum class Op { kAdd, kSub, kMul, kDiv };

// Largest operand / start value at a level: bigger numbers make later levels harder, not just
// longer.
int64_t MaxOperand(int level) { return 5 + 5 * level; }

struct Step {
  std::string question_sentence;
  std::string solution_line;
  int64_t value_after;
};

// Picks the next operation and its operand for the current value; keeps every intermediate value a
// positive integer and below a few hundred, so answers stay exact and short.
Step MakeStep(SplitMix64& rng, int level, int64_t value, std::string_view name,
              std::string_view item) {
  const int64_t max_k = MaxOperand(level);
  const int64_t roll = rng.Uniform(0, 99);
  Op op = roll < 35 ? Op::kAdd : roll < 70 ? Op::kSub : roll < 85 ? Op::kMul : Op::kDiv;
  if (op == Op::kSub && value < 2) op = Op::kAdd;
  if (op == Op::kMul && value > 50) op = Op::kSub;
  int64_t divisor = 0;
  if (op == Op::kDiv) {
    // The smallest k in 2..5 (starting at a random one) that divides the value exactly.
    const int64_t first = rng.Uniform(2, 5);
    for (int64_t i = 0; i < 4 && divisor == 0; ++i) {
      const int64_t k = 2 + (first - 2 + i) % 4;
      if (value % k == 0 && value / k >= 1) divisor = k;
    }
    if (divisor == 0) op = Op::kAdd;
  }
  const int64_t variant = rng.Uniform(0, 2);
  Step step;
  switch (op) {
    case Op::kAdd: {
      const int64_t k = rng.Uniform(1, max_k);
      constexpr std::array<std::string_view, 3> kForms = {
          "{0} buys {1} more {2}.", "{0} finds {1} more {2}.", "A friend gives {0} {1} more {2}."};
      step.question_sentence = fmt::format(fmt::runtime(kForms[variant]), name, k, item);
      step.value_after = value + k;
      step.solution_line =
          fmt::format("Adding {} gives {} + {} = {}.", k, value, k, step.value_after);
      break;
    }
    case Op::kSub: {
      const int64_t k = rng.Uniform(1, std::min(value - 1, max_k));
      constexpr std::array<std::string_view, 3> kForms = {
          "{0} gives away {1} {2}.", "{0} loses {1} {2}.", "{0} uses {1} {2}."};
      step.question_sentence = fmt::format(fmt::runtime(kForms[variant]), name, k, item);
      step.value_after = value - k;
      step.solution_line =
          fmt::format("Taking away {} gives {} - {} = {}.", k, value, k, step.value_after);
      break;
    }
    case Op::kMul: {
      const int64_t k = rng.Uniform(2, 3);
      constexpr std::array<std::string_view, 3> kForms = {
          "{0} then gets {1} times as many {2}.", "{0} then has {1} times as many {2}.",
          "The number of {2} {0} has becomes {1} times as large."};
      step.question_sentence = fmt::format(fmt::runtime(kForms[variant]), name, k, item);
      step.value_after = value * k;
      step.solution_line =
          fmt::format("Multiplying by {} gives {} * {} = {}.", k, value, k, step.value_after);
      break;
    }
    case Op::kDiv: {
      const int64_t k = divisor;
      constexpr std::array<std::string_view, 3> kForms = {
          "{0} splits the {2} into {1} equal piles and keeps one pile.",
          "{0} shares the {2} equally among {1} kids, {0} included.",
          "{0} keeps only one of {1} equal parts of the {2}."};
      step.question_sentence = fmt::format(fmt::runtime(kForms[variant]), name, k, item);
      step.value_after = value / k;
      step.solution_line =
          fmt::format("Dividing by {} gives {} / {} = {}.", k, value, k, step.value_after);
      break;
    }
  }
  return step;
}

Status ValidateLevels(int min_level, int max_level) {
  if (min_level < kSyntheticMinLevel || min_level > kSyntheticMaxLevel) {
    return InvalidArgument("synthetic min_level: {} is outside [{}, {}]", min_level,
                           kSyntheticMinLevel, kSyntheticMaxLevel);
  }
  if (max_level < kSyntheticMinLevel || max_level > kSyntheticMaxLevel) {
    return InvalidArgument("synthetic max_level: {} is outside [{}, {}]", max_level,
                           kSyntheticMinLevel, kSyntheticMaxLevel);
  }
  if (min_level > max_level) {
    return InvalidArgument("synthetic min_level: {} is greater than max_level {}", min_level,
                           max_level);
  }
  return Status::Ok();
}

}  // namespace

Result<Problem> GenerateSyntheticProblem(uint64_t seed, uint64_t n, int min_level, int max_level) {
  TTC_RETURN_IF_ERROR(ValidateLevels(min_level, max_level));
  // Each problem has its own stream keyed by (seed, n), so problem n never depends on how many were
  // asked for.
  SplitMix64 seeder(seed);
  SplitMix64 rng(seeder.Next() ^ (n * 0xD1B54A32D192ED03ULL + 0x632BE59BD9B4E019ULL));
  rng.Next();  // decorrelate neighbouring n once more
  const int level = static_cast<int>(rng.Uniform(min_level, max_level));
  const std::string_view name = kNames[rng.Uniform(0, kNames.size() - 1)];
  const std::string_view item = kItems[rng.Uniform(0, kItems.size() - 1)];
  int64_t value = rng.Uniform(2, MaxOperand(level));

  std::string question = fmt::format("{} has {} {}.", name, value, item);
  std::string solution;
  for (int s = 0; s < level; ++s) {
    Step step = MakeStep(rng, level, value, name, item);
    question += " " + step.question_sentence;
    solution += step.solution_line + "\n\n";
    value = step.value_after;
  }
  question += fmt::format(" How many {} does {} have now?", item, name);
  solution += fmt::format("The final answer is {}", value);

  Problem p;
  p.id = fmt::format("synthetic/{}/{}", seed, n);
  p.question = std::move(question);
  p.gold_answer = std::to_string(value);
  p.solution = std::move(solution);
  p.task = Task::kGsm8k;
  p.subject = "synthetic";
  p.level = level;
  p.extra = {{"steps", level}};
  return p;
}

Result<std::vector<Problem>> GenerateSynthetic(const SyntheticOptions& options) {
  if (options.count < 0 || options.count > kSyntheticMaxCount) {
    return InvalidArgument("synthetic count: {} is outside [0, {}]", options.count,
                           kSyntheticMaxCount);
  }
  TTC_RETURN_IF_ERROR(ValidateLevels(options.min_level, options.max_level));
  std::vector<Problem> problems;
  problems.reserve(options.count);
  for (int i = 0; i < options.count; ++i) {
    TTC_ASSIGN_OR_RETURN(Problem p, GenerateSyntheticProblem(options.seed, options.first_index + i,
                                                             options.min_level, options.max_level));
    problems.push_back(std::move(p));
  }
  return problems;
}

}  // namespace ttc::experiments
