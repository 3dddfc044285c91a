// Metrics against exhaustive enumeration over subsets and hand-computed cases (tests/reports/data).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "reports/metrics.h"
#include "reports/time_model.h"
#include "tests/test_util.h"

namespace ttc::reports {
namespace {

ProblemRun MakeRun(std::vector<int> group, std::vector<uint8_t> correct, std::vector<double> score) {
  ProblemRun r;
  const int n = static_cast<int>(group.size());
  r.group = std::move(group);
  r.correct = std::move(correct);
  r.score = std::move(score);
  r.sample_index.resize(n);
  std::iota(r.sample_index.begin(), r.sample_index.end(), 0);
  r.num_tokens.assign(n, 10);
  r.prefill_s.assign(n, 0.0);
  r.decode_s.assign(n, 0.0);
  return r;
}

void ForEachSubset(int n, int k, const std::function<void(const std::vector<int>&)>& fn) {
  std::vector<int> idx(k);
  std::function<void(int, int)> rec = [&](int start, int depth) {
    if (depth == k) {
      fn(idx);
      return;
    }
    for (int i = start; i <= n - (k - depth); ++i) {
      idx[depth] = i;
      rec(i + 1, depth + 1);
    }
  };
  rec(0, 0);
}

TEST(PassAtK, MatchesEnumerationOverAllSubsets) {
  for (int n = 1; n <= 10; ++n) {
    for (int c = 0; c <= n; ++c) {
      for (int k = 1; k <= n; ++k) {
        std::vector<uint8_t> correct(n, 0);
        for (int i = 0; i < c; ++i) correct[i] = 1;
        int hit = 0, total = 0;
        ForEachSubset(n, k, [&](const std::vector<int>& s) {
          ++total;
          bool any = false;
          for (int i : s) any |= correct[i] != 0;
          hit += any;
        });
        EXPECT_NEAR(PassAtK(n, c, k), static_cast<double>(hit) / total, 1e-12) << n << " " << c << " " << k;
      }
    }
  }
}

TEST(PassAtK, StableForLargeN) {
  EXPECT_NEAR(PassAtK(1024, 1, 1), 1.0 / 1024, 1e-15);
  EXPECT_DOUBLE_EQ(PassAtK(1024, 0, 512), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(1024, 600, 512), 1.0);
  double v = PassAtK(100000, 3, 50000);
  EXPECT_GT(v, 0.87);
  EXPECT_LT(v, 0.876);  // 1 - (1/2)^3 approximately
}

// Reference selection rules, written independently: sort-free counting with explicit first-appearance order.
int RefSelectGroup(const ProblemRun& r, const std::vector<int>& s, bool weighted) {
  std::vector<int> groups;
  std::vector<double> total;
  for (int i : s) {
    auto it = std::find(groups.begin(), groups.end(), r.group[i]);
    if (it == groups.end()) {
      groups.push_back(r.group[i]);
      total.push_back(0);
      it = groups.end() - 1;
    }
    total[it - groups.begin()] += weighted ? r.score[i] : 1;
  }
  double best = -1e300;
  int winner = -1;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (total[g] > best) {
      best = total[g];
      winner = groups[g];
    }
  }
  return winner;
}

bool RefCorrect(const ProblemRun& r, const std::vector<int>& s, int group) {
  for (int i : s) {
    if (r.group[i] == group) return r.correct[i] != 0;
  }
  return false;
}

TEST(Selection, MajorityAndWeightedBonMatchExhaustiveEnumeration) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + trial % 8;
    std::vector<int> group(n);
    std::vector<uint8_t> correct(n);
    std::vector<double> score(n);
    const int classes = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      group[i] = static_cast<int>(rng() % classes);
      score[i] = (rng() % 5) / 4.0;  // coarse scores produce ties
    }
    // Renumber classes by first appearance and make class 0's members correct, as the grader would.
    std::vector<int> remap(classes, -1);
    int next = 0;
    for (int i = 0; i < n; ++i) {
      if (remap[group[i]] < 0) remap[group[i]] = next++;
      group[i] = remap[group[i]];
      correct[i] = group[i] == static_cast<int>(trial % 2);
    }
    ProblemRun run = MakeRun(group, correct, score);
    for (int k = 1; k <= n; ++k) {
      ForEachSubset(n, k, [&](const std::vector<int>& s) {
        EXPECT_EQ(MajorityCorrect(run, s), RefCorrect(run, s, RefSelectGroup(run, s, false)));
        EXPECT_EQ(WeightedBestOfNCorrect(run, s), RefCorrect(run, s, RefSelectGroup(run, s, true)));
        int best = s[0];
        for (int i : s) {
          if (score[i] > score[best]) best = i;
        }
        EXPECT_EQ(BestOfNCorrect(run, s), correct[best] != 0);
      });
      // The random-subset estimator converges to the exhaustive mean.
      double exhaustive = 0;
      int count = 0;
      ForEachSubset(n, k, [&](const std::vector<int>& s) {
        exhaustive += MajorityCorrect(run, s);
        ++count;
      });
      exhaustive /= count;
      auto v = ProblemValue(run, Metric::kMajority, Estimator::kRandomSubsets, k, {4000, 1});
      ASSERT_TRUE(v.has_value());
      EXPECT_NEAR(*v, exhaustive, 0.04) << "n=" << n << " k=" << k;
    }
  }
}

