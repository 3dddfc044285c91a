// The GPU sampler (CudaBackend::SampleRows) against the CPU sampler's contract: greedy equals
// Argmax; sampled draws follow SamplingDistribution (chi-square on a fixed distribution, with
// temperature, top-k, top-p and both together); draws agree id for id with SampleToken under the
// same RNG keys except where a uniform lands within rounding of a boundary; top-p keeps boundary
// ties from the lowest id; one prompt row feeds many draws. Skips with a visible message when no
// CUDA backend or device is present (CI).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/backend.h"
#include "engine/sampler.h"

namespace ttc {
namespace {

using engine::SampleKey;
using engine::SamplingParams;

#define CUDA_BACKEND_OR_SKIP(var)                                                             \
  auto var##_r = engine::CreateBackend({.kind = engine::BackendKind::kCuda});                 \
  if (!var##_r.ok()) {                                                                        \
    if (var##_r.status().code() == StatusCode::kUnimplemented ||                              \
        var##_r.status().code() == StatusCode::kFailedPrecondition) {                         \
      GTEST_SKIP() << "CUDA backend not usable here (" << var##_r.status().ToString() << ")"; \
    }                                                                                         \
    FAIL() << var##_r.status().ToString();                                                    \
  }                                                                                           \
  auto var = std::move(var##_r).value();

// Rows of logits on the backend: an f32 table uploaded as a weight, embedded row by row.
std::unique_ptr<engine::Activation> DeviceRows(engine::Backend& be, const std::vector<float>& host,
                                               int64_t rows, int64_t V) {
  engine::HostMatrix m{host.data(), engine::HostDType::kF32, rows, V};
  auto w = be.Upload(m);
  EXPECT_TRUE(w.ok());
  auto act = be.NewActivation(rows, V);
  std::vector<int32_t> ids(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) ids[static_cast<size_t>(r)] = static_cast<int32_t>(r);
  be.Embed(**w, ids, act.get());
  std::vector<float> check(host.size());
  be.CopyToHost(*act, check);  // also keeps the weight alive until the embed has run
  // Bit patterns, not values: the rows may hold NaN on purpose.
  EXPECT_EQ(std::memcmp(check.data(), host.data(), host.size() * sizeof(float)), 0);
  return act;
}

std::vector<float> RandomLogits(int64_t V, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(V));
  for (auto& x : v) x = nd(gen);
  return v;
}

// `rows` rows of RandomLogits, row r seeded seed0 + r, concatenated.
std::vector<float> RandomRows(int64_t V, int64_t rows, uint32_t seed0, float scale) {
  std::vector<float> host;
  for (int64_t r = 0; r < rows; ++r) {
    auto row = RandomLogits(V, seed0 + static_cast<uint32_t>(r), scale);
    host.insert(host.end(), row.begin(), row.end());
  }
  return host;
}

struct Case {
  const char* name;
  SamplingParams params;
};

TEST(CudaSampler, GreedyEqualsArgmaxWithTiesAndNaN) {
  CUDA_BACKEND_OR_SKIP(be);
  const int64_t V = 128256, rows = 4;
  std::vector<float> host = RandomRows(V, rows, 10, 3.0f);
  host[static_cast<size_t>(V) + 77] = 100.0f;  // row 1: a tie at 77 and 5000 -> 77
  host[static_cast<size_t>(V) + 5000] = 100.0f;
  for (int64_t i = 0; i < V; ++i) host[static_cast<size_t>(2 * V + i)] = NAN;  // row 2: all NaN
  host[static_cast<size_t>(3 * V) + 9] = NAN;                                  // row 3: a NaN
  auto act = DeviceRows(*be, host, rows, V);
  std::vector<SampleKey> keys(rows);
  std::vector<int32_t> out(rows);
  be->SampleRows(*act, {.greedy = true}, keys, out);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(out[static_cast<size_t>(r)],
              engine::Argmax(std::span(host.data() + r * V, static_cast<size_t>(V))))
        << "row " << r;
  }
  EXPECT_EQ(out[1], 77);
  EXPECT_EQ(out[2], 0);
}

TEST(CudaSampler, ChiSquareAgainstSamplingDistribution) {
  CUDA_BACKEND_OR_SKIP(be);
  const int64_t V = 2000;
  const auto logits = RandomLogits(V, 7, 2.0f);
  auto act = DeviceRows(*be, logits, 1, V);
  const Case cases[] = {
      {"temperature 1", {.temperature = 1.0f}},
      {"temperature 0.6", {.temperature = 0.6f}},
      {"top-k 40", {.temperature = 0.8f, .top_k = 40}},
      {"top-p 0.9", {.temperature = 1.0f, .top_p = 0.9f}},
      {"top-k 200 + top-p 0.7", {.temperature = 1.2f, .top_k = 200, .top_p = 0.7f}},
  };
  const int64_t kDraws = 200000;
  for (const auto& c : cases) {
    std::vector<SampleKey> keys(static_cast<size_t>(kDraws));
    for (int64_t i = 0; i < kDraws; ++i)
      keys[static_cast<size_t>(i)] = {1234, static_cast<uint64_t>(i), 3};
    std::vector<int32_t> out(keys.size());
    be->SampleRows(*act, c.params, keys, out);  // one row feeds every draw
    const auto dist = engine::SamplingDistribution(logits, c.params);
    std::vector<int64_t> counts(static_cast<size_t>(V), 0);
    int64_t same_as_cpu = 0, outside = 0;
    engine::SamplerScratch scratch;
    for (int64_t i = 0; i < kDraws; ++i) {
      const int32_t id = out[static_cast<size_t>(i)];
      ASSERT_GE(id, 0);
      ASSERT_LT(id, V);
      counts[static_cast<size_t>(id)]++;
      if (dist[static_cast<size_t>(id)] == 0.0) ++outside;
      const SampleKey& k = keys[static_cast<size_t>(i)];
      same_as_cpu +=
          engine::SampleToken(logits, c.params, k.seed, k.sample_index, k.step, &scratch) == id;
    }
    EXPECT_EQ(outside, 0) << c.name << ": draws of filtered tokens";
    // Pearson chi-square over tokens with expected count >= 5 (the rest pooled).
    double chi = 0.0, pooled_e = 0.0, pooled_o = 0.0;
    int cells = 0;
    for (int64_t i = 0; i < V; ++i) {
      const double e = dist[static_cast<size_t>(i)] * kDraws;
      if (e == 0.0) continue;
      if (e < 5.0) {
        pooled_e += e;
        pooled_o += static_cast<double>(counts[static_cast<size_t>(i)]);
        continue;
      }
      const double d = static_cast<double>(counts[static_cast<size_t>(i)]) - e;
      chi += d * d / e;
      ++cells;
    }
    if (pooled_e > 0.0) {
      chi += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
      ++cells;
    }
    const double df = std::max(1, cells - 1);
    // Wilson-Hilferty: chi/df is about normal with mean 1 - 2/(9 df) and sd sqrt(2/(9 df)); 5 sd is
    // a false-alarm rate of 3e-7 per case.
    const double z = (std::cbrt(chi / df) - (1.0 - 2.0 / (9.0 * df))) / std::sqrt(2.0 / (9.0 * df));
    std::cout << "[cuda] sampler " << c.name << ": chi-square " << chi << " on " << df << " df (z "
              << z << "), same id as the CPU sampler for " << same_as_cpu << "/" << kDraws
              << " keys\n";
    EXPECT_LT(z, 5.0) << c.name;
    // Same keys, same logits: the CPU and GPU draws differ only within expf / summation rounding.
    EXPECT_GE(same_as_cpu, kDraws - kDraws / 1000) << c.name;
  }
}

TEST(CudaSampler, TopPKeepsBoundaryTiesFromTheLowestId) {
  CUDA_BACKEND_OR_SKIP(be);
  const int64_t V = 5000;
  std::vector<float> flat(static_cast<size_t>(V), 1.0f);  // every token equally likely
  auto act = DeviceRows(*be, flat, 1, V);
  const SamplingParams p{.temperature = 1.0f, .top_p = 0.25f};
  const int64_t kDraws = 20000;
  std::vector<SampleKey> keys(static_cast<size_t>(kDraws));
  for (int64_t i = 0; i < kDraws; ++i)
    keys[static_cast<size_t>(i)] = {9, static_cast<uint64_t>(i), 0};
  std::vector<int32_t> out(keys.size());
  be->SampleRows(*act, p, keys, out);
  int32_t hi = 0;
  for (int32_t id : out) hi = std::max(hi, id);
  EXPECT_LT(hi, 1250);  // the nucleus is ids 0..1249
  EXPECT_GT(hi, 1200);  // and all of it is used
}

TEST(CudaSampler, ManyRowsOneDrawEach) {
  CUDA_BACKEND_OR_SKIP(be);
  const int64_t V = 32000, rows = 64;
  std::vector<float> host = RandomRows(V, rows, 100, 4.0f);
  auto act = DeviceRows(*be, host, rows, V);
  const SamplingParams p{.temperature = 0.7f, .top_k = 100, .top_p = 0.95f};
  std::vector<SampleKey> keys(rows);
  for (int64_t r = 0; r < rows; ++r)
    keys[static_cast<size_t>(r)] = {42, static_cast<uint64_t>(r), 17};
  std::vector<int32_t> out(rows);
  be->SampleRows(*act, p, keys, out);
  int same = 0;
  for (int64_t r = 0; r < rows; ++r) {
    same +=
        engine::SampleToken(std::span(host.data() + r * V, static_cast<size_t>(V)), p, 42,
                            static_cast<uint64_t>(r), 17, nullptr) == out[static_cast<size_t>(r)];
  }
  EXPECT_GE(same, rows - 1);
}

}  // namespace
}  // namespace ttc
