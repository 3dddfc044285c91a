// Test-time-compute metrics over the samples of one (model, temperature, problem): coverage (unbiased
// pass@k of Chen et al. 2021), majority vote, Best-of-N and weighted Best-of-N (reference/evaluation.md §5),
// on the "first k samples" and averaged over seeded random subsets of size k, and their aggregation over
// problems (mean with a standard error over problems). Pure functions over in-memory data; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ttc::reports {

// The samples of one problem for one (model, temperature), in sample-index order.
struct ProblemRun {
  int problem_index = 0;
  std::vector<int> sample_index;  // sample indices as stored (sorted ascending)
  std::vector<int> group;         // answer-equivalence class per sample, numbered by first appearance
  std::vector<uint8_t> correct;   // 1 if the sample's answer matches the gold (ungraded counts as 0)
  std::vector<double> score;      // PRM solution score per sample; NaN where absent
  std::vector<int> num_tokens;    // generated tokens per sample
  std::vector<double> prefill_s;  // measured timings per sample
  std::vector<double> decode_s;
  int prompt_tokens = 0;  // prompt length when known (0 otherwise)

  int size() const { return static_cast<int>(group.size()); }
  int num_correct() const;
  bool has_scores() const;  // every sample has a PRM score
};

// Unbiased pass@k: 1 - C(n-c, k) / C(n, k), computed as a product (no overflow, no cancellation).
// Requires 0 <= c <= n and 1 <= k <= n.
double PassAtK(int n, int c, int k);

// Selection rules over a subset of a run (indices into the run's vectors, in the order that decides ties:
// the earliest first appearance wins, as in SAL's insertion-ordered dicts). Each returns whether the selected
// answer is correct: the correctness of the first member (in subset order) of the winning class, or of the
// selected sample for plain Best-of-N.
bool MajorityCorrect(const ProblemRun& run, std::span<const int> subset);
bool BestOfNCorrect(const ProblemRun& run, std::span<const int> subset);          // needs scores
bool WeightedBestOfNCorrect(const ProblemRun& run, std::span<const int> subset);  // needs scores
// 1 if any sample of the subset is correct (coverage of this particular subset).
bool AnyCorrect(const ProblemRun& run, std::span<const int> subset);

enum class Metric { kCoverage, kMajority, kBestOfN, kWeightedBestOfN };
const char* MetricName(Metric m);   // "coverage", "majority", "bon", "weighted_bon"
const char* MetricTitle(Metric m);  // "Coverage (pass@k)", ...

// How a value at k is formed from the samples: the first k samples, the mean over random subsets of size k,
// or (coverage only) the unbiased estimator over all samples.
enum class Estimator { kFirstK, kRandomSubsets, kUnbiased };
const char* EstimatorName(Estimator e);  // "first_k", "random_subsets", "unbiased"

struct MetricOptions {
  int random_subsets = 100;  // subsets of size k per problem for kRandomSubsets
  uint64_t seed = 0;         // seeds the subsets (with the problem index and k)
};

// The per-problem value of `metric` at k (0..1), or nullopt when the run cannot give it: fewer than k samples,
// or a PRM metric without scores.
std::optional<double> ProblemValue(const ProblemRun& run, Metric metric, Estimator estimator, int k,
                                   const MetricOptions& options);

// Mean over problems with the standard error of that mean (sample standard deviation / sqrt(n)).
struct Aggregate {
  double mean = 0;
  double se = 0;
  int problems = 0;  // problems that contributed
};
Aggregate MeanOverProblems(std::span<const double> values);

// The estimators a metric supports, in the order reports list them.
std::vector<Estimator> EstimatorsFor(Metric metric);

}  // namespace ttc::reports
