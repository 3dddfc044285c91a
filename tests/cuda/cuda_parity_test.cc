// The CUDA backend against the golden fixtures and against the CPU backend, for every family:
// prefill and decode logits within the bf16 bound below, identical greedy ids for the golden
// chain and for 48 steps continued past it, and batched decode equal to single-sequence decode.
// Skips with a visible message when the build has no CUDA backend or the machine has no GPU (CI).
//
// Tolerance (kBf16Tol = 0.05 absolute on logits of magnitude <= 15): the CUDA backend rounds every
// GEMM input activation to bf16 (relative error <= 2^-9) and stores K/V in bf16, while the goldens
// are float32. One bf16 rounding of a logit of 14 is 14 * 2^-9 = 0.027; the errors of the layers
// below add roughly in quadrature, so 0.05 (under two such roundings) is the bound; it is also half
// the smallest greedy margin of the goldens (0.1), so identical greedy ids are implied, not luck.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "engine/generate.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/sampler.h"
#include "engine/score.h"
#include "tests/engine/engine_test_util.h"
#ifdef TTC_HAVE_CUDA_BACKEND
#include "engine/cuda/cuda_backend.h"
#endif

namespace ttc {
namespace {

using engine::BatchLayout;
constexpr float kBf16Tol = 0.05f;

// Sets an environment variable for its lifetime, then puts back the value it had (or its absence):
// the CUDA backend reads its A/B switches when it is created, and a switch set around the test run
// must survive a test that sets its own.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* e = std::getenv(name)) before_ = e;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (before_) {
      ::setenv(name_, before_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> before_;
};

// The model on the CUDA backend, or a skip reason.
Result<std::unique_ptr<engine::Model>> LoadCuda(
    const std::filesystem::path& dir, engine::StateDType state = engine::StateDType::kF32) {
  return engine::LoadModel(dir, {.backend = engine::BackendKind::kCuda, .state_dtype = state});
}

#define LOAD_CUDA_OR_SKIP(var, dir)                                                       \
  auto var = LoadCuda(dir);                                                               \
  if (!var.ok()) {                                                                        \
    if (var.status().code() == StatusCode::kUnimplemented ||                              \
        var.status().code() == StatusCode::kFailedPrecondition) {                         \
      GTEST_SKIP() << "CUDA backend not usable here (" << var.status().ToString() << ")"; \
    }                                                                                     \
    FAIL() << var.status().ToString();                                                    \
  }

float Margin(std::span<const float> v) {
  float a = -INFINITY, b = -INFINITY;
  for (float x : v) {
    if (x > a) {
      b = a;
      a = x;
    } else if (x > b) {
      b = x;
    }
  }
  return a - b;
}

class CudaFamily : public ::testing::TestWithParam<std::string> {};

// The golden prefill and decode logits within kBf16Tol, and the golden greedy chain, with the
// recurrent state kept as `state_dtype`.
void CheckGolden(const std::string& family, engine::StateDType state_dtype) {
  const auto dir = testing::GoldenModel(family);
  auto model = LoadCuda(dir, state_dtype);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto golden = engine::SafetensorsFile::Open(dir / "golden.safetensors");
  ASSERT_TRUE(golden.ok());
  auto prompt64 = testing::ReadI64(*(*golden)->Find("prompt_ids"));
  auto ids = testing::ReadI64(*(*golden)->Find("decode_ids"));
  auto prefill_ref = engine::ToFloat32(*(*golden)->Find("prefill_logits"));
  auto decode_ref = engine::ToFloat32(*(*golden)->Find("decode_logits"));
  ASSERT_TRUE(prefill_ref.ok() && decode_ref.ok());
  const int64_t V = (*model)->config().vocab_size, L = static_cast<int64_t>(prompt64.size());

  auto state = (*model)->NewState(1);
  ASSERT_TRUE(state.ok());
  std::vector<int32_t> prompt(prompt64.begin(), prompt64.end());
  std::vector<int64_t> rows(static_cast<size_t>(L));
  for (int64_t i = 0; i < L; ++i) rows[static_cast<size_t>(i)] = i;
  std::vector<float> logits;
  ASSERT_TRUE(
      (*model)->Forward(state->get(), BatchLayout{{{0, 0, L}}}, prompt, rows, &logits).ok());
  const float prefill_diff = testing::MaxAbsDiff(logits.data(), prefill_ref->data(), logits.size());
  EXPECT_LE(prefill_diff, kBf16Tol) << family << " prefill";
  float decode_diff = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t tok = static_cast<int32_t>(ids[i]);
    std::vector<int64_t> row0 = {0};
    ASSERT_TRUE((*model)
                    ->Forward(state->get(), BatchLayout{{{0, L + static_cast<int64_t>(i), 1}}},
                              std::span(&tok, 1), row0, &logits)
                    .ok());
    const float d =
        testing::MaxAbsDiff(logits.data(), decode_ref->data() + i * V, static_cast<size_t>(V));
    decode_diff = std::max(decode_diff, d);
    EXPECT_LE(d, kBf16Tol) << family << " decode step " << i;
    if (i + 1 < ids.size()) {
      EXPECT_EQ(engine::Argmax(logits), ids[i + 1]) << family << " step " << i;
    }
  }
  std::cout << "[cuda] " << family << " (" << engine::StateDTypeName(state_dtype)
            << " state): max |prefill - golden| " << prefill_diff << ", max |decode - golden| "
            << decode_diff << " (bound " << kBf16Tol << ")\n";
}

TEST_P(CudaFamily, GoldenLogitsAndGreedyChain) {
  LOAD_CUDA_OR_SKIP(probe, testing::GoldenModel(GetParam()));
  CheckGolden(GetParam(), engine::StateDType::kF32);
}

// The f16 state (--state-dtype f16) holds the same golden bound as the f32 one: its rounding per
// step (2^-12 relative) moved the decode logits by at most 0.011 in a CPU emulation of the store
// (docs/perf/cuda.md, session 13), and the rest of the CUDA error adds to that. The bf16 state
// does not (0.067, the reason f32 is the default).
TEST_P(CudaFamily, GoldenLogitsWithF16State) {
  if (GetParam() == "llama") GTEST_SKIP() << "llama has no recurrent state";
  LOAD_CUDA_OR_SKIP(probe, testing::GoldenModel(GetParam()));
  CheckGolden(GetParam(), engine::StateDType::kF16);
}

// Greedy decoding of 48 steps from the golden prompt on CPU and CUDA: same ids (a divergence is
// only acceptable at a step whose CPU margin is below 2 * kBf16Tol, i.e. a near tie), logits within
// bound.
TEST_P(CudaFamily, GreedyChainMatchesCpuFor48Steps) {
  const auto dir = testing::GoldenModel(GetParam());
  LOAD_CUDA_OR_SKIP(gpu, dir);
  auto cpu = engine::LoadModel(dir, {.threads = 2});
  ASSERT_TRUE(cpu.ok());
  auto golden = engine::SafetensorsFile::Open(dir / "golden.safetensors");
  ASSERT_TRUE(golden.ok());
  auto prompt64 = testing::ReadI64(*(*golden)->Find("prompt_ids"));
  std::vector<int32_t> prompt(prompt64.begin(), prompt64.end());
  const int64_t L = static_cast<int64_t>(prompt.size());
  auto sg = (*gpu)->NewState(1);
  auto sc = (*cpu)->NewState(1);
  ASSERT_TRUE(sg.ok() && sc.ok());
  std::vector<float> lg, lc;
  std::vector<int64_t> last = {L - 1};
  ASSERT_TRUE((*gpu)->Forward(sg->get(), BatchLayout{{{0, 0, L}}}, prompt, last, &lg).ok());
  ASSERT_TRUE((*cpu)->Forward(sc->get(), BatchLayout{{{0, 0, L}}}, prompt, last, &lc).ok());
  float worst = 0;
  int same = 0;
  for (int step = 0; step < 48; ++step) {
    worst = std::max(worst, testing::MaxAbsDiff(lg.data(), lc.data(), lc.size()));
    const int32_t tg = engine::Argmax(lg), tc = engine::Argmax(lc);
    if (tg != tc) {
      EXPECT_LT(Margin(lc), 2 * kBf16Tol)
          << GetParam() << ": greedy ids differ at step " << step << " (cpu " << tc << ", cuda "
          << tg << ") without a near tie";
      break;
    }
    ++same;
    std::vector<int64_t> row0 = {0};
    ASSERT_TRUE(
        (*gpu)
            ->Forward(sg->get(), BatchLayout{{{0, L + step, 1}}}, std::span(&tg, 1), row0, &lg)
            .ok());
    ASSERT_TRUE(
        (*cpu)
            ->Forward(sc->get(), BatchLayout{{{0, L + step, 1}}}, std::span(&tc, 1), row0, &lc)
            .ok());
  }
  EXPECT_LE(worst, kBf16Tol) << GetParam();
  std::cout << "[cuda] " << GetParam() << ": " << same
            << "/48 greedy ids equal to the CPU backend, max |cuda - cpu| " << worst << "\n";
}

// A prompt forked into 5 slots and decoded together with different tokens equals each sequence
// decoded alone (slots, rows and state indexing of the batched kernels).
TEST_P(CudaFamily, BatchedDecodeEqualsSingle) {
  const auto dir = testing::GoldenModel(GetParam());
  LOAD_CUDA_OR_SKIP(model, dir);
  const int64_t V = (*model)->config().vocab_size;
  std::vector<int32_t> prompt = {1, 5, 9, 30, 7, 2, 11, 40, 3};
  const int64_t L = static_cast<int64_t>(prompt.size());
  constexpr int kB = 5, kSteps = 6;
  auto batched = (*model)->NewState(kB + 1);
  ASSERT_TRUE(batched.ok());
  std::vector<float> logits;
  ASSERT_TRUE(
      (*model)->Forward(batched->get(), BatchLayout{{{kB, 0, L}}}, prompt, {}, nullptr).ok());
  for (int b = 0; b < kB; ++b) (*batched)->CopySlot(kB, b);
  std::vector<std::vector<float>> batched_logits;
  for (int step = 0; step < kSteps; ++step) {
    BatchLayout bl;
    std::vector<int32_t> toks;
    std::vector<int64_t> rows;
    for (int b = 0; b < kB; ++b) {
      bl.seqs.push_back({b, L + step, 1});
      toks.push_back(static_cast<int32_t>((b * 37 + step * 11 + 3) % V));
      rows.push_back(b);
    }
    ASSERT_TRUE((*model)->Forward(batched->get(), bl, toks, rows, &logits).ok());
    batched_logits.push_back(logits);
  }
  float worst = 0;
  for (int b = 0; b < kB; ++b) {
    auto single = (*model)->NewState(1);
    ASSERT_TRUE(single.ok());
    std::vector<float> l1;
    ASSERT_TRUE(
        (*model)->Forward(single->get(), BatchLayout{{{0, 0, L}}}, prompt, {}, nullptr).ok());
    for (int step = 0; step < kSteps; ++step) {
      int32_t tok = static_cast<int32_t>((b * 37 + step * 11 + 3) % V);
      std::vector<int64_t> row0 = {0};
      ASSERT_TRUE((*model)
                      ->Forward(single->get(), BatchLayout{{{0, L + step, 1}}}, std::span(&tok, 1),
                                row0, &l1)
                      .ok());
      worst = std::max(worst, testing::MaxAbsDiff(l1.data(), batched_logits[step].data() + b * V,
                                                  static_cast<size_t>(V)));
    }
  }
  // Same model, only the GEMM's M differs: one decode row runs the f32 GEMV, five rows cuBLAS on
  // bf16 hi/lo halves (and cuBLAS may pick another algorithm per M). Both are f32-accurate, but a
  // last-bit difference in a K or V value can flip its rounding to the bf16 cache (2^-9 relative),
  // the error source the golden bound covers, so the bound is the same kBf16Tol (measured on the
  // H200: llama 0.016, mambainllama 0.002, SSM families <= 2e-4).
  EXPECT_LE(worst, kBf16Tol) << GetParam();
  std::cout << "[cuda] " << GetParam() << ": batched vs single max diff " << worst << "\n";
}

// PRM scoring in batches (engine::ScoreBatch: several sequences' whole prompts in one forward,
// each in its own slot, a run with a common beginning forked from one pass over it) against the
// same requests one per forward, and against the CPU backend, twice:
// - with every GEMM input split into bf16 hi/lo halves (TTC_CUDA_SPLIT_ROWS=1024 when the model is
//   loaded: f32-exact inputs in the batch's ~340 rows as in each request alone), where only the
//   bf16 K/V cache and accumulation order differ, so the bound is kBf16Tol;
// - as configured (the batch over 128 rows: rounded inputs; one request alone under it: exact),
//   where the bound is kRoundedTol. Rounding every bf16-weight GEMM's input to bf16 on the CPU
//   backend alone (a probe, session 17) moves these requests' logits by 0.037 (llama), 0.119
//   (mambainllama), 0.093 (llamba), 0.057 (mamba), 0.049 (mamba2): the recurrences carry the
//   rounding further than attention does. The device measured 0.042-0.127 against the CPU with the
//   kBf16Tol bound then in place (H200, session 17): the rounding, not a fault. 0.25 is twice the
//   largest; a wrong slot, fork or state is O(1).
constexpr float kRoundedTol = 0.25f;

// The largest |batch - one by one| and |batch - CPU| of ScoreBatch over `reqs` on `model`; `refs`
// are the requests' CPU scores.
std::pair<float, float> ScoreBatchDiffs(engine::Model& model,
                                        const std::vector<engine::ScoreRequest>& reqs,
                                        const std::vector<engine::ScoreResult>& refs) {
  auto batch = engine::ScoreBatch(model, reqs);
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  if (!batch.ok()) return {INFINITY, INFINITY};
  float vs_one = 0, vs_cpu = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto one = engine::Score(model, reqs[i]);
    EXPECT_TRUE(one.ok()) << one.status().ToString();
    if (!one.ok()) return {INFINITY, INFINITY};
    const engine::ScoreResult& ref = refs[i];
    const auto& got = (*batch)[i].candidate_logits;
    EXPECT_EQ(got.size(), ref.candidate_logits.size());
    if (got.size() != ref.candidate_logits.size()) return {INFINITY, INFINITY};
    vs_one =
        std::max(vs_one, testing::MaxAbsDiff(got.data(), one->candidate_logits.data(), got.size()));
    vs_cpu =
        std::max(vs_cpu, testing::MaxAbsDiff(got.data(), ref.candidate_logits.data(), got.size()));
    for (size_t q = 0; q < reqs[i].queries.size(); ++q) {
      vs_one = std::max(vs_one, std::abs((*batch)[i].logprobs[q] - one->logprobs[q]));
      vs_cpu = std::max(vs_cpu, std::abs((*batch)[i].logprobs[q] - ref.logprobs[q]));
    }
  }
  return {vs_one, vs_cpu};
}

