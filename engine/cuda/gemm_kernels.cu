// The decode-shaped GEMM of the CUDA backend (LaunchGemm in kernels.h): out[M, N] (+)= x[M, K] *
// w[N, K]^T for bf16 x and w, f32 accumulation and output. Written for the shapes where cuBLAS
// leaves most of the GPU idle: a decode step's 64-512 activation rows against a weight matrix of
// 2048-5120 rows, i.e. only 32-160 output tiles for 132 SMs (cuBLAS sat at a ~15 us floor on such
// GEMMs, docs/perf/cuda.md). It splits K across the CTAs of a thread-block cluster and sums the
// partial tiles through distributed shared memory in a fixed order, so the result is deterministic
// and no partial product goes through global memory.
//
// Structure (Ampere-style mainloop, which sm_90 runs natively): a CTA of 8 warps computes a
// BM x 128 output tile; 64-wide K tiles of both operands are staged in shared memory by cp.async in
// a 3-stage pipeline, with the 16-byte chunks of each 128-byte row XOR-swizzled by the row index so
// that both the cp.async stores and the ldmatrix loads are free of bank conflicts; each warp runs
// m16n8k16 bf16 mma ops on a (BM / 2) x 32 sub-tile.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "engine/cuda/kernels.h"

namespace ttc::engine::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kGemmBN = 128;  // weight rows (output columns) per CTA
constexpr int kGemmBK = 64;  // K per pipeline stage: one 128-byte shared-memory row per operand row
constexpr int kGemmStages = 3;
constexpr int kGemmWarpsM = 2, kGemmWarpsN = 4;
constexpr int kGemmThreads = 32 * kGemmWarpsM * kGemmWarpsN;
constexpr int kGemmNI = kGemmBN / kGemmWarpsN / 8;  // n8 tiles per warp (4)
// Floats of padding per row of the staged f32 tile: with 8 the float2 stores of a half-warp (rows
// g = 0-3, columns 2t) fall in 16 distinct bank pairs.
constexpr int kGemmPad = 8;

template <int BM>
constexpr int GemmSmemBytes() {
  const int pipe = kGemmStages * (BM + kGemmBN) * kGemmBK * 2;
  const int tile = BM * (kGemmBN + kGemmPad) * 4;
  return pipe > tile ? pipe : tile;
}

