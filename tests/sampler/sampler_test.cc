// The sampler and its counter-based RNG: Philox known-answer vectors (Random123 kat_vectors),
// determinism and batch independence, greedy ties, top-k / top-p boundaries against a brute-force
// full-sort reference, temperature extremes, and a chi-square test of the empirical distribution
// against the exact softmax (seeded, deterministic).
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace ttc::engine {
namespace {

TEST(Philox, Random123KnownAnswers) {
  struct Kat {
    Philox4x32 ctr;
    uint32_t k0, k1;
    Philox4x32 expected;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    Philox4x32 out = Philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], k.expected.v[i]) << "word " << i;
  }
}

TEST(Philox, DocumentedKeyAndCounterLayout) {
  const uint64_t seed = 0x0123456789abcdefull, sample = 0xfedcba9876543210ull,
                 step = 0x00000001ffffffffull;
  Philox4x32 direct = Philox4x32_10({{0x76543210u, 0xfedcba98u, 0xffffffffu, 0x00000001u}},
                                    0x89abcdefu, 0x01234567u);
  Philox4x32 bits = SamplingBits(seed, sample, step);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(bits.v[i], direct.v[i]);
  const double u = SamplingUniform(seed, sample, step);
  const uint64_t top53 = ((static_cast<uint64_t>(direct.v[0]) << 32) | direct.v[1]) >> 11;
  EXPECT_EQ(u, std::ldexp(static_cast<double>(top53), -53));
}

TEST(Philox, UniformsAreInRangeAndRoughlyUniform) {
  double sum = 0;
  int buckets[10] = {};
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double u = SamplingUniform(42, static_cast<uint64_t>(i), 7);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    buckets[static_cast<int>(u * 10)]++;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  double chi2 = 0;
  for (int b : buckets) chi2 += (b - n / 10.0) * (b - n / 10.0) / (n / 10.0);
  EXPECT_LT(chi2, 27.88);  // df 9, p = 0.001
  EXPECT_NE(SamplingUniform(1, 0, 0), SamplingUniform(2, 0, 0));
  EXPECT_NE(SamplingUniform(1, 0, 0), SamplingUniform(1, 1, 0));
  EXPECT_NE(SamplingUniform(1, 0, 0), SamplingUniform(1, 0, 1));
  EXPECT_NE(SamplingUniform(1, 1ull << 32, 0),
            SamplingUniform(1, 0, 0));  // high counter bits matter
}

std::vector<float> RandomLogits(size_t vocab, uint32_t seed, float scale = 3.0f,
                                bool quantize = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(vocab);
  for (float& x : v) {
    x = normal(rng);
    if (quantize) x = std::round(x * 2.0f) / 2.0f;  // many ties
  }
  return v;
}

TEST(Sampler, SameKeySameTokenAndBatchOrderDoesNotMatter) {
  const auto logits = RandomLogits(5000, 1);
  SamplingParams p{.temperature = 0.8f, .top_k = 50, .top_p = 0.95f};
  std::vector<int32_t> forward(64);
  SamplerScratch scratch;
  for (uint64_t i = 0; i < 64; ++i) forward[i] = SampleToken(logits, p, 99, i, 3, &scratch);
  // Interleave other rows and vocab sizes through the same scratch, in reverse order.
  const auto other = RandomLogits(300, 2);
  for (int i = 63; i >= 0; --i) {
    (void)SampleToken(other, p, 5, static_cast<uint64_t>(i), 0, &scratch);
    EXPECT_EQ(SampleToken(logits, p, 99, static_cast<uint64_t>(i), 3, &scratch), forward[i]) << i;
    EXPECT_EQ(SampleToken(logits, p, 99, static_cast<uint64_t>(i), 3, nullptr), forward[i]) << i;
  }
  // Different samples do not all agree (the key matters).
  std::sort(forward.begin(), forward.end());
  EXPECT_GT(std::unique(forward.begin(), forward.end()) - forward.begin(), 5);
}

TEST(Sampler, GreedyTiesGoToLowestId) {
  std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 3.0f};
  EXPECT_EQ(Argmax(logits), 1);
  SamplingParams greedy{.greedy = true};
  EXPECT_EQ(SampleToken(logits, greedy, 1, 2, 3, nullptr), 1);
  SamplingParams t0{.temperature = 0.0f};
  EXPECT_EQ(SampleToken(logits, t0, 1, 2, 3, nullptr), 1);
  std::vector<float> with_nan = {NAN, -INFINITY, 2.0f, NAN, 2.0f};
  EXPECT_EQ(Argmax(with_nan), 2);
  std::vector<float> all_masked = {-INFINITY, -INFINITY, -INFINITY};
  EXPECT_EQ(Argmax(all_masked), 0);
  EXPECT_EQ(SampleToken(all_masked, SamplingParams{}, 1, 0, 0, nullptr), 0);
  std::vector<float> pos_inf = {0.0f, INFINITY, 5.0f, INFINITY};
  EXPECT_EQ(SampleToken(pos_inf, SamplingParams{}, 1, 0, 0, nullptr), 1);
}

