// The sampler's summation order, shared by the CPU sampler (engine/sampler.cc) and the GPU sampler
// (engine/cuda/sample_kernels.cu) so both total a row's mass bit for bit the same way: ids in
// chunks of kSampleChunk, each chunk summed in double with four interleaved accumulators, chunks in
// id order. Pure functions; this header compiles under nvcc too.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define TTC_SUM_HD __host__ __device__ __forceinline__
#else
#define TTC_SUM_HD inline
#endif

namespace ttc::engine {

inline constexpr int64_t kSampleChunk = 256;

// Sum of p[0, n) in the fixed order above (n <= kSampleChunk for one chunk).
TTC_SUM_HD double ChunkSum(const float* p, int64_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
  }
  for (; i < n; ++i) a0 += p[i];
  return (a0 + a1) + (a2 + a3);
}

}  // namespace ttc::engine