__device__ __forceinline__ void GemmCpAsync16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;  // 0: zero-fill (rows past M)
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void GemmLdMatrixX4(uint32_t (&r)[4], const uint16_t* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void GemmMma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// Element offset of 16-byte chunk c (0-7) of row r in a swizzled [rows][64] bf16 tile.
__device__ __forceinline__ int Swz(int r, int c) { return r * kGemmBK + ((c ^ (r & 7)) << 3); }

// Grid (m tiles, n tiles, splits); with splits > 1 launched as clusters of (1, 1, splits), CTA z of
// a cluster taking K range [z K / splits, (z + 1) K / splits).
template <int BM>
__global__ void __launch_bounds__(kGemmThreads, 2)
    GemmKernel(const uint16_t* __restrict__ w, const uint16_t* __restrict__ x, float* out, int M,
               int K, int64_t ldo, bool accumulate, int splits) {
  constexpr int MI = BM / kGemmWarpsM / 16;  // m16 tiles per warp
  constexpr int kStage = (BM + kGemmBN) * kGemmBK;
  extern __shared__ __align__(128) unsigned char gemm_smem[];
  uint16_t* smem = reinterpret_cast<uint16_t*>(gemm_smem);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / kGemmWarpsN, wn = warp % kGemmWarpsN;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * kGemmBN;
  const int kt_n = K / kGemmBK / splits, kt0 = blockIdx.z * kt_n;

  auto load = [&](int stage, int kt) {
    uint16_t* sa = smem + stage * kStage;
    uint16_t* sb = sa + BM * kGemmBK;
    const int64_t k0 = static_cast<int64_t>(kt) * kGemmBK;
#pragma unroll
    for (int it = 0; it < BM * 8 / kGemmThreads; ++it) {
      const int i = tid + it * kGemmThreads, r = i >> 3, c = i & 7;
      const bool valid = m0 + r < M;
      const uint16_t* src = x + (valid ? static_cast<int64_t>(m0 + r) * K : 0) + k0 + c * 8;
      GemmCpAsync16(sa + Swz(r, c), src, valid);
    }
#pragma unroll
    for (int it = 0; it < kGemmBN * 8 / kGemmThreads; ++it) {
      const int i = tid + it * kGemmThreads, r = i >> 3, c = i & 7;
      GemmCpAsync16(sb + Swz(r, c), w + static_cast<int64_t>(n0 + r) * K + k0 + c * 8, true);
    }
  };

  float acc[MI][kGemmNI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < kGemmNI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

#pragma unroll
  for (int s = 0; s < kGemmStages - 1; ++s) {
    if (s < kt_n) load(s, kt0 + s);
    asm volatile("cp.async.commit_group;\n" ::);
  }
  for (int kt = 0; kt < kt_n; ++kt) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kGemmStages - 2));
    __syncthreads();
    // The stage refilled here was read in the previous iteration, which every warp has left.
    const int next = kt + kGemmStages - 1;
    if (next < kt_n) load(next % kGemmStages, kt0 + next);
    asm volatile("cp.async.commit_group;\n" ::);
    const uint16_t* sa = smem + (kt % kGemmStages) * kStage;
    const uint16_t* sb = sa + BM * kGemmBK;
#pragma unroll
    for (int kk = 0; kk < kGemmBK / 16; ++kk) {
      uint32_t a[MI][4];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        // Matrices 0-3: rows 0-7 / 8-15 at k 0-7, then the same at k 8-15 (the a0..a3 order).
        const int r = wm * MI * 16 + i * 16 + (lane & 15);
        GemmLdMatrixX4(a[i], sa + Swz(r, kk * 2 + (lane >> 4)));
      }
      uint32_t b[kGemmNI][2];
#pragma unroll
      for (int j = 0; j < kGemmNI; j += 2) {
        // Matrices: n 0-7 at k 0-7 / 8-15 (b0, b1 of tile j), then n 8-15 (tile j + 1).
        const int mat = lane >> 3;
        const int r = wn * kGemmNI * 8 + j * 8 + (mat >> 1) * 8 + (lane & 7);
        uint32_t t[4];
        GemmLdMatrixX4(t, sb + Swz(r, kk * 2 + (mat & 1)));
        b[j][0] = t[0];
        b[j][1] = t[1];
        b[j + 1][0] = t[2];
        b[j + 1][1] = t[3];
      }
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < kGemmNI; ++j) GemmMma(acc[i][j], a[i], b[j][0], b[j][1]);
    }
  }
  asm volatile("cp.async.wait_group 0;\n" ::);

  const int g = lane >> 2, t = lane & 3;
  if (splits == 1) {
#pragma unroll
    for (int i = 0; i < MI; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = m0 + wm * MI * 16 + i * 16 + g + h * 8;
        if (m >= M) continue;
        float* row = out + static_cast<int64_t>(m) * ldo + n0 + wn * kGemmNI * 8 + 2 * t;
#pragma unroll
        for (int j = 0; j < kGemmNI; ++j) {
          float2 v = make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
          float2* p = reinterpret_cast<float2*>(row + j * 8);
          if (accumulate) {
            const float2 o = *p;
            v.x += o.x;
            v.y += o.y;
          }
          *p = v;
        }
      }
    }
    return;
  }

  // Split K: each CTA stages its partial tile in its own shared memory; after the cluster barrier
  // CTA z sums rows [z BM / splits, (z + 1) BM / splits) of all the cluster's tiles, in rank order.
  __syncthreads();  // every warp is done with the pipeline buffers the tile now reuses
  float* tile = reinterpret_cast<float*>(gemm_smem);
  constexpr int kLd = kGemmBN + kGemmPad;
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = wm * MI * 16 + i * 16 + g + h * 8;
#pragma unroll
      for (int j = 0; j < kGemmNI; ++j) {
        *reinterpret_cast<float2*>(tile + r * kLd + wn * kGemmNI * 8 + j * 8 + 2 * t) =
            make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
      }
    }
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  const int rank = static_cast<int>(cluster.block_rank());
  const int rows = BM / splits, r0 = rank * rows;
  for (int i = tid; i < rows * (kGemmBN / 4); i += kGemmThreads) {
    const int r = r0 + i / (kGemmBN / 4), c = (i % (kGemmBN / 4)) * 4;
    float4 s = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int q = 0; q < splits; ++q) {
      const float4 v = *reinterpret_cast<const float4*>(
          cluster.map_shared_rank(tile, static_cast<unsigned>(q)) + r * kLd + c);
      s.x += v.x;
      s.y += v.y;
      s.z += v.z;
      s.w += v.w;
    }
    if (m0 + r >= M) continue;
    float4* p = reinterpret_cast<float4*>(out + static_cast<int64_t>(m0 + r) * ldo + n0 + c);
    if (accumulate) {
      const float4 o = *p;
      s.x += o.x;
      s.y += o.y;
      s.z += o.z;
      s.w += o.w;
    }
    *p = s;
  }
  cluster.sync();  // the other CTAs may still read this one's tile
}

