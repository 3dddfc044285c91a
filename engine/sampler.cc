#include "engine/sampler.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace ttc::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// (prob desc, id asc): the strict total order that defines the nucleus, ties broken towards lower
// ids.
bool RankedBefore(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
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

  // Top-k: the k-th largest scaled logit is the threshold; ties with it stay.
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < vocab) {
    s.values.assign(z, z + vocab);
    auto kth = s.values.begin() + (params.top_k - 1);
    std::nth_element(s.values.begin(), kth, s.values.end(), std::greater<float>());
    const float threshold = *kth;
    for (size_t i = 0; i < vocab; ++i) z[i] = z[i] >= threshold ? std::exp(z[i]) : 0.0f;
  } else {
    for (size_t i = 0; i < vocab; ++i) z[i] = std::exp(z[i]);
  }
  double total = 0.0;
  for (size_t i = 0; i < vocab; ++i) total += z[i];

  // Top-p: find the shortest (prob desc, id asc) prefix with mass >= top_p * total by quickselect
  // on the mass, never sorting the whole vocabulary.
  if (params.top_p < 1.0f) {
    auto& ranked = s.ranked;
    ranked.clear();
    for (size_t i = 0; i < vocab; ++i) {
      if (z[i] > 0.0f) ranked.emplace_back(z[i], static_cast<int32_t>(i));
    }
    const double target = static_cast<double>(std::max(params.top_p, 0.0f)) * total;
    size_t lo = 0, hi = ranked.size();  // the boundary position lies in [lo, hi)
    double before = 0.0;                // mass of ranked[0, lo)
    constexpr size_t kSortBelow = 64;
    while (hi - lo > kSortBelow) {
      const size_t mid = lo + (hi - lo) / 2;
      std::nth_element(ranked.begin() + lo, ranked.begin() + mid, ranked.begin() + hi,
                       RankedBefore);
      double mass = before;
      for (size_t j = lo; j <= mid; ++j) mass += ranked[j].first;
      if (mass >= target) {
        hi = mid + 1;
      } else {
        before = mass;
        lo = mid + 1;
      }
    }
    std::sort(ranked.begin() + lo, ranked.begin() + hi, RankedBefore);
    size_t boundary =
        hi - 1;  // if rounding leaves the target unreached, keep everything up to hi - 1
    for (size_t j = lo; j < hi; ++j) {
      before += ranked[j].first;
      if (before >= target) {
        boundary = j;
        break;
      }
    }
    const float pb = ranked[boundary].first;
    const int32_t ib = ranked[boundary].second;
    total = 0.0;
    for (size_t i = 0; i < vocab; ++i) {
      const bool keep = z[i] > pb || (z[i] == pb && static_cast<int32_t>(i) <= ib);
      if (!keep) z[i] = 0.0f;
      total += z[i];
    }
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
  double acc = 0.0;
  int32_t last = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (p[i] > 0.0f) {
      acc += p[i];
      if (acc > r) return static_cast<int32_t>(i);
      last = static_cast<int32_t>(i);
    }
  }
  return last >= 0 ? last : Argmax(logits);  // u * total rounded above the accumulated sum
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
