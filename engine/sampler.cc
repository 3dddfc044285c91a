#include "engine/sampler.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/sampler_sum.h"

namespace ttc::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// (prob desc, id asc): the strict total order that defines the nucleus, ties broken towards lower
// ids.
// A functor (not a function pointer) so std::sort inlines it.
struct RankedBefore {
  bool operator()(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) const {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }
};

// Histogram buckets over the bit pattern of a non-negative float (sign bit clear): the exponent and
// the top 3 mantissa bits, so bucket order is value order and each bucket spans a factor <=
// 2^(1/8).
constexpr int kBuckets = 1 << 11;
inline uint32_t Bucket(float non_negative) {
  uint32_t bits;
  std::memcpy(&bits, &non_negative, 4);
  return bits >> 20;
}

// The largest non-NaN value, or -inf when there is none.
float MaxValue(std::span<const float> x) {
  float m = kNegInf;
  for (float v : x) m = v > m ? v : m;  // NaN compares false: skipped
  return m;
}

bool UsesArgmax(const SamplingParams& p) {
  return p.greedy || !(p.temperature > 0.0f) || p.top_k == 1;
}

// Fills scratch->probs with the unnormalised probabilities SampleToken draws from (zero for
// filtered tokens) and returns their sum, or a negative value when the row has no finite maximum
// (caller falls back to Argmax).
// Sums are taken in blocks of kBlock ids (four interleaved accumulators inside a block, then blocks
// in id order): a fixed, documented order that is several times faster than one serial chain, and
// lets the inverse-CDF walk skip whole blocks.
constexpr size_t kBlock = static_cast<size_t>(kSampleChunk);

double BlockSum(const float* p, size_t n) { return ChunkSum(p, static_cast<int64_t>(n)); }

double Total(const float* p, size_t n) {
  double total = 0.0;
  for (size_t b = 0; b < n; b += kBlock) total += BlockSum(p + b, std::min(kBlock, n - b));
  return total;
}

double BuildDistribution(std::span<const float> logits, const SamplingParams& params,
                         SamplerScratch& s) {
  const size_t vocab = logits.size();
  const float mx = MaxValue(logits);
  if (!std::isfinite(mx)) return -1.0;
  const float temperature = params.temperature;
  s.probs.resize(vocab);
  float* z = s.probs.data();
  for (size_t i = 0; i < vocab; ++i) {
    const float v = logits[i];
    z[i] = std::isnan(v) ? kNegInf : (v - mx) / temperature;
  }

  // Top-k: the k-th largest scaled logit is the threshold; ties with it stay. A histogram over the
  // bit patterns of |z| (monotone in z, since z <= 0) finds the bucket holding the k-th value; only
  // that bucket goes through selection.
  bool top_k_list = false;  // s.kept lists the tokens top-k kept
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < vocab) {
    s.bucket_count.assign(kBuckets, 0);
    for (size_t i = 0; i < vocab; ++i) s.bucket_count[Bucket(std::fabs(z[i]))]++;
    size_t rank = static_cast<size_t>(params.top_k);  // 1-based rank still wanted
    uint32_t b = 0;
    while (s.bucket_count[b] < rank) rank -= s.bucket_count[b++];
    s.values.clear();
    for (size_t i = 0; i < vocab; ++i) {
      if (Bucket(std::fabs(z[i])) == b) s.values.push_back(z[i]);
    }
    auto kth = s.values.begin() + static_cast<std::ptrdiff_t>(rank - 1);
    std::nth_element(s.values.begin(), kth, s.values.end(), std::greater<float>());
    const float threshold = *kth;
    s.kept.clear();
    for (size_t i = 0; i < vocab; ++i) {
      if (z[i] >= threshold) {
        z[i] = std::exp(z[i]);
        if (z[i] > 0.0f) s.kept.push_back(static_cast<int32_t>(i));
      } else {
        z[i] = 0.0f;
      }
    }
    top_k_list = true;
  } else {
    for (size_t i = 0; i < vocab; ++i) z[i] = std::exp(z[i]);
  }
  double total = Total(z, vocab);

  // Top-p: the shortest (prob desc, id asc) prefix with mass >= top_p * total. A mass histogram
  // over the bit patterns of p (monotone for positive floats) locates the bucket where the running
  // mass crosses the target; only that bucket is sorted.
  const double target = static_cast<double>(std::max(params.top_p, 0.0f)) * total;
  constexpr size_t kSmallList = 4096;
  if (params.top_p < 1.0f && top_k_list && s.kept.size() <= kSmallList) {
    // After top-k only a few tokens remain: sort them outright.
    auto& ranked = s.ranked;
    ranked.clear();
    for (int32_t id : s.kept) ranked.emplace_back(z[id], id);
    std::sort(ranked.begin(), ranked.end(), RankedBefore());
    double before = 0.0;
    size_t keep = ranked.size();
    for (size_t j = 0; j < ranked.size(); ++j) {
      before += ranked[j].first;
      if (before >= target) {
        keep = j + 1;
        break;
      }
    }
    for (size_t j = keep; j < ranked.size(); ++j) z[ranked[j].second] = 0.0f;
    total = Total(z, vocab);
  } else if (params.top_p < 1.0f) {
    s.bucket_mass.assign(kBuckets, 0.0);
    for (size_t i = 0; i < vocab; ++i) s.bucket_mass[Bucket(z[i])] += z[i];
    double before = 0.0;  // mass of the buckets above the boundary bucket
    int b = kBuckets - 1;
    for (; b > 0; --b) {  // bucket 0 holds the zeros (filtered tokens) and never matters
      if (s.bucket_mass[b] > 0.0 && before + s.bucket_mass[b] >= target) break;
      before += s.bucket_mass[b];
    }
    if (b == 0) return total;  // rounding left the target unreached: keep every token
    auto& ranked = s.ranked;
    ranked.clear();
    for (size_t i = 0; i < vocab; ++i) {
      if (Bucket(z[i]) == static_cast<uint32_t>(b))
        ranked.emplace_back(z[i], static_cast<int32_t>(i));
    }
    std::sort(ranked.begin(), ranked.end(), RankedBefore());
    size_t boundary = ranked.size() - 1;
    for (size_t j = 0; j < ranked.size(); ++j) {
      before += ranked[j].first;
      if (before >= target) {
        boundary = j;
        break;
      }
    }
    const float pb = ranked[boundary].first;
    const int32_t ib = ranked[boundary].second;
    for (size_t i = 0; i < vocab; ++i) {  // branch-free: keep/drop is unpredictable on flat rows
      const float zi = z[i];
      const bool keep = (zi > pb) | ((zi == pb) & (static_cast<int32_t>(i) <= ib));
      z[i] = keep ? zi : 0.0f;
    }
    total = Total(z, vocab);
  }
  return total;
}

}  // namespace