template <int BM>
bool LaunchGemmBm(const uint16_t* w, int64_t N, int64_t K, const uint16_t* x, int64_t M, float* out,
                  int64_t ldo, bool accumulate, int splits, cudaStream_t s) {
  constexpr int smem = GemmSmemBytes<BM>();
  static const bool configured = [] {
    return cudaFuncSetAttribute(GemmKernel<BM>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                smem) == cudaSuccess;
  }();
  if (!configured) return false;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>((M + BM - 1) / BM), static_cast<unsigned>(N / kGemmBN),
                     static_cast<unsigned>(splits));
  cfg.blockDim = dim3(kGemmThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = 1;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = static_cast<unsigned>(splits);
  cfg.attrs = attr;
  cfg.numAttrs = splits > 1 ? 1 : 0;
  const cudaError_t e = cudaLaunchKernelEx(&cfg, GemmKernel<BM>, w, x, out, static_cast<int>(M),
                                           static_cast<int>(K), ldo, accumulate, splits);
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in gemm launch: %s\n", cudaGetErrorString(e));
    std::abort();
  }
  return true;
}

}  // namespace

int GemmSplits(int64_t N, int64_t M, int64_t K, int sm_count) {
  const int64_t bm = M <= 64 ? 64 : 128;
  const int64_t tiles = ((M + bm - 1) / bm) * (N / kGemmBN);
  const int64_t slots = 2 * static_cast<int64_t>(sm_count);  // two CTAs per SM
  int splits = 1;
  while (splits < 8 && tiles * splits * 2 <= slots && K % (kGemmBK * splits * 2) == 0 &&
         K / (kGemmBK * splits * 2) >= 2) {
    splits *= 2;
  }
  return splits;
}

bool LaunchGemm(const uint16_t* w, int64_t N, int64_t K, const uint16_t* x, int64_t M, float* out,
                int64_t ldo, bool accumulate, int splits, cudaStream_t s) {
  const auto aligned = [](const void* p, uintptr_t a) {
    return reinterpret_cast<uintptr_t>(p) % a == 0;
  };
  if (M < 1 || M > (int64_t{1} << 30) || N < kGemmBN || N % kGemmBN != 0 || K % kGemmBK != 0 ||
      K > (int64_t{1} << 30) || !aligned(w, 16) || !aligned(x, 16) || !aligned(out, 16) ||
      ldo % 4 != 0 || ldo < N) {
    return false;
  }
  if (splits < 1 || splits > 8 || (splits & (splits - 1)) != 0 || K % (kGemmBK * splits) != 0) {
    return false;
  }
  return M <= 64 ? LaunchGemmBm<64>(w, N, K, x, M, out, ldo, accumulate, splits, s)
                 : LaunchGemmBm<128>(w, N, K, x, M, out, ldo, accumulate, splits, s);
}

}  // namespace ttc::engine::cuda
