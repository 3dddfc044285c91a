#include "reports/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ttc::reports {
namespace {

// splitmix64: a small, fully specified generator, so subsets are identical on every platform and library.
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Fills `out` with a uniformly random k-subset of [0, n), sorted ascending: a partial Fisher-Yates shuffle over
// `perm`, which must hold a permutation of [0, n). Any permutation works as a start, so callers reuse `perm`
// across subsets instead of resetting it (O(k) per subset, not O(n)).
void RandomSubset(int n, int k, uint64_t& state, std::vector<int>& perm, std::vector<int>& out) {
  for (int i = 0; i < k; ++i) {
    uint64_t r = SplitMix64(state);
    int j = i + static_cast<int>(r % static_cast<uint64_t>(n - i));
    std::swap(perm[i], perm[j]);
  }
  out.assign(perm.begin(), perm.begin() + k);
  std::sort(out.begin(), out.end());
}

bool SelectByGroupTotals(const ProblemRun& run, std::span<const int> subset, bool weighted) {
  // Totals per class in first-appearance order; the first class reaching the maximum wins. Class ids are small
  // (numbered by first appearance over the run), so a reused dense table replaces a hash map.
  thread_local std::vector<double> total;
  thread_local std::vector<int> first;  // first member (in subset order) per class, -1 = not seen
  thread_local std::vector<int> seen;   // classes in first-appearance order
  seen.clear();
  for (int i : subset) {
    const int g = run.group[i];
    if (g >= static_cast<int>(first.size())) {
      first.resize(g + 1, -1);
      total.resize(g + 1, 0.0);
    }
    if (first[g] < 0) {
      first[g] = i;
      total[g] = 0.0;
      seen.push_back(g);
    }
    total[g] += weighted ? run.score[i] : 1.0;
  }
  if (seen.empty()) return false;
  int best = seen[0];
  for (int g : seen) {
    if (total[g] > total[best]) best = g;
  }
  const bool correct = run.correct[first[best]] != 0;
  for (int g : seen) first[g] = -1;
  return correct;
}

}  // namespace

int ProblemRun::num_correct() const {
  return static_cast<int>(std::count(correct.begin(), correct.end(), uint8_t{1}));
}

bool ProblemRun::has_scores() const {
  return !score.empty() && std::none_of(score.begin(), score.end(), [](double s) { return std::isnan(s); });
}

double PassAtK(int n, int c, int k) {
  if (n - c < k) return 1.0;
  double prod = 1.0;
  for (int i = n - c + 1; i <= n; ++i) prod *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - prod;
}

bool MajorityCorrect(const ProblemRun& run, std::span<const int> subset) {
  return SelectByGroupTotals(run, subset, /*weighted=*/false);
}

bool WeightedBestOfNCorrect(const ProblemRun& run, std::span<const int> subset) {
  return SelectByGroupTotals(run, subset, /*weighted=*/true);
}

bool BestOfNCorrect(const ProblemRun& run, std::span<const int> subset) {
  if (subset.empty()) return false;
  int best = subset[0];
  for (int i : subset) {
    if (run.score[i] > run.score[best]) best = i;
  }
  return run.correct[best] != 0;
}

bool AnyCorrect(const ProblemRun& run, std::span<const int> subset) {
  return std::any_of(subset.begin(), subset.end(), [&](int i) { return run.correct[i] != 0; });
}

const char* MetricName(Metric m) {
  switch (m) {
    case Metric::kCoverage: return "coverage";
    case Metric::kMajority: return "majority";
    case Metric::kBestOfN: return "bon";
    case Metric::kWeightedBestOfN: return "weighted_bon";
  }
  return "?";
}

const char* MetricTitle(Metric m) {
  switch (m) {
    case Metric::kCoverage: return "Coverage (pass@k)";
    case Metric::kMajority: return "Majority vote accuracy";
    case Metric::kBestOfN: return "Best-of-N accuracy (PRM)";
    case Metric::kWeightedBestOfN: return "Weighted Best-of-N accuracy (PRM)";
  }
  return "?";
}

const char* EstimatorName(Estimator e) {
  switch (e) {
    case Estimator::kFirstK: return "first_k";
    case Estimator::kRandomSubsets: return "random_subsets";
    case Estimator::kUnbiased: return "unbiased";
  }
  return "?";
}

std::vector<Estimator> EstimatorsFor(Metric metric) {
  if (metric == Metric::kCoverage) return {Estimator::kUnbiased, Estimator::kFirstK};
  return {Estimator::kFirstK, Estimator::kRandomSubsets};
}

std::optional<double> ProblemValue(const ProblemRun& run, Metric metric, Estimator estimator, int k,
                                   const MetricOptions& options) {
  const int n = run.size();
  if (k < 1 || n < k) return std::nullopt;
  if ((metric == Metric::kBestOfN || metric == Metric::kWeightedBestOfN) && !run.has_scores()) {
    return std::nullopt;
  }
  auto select = [&](std::span<const int> subset) -> bool {
    switch (metric) {
      case Metric::kCoverage: return AnyCorrect(run, subset);
      case Metric::kMajority: return MajorityCorrect(run, subset);
      case Metric::kBestOfN: return BestOfNCorrect(run, subset);
      case Metric::kWeightedBestOfN: return WeightedBestOfNCorrect(run, subset);
    }
    return false;
  };
  switch (estimator) {
    case Estimator::kUnbiased:
      if (metric != Metric::kCoverage) return std::nullopt;
      return PassAtK(n, run.num_correct(), k);
    case Estimator::kFirstK: {
      std::vector<int> first(k);
      std::iota(first.begin(), first.end(), 0);
      return select(first) ? 1.0 : 0.0;
    }
    case Estimator::kRandomSubsets: {
      if (k == n) {  // every subset is the whole run
        std::vector<int> all(n);
        std::iota(all.begin(), all.end(), 0);
        return select(all) ? 1.0 : 0.0;
      }
      uint64_t state = options.seed ^ (static_cast<uint64_t>(run.problem_index) * 0x9E3779B97F4A7C15ULL) ^
                       (static_cast<uint64_t>(k) << 40);
      std::vector<int> perm(n), subset;
      std::iota(perm.begin(), perm.end(), 0);
      int hits = 0;
      const int r = std::max(1, options.random_subsets);
      for (int t = 0; t < r; ++t) {
        RandomSubset(n, k, state, perm, subset);
        hits += select(subset) ? 1 : 0;
      }
      return static_cast<double>(hits) / r;
    }
  }
  return std::nullopt;
}

Aggregate MeanOverProblems(std::span<const double> values) {
  Aggregate a;
  a.problems = static_cast<int>(values.size());
  if (values.empty()) return a;
  double sum = 0;
  for (double v : values) sum += v;
  a.mean = sum / values.size();
  if (values.size() > 1) {
    double ss = 0;
    for (double v : values) ss += (v - a.mean) * (v - a.mean);
    a.se = std::sqrt(ss / (values.size() - 1)) / std::sqrt(static_cast<double>(values.size()));
  }
  return a;
}

}  // namespace ttc::reports