Status ValidateSamplingParams(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    return InvalidArgument("sampling: temperature {} must be finite and >= 0", p.temperature);
  }
  if (p.top_k < -1) return InvalidArgument("sampling: top_k {} must be -1 (all) or >= 0", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return InvalidArgument("sampling: top_p {} must be in (0, 1]", p.top_p);
  }
  return Status::Ok();
}

int32_t Argmax(std::span<const float> logits) {
  int32_t best = 0;
  float best_value = kNegInf;
  bool found = false;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (v > best_value || (!found && !std::isnan(v))) {
      best = static_cast<int32_t>(i);
      best_value = v;
      found = true;
    }
  }
  return best;
}

int32_t SampleTokenWithUniform(std::span<const float> logits, const SamplingParams& params,
                               double u, SamplerScratch* scratch) {
  assert(!logits.empty());
  if (UsesArgmax(params)) return Argmax(logits);
  SamplerScratch local;
  SamplerScratch& s = scratch != nullptr ? *scratch : local;
  const double total = BuildDistribution(logits, params, s);
  if (!(total > 0.0)) return Argmax(logits);
  const double r = u * total;
  const float* p = s.probs.data();
  const size_t vocab = logits.size();
  double running = 0.0;  // mass of the blocks before this one
  for (size_t b = 0; b < vocab; b += kBlock) {
    const size_t n = std::min(kBlock, vocab - b);
    const double block = BlockSum(p + b, n);
    if (running + block > r) {
      double acc = running;
      for (size_t i = b; i < b + n; ++i) {
        acc += p[i];
        if (acc > r && p[i] > 0.0f) return static_cast<int32_t>(i);
      }
    }
    running += block;  // only reached when rounding put the crossing past this block
  }
  for (size_t i = vocab; i-- > 0;) {  // u * total rounded above every partial sum: last kept token
    if (p[i] > 0.0f) return static_cast<int32_t>(i);
  }
  return Argmax(logits);
}

int32_t SampleToken(std::span<const float> logits, const SamplingParams& params, uint64_t seed,
                    uint64_t sample_index, uint64_t step, SamplerScratch* scratch) {
  if (UsesArgmax(params)) return Argmax(logits);
  return SampleTokenWithUniform(logits, params, SamplingUniform(seed, sample_index, step), scratch);
}

std::vector<double> SamplingDistribution(std::span<const float> logits,
                                         const SamplingParams& params) {
  std::vector<double> out(logits.size(), 0.0);
  if (logits.empty()) return out;
  SamplerScratch s;
  double total = UsesArgmax(params) ? -1.0 : BuildDistribution(logits, params, s);
  if (!(total > 0.0)) {
    out[Argmax(logits)] = 1.0;
    return out;
  }
  for (size_t i = 0; i < logits.size(); ++i) out[i] = s.probs[i] / total;
  return out;
}

void LogSoftmax(std::span<const float> logits, std::span<float> out) {
  assert(out.size() == logits.size());
  const float mx = MaxValue(logits);
  if (!std::isfinite(mx)) {
    std::fill(out.begin(), out.end(), kNegInf);
    return;
  }
  double sum = 0.0;
  for (float v : logits) sum += std::isnan(v) ? 0.0 : std::exp(v - mx);
  // Subtract the max first: mx + log(sum) rounded to float would lose the low bits of large logits.
  const double log_sum = std::log(sum);
  for (size_t i = 0; i < logits.size(); ++i) {
    out[i] = std::isnan(logits[i])
                 ? kNegInf
                 : static_cast<float>(static_cast<double>(logits[i] - mx) - log_sum);
  }
}

void Softmax(std::span<const float> logits, std::span<float> out) {
  assert(out.size() == logits.size());
  const float mx = MaxValue(logits);
  if (!std::isfinite(mx)) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float e = std::isnan(logits[i]) ? 0.0f : std::exp(logits[i] - mx);
    out[i] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (float& v : out) v *= inv;
}

}  // namespace ttc::engine