TEST(Sampler, TopKOneEqualsGreedyOnRowsWithTies) {
  SamplerScratch scratch;
  for (uint32_t row = 0; row < 200; ++row) {
    auto logits = RandomLogits(257, row, 2.0f, /*quantize=*/true);
    SamplingParams k1{.temperature = 1.3f, .top_k = 1};
    const int32_t g = Argmax(logits);
    EXPECT_EQ(SampleToken(logits, k1, row, row, 0, &scratch), g);
    // A tiny top_p also keeps exactly the top token (ties -> lowest id).
    SamplingParams p0{.temperature = 1.0f, .top_p = 1e-6f};
    EXPECT_EQ(SampleToken(logits, p0, row, 0, row, &scratch), g);
  }
}

// Brute-force reference of the documented semantics with a full sort: the kept set and
// probabilities.
std::vector<double> ReferenceDistribution(const std::vector<float>& logits,
                                          const SamplingParams& p) {
  const size_t v = logits.size();
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<float> z(v);
  for (size_t i = 0; i < v; ++i) z[i] = (logits[i] - mx) / p.temperature;
  std::vector<bool> keep(v, true);
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < v) {
    std::vector<float> sorted = z;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    for (size_t i = 0; i < v; ++i) keep[i] = z[i] >= sorted[p.top_k - 1];
  }
  std::vector<float> e(v);
  double total = 0;
  for (size_t i = 0; i < v; ++i) {
    e[i] = keep[i] ? std::exp(z[i]) : 0.0f;
    total += e[i];
  }
  if (p.top_p < 1.0f) {
    std::vector<int> order(v);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return e[a] > e[b] || (e[a] == e[b] && a < b); });
    double acc = 0;
    std::vector<bool> in(v, false);
    for (int id : order) {
      if (e[id] == 0.0f) break;
      in[id] = true;
      acc += e[id];
      if (acc >= p.top_p * total) break;
    }
    total = 0;
    for (size_t i = 0; i < v; ++i) {
      if (!in[i]) e[i] = 0.0f;
      total += e[i];
    }
  }
  std::vector<double> out(v);
  for (size_t i = 0; i < v; ++i) out[i] = e[i] / total;
  return out;
}

TEST(Sampler, DistributionMatchesFullSortReference) {
  std::mt19937 rng(7);
  int checked = 0;
  for (uint32_t trial = 0; trial < 300; ++trial) {
    const size_t vocab = 1 + rng() % 3000;
    auto logits = RandomLogits(vocab, trial, 1.0f + (rng() % 5), /*quantize=*/trial % 2 == 0);
    SamplingParams p;
    p.temperature = 0.1f + (rng() % 100) / 40.0f;
    p.top_k = (rng() % 3 == 0) ? -1 : 2 + static_cast<int>(rng() % 200);
    p.top_p = (rng() % 3 == 0) ? 1.0f : 0.05f + (rng() % 95) / 100.0f;
    auto got = SamplingDistribution(logits, p);
    auto want = ReferenceDistribution(logits, p);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < vocab; ++i) {
      ASSERT_EQ(got[i] == 0.0, want[i] == 0.0)
          << "kept set differs at id " << i << " trial " << trial << " vocab " << vocab << " T "
          << p.temperature << " k " << p.top_k << " p " << p.top_p;
      ASSERT_NEAR(got[i], want[i], 1e-9);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 300);
}

TEST(Sampler, TopKKeepsTiesAtTheBoundary) {
  std::vector<float> logits = {3.0f, 2.0f, 2.0f, 1.0f};
  auto d = SamplingDistribution(logits, SamplingParams{.top_k = 2});
  EXPECT_GT(d[0], 0);
  EXPECT_GT(d[1], 0);
  EXPECT_GT(d[2], 0);
  EXPECT_EQ(d[3], 0);
  auto all = SamplingDistribution(logits, SamplingParams{.top_k = 10});
  EXPECT_GT(all[3], 0);
}