TEST(Metrics, HandComputedCasesFromDataFile) {
  std::ifstream f(ttc::testing::SourceDir() / "tests/reports/data/metric_cases.json");
  ASSERT_TRUE(f) << "missing data file";
  auto doc = nlohmann::json::parse(f);
  for (const auto& c : doc["cases"]) {
    ProblemRun run = MakeRun(c["group"].get<std::vector<int>>(), c["correct"].get<std::vector<uint8_t>>(),
                             c["score"].get<std::vector<double>>());
    const auto& e = c["expect"];
    for (const auto& [k, v] : e["pass"].items()) {
      EXPECT_NEAR(*ProblemValue(run, Metric::kCoverage, Estimator::kUnbiased, std::stoi(k), {}), v.get<double>(),
                  1e-12)
          << c["note"];
    }
    auto check = [&](const char* key, Metric m) {
      for (const auto& [k, v] : e[key].items()) {
        EXPECT_EQ(*ProblemValue(run, m, Estimator::kFirstK, std::stoi(k), {}), v.get<double>())
            << c["note"] << " " << key << " k=" << k;
      }
    };
    check("majority_first", Metric::kMajority);
    check("bon_first", Metric::kBestOfN);
    check("wbon_first", Metric::kWeightedBestOfN);
  }
}

TEST(Metrics, UnavailableValues) {
  ProblemRun run = MakeRun({0, 1}, {1, 0}, {NAN, 0.5});
  EXPECT_FALSE(ProblemValue(run, Metric::kCoverage, Estimator::kUnbiased, 3, {}).has_value());  // k > n
  EXPECT_FALSE(ProblemValue(run, Metric::kWeightedBestOfN, Estimator::kFirstK, 1, {}).has_value());  // no scores
  EXPECT_TRUE(ProblemValue(run, Metric::kMajority, Estimator::kFirstK, 2, {}).has_value());
}

TEST(Metrics, RandomSubsetsAreSeededAndDeterministic) {
  ProblemRun run = MakeRun({0, 1, 1, 2, 0, 1, 3, 1}, {1, 0, 0, 0, 1, 0, 0, 0}, std::vector<double>(8, 0.5));
  auto a = ProblemValue(run, Metric::kMajority, Estimator::kRandomSubsets, 3, {50, 9});
  auto b = ProblemValue(run, Metric::kMajority, Estimator::kRandomSubsets, 3, {50, 9});
  EXPECT_EQ(*a, *b);
}

TEST(Aggregate, MeanAndStandardError) {
  std::vector<double> v = {1, 0, 1, 1};
  Aggregate a = MeanOverProblems(v);
  EXPECT_DOUBLE_EQ(a.mean, 0.75);
  EXPECT_NEAR(a.se, std::sqrt(0.25) / 2, 1e-12);  // sample sd 0.5, n 4
  EXPECT_EQ(a.problems, 4);
  EXPECT_EQ(MeanOverProblems({}).problems, 0);
}