TEST_P(CudaFamily, ScoreBatchEqualsOneByOne) {
  const auto dir = testing::GoldenModel(GetParam());
  LOAD_CUDA_OR_SKIP(model, dir);
  auto cpu = engine::LoadModel(dir, {.threads = 2});
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  auto exact = [&] {
    ScopedEnv all_split("TTC_CUDA_SPLIT_ROWS", "1024");
    return LoadCuda(dir);
  }();
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  const int64_t V = (*model)->config().vocab_size;
  std::vector<engine::ScoreRequest> reqs =
      testing::RandomScoreRequests(V, {9, 1, 40, 130, 17, 27, 34, 61, 25}, 19);
  // The last four begin with the same 24 tokens (a run that ScoreBatch runs once and forks: the
  // forked slots then take several tokens each, on the shared prefix block), one of them also
  // scored inside the prefix.
  for (size_t i = 6; i < reqs.size(); ++i) {
    std::copy(reqs[5].token_ids.begin(), reqs[5].token_ids.begin() + 24, reqs[i].token_ids.begin());
  }
  reqs[7].queries.push_back({10, 3});
  std::vector<engine::ScoreResult> refs;
  for (const auto& r : reqs) {
    auto ref = engine::Score(**cpu, r);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    refs.push_back(*std::move(ref));
  }
  const auto [exact_one, exact_cpu] = ScoreBatchDiffs(**exact, reqs, refs);
  EXPECT_LE(exact_one, kBf16Tol) << GetParam() << " (f32-exact GEMM inputs)";
  EXPECT_LE(exact_cpu, kBf16Tol) << GetParam() << " (f32-exact GEMM inputs)";
  const auto [vs_one, vs_cpu] = ScoreBatchDiffs(**model, reqs, refs);
  EXPECT_LE(vs_one, kRoundedTol) << GetParam();
  EXPECT_LE(vs_cpu, kRoundedTol) << GetParam();
  std::cout << "[cuda] " << GetParam() << ": score batch of 9 (4 sharing a prefix) vs one by one "
            << "max diff " << exact_one << " exact inputs, " << vs_one << " as configured; vs the "
            << "CPU backend " << exact_cpu << " / " << vs_cpu << "\n";
}

