// Counter-based random numbers for sampling: Philox4x32-10 (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011; the Random123 / cuRAND generator). A counter-based
// generator needs no state: the random bits of sample i at decode step t are a pure function of
// (seed, i, t), so a sample's tokens do not depend on which worker, unit or batch produced it, nor
// on the order rows are sampled in. Pure functions, thread-safe.
//
// Exact construction (a CUDA kernel must reproduce it bit-for-bit; this header compiles under nvcc
// too):
//   key     = (k0, k1)          = (low 32 bits of seed, high 32 bits of seed)
//   counter = (c0, c1, c2, c3)  = (low32(sample_index), high32(sample_index), low32(step),
//   high32(step)) (x0, x1, x2, x3) = Philox4x32_10(counter, key)  -- 10 rounds, Random123
//   constants, key bumped between rounds uniform = ((uint64(x0) << 32 | x1) >> 11) * 2^-53, a
//   double in [0, 1) with 53 random bits.
// x2 and x3 are not used by the sampler (reserved for future draws of the same step).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define TTC_RNG_HD __host__ __device__ __forceinline__
#else
#define TTC_RNG_HD inline
#endif

namespace ttc::engine {

struct Philox4x32 {
  uint32_t v[4];
};

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

// Philox4x32 with 10 rounds on one 128-bit counter under a 64-bit key (Random123 philox4x32_10).
TTC_RNG_HD Philox4x32 Philox4x32_10(Philox4x32 ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * ctr.v[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * ctr.v[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
  }
  return ctr;
}

// The four 32-bit words for (seed, sample_index, step), by the construction documented above.
TTC_RNG_HD Philox4x32 SamplingBits(uint64_t seed, uint64_t sample_index, uint64_t step) {
  Philox4x32 ctr{{static_cast<uint32_t>(sample_index), static_cast<uint32_t>(sample_index >> 32),
                  static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32)}};
  return Philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// The sampler's one uniform draw for (seed, sample_index, step): a double in [0, 1) with 53 random
// bits.
TTC_RNG_HD double SamplingUniform(uint64_t seed, uint64_t sample_index, uint64_t step) {
  const Philox4x32 r = SamplingBits(seed, sample_index, step);
  const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

}  // namespace ttc::engine