store::BenchRow Row(const char* table, int batch, int context, int gen, double step, double total) {
  store::BenchRow r;
  r.table = table;
  r.batch = batch;
  r.context_len = context;
  r.prompt_len = 512;
  r.gen_len = gen;
  r.step_s = step;
  r.total_s = total;
  return r;
}

TEST(TimeModel, PaperInterpolatesInLog2Batch) {
  std::vector<store::BenchRow> rows = {Row("paper", 1, 1024, 512, 0, 2.0), Row("paper", 4, 1024, 512, 0, 4.0)};
  SpeedTable t(rows);
  EXPECT_DOUBLE_EQ(t.PaperSeconds(1), 2.0);
  EXPECT_DOUBLE_EQ(t.PaperSeconds(2), 3.0);  // halfway in log2
  EXPECT_DOUBLE_EQ(t.PaperSeconds(4), 4.0);
  EXPECT_DOUBLE_EQ(t.PaperSeconds(8), 5.0);  // extrapolated along the last segment
  ProblemRun run = MakeRun({0, 0}, {1, 1}, {0, 0});
  TimeModelSource src;
  EXPECT_DOUBLE_EQ(TimeForK(run, 2, TimeModelKind::kPaper, &t, &src), 3.0);
  EXPECT_EQ(src, TimeModelSource::kBenchTable);
}

TEST(TimeModel, LengthAwareSumsStepTimesAtTheLiveBatch) {
  // Step time: 1 ms at batch 1, 2 ms at batch 2 (context-independent); lengths 3 and 1 tokens; prefill 0.5 s.
  std::vector<store::BenchRow> rows = {Row("step", 1, 10, 0, 0.001, 0), Row("step", 1, 100, 0, 0.001, 0),
                                       Row("step", 2, 10, 0, 0.002, 0), Row("step", 2, 100, 0, 0.002, 0)};
  SpeedTable t(rows);
  ProblemRun run = MakeRun({0, 0}, {1, 1}, {0, 0});
  run.num_tokens = {3, 1};
  run.prefill_s = {0.5, 0.5};
  run.prompt_tokens = 20;
  // step 0: both live (2 ms); steps 1, 2: one live (1 ms each): 0.5 + 0.002 + 0.002 = 0.504
  EXPECT_NEAR(TimeForK(run, 2, TimeModelKind::kLength, &t), 0.504, 1e-12);
  // Context interpolation: 1 ms at context 10, 3 ms at context 110 at batch 1.
  std::vector<store::BenchRow> ctx = {Row("step", 1, 10, 0, 0.001, 0), Row("step", 1, 110, 0, 0.003, 0)};
  SpeedTable tc(ctx);
  EXPECT_NEAR(tc.StepSeconds(1, 60), 0.002, 1e-12);
}

TEST(TimeModel, FallsBackToMeasuredSampleTimings) {
  ProblemRun run = MakeRun({0, 0}, {1, 1}, {0, 0});
  run.num_tokens = {10, 20};
  run.prefill_s = {0.1, 0.1};
  run.decode_s = {1.0, 2.0};
  TimeModelSource src;
  EXPECT_DOUBLE_EQ(TimeForK(run, 2, TimeModelKind::kPaper, nullptr, &src), 2.1);
  EXPECT_EQ(src, TimeModelSource::kMeasuredSamples);
  // Mean step 3 s / 30 tokens = 0.1 s; 20 steps + prefill 0.1 s.
  EXPECT_NEAR(TimeForK(run, 2, TimeModelKind::kLength, nullptr), 2.1, 1e-12);
}

TEST(Pareto, KeepsOnlyUndominatedPoints) {
  std::vector<double> t = {1, 2, 3, 4, 2, 5};
  std::vector<double> v = {0.1, 0.5, 0.4, 0.7, 0.3, 0.7};
  auto front = ParetoFront(t, v);
  EXPECT_EQ(front, (std::vector<int>{0, 1, 3}));
}

}  // namespace
}  // namespace ttc::reports