// Two prompts forked into 6 and 3 slots and decoded together: the shared prefixes walked once per
// task of rows (cascade attention, TTC_CUDA_CASCADE=1) give the logits of every row walking its
// prefix itself (TTC_CUDA_CASCADE=0). Both are f32-accurate on the same bf16 cache;
// like BatchedDecodeEqualsSingle the bound is kBf16Tol because a last-bit difference can flip a
// later bf16 K/V rounding.
TEST_P(CudaFamily, CascadeAttentionEqualsPerRowWalk) {
  const auto dir = testing::GoldenModel(GetParam());
  // Each backend reads the switch when it is made: set explicitly for both, whatever the default.
  std::optional<ScopedEnv> walk(std::in_place, "TTC_CUDA_CASCADE", "0");
  LOAD_CUDA_OR_SKIP(per_row, dir);
  walk.reset();
  auto cascade = [&] {
    ScopedEnv tasks("TTC_CUDA_CASCADE", "1");
    return LoadCuda(dir);
  }();
  ASSERT_TRUE(cascade.ok()) << cascade.status().ToString();
  const int64_t V = (*cascade)->config().vocab_size;
  const std::vector<std::vector<int32_t>> prompts = {{1, 5, 9, 30, 7, 2, 11, 40, 3},
                                                     {4, 8, 15, 16, 23, 42, 6, 1, 2, 9, 12, 5}};
  const std::vector<int> forks = {6, 3};
  constexpr int kSteps = 8;
  auto run = [&](engine::Model& model) {
    const int rows = forks[0] + forks[1];
    auto state = model.NewState(rows + 2);
    EXPECT_TRUE(state.ok());
    std::vector<int> slot_prompt;
    for (int p = 0; p < 2; ++p) {
      const int src = rows + p;
      const int64_t L = static_cast<int64_t>(prompts[p].size());
      EXPECT_TRUE(
          model.Forward(state->get(), BatchLayout{{{src, 0, L}}}, prompts[p], {}, nullptr).ok());
      for (int f = 0; f < forks[p]; ++f) {
        (*state)->CopySlot(src, static_cast<int>(slot_prompt.size()));
        slot_prompt.push_back(p);
      }
    }
    std::vector<float> all, logits;
    for (int step = 0; step < kSteps; ++step) {
      BatchLayout bl;
      std::vector<int32_t> toks;
      std::vector<int64_t> out_rows;
      for (int b = 0; b < rows; ++b) {
        const int64_t L = static_cast<int64_t>(prompts[slot_prompt[b]].size());
        bl.seqs.push_back({b, L + step, 1});
        toks.push_back(static_cast<int32_t>((b * 37 + step * 11 + 3) % V));
        out_rows.push_back(b);
      }
      EXPECT_TRUE(model.Forward(state->get(), bl, toks, out_rows, &logits).ok());
      all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
  };
  const auto a = run(**cascade), b = run(**per_row);
  ASSERT_EQ(a.size(), b.size());
  const float worst = testing::MaxAbsDiff(a.data(), b.data(), a.size());
  EXPECT_LE(worst, kBf16Tol) << GetParam();
#ifdef TTC_HAVE_CUDA_BACKEND
  const auto on = engine::GetCudaGraphCounts((*cascade)->backend());
  const auto off = engine::GetCudaGraphCounts((*per_row)->backend());
  if ((*cascade)->config().num_layers_of(engine::MixerKind::kAttention) > 0) {
    EXPECT_GT(on.cascades, 0) << GetParam();
  }
  EXPECT_EQ(off.cascades, 0) << GetParam();
  std::cout << "[cuda] " << GetParam() << ": cascade vs per-row prefix walk max diff " << worst
            << " (" << on.cascades << " cascaded attention ops)\n";
#endif
}

// Two prompts x 8 samples at temperature 1 with about 1 in 37 ids a stop id, so that samples
// finish at many different steps and the batch shrinks (the generate comparisons below).
engine::GenerateRequest StopHeavyRequest(int64_t vocab, int64_t max_new_tokens) {
  engine::GenerateRequest req;
  req.prompts = {{{1, 5, 9, 30, 7, 2, 11, 40, 3}, 7, 0, 8}, {{4, 8, 15, 16, 23, 42}, 9, 0, 8}};
  req.sampling = {.temperature = 1.0f};
  req.max_new_tokens = max_new_tokens;
  req.decode_text = false;
  std::vector<int32_t> stops;
  for (int32_t id = 5; id < vocab; id += 37) stops.push_back(id);
  req.stop_ids = stops;
  return req;
}

// Expects the same samples (tokens and stop ids) in a and b; returns the tokens compared.
int64_t ExpectSameSamples(const engine::GenerateResult& a, const engine::GenerateResult& b,
                          const std::string& family) {
  EXPECT_EQ(a.samples.size(), b.samples.size()) << family;
  int64_t tokens = 0;
  for (size_t i = 0; i < std::min(a.samples.size(), b.samples.size()); ++i) {
    EXPECT_EQ(a.samples[i].tokens, b.samples[i].tokens) << family << " sample " << i;
    EXPECT_EQ(a.samples[i].stop_id, b.samples[i].stop_id) << family << " sample " << i;
    tokens += static_cast<int64_t>(a.samples[i].tokens.size());
  }
  return tokens;
}

// Decode steps replayed from CUDA graphs give the same samples as the same generate run eagerly
// (TTC_CUDA_GRAPHS=0): the replayed steps read each step's ids, positions, KV descriptors and RNG
// keys from the uploads made before the launch, not the values of the step they were recorded in.
// About 1 in 37 ids is a stop id, so samples finish at different steps and the batch shrinks:
// steps of a new size run eagerly, the second one in a row is recorded, later ones replay.
TEST_P(CudaFamily, GraphReplayEqualsEagerGenerate) {
  const auto dir = testing::GoldenModel(GetParam());
  LOAD_CUDA_OR_SKIP(graphed, dir);
  const engine::GenerateRequest req = StopHeavyRequest((*graphed)->config().vocab_size, 64);
  auto with = engine::Generate(**graphed, req);
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  auto eager_model = [&] {
    ScopedEnv eager("TTC_CUDA_GRAPHS", "0");
    return LoadCuda(dir);
  }();
  ASSERT_TRUE(eager_model.ok()) << eager_model.status().ToString();
  auto without = engine::Generate(**eager_model, req);
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  ASSERT_EQ(with->samples.size(), without->samples.size());
  [[maybe_unused]] const int64_t tokens = ExpectSameSamples(*with, *without, GetParam());
  std::string sizes;
  for (int b : with->timings.live_batch) sizes += std::to_string(b) + " ";
#ifdef TTC_HAVE_CUDA_BACKEND
  const auto on = engine::GetCudaGraphCounts((*graphed)->backend());
  const auto off = engine::GetCudaGraphCounts((*eager_model)->backend());
  EXPECT_GT(on.replays, 0) << GetParam();
  EXPECT_EQ(off.captures + off.replays, 0) << GetParam();
  std::cout << "[cuda] " << GetParam() << ": " << tokens
            << " tokens equal with and without graphs (" << on.captures << " recordings, "
            << on.replays << " replays of " << with->timings.steps << " steps; live batch " << sizes
            << ")\n";
#endif
}

// Kernels launched with programmatic dependent launch (TTC_CUDA_PDL=1: each kernel's blocks start
// while its predecessor drains, and wait for it before touching memory) give exactly the results
// of plain stream order (the default): a generate with graphs, pipelining and a shrinking
// batch, and the golden decode's logits bit for bit. A kernel that read or wrote memory before its
// wait would race its predecessor; the tiny golden models, whose kernels are all launch and tail,
// are where such a race shows most (tests/cuda/cuda_source_test.cc checks the contract itself).
TEST_P(CudaFamily, ProgrammaticLaunchEqualsStreamOrder) {
  const auto dir = testing::GoldenModel(GetParam());
  auto golden = engine::SafetensorsFile::Open(dir / "golden.safetensors");
  ASSERT_TRUE(golden.ok());
  const auto prompt64 = testing::ReadI64(*(*golden)->Find("prompt_ids"));
  const auto ids64 = testing::ReadI64(*(*golden)->Find("decode_ids"));
  const std::vector<int32_t> prompt(prompt64.begin(), prompt64.end());
  // Prefill and decode logits of the golden chain, concatenated.
  auto logits_of = [&](engine::Model& model) {
    std::vector<float> all, logits;
    auto state = model.NewState(1);
    EXPECT_TRUE(state.ok());
    if (!state.ok()) return all;
    const int64_t L = static_cast<int64_t>(prompt.size());
    std::vector<int64_t> rows(static_cast<size_t>(L));
    for (int64_t i = 0; i < L; ++i) rows[static_cast<size_t>(i)] = i;
    EXPECT_TRUE(model.Forward(state->get(), BatchLayout{{{0, 0, L}}}, prompt, rows, &logits).ok());
    all = logits;
    for (size_t i = 0; i < ids64.size(); ++i) {
      int32_t tok = static_cast<int32_t>(ids64[i]);
      std::vector<int64_t> row0 = {0};
      EXPECT_TRUE(model
                      .Forward(state->get(), BatchLayout{{{0, L + static_cast<int64_t>(i), 1}}},
                               std::span(&tok, 1), row0, &logits)
                      .ok());
      all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
  };
  std::optional<ScopedEnv> pdl_on(std::in_place, "TTC_CUDA_PDL", "1");
  LOAD_CUDA_OR_SKIP(pdl, dir);
  const engine::GenerateRequest req = StopHeavyRequest((*pdl)->config().vocab_size, 64);
  auto with = engine::Generate(**pdl, req);
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  const std::vector<float> logits_with = logits_of(**pdl);
  auto ordered = [&] {
    ScopedEnv pdl_off("TTC_CUDA_PDL", "0");
    return LoadCuda(dir);
  }();
  ASSERT_TRUE(ordered.ok()) << ordered.status().ToString();
  auto without = engine::Generate(**ordered, req);
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  const std::vector<float> logits_without = logits_of(**ordered);
  const int64_t tokens = ExpectSameSamples(*with, *without, GetParam());
  ASSERT_EQ(logits_with.size(), logits_without.size());
  size_t differ = 0;
  for (size_t i = 0; i < logits_with.size(); ++i) differ += logits_with[i] != logits_without[i];
  EXPECT_EQ(differ, 0u) << GetParam() << ": logits differing between PDL and stream order";
  std::cout << "[cuda] " << GetParam() << ": " << tokens << " tokens and " << logits_with.size()
            << " logits equal with and without programmatic launch\n";
  // The next backend created (TTC_CUDA_PDL as it was) puts the process-wide setting back.
  pdl_on.reset();
  auto restore = LoadCuda(dir);
  ASSERT_TRUE(restore.ok());
}

// The split sampler (TTC_CUDA_SAMPLE_SPLIT_ROWS: slice maxima, chunk sums and draws as three
// launches over the batch, from scratch in step memory) draws the ids of the default sampler in a
// whole generate: prefill rows shared by several samples, decode steps recorded and replayed.
TEST_P(CudaFamily, SplitSamplerEqualsDefault) {
  const auto dir = testing::GoldenModel(GetParam());
  LOAD_CUDA_OR_SKIP(plain, dir);
  const engine::GenerateRequest req = StopHeavyRequest((*plain)->config().vocab_size, 64);
  auto without = engine::Generate(**plain, req);
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  auto split_model = [&] {
    ScopedEnv split("TTC_CUDA_SAMPLE_SPLIT_ROWS", "1");
    return LoadCuda(dir);
  }();
  ASSERT_TRUE(split_model.ok()) << split_model.status().ToString();
  auto with = engine::Generate(**split_model, req);
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  const int64_t tokens = ExpectSameSamples(*with, *without, GetParam());
  EXPECT_GT(tokens, 0);
#ifdef TTC_HAVE_CUDA_BACKEND
  // The split kernels did draw (a model whose rows they refused would compare the default with
  // itself), also inside recorded steps that were replayed; the default backend never took them.
  const auto split_counts = engine::GetCudaGraphCounts((*split_model)->backend());
  EXPECT_GT(split_counts.split_samples, 0) << GetParam();
  EXPECT_GT(split_counts.replays, 0) << GetParam();
  EXPECT_EQ(engine::GetCudaGraphCounts((*plain)->backend()).split_samples, 0) << GetParam();
#endif
  std::cout << "[cuda] " << GetParam() << ": " << tokens
            << " tokens equal with the split sampler and the default one\n";
}

// Generate's pipelined decode on the GPU (the default there: each step launched with the previous
// step's draws still on the device, collected one step later) gives the ids of the step-by-step
// loop, with samples stopping at many different steps; both record and replay CUDA graphs.
TEST_P(CudaFamily, PipelinedGenerateEqualsStepByStep) {
  const auto dir = testing::GoldenModel(GetParam());
  LOAD_CUDA_OR_SKIP(model, dir);
  engine::GenerateRequest req = StopHeavyRequest((*model)->config().vocab_size, 48);
  EXPECT_TRUE((*model)->backend().PrefersPipelinedDecode());
  req.pipeline = engine::DecodePipeline::kOn;
  auto on = engine::Generate(**model, req);
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  req.pipeline = engine::DecodePipeline::kOff;
  auto off = engine::Generate(**model, req);
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  ASSERT_EQ(on->samples.size(), off->samples.size());
  const int64_t tokens = ExpectSameSamples(*on, *off, GetParam());
  std::cout << "[cuda] " << GetParam() << ": " << tokens
            << " tokens equal pipelined and step by step (" << on->timings.steps << " vs "
            << off->timings.steps << " steps)\n";
}

// Backend::MatMul at decode shapes, with and without the residual accumulate, over the
// rounded-input path (more than 128 rows) and the hi/lo split-input path, against a double
// reference: once as configured by default and once with the narrow GEMMs split along K
// (TTC_CUDA_SPLITK=4: a strided batch of K slices and a summing kernel). Inputs are bf16 values, so
// both paths multiply exact inputs and only f32 accumulation error remains.
TEST(CudaMatMul, MatchesReferenceWithAndWithoutSplitK) {
  for (const char* split_k : {"", "4"}) {
    std::optional<ScopedEnv> parts;
    if (*split_k) parts.emplace("TTC_CUDA_SPLITK", split_k);
    auto backend = engine::CreateBackend({.kind = engine::BackendKind::kCuda});
    parts.reset();
    if (!backend.ok()) {
      GTEST_SKIP() << "CUDA backend not usable here (" << backend.status().ToString() << ")";
    }
    engine::Backend& be = **backend;
    struct Case {
      int64_t M, N, K;
      bool accumulate;
    };
    for (const Case c : {Case{256, 1024, 2048, false}, Case{256, 1024, 2048, true},
                         Case{64, 1024, 2048, true}, Case{300, 640, 1024, false}}) {
      std::mt19937 gen(static_cast<uint32_t>(c.M * 7 + c.N + c.K));
      std::normal_distribution<float> nd(0.0f, 1.0f);
      auto bf16 = [](float f) {
        uint32_t u;
        std::memcpy(&u, &f, 4);
        return static_cast<uint16_t>(u >> 16);  // truncation: any bf16 value will do
      };
      auto value = [](uint16_t b) {
        const uint32_t u = static_cast<uint32_t>(b) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
      };
      std::vector<uint16_t> w(static_cast<size_t>(c.N * c.K));
      for (auto& v : w) v = bf16(0.05f * nd(gen));
      std::vector<float> x(static_cast<size_t>(c.M * c.K)), base(static_cast<size_t>(c.M * c.N));
      for (auto& v : x) v = value(bf16(nd(gen)));
      for (auto& v : base) v = nd(gen);
      auto dw = be.Upload(engine::HostMatrix{w.data(), engine::HostDType::kBF16, c.N, c.K});
      auto table = be.Upload(engine::HostMatrix{x.data(), engine::HostDType::kF32, c.M, c.K});
      auto init = be.Upload(engine::HostMatrix{base.data(), engine::HostDType::kF32, c.M, c.N});
      ASSERT_TRUE(dw.ok() && table.ok() && init.ok());
      std::vector<int32_t> ids(static_cast<size_t>(c.M));
      for (int64_t i = 0; i < c.M; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      auto xa = be.NewActivation(c.M, c.K);
      auto out = be.NewActivation(c.M, c.N);
      be.Embed(**table, ids, xa.get());
      be.Embed(**init, ids, out.get());
      be.MatMul(*xa, **dw, out.get(), c.accumulate);
      std::vector<float> got(static_cast<size_t>(c.M * c.N));
      be.CopyToHost(*out, got);
      double worst = 0.0;
      for (int64_t m = 0; m < c.M; ++m) {
        for (int64_t n = 0; n < c.N; ++n) {
          double ref = c.accumulate ? base[static_cast<size_t>(m * c.N + n)] : 0.0;
          for (int64_t k = 0; k < c.K; ++k) {
            ref += static_cast<double>(x[static_cast<size_t>(m * c.K + k)]) *
                   value(w[static_cast<size_t>(n * c.K + k)]);
          }
          worst = std::max(worst, std::abs(ref - got[static_cast<size_t>(m * c.N + n)]));
        }
      }
      // Dot products of ~2.3 in magnitude summed in f32: ~1e-6; a wrong slice or part is O(1).
      EXPECT_LT(worst, 1e-4) << "M " << c.M << " N " << c.N << " K " << c.K << " split-K "
                             << split_k;
      std::cout << "[cuda] matmul M " << c.M << " N " << c.N << " K " << c.K << " accumulate "
                << c.accumulate << " TTC_CUDA_SPLITK=" << split_k << ": max |err| " << worst
                << "\n";
    }
  }
}

// RmsNormMatMul and SwiGluMatMul equal RmsNorm or SwiGlu followed by MatMul, bit for bit, at the
// row counts of the GEMM input forms and kernels (GEMV on f32 rows, the skinny kernel on the hi/lo
// split at 16 and 64 rows, cuBLAS on the split up to 128 rows, rounded above), with and without
// the residual add: where a bf16 GEMM follows, the fused ops write only
// the bf16 copy, which is what the GEMM read before. An f32 weight (cols <= 64: kept f32) takes the
// f32 rows, which the fused op then still writes. The skinny kernel's range is set to its widest
// (TTC_CUDA_SKINNY_ROWS=64; the default is 16) so that 64 rows reach it; 100 rows take cuBLAS.
TEST(CudaFusedOps, EqualTheTwoOps) {
  std::optional<ScopedEnv> widest;  // an A/B setting made around the run stays
  if (std::getenv("TTC_CUDA_SKINNY_ROWS") == nullptr) widest.emplace("TTC_CUDA_SKINNY_ROWS", "64");
  auto backend = engine::CreateBackend({.kind = engine::BackendKind::kCuda});
  widest.reset();
  if (!backend.ok()) {
    GTEST_SKIP() << "CUDA backend not usable here (" << backend.status().ToString() << ")";
  }
  engine::Backend& be = **backend;
  std::mt19937 gen(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto upload_f32 = [&](int64_t rows, int64_t cols, float scale) {
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (auto& e : v) e = scale * nd(gen);
    auto w = be.Upload(engine::HostMatrix{v.data(), engine::HostDType::kF32, rows, cols});
    EXPECT_TRUE(w.ok());
    return std::move(w).value();
  };
  auto upload_bf16 = [&](int64_t rows, int64_t cols) {
    std::vector<uint16_t> v(static_cast<size_t>(rows * cols));
    for (auto& e : v) {
      const float f = 0.05f * nd(gen);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      e = static_cast<uint16_t>(u >> 16);
    }
    auto w = be.Upload(engine::HostMatrix{v.data(), engine::HostDType::kBF16, rows, cols});
    EXPECT_TRUE(w.ok());
    return std::move(w).value();
  };
  for (const int64_t K : {int64_t{256}, int64_t{64}}) {  // bf16 and f32 weights
    const int64_t N = 384, ff = K;
    auto norm = upload_f32(1, K, 1.0f);
    auto w = K > 64 ? upload_bf16(N, K) : upload_f32(N, K, 0.05f);
    for (const int64_t M : {int64_t{2}, int64_t{16}, int64_t{64}, int64_t{100}, int64_t{300}}) {
      auto x_table = upload_f32(M, K, 1.0f);
      auto gu_table = upload_f32(M, 2 * ff, 1.0f);
      auto base_table = upload_f32(M, N, 1.0f);
      std::vector<int32_t> ids(static_cast<size_t>(M));
      for (int64_t i = 0; i < M; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      auto x = be.NewActivation(M, K);
      auto gu = be.NewActivation(M, 2 * ff);
      auto scratch = be.NewActivation(M, K);
      be.Embed(*x_table, ids, x.get());
      be.Embed(*gu_table, ids, gu.get());
      for (const bool accumulate : {false, true}) {
        std::vector<float> got[2][2];  // [op: norm, swiglu][fused]
        for (int fused = 0; fused < 2; ++fused) {
          auto out = be.NewActivation(M, N);
          auto out2 = be.NewActivation(M, N);
          be.Embed(*base_table, ids, out.get());
          be.Embed(*base_table, ids, out2.get());
          if (fused) {
            be.RmsNormMatMul(*x, *norm, 1e-5f, *w, scratch.get(), out.get(), accumulate);
            be.SwiGluMatMul(*gu, *w, scratch.get(), out2.get(), accumulate);
          } else {
            be.RmsNorm(*x, *norm, 1e-5f, scratch.get());
            be.MatMul(*scratch, *w, out.get(), accumulate);
            be.SwiGlu(*gu, scratch.get());
            be.MatMul(*scratch, *w, out2.get(), accumulate);
          }
          got[0][fused].resize(static_cast<size_t>(M * N));
          got[1][fused].resize(static_cast<size_t>(M * N));
          be.CopyToHost(*out, got[0][fused]);
          be.CopyToHost(*out2, got[1][fused]);
        }
        for (int op = 0; op < 2; ++op) {
          EXPECT_EQ(std::memcmp(got[op][0].data(), got[op][1].data(), got[op][0].size() * 4), 0)
              << (op == 0 ? "RmsNormMatMul" : "SwiGluMatMul") << " M " << M << " K " << K
              << " accumulate " << accumulate;
        }
      }
    }
    std::cout << "[cuda] fused RmsNorm/SwiGlu + MatMul equal the two ops, K " << K << " ("
              << (K > 64 ? "bf16" : "f32") << " weights), M 2 / 16 / 64 / 100 / 300\n";
  }
}

// Memory planning: the plan shrinks as sequences grow, counts a prompt's positions once per prompt
// (not per sequence), and says 0 when not even one sequence fits, so callers split or refuse
// instead of running out of memory mid-generate.
// The CUDA backend's pipelined sampling outside Generate's pattern: a second step with many more
// draws than the first (the device draws buffer and the pinned ring grow while the first step's
// draws are pending) still returns both steps' draws, equal to the synchronous ForwardSample chain
// (the first draws fed as host tokens).
TEST(CudaPipelinedSampling, DrawsSurviveBufferGrowthWhilePending) {
  const auto dir = testing::GoldenModel("llama");
  LOAD_CUDA_OR_SKIP(model, dir);
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6};
  const int64_t last = 7;
  const engine::SamplingParams p{.temperature = 1.0f};
  std::vector<engine::SampleKey> k1 = {{4, 0, 0}, {4, 1, 0}};
  // Step 2: two rows (the two samples), 24 draws each (keys a multiple of the rows).
  std::vector<engine::SampleKey> k2;
  for (int r = 0; r < 2; ++r)
    for (int d = 0; d < 24; ++d) k2.push_back({4, static_cast<uint64_t>(100 * r + d), 1});
  const std::vector<int64_t> rows = {0, 1};
  auto run_async = [&](std::vector<int32_t>* a, std::vector<int32_t>* b) {
    auto st = (*model)->NewState(3);
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(
        (*model)
            ->ForwardSampleAsync(st->get(), {{{0, 0, 8}}}, prompt, {}, std::span(&last, 1), p, k1)
            .ok());
    (*st)->CopySlot(0, 1);
    ASSERT_TRUE((*model)
                    ->ForwardSampleAsync(st->get(), {{{0, 8, 1}, {1, 8, 1}}}, {}, rows, rows, p, k2)
                    .ok());
    a->resize(k1.size());
    b->resize(k2.size());
    ASSERT_TRUE((*model)->CollectSample(*a).ok());
    ASSERT_TRUE((*model)->CollectSample(*b).ok());
  };
  std::vector<int32_t> a1, a2;
  run_async(&a1, &a2);
  auto st = (*model)->NewState(3);
  ASSERT_TRUE(st.ok());
  std::vector<int32_t> s1(k1.size()), s2(k2.size());
  ASSERT_TRUE((*model)
                  ->ForwardSample(st->get(), {{{0, 0, 8}}}, prompt, std::span(&last, 1), p, k1, s1)
                  .ok());
  (*st)->CopySlot(0, 1);
  ASSERT_TRUE(
      (*model)->ForwardSample(st->get(), {{{0, 8, 1}, {1, 8, 1}}}, s1, rows, p, k2, s2).ok());
  EXPECT_EQ(a1, s1);
  EXPECT_EQ(a2, s2);
}

TEST(CudaPlan, PlanMaxSequencesCountsThePromptOncePerPrompt) {
  LOAD_CUDA_OR_SKIP(model, testing::GoldenModel("llama"));
  engine::Backend& be = (*model)->backend();
  const engine::ModelConfig& cfg = (*model)->config();
  const int64_t short_seqs = be.PlanMaxSequences(cfg, 24, 64, 1);
  const int64_t long_seqs = be.PlanMaxSequences(cfg, 24, 4000, 1);
  EXPECT_GT(short_seqs, long_seqs);
  EXPECT_GT(long_seqs, 0);
  // A long prompt shared by every sequence of one prompt costs about nothing per sequence ...
  const int64_t shared = be.PlanMaxSequences(cfg, 3000, 64, 1);
  EXPECT_GT(shared, short_seqs * 99 / 100);
  // ... but as many prompts as sequences pay it for each.
  const int64_t many = be.PlanMaxSequences(cfg, 3000, 64, shared);
  EXPECT_LT(many, shared);
  EXPECT_EQ(be.PlanMaxSequences(cfg, 24, int64_t{1} << 40, 1), 0);
  std::cout << "[cuda] plan (golden llama): " << short_seqs << " sequences of 24+64, " << long_seqs
            << " of 24+4000, " << shared << " of 3000+64 from one prompt, " << many
            << " when each has its own prompt\n";
}

// A 16-bit recurrent state (--state-dtype bf16 / f16) against the f32 one over a long decode: the
// same prompt, then 256 teacher-forced steps of fixed pseudo-random ids (the same ids for both, so
// the chains cannot diverge), logits compared step by step. Reports the worst difference in the
// windows [0, 16), [16, 64) and [64, 256), which must stay under `bound`: a broken path (a wrong
// conversion or slot is off by O(1) or more) or a drift that keeps growing fails it.
void CheckStateDrift(const std::string& family, engine::StateDType dtype, float bound) {
  const auto dir = testing::GoldenModel(family);
  auto f32 = LoadCuda(dir);
  ASSERT_TRUE(f32.ok()) << f32.status().ToString();
  auto narrow = LoadCuda(dir, dtype);
  ASSERT_TRUE(narrow.ok()) << narrow.status().ToString();
  const int64_t V = (*f32)->config().vocab_size;
  const std::vector<int32_t> prompt = {1, 5, 9, 30, 7, 2, 11, 40, 3, 17, 23, 8};
  const int64_t L = static_cast<int64_t>(prompt.size());
  constexpr int kSteps = 256;
  engine::Model* models[2] = {f32->get(), narrow->get()};
  std::unique_ptr<engine::StateCache> states[2];
  for (int m = 0; m < 2; ++m) {
    auto st = models[m]->NewState(1);
    ASSERT_TRUE(st.ok());
    states[m] = std::move(st).value();
    ASSERT_TRUE(
        models[m]->Forward(states[m].get(), BatchLayout{{{0, 0, L}}}, prompt, {}, nullptr).ok());
  }
  float worst[3] = {};
  std::vector<float> ref, got;
  std::mt19937 gen(7);
  for (int step = 0; step < kSteps; ++step) {
    int32_t tok = static_cast<int32_t>(gen() % static_cast<uint32_t>(V));
    const std::vector<int64_t> row0 = {0};
    const BatchLayout bl{{{0, L + step, 1}}};
    ASSERT_TRUE(models[0]->Forward(states[0].get(), bl, std::span(&tok, 1), row0, &ref).ok());
    ASSERT_TRUE(models[1]->Forward(states[1].get(), bl, std::span(&tok, 1), row0, &got).ok());
    const float d = testing::MaxAbsDiff(got.data(), ref.data(), static_cast<size_t>(V));
    ASSERT_TRUE(std::isfinite(d)) << family << " step " << step;
    float& window = worst[step < 16 ? 0 : step < 64 ? 1 : 2];
    window = std::max(window, d);
  }
  for (float w : worst) EXPECT_LE(w, bound) << family;
  std::cout << "[cuda] " << family << ": " << engine::StateDTypeName(dtype)
            << " state vs f32, max |logit diff| in steps [0,16) [16,64) [64,256): " << worst[0]
            << " " << worst[1] << " " << worst[2] << " (bound " << bound << ")\n";
}

// Measured on the H200 (session 8): mambainllama 0.040 / 0.19 / 0.18, llamba 0.039 / 0.055 /
// 0.070, mamba 0.034 / 0.025 / 0.031, mamba2 0.021 / 0.019 / 0.028 (a CPU emulation of the store
// gives the same to two digits, session 13). The bound is twice the worst.
TEST_P(CudaFamily, Bf16StateDriftOverLongDecode) {
  if (GetParam() == "llama") GTEST_SKIP() << "llama has no recurrent state";
  LOAD_CUDA_OR_SKIP(probe, testing::GoldenModel(GetParam()));
  CheckStateDrift(GetParam(), engine::StateDType::kBf16, 0.4f);
}

// The CPU emulation of the f16 store (session 13): mambainllama 0.0042 / 0.0105 / 0.0243, llamba
// 0.0062 / 0.0075 / 0.0102, mamba 0.0031 / 0.0033 / 0.0053, mamba2 0.0028 / 0.0020 / 0.0034. The
// bound is twice the worst; it is also the golden bound kBf16Tol.
TEST_P(CudaFamily, F16StateDriftOverLongDecode) {
  if (GetParam() == "llama") GTEST_SKIP() << "llama has no recurrent state";
  LOAD_CUDA_OR_SKIP(probe, testing::GoldenModel(GetParam()));
  CheckStateDrift(GetParam(), engine::StateDType::kF16, kBf16Tol);
}

INSTANTIATE_TEST_SUITE_P(Golden, CudaFamily,
                         ::testing::Values("llama", "mambainllama", "llamba", "mamba", "mamba2"));

}  // namespace
}  // namespace ttc