TEST(Sampler, TopPBoundaries) {
  // Probabilities 0.5, 0.3, 0.2 (from their logs).
  std::vector<float> logits = {std::log(0.2f), std::log(0.5f), std::log(0.3f)};
  auto kept = [&](float top_p) {
    auto d = SamplingDistribution(logits, SamplingParams{.top_p = top_p});
    std::vector<int> ids;
    for (int i = 0; i < 3; ++i)
      if (d[i] > 0) ids.push_back(i);
    return ids;
  };
  EXPECT_EQ(kept(0.01f), (std::vector<int>{1}));
  EXPECT_EQ(kept(0.49f), (std::vector<int>{1}));
  EXPECT_EQ(kept(0.51f), (std::vector<int>{1, 2}));
  EXPECT_EQ(kept(0.79f), (std::vector<int>{1, 2}));
  EXPECT_EQ(kept(0.81f), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(kept(1.0f), (std::vector<int>{0, 1, 2}));
  // Renormalised over the nucleus.
  auto d = SamplingDistribution(logits, SamplingParams{.top_p = 0.6f});
  EXPECT_NEAR(d[1], 0.5 / 0.8, 1e-6);
  EXPECT_NEAR(d[2], 0.3 / 0.8, 1e-6);
  // Equal probabilities: ties broken towards lower ids, and only as many as needed.
  std::vector<float> flat(4, 0.0f);
  auto f = SamplingDistribution(flat, SamplingParams{.top_p = 0.3f});
  EXPECT_EQ(f, (std::vector<double>{0.5, 0.5, 0.0, 0.0}));
  // Nucleus after top-k: top-k first, then top-p over the renormalised survivors.
  std::vector<float> four = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  auto kp = SamplingDistribution(four, SamplingParams{.top_k = 2, .top_p = 0.5f});
  // survivors 0.4/0.7 = 0.571 >= 0.5: only token 0.
  EXPECT_EQ(kp, (std::vector<double>{1.0, 0.0, 0.0, 0.0}));
}

TEST(Sampler, InverseCdfWalksIdsInOrder) {
  std::vector<float> logits = {std::log(0.25f), std::log(0.5f), std::log(0.25f)};
  SamplingParams p;
  EXPECT_EQ(SampleTokenWithUniform(logits, p, 0.0, nullptr), 0);
  EXPECT_EQ(SampleTokenWithUniform(logits, p, 0.2499, nullptr), 0);
  EXPECT_EQ(SampleTokenWithUniform(logits, p, 0.2501, nullptr), 1);
  EXPECT_EQ(SampleTokenWithUniform(logits, p, 0.7499, nullptr), 1);
  EXPECT_EQ(SampleTokenWithUniform(logits, p, 0.7501, nullptr), 2);
  EXPECT_EQ(SampleTokenWithUniform(logits, p, std::nextafter(1.0, 0.0), nullptr), 2);
  // Filtered tokens are never returned, whatever u.
  SamplingParams k1{.top_p = 0.4f};
  for (double u : {0.0, 0.3, 0.6, 0.999999})
    EXPECT_EQ(SampleTokenWithUniform(logits, k1, u, nullptr), 1);
}

TEST(Sampler, TemperatureExtremes) {
  auto logits = RandomLogits(1000, 11);
  const int32_t g = Argmax(logits);
  SamplingParams cold{.temperature = 1e-6f};
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(SampleToken(logits, cold, 3, i, 0, nullptr), g);
  SamplingParams hot{.temperature = 1e6f};
  auto d = SamplingDistribution(logits, hot);
  for (double x : d) EXPECT_NEAR(x, 1e-3, 1e-7);
  // Extreme logits do not overflow: a large spread at a small temperature.
  std::vector<float> wide = {1e30f, -1e30f, 0.0f, 1e30f};
  for (uint64_t i = 0; i < 20; ++i) {
    const int32_t t = SampleToken(wide, SamplingParams{.temperature = 0.01f}, 1, i, 0, nullptr);
    EXPECT_TRUE(t == 0 || t == 3) << t;
  }
  auto wd = SamplingDistribution(wide, SamplingParams{});
  EXPECT_EQ(wd, (std::vector<double>{0.5, 0.0, 0.0, 0.5}));
}

// Chi-square goodness of fit of SampleToken against the exact distribution, over keys (seed, i,
// step).
double ChiSquare(const std::vector<float>& logits, const SamplingParams& p,
                 const std::vector<double>& expected, int n, int* df) {
  std::vector<int> counts(logits.size(), 0);
  SamplerScratch scratch;
  for (int i = 0; i < n; ++i)
    counts[SampleToken(logits, p, 20240607, static_cast<uint64_t>(i), 5, &scratch)]++;
  double chi2 = 0;
  *df = -1;
  for (size_t t = 0; t < logits.size(); ++t) {
    if (expected[t] == 0) {
      EXPECT_EQ(counts[t], 0) << "filtered token " << t << " was sampled";
      continue;
    }
    const double e = expected[t] * n;
    chi2 += (counts[t] - e) * (counts[t] - e) / e;
    ++*df;
  }
  return chi2;
}

TEST(Sampler, ChiSquareAgainstExactSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 1.5f, -0.5f};
  // Exact softmax in double, computed here independently of the sampler.
  std::vector<double> exact(logits.size());
  double z = 0;
  for (size_t i = 0; i < logits.size(); ++i) z += std::exp(static_cast<double>(logits[i]));
  for (size_t i = 0; i < logits.size(); ++i)
    exact[i] = std::exp(static_cast<double>(logits[i])) / z;
  int df = 0;
  const double chi2 = ChiSquare(logits, SamplingParams{}, exact, 40000, &df);
  EXPECT_EQ(df, 7);
  EXPECT_LT(chi2, 24.32) << "df 7, p = 0.001";  // fixed seeds: deterministic

  // Temperature 0.5 squares the odds; top-k 4 keeps ids 4, 1, 6, 0 (logits 3, 2, 1.5, 1).
  std::vector<double> t_exact(logits.size(), 0.0);
  double tz = 0;
  for (int id : {4, 1, 6, 0}) tz += std::exp(2.0 * logits[id]);
  for (int id : {4, 1, 6, 0}) t_exact[id] = std::exp(2.0 * logits[id]) / tz;
  const double chi2_t =
      ChiSquare(logits, SamplingParams{.temperature = 0.5f, .top_k = 4}, t_exact, 40000, &df);
  EXPECT_EQ(df, 3);
  EXPECT_LT(chi2_t, 16.27) << "df 3, p = 0.001";
}

