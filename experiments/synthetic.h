// The synthetic task: deterministic multi-step arithmetic word problems ("Mia has 7 marbles. She
// buys 4 more...") with exact integer answers and short step-by-step reference solutions whose
// steps are separated by a blank line ("\n\n", the PRM step separator of evaluation.md §6.2) and
// whose last line is "The final answer is N", so the GSM8K prompt, extractor and grader apply
// unchanged (Problem.task = Task::kGsm8k). Small models can learn it, which is what the default
// experiment and many tests need. Problem n of seed s depends only on (s, n), never on the
// requested count, and the generator uses its own splitmix64 stream (no <random> distributions,
// whose output differs between standard libraries), so the same (seed, n) gives the same problem
// everywhere. Thread-safety: pure functions; safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "experiments/problem.h"

namespace ttc::experiments {

// Difficulty: level L means L arithmetic steps, with operands that grow with L.
inline constexpr int kSyntheticMinLevel = 1;
inline constexpr int kSyntheticMaxLevel = 5;
// Upper bound on count, so a typo cannot ask for billions of problems.
inline constexpr int kSyntheticMaxCount = 10'000'000;

struct SyntheticOptions {
  int count = 0;
  uint64_t seed = 0;
  int min_level = 1;
  int max_level = 3;
  // Index of the first problem: problems first_index .. first_index+count-1 of the seed's sequence.
  uint64_t first_index = 0;
};

// Generates problems first_index .. first_index+count-1 for the seed. Ids are
// "synthetic/<seed>/<n>", subject "synthetic", gold_answer the decimal integer, solution the
// reference solution, extra {"steps": L}. Errors (kInvalidArgument) name the offending field: count
// out of [0, kSyntheticMaxCount], levels outside [kSyntheticMinLevel, kSyntheticMaxLevel] or
// min_level > max_level.
Result<std::vector<Problem>> GenerateSynthetic(const SyntheticOptions& options);

// One problem, the n-th of the seed's sequence, at a given level (no validation beyond level
// range).
Result<Problem> GenerateSyntheticProblem(uint64_t seed, uint64_t n, int min_level, int max_level);

// The splitmix64 generator the task uses; exposed so tests can pin its sequence.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : state_(state) {}
  uint64_t Next();
  // Uniform-enough integer in [lo, hi] (hi >= lo); modulo bias is below 2^-40 for our small ranges.
  int64_t Uniform(int64_t lo, int64_t hi);

 private:
  uint64_t state_;
};

}  // namespace ttc::experiments
