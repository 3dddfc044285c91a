// The CPU reference backend: float32 math on BF16 (kept as BF16, widened in the GEMM inner loop) or
// float32 weights (F16 is widened once at upload), multi-threaded with OpenMP, batched decode as
// one GEMM over the live batch. Per-(row, output) arithmetic never depends on the batch size, the
// thread count or the other rows, so a sequence gets bit-identical logits whatever batch it runs
// in. Thread-safety: see engine/backend.h (one caller thread at a time per backend).
#pragma once

#include <memory>

#include "engine/backend.h"

namespace ttc::engine {

// threads <= 0: all hardware threads.
std::unique_ptr<Backend> CreateCpuBackend(int threads);

namespace cpu {

// out[m*ldo + n] (+)= sum_k x[m*ldx + k] * w[n*K + k] for m < M, n < N: the GEMM behind
// Backend::MatMul, exposed for the benchmark and tests. w is float32 or bf16 bits.
void GemmF32(const float* x, int64_t ldx, int64_t M, int64_t K, const float* w, int64_t N,
             float* out, int64_t ldo, bool accumulate, int threads);
void GemmBF16(const float* x, int64_t ldx, int64_t M, int64_t K, const uint16_t* w, int64_t N,
              float* out, int64_t ldo, bool accumulate, int threads);

}  // namespace cpu

}  // namespace ttc::engine
