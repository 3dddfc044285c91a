// Token sampling from one row of logits: greedy, temperature, top-k, top-p (nucleus), with the
// counter-based RNG of engine/rng.h keyed (seed, sample_index, step), so a sample's tokens are the
// same whatever batch, order or worker it runs in. Also Argmax and LogSoftmax helpers for scoring.
// Functions are pure and thread-safe; a SamplerScratch must not be shared between threads (use one
// per thread, reuse it across calls to avoid allocations).
//
// Semantics (Hugging Face `generate` order, made exact and deterministic):
//   1. greedy, temperature <= 0 or top_k == 1: argmax, ties -> the lowest token id. No random draw.
//   2. scaled logits z_i = (x_i - max x) / temperature, in float.
//   3. top-k (top_k > 0 and < vocab): keep tokens with z_i >= the k-th largest z (ties at the
//      boundary all kept, as HF's `logits < topk[-1]` filter does).
//   4. unnormalised probabilities p_i = expf(z_i) for kept tokens, 0 for the others.
//   5. top-p (top_p < 1): rank kept tokens by (p desc, id asc); keep the shortest prefix whose
//      mass >= top_p * total mass (always at least one token).
//   6. inverse CDF with u = SamplingUniform(seed, sample_index, step): total = the kept mass summed
//      in double over blocks of 256 ids (each block with 4 interleaved accumulators, blocks in id
//      order); walk the blocks in id order to the first whose running mass exceeds u * total, then
//      its ids in ascending order, returning the first kept id whose running sum exceeds u * total.
// The random bits are reproducible bit-for-bit anywhere (engine/rng.h); the token also depends on
// the logits and on expf, so another backend agrees wherever its probabilities agree.
// No full sort of the vocabulary: top-k and top-p each build a histogram over the float bit
// patterns (order-preserving buckets), then select or sort only the one bucket that holds the
// boundary; O(V). Logits may contain -inf (masked tokens); NaN logits are treated as -inf.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "common/result.h"
#include "engine/rng.h"

namespace ttc::engine {

struct SamplingParams {
  float temperature = 1.0f;  // <= 0 means greedy
  int top_k = -1;            // -1 (or 0): all tokens
  float top_p = 1.0f;        // 1: no nucleus filter
  bool greedy = false;       // argmax, ignoring the other fields
};

// The RNG key of one draw: sample `sample_index` of a prompt seeded `seed`, at decode step `step`.
struct SampleKey {
  uint64_t seed = 0;
  uint64_t sample_index = 0;
  uint64_t step = 0;
};

// Checks ranges: temperature finite and >= 0, top_k >= -1, top_p in (0, 1]. Errors name the field
// and value.
Status ValidateSamplingParams(const SamplingParams& params);

// Reusable buffers for SampleToken; opaque to callers. One per thread.
struct SamplerScratch {
  std::vector<float> probs;                       // unnormalised kept probabilities, by token id
  std::vector<float> values;                      // top-k: scaled logits of the boundary bucket
  std::vector<std::pair<float, int32_t>> ranked;  // top-p: (prob, id) of the boundary bucket
  std::vector<int32_t> kept;                      // top-k: ids kept (then filtered by top-p)
  std::vector<uint32_t> bucket_count;             // top-k histogram
  std::vector<double> bucket_mass;                // top-p histogram
};

// Samples one token id from `logits` (one row, length = vocab size > 0). `scratch` may be null
// (allocates).
int32_t SampleToken(std::span<const float> logits, const SamplingParams& params, uint64_t seed,
                    uint64_t sample_index, uint64_t step, SamplerScratch* scratch);

// The same with an explicit uniform u in [0, 1) instead of the RNG (for tests and for callers that
// draw their own).
int32_t SampleTokenWithUniform(std::span<const float> logits, const SamplingParams& params,
                               double u, SamplerScratch* scratch);

// Index of the largest value; ties -> lowest index; NaN ignored; all-NaN or empty rows give 0.
int32_t Argmax(std::span<const float> logits);

// out[i] = logits[i] - logsumexp(logits), computed stably (max subtracted, sum in double).
// out.size() must equal logits.size(); out may alias logits.
void LogSoftmax(std::span<const float> logits, std::span<float> out);

// Softmax probabilities of the same row (out may alias logits).
void Softmax(std::span<const float> logits, std::span<float> out);

// The exact probability SampleToken gives every token under `params` (zero for filtered tokens), in
// double; the reference the sampler's statistical tests compare against, and useful for scoring
// with filters.
std::vector<double> SamplingDistribution(std::span<const float> logits,
                                         const SamplingParams& params);

}  // namespace ttc::engine