TEST(Sampler, LargeVocabularyRow) {
  auto logits = RandomLogits(128256, 3, 2.0f);
  SamplerScratch scratch;
  for (SamplingParams p : {SamplingParams{}, SamplingParams{.temperature = 0.7f, .top_p = 0.9f},
                           SamplingParams{.temperature = 1.0f, .top_k = 40, .top_p = 0.95f}}) {
    auto want = ReferenceDistribution(logits, p);
    for (uint64_t i = 0; i < 8; ++i) {
      int32_t t = SampleToken(logits, p, 1, i, 0, &scratch);
      ASSERT_GE(t, 0);
      ASSERT_LT(t, 128256);
      EXPECT_GT(want[t], 0.0) << "sampled a token outside the kept set";
    }
  }
}

TEST(Softmax, LogSoftmaxAndSoftmax) {
  std::vector<float> logits = {1000.0f, 999.0f, -INFINITY, 998.0f};
  std::vector<float> out(4), probs(4);
  LogSoftmax(logits, out);
  Softmax(logits, probs);
  const double lse = 1000.0 + std::log(1.0 + std::exp(-1.0) + std::exp(-2.0));
  EXPECT_NEAR(out[0], 1000.0 - lse, 1e-5);
  EXPECT_NEAR(out[1], 999.0 - lse, 1e-5);
  EXPECT_EQ(out[2], -INFINITY);
  EXPECT_NEAR(out[3], 998.0 - lse, 1e-5);
  double sum = 0;
  for (float p : probs) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_NEAR(probs[0], std::exp(out[0]), 1e-6);
  EXPECT_EQ(probs[2], 0.0f);
  // In place.
  std::vector<float> x = {0.0f, 0.0f};
  LogSoftmax(x, x);
  EXPECT_NEAR(x[0], -std::log(2.0), 1e-7);
}

TEST(Sampler, ValidateParams) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams{}).ok());
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams{.temperature = 0.0f, .top_k = 0}).ok());
  EXPECT_FALSE(ValidateSamplingParams(SamplingParams{.temperature = -1.0f}).ok());
  EXPECT_FALSE(ValidateSamplingParams(SamplingParams{.temperature = NAN}).ok());
  EXPECT_FALSE(ValidateSamplingParams(SamplingParams{.top_k = -2}).ok());
  EXPECT_FALSE(ValidateSamplingParams(SamplingParams{.top_p = 0.0f}).ok());
  auto st = ValidateSamplingParams(SamplingParams{.top_p = 1.5f});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("top_p"), std::string::npos);
}

}  // namespace
}  // namespace ttc::engine
