// Kernels of the CUDA backend. Weights are bf16 (large matrices) or f32 (vectors, conv, small
// matrices); activations and recurrent state are f32; the KV cache is bf16. Every reduction
// accumulates in f32. See engine/cuda/kernels.h for the contracts.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include "engine/cuda/bulk_copy.cuh"
#include "engine/cuda/kernels.h"
#include "engine/cuda/launch.cuh"

namespace ttc::engine::cuda {

namespace {

std::atomic<bool> g_programmatic_launch{false};
thread_local cudaError_t t_launch_error = cudaSuccess;

}  // namespace

bool ProgrammaticLaunch() { return g_programmatic_launch.load(std::memory_order_relaxed); }
void SetProgrammaticLaunch(bool on) { g_programmatic_launch.store(on, std::memory_order_relaxed); }
void NoteLaunchError(cudaError_t e) { t_launch_error = e; }
cudaError_t TakeLaunchError() {
  const cudaError_t last = cudaGetLastError();
  const cudaError_t noted = t_launch_error;
  t_launch_error = cudaSuccess;
  return noted != cudaSuccess ? noted : last;
}

namespace {

__device__ __forceinline__ float Bf(uint16_t b) {
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
}
__device__ __forceinline__ uint16_t ToBf(float f) {
  __nv_bfloat16 h = __float2bfloat16_rn(f);
  return *reinterpret_cast<uint16_t*>(&h);
}
__device__ __forceinline__ float Silu(float v) { return v / (1.0f + expf(-v)); }
__device__ __forceinline__ float Softplus(float v) { return v > 20.0f ? v : log1pf(expf(v)); }

// Recurrent state in f32, bf16 (uint16_t) or f16 (__half) storage; the arithmetic is always f32.
// f16 keeps 11 significant bits to bf16's 8 (an eighth of the rounding error per step) but tops
// out at 65504: stores saturate there rather than write an infinity that would poison the state.
__device__ __forceinline__ float LoadState(const float* p) { return *p; }
__device__ __forceinline__ float LoadState(const uint16_t* p) { return Bf(*p); }
__device__ __forceinline__ float LoadState(const __half* p) { return __half2float(*p); }
// Where saturating stores report (ArmStateOverflowWord); null until armed.
__device__ unsigned* g_state_overflow = nullptr;
__device__ __forceinline__ __half ToHalfSat(float v) {
  if (F16StoreOverflows(v)) {  // false for NaN, which stays NaN as in the other kinds
    unsigned* w = g_state_overflow;
    if (w != nullptr) *reinterpret_cast<volatile unsigned*>(w) = 1u;
    v = copysignf(65504.0f, v);
  }
  return __float2half_rn(v);
}
__device__ __forceinline__ void StoreState(float* p, float v) { *p = v; }
__device__ __forceinline__ void StoreState(uint16_t* p, float v) { *p = ToBf(v); }
__device__ __forceinline__ void StoreState(__half* p, float v) { *p = ToHalfSat(v); }

// Runs f(StateT{}) with the storage type of `store`: each launch site instantiates its kernel for
// the three.
template <typename F>
void WithStateType(StateStore store, F&& f) {
  switch (store) {
    case StateStore::kBf16:
      f(uint16_t{});
      break;
    case StateStore::kF16:
      f(__half{});
      break;
    default:
      f(float{});
      break;
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of blockDim.x (multiple of 32, <= 1024) threads; every thread gets the result.
__device__ float BlockSum(float v, float* shared32) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = WarpSum(v);
  __syncthreads();
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  float t = lane < nw ? shared32[lane] : 0.0f;
  return WarpSum(t);
}

void Check(const char* what) {
  const cudaError_t e = TakeLaunchError();
  if (e != cudaSuccess) {
    std::fprintf(stderr, "cuda backend: launch of %s failed: %s\n", what, cudaGetErrorString(e));
    std::abort();
  }
}

unsigned Blocks(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

// Element-wise kernels over [rows, cols] run on a RowGrid: rows along y (strided past 65535),
// columns along x, so no thread divides a flat index (64-bit division costs more than the bytes
// here).
#define TTC_FOR_ROWS_COLS(rows, cols)                                            \
  for (int64_t r = blockIdx.y; r < (rows); r += gridDim.y)                       \
    for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < (cols); \
         c += int64_t{gridDim.x} * blockDim.x)

__global__ void F32ToBf16Kernel(const float* x, int64_t ldx, int64_t rows, int64_t cols,
                                uint16_t* out) {
  PdlGate();
  TTC_FOR_ROWS_COLS(rows, cols) { out[r * cols + c] = ToBf(x[r * ldx + c]); }
}

__global__ void SplitBf16Kernel(const float* x, int64_t ldx, int64_t rows, int64_t cols,
                                uint16_t* out) {
  PdlGate();
  const int64_t total = rows * cols;
  TTC_FOR_ROWS_COLS(rows, cols) {
    const float v = x[r * ldx + c];
    const uint16_t hi = ToBf(v);
    out[r * cols + c] = hi;
    out[total + r * cols + c] = ToBf(v - Bf(hi));
  }
}

// Row blockIdx.y of the output: the parts' partial products in part order, then (halves) the lo
// halves' in part order.
__global__ void SumPartsKernel(const float* y, int parts, int64_t rows, bool halves, int64_t cols,
                               float* out, int64_t ldo, bool acc) {
  PdlGate();
  const int64_t r = blockIdx.y;
  const int64_t part_rows = halves ? 2 * rows : rows;
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < cols;
       c += int64_t{gridDim.x} * blockDim.x) {
    float v = 0.0f;
    for (int s = 0; s < parts; ++s) v += y[(s * part_rows + r) * cols + c];
    if (halves) {
      for (int s = 0; s < parts; ++s) v += y[(s * part_rows + rows + r) * cols + c];
    }
    float* o = out + r * ldo + c;
    *o = acc ? *o + v : v;
  }
}

__global__ void EmbedKernel(const uint16_t* tb, const float* tf, const int32_t* ids,
                            const int32_t* map, int64_t vocab, int64_t d, float* out) {
  PdlGate();
  const int64_t r = blockIdx.x;
  int64_t id = ids[map ? map[r] : r];
  if (map && (id < 0 || id >= vocab)) id = 0;  // a draw is in range; never read past the table
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
    out[r * d + c] = tb ? Bf(tb[id * d + c]) : tf[id * d + c];
  }
}

// The bf16 GEMM input of element i (of `total`) with value v, as LaunchF32ToBf16 (bf) or
// LaunchSplitBf16 (bf, split) would write it from the f32 output.
__device__ __forceinline__ void StoreGemmInput(uint16_t* bf, bool split, int64_t total, int64_t i,
                                               float v) {
  const uint16_t hi = ToBf(v);
  bf[i] = hi;
  if (split) bf[total + i] = ToBf(v - Bf(hi));
}

// Where a decode-attention kernel puts its normalised output: the f32 rows [rows, H * hd] and,
// with bf set, the O projection's bf16 input of those `total` elements (StoreGemmInput). Only the
// kernels that instantiate Put<true> write the copy (AttnWritesCopy); LaunchAttention converts
// after the others.
struct AttnOut {
  float* f;
  uint16_t* bf;
  int64_t total;
  bool split;
  template <bool kCopy>
  __device__ __forceinline__ void Put(int64_t i, float v) const {
    f[i] = v;
    if constexpr (kCopy) {
      if (bf != nullptr) StoreGemmInput(bf, split, total, i, v);
    }
  }
};
// Which decode-attention kernels write the copy themselves: the one-warp mma kernels (the own
// ranges of a large batch, where the copy saves a conversion of B rows) and the combine kernel.
// In the head_dim 32/64 four-warp kernels the extra epilogue spilled registers that their position
// loop then reloaded (ptxas: 12-24 bytes), so they leave it to a conversion kernel.
template <int NW>
constexpr bool AttnWritesCopy() {
  return NW == 1;
}

__global__ void RmsNormKernel(const float* x, const float* w, float eps, int64_t n, float* out,
                              uint16_t* bf, bool split) {
  PdlGate();
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * n;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  ss = BlockSum(ss, red);
  const float inv = rsqrtf(ss / static_cast<float>(n) + eps);
  const int64_t total = int64_t{gridDim.x} * n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = w[i] * (xr[i] * inv);
    if (out != nullptr) out[blockIdx.x * n + i] = v;
    if (bf) StoreGemmInput(bf, split, total, blockIdx.x * n + i, v);
  }
}

__global__ void SwiGluKernel(const float* gu, int64_t rows, int64_t ff, float* out, uint16_t* bf,
                             bool split) {
  PdlGate();
  const int64_t total = rows * ff;
  TTC_FOR_ROWS_COLS(rows, ff) {
    const float g = gu[r * 2 * ff + c], u = gu[r * 2 * ff + ff + c];
    const float v = Silu(g) * u;
    const int64_t i = r * ff + c;
    if (out != nullptr) out[i] = v;
    if (bf) StoreGemmInput(bf, split, total, i, v);
  }
}

// Four consecutive GEMM inputs (i a multiple of 4) as StoreGemmInput writes them, in one 8-byte
// store per half.
__device__ __forceinline__ void StoreGemmInput4(uint16_t* bf, bool split, int64_t total, int64_t i,
                                                float4 v) {
  const uint16_t h0 = ToBf(v.x), h1 = ToBf(v.y), h2 = ToBf(v.z), h3 = ToBf(v.w);
  *reinterpret_cast<uint2*>(bf + i) =
      make_uint2(h0 | (static_cast<uint32_t>(h1) << 16), h2 | (static_cast<uint32_t>(h3) << 16));
  if (split) {
    const uint16_t l0 = ToBf(v.x - Bf(h0)), l1 = ToBf(v.y - Bf(h1)), l2 = ToBf(v.z - Bf(h2)),
                   l3 = ToBf(v.w - Bf(h3));
    *reinterpret_cast<uint2*>(bf + total + i) =
        make_uint2(l0 | (static_cast<uint32_t>(l1) << 16), l2 | (static_cast<uint32_t>(l3) << 16));
  }
}

// RmsNormKernel for rows of n = 4 k <= 4096 floats (16-byte aligned): each of the 256 threads
// loads its up to V float4 of the row at once and keeps them for the second pass. The scalar
// kernel's loop waits on one load per iteration, and its blocks, one per row, are all resident at
// once, so its time is that chain (~9-12 us per call at 256-512 rows in the per-op profiles, call
// S) rather than the bytes (~2 us).
template <int V>
__global__ void __launch_bounds__(256)
    RmsNormVecKernel(const float* x, const float* w, float eps, int64_t n, float* out, uint16_t* bf,
                     bool split) {
  PdlGate();
  __shared__ float red[32];
  const int n4 = static_cast<int>(n / 4);
  const float4* xr = reinterpret_cast<const float4*>(x + blockIdx.x * n);
  float4 v[V];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int i = threadIdx.x + 256 * j;
    v[j] = i < n4 ? xr[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    ss += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
  }
  ss = BlockSum(ss, red);
  const float inv = rsqrtf(ss / static_cast<float>(n) + eps);
  const float4* w4 = reinterpret_cast<const float4*>(w);
  float4* o4 = out != nullptr ? reinterpret_cast<float4*>(out + blockIdx.x * n) : nullptr;
  const int64_t total = int64_t{gridDim.x} * n;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int i = threadIdx.x + 256 * j;
    if (i < n4) {
      const float4 wv = w4[i];
      const float4 r = make_float4(wv.x * (v[j].x * inv), wv.y * (v[j].y * inv),
                                   wv.z * (v[j].z * inv), wv.w * (v[j].w * inv));
      if (o4 != nullptr) o4[i] = r;
      if (bf) StoreGemmInput4(bf, split, total, blockIdx.x * n + 4 * int64_t{i}, r);
    }
  }
}

// SwiGluKernel four columns per thread (ff a multiple of 4): 16-byte loads and stores, a quarter
// of the threads (the scalar kernel ran at ~half the bandwidth at Llama-3B B=512, call S).
__global__ void SwiGluVecKernel(const float* gu, int64_t rows, int64_t ff, float* out, uint16_t* bf,
                                bool split) {
  PdlGate();
  const int64_t total = rows * ff, ff4 = ff / 4;
  const float4* gu4 = reinterpret_cast<const float4*>(gu);
  float4* o4 = reinterpret_cast<float4*>(out);
  TTC_FOR_ROWS_COLS(rows, ff4) {
    const float4 g = gu4[r * 2 * ff4 + c], u = gu4[r * 2 * ff4 + ff4 + c];
    const float4 v =
        make_float4(Silu(g.x) * u.x, Silu(g.y) * u.y, Silu(g.z) * u.z, Silu(g.w) * u.w);
    if (out != nullptr) o4[r * ff4 + c] = v;
    if (bf) StoreGemmInput4(bf, split, total, 4 * (r * ff4 + c), v);
  }
}

__global__ void Copy2DKernel(const float* src, int64_t ld_src, int64_t cols, float* dst,
                             int64_t ld_dst, const int64_t* rows) {
  PdlGate();
  const int64_t r = blockIdx.x;
  const int64_t sr = rows ? rows[r] : r;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    dst[r * ld_dst + c] = src[sr * ld_src + c];
}

// One rotated pair, the same instructions in both RoPE kernels: an explicit fmaf of an explicit
// product. Left as x1 * cs - x2 * sn, nvcc chooses per kernel which product it fuses into the
// subtraction, and the two kernels' q differed in the last bit (H200, session 17). The angle, too,
// is an explicit product (__fmul_rn) in both, so that no contraction can reach into sincosf.
__device__ __forceinline__ float RopeLo(float x1, float x2, float cs, float sn) {
  return fmaf(x1, cs, -__fmul_rn(x2, sn));
}
__device__ __forceinline__ float RopeHi(float x1, float x2, float cs, float sn) {
  return fmaf(x2, cs, __fmul_rn(x1, sn));
}

__global__ void RopeAppendKernel(const float* qkv, const DevRow* info, const float* inv_freq, int H,
                                 int Hkv, int hd, float* q_out, const DevKv* kv) {
  PdlGate();
  const int64_t r = blockIdx.x;
  const int half = hd / 2;
  const int64_t qw = static_cast<int64_t>(H) * hd, kvw = static_cast<int64_t>(Hkv) * hd;
  const DevRow ri = info[r];
  const float* src = qkv + r * (qw + 2 * kvw);
  const DevKv c = kv[ri.slot];
  // New positions are never inside the shared prefix: they go to the slot's own buffers.
  uint16_t* kd = c.k + static_cast<int64_t>(ri.pos - c.plen) * kvw;
  uint16_t* vd = c.v + static_cast<int64_t>(ri.pos - c.plen) * kvw;
  const int total = (H + Hkv) * half;
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int h = i / half, j = i % half;
    float sn, cs;
    sincosf(__fmul_rn(static_cast<float>(ri.pos), inv_freq[j]), &sn, &cs);
    if (h < H) {
      const float* a = src + h * hd;
      const float x1 = a[j], x2 = a[j + half];
      q_out[r * qw + h * hd + j] = RopeLo(x1, x2, cs, sn);
      q_out[r * qw + h * hd + j + half] = RopeHi(x1, x2, cs, sn);
    } else {
      const int kh = h - H;
      const float* a = src + qw + kh * hd;
      const float x1 = a[j], x2 = a[j + half];
      kd[kh * hd + j] = ToBf(RopeLo(x1, x2, cs, sn));
      kd[kh * hd + j + half] = ToBf(RopeHi(x1, x2, cs, sn));
    }
  }
  for (int64_t i = threadIdx.x; i < kvw; i += blockDim.x) vd[i] = ToBf(src[qw + kvw + i]);
}

// RopeAppendKernel on 16-byte pieces: one row per block, the row's (cos, sin) per frequency
// computed once into shared memory (the scalar kernel called sincosf for every head), each thread
// rotating four adjacent dimensions of one head (float4 loads of both halves; q as float4, k and v
// as four bf16 in 8 bytes). Needs hd % 8 == 0 and 16-byte aligned qkv rows and q_out (the own K/V
// buffers are cudaMallocAsync'd, so 8-byte stores at multiples of kvw % 4 == 0 are aligned). The
// arithmetic per element is the scalar kernel's (RopeLo / RopeHi).
constexpr int kRopeThreads = 256;
__global__ void __launch_bounds__(kRopeThreads)
    RopeAppendVecKernel(const float* qkv, const DevRow* info, const float* inv_freq, int H, int Hkv,
                        int hd, float* q_out, const DevKv* kv) {
  PdlGate();
  extern __shared__ float2 rope_cs[];  // [hd / 2]: (cos, sin) of this row's position
  const int64_t r = blockIdx.x;
  const int half = hd / 2, quads = half / 4;
  const int64_t qw = static_cast<int64_t>(H) * hd, kvw = static_cast<int64_t>(Hkv) * hd;
  const DevRow ri = info[r];
  for (int j = threadIdx.x; j < half; j += blockDim.x) {
    float sn, cs;
    sincosf(__fmul_rn(static_cast<float>(ri.pos), inv_freq[j]), &sn, &cs);
    rope_cs[j] = make_float2(cs, sn);
  }
  const float* src = qkv + r * (qw + 2 * kvw);
  const DevKv c = kv[ri.slot];
  uint16_t* kd = c.k + static_cast<int64_t>(ri.pos - c.plen) * kvw;
  uint16_t* vd = c.v + static_cast<int64_t>(ri.pos - c.plen) * kvw;
  // V first: it needs no table, so its loads overlap the sincosf above.
  for (int64_t i = threadIdx.x; i < kvw / 4; i += blockDim.x) {
    const float4 v = *reinterpret_cast<const float4*>(src + qw + kvw + 4 * i);
    *reinterpret_cast<uint2*>(vd + 4 * i) =
        make_uint2(static_cast<uint32_t>(ToBf(v.x)) | (static_cast<uint32_t>(ToBf(v.y)) << 16),
                   static_cast<uint32_t>(ToBf(v.z)) | (static_cast<uint32_t>(ToBf(v.w)) << 16));
  }
  __syncthreads();
  const int total = (H + Hkv) * quads;
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int h = i / quads, j = (i - h * quads) * 4;
    const float* a = src + static_cast<int64_t>(h) * hd;  // k heads follow the q heads
    const float4 x1 = *reinterpret_cast<const float4*>(a + j);
    const float4 x2 = *reinterpret_cast<const float4*>(a + j + half);
    const float2 t0 = rope_cs[j], t1 = rope_cs[j + 1], t2 = rope_cs[j + 2], t3 = rope_cs[j + 3];
    const float4 o1 = make_float4(RopeLo(x1.x, x2.x, t0.x, t0.y), RopeLo(x1.y, x2.y, t1.x, t1.y),
                                  RopeLo(x1.z, x2.z, t2.x, t2.y), RopeLo(x1.w, x2.w, t3.x, t3.y));
    const float4 o2 = make_float4(RopeHi(x1.x, x2.x, t0.x, t0.y), RopeHi(x1.y, x2.y, t1.x, t1.y),
                                  RopeHi(x1.z, x2.z, t2.x, t2.y), RopeHi(x1.w, x2.w, t3.x, t3.y));
    if (h < H) {
      float* q = q_out + r * qw + static_cast<int64_t>(h) * hd;
      *reinterpret_cast<float4*>(q + j) = o1;
      *reinterpret_cast<float4*>(q + j + half) = o2;
    } else {
      uint16_t* k = kd + static_cast<int64_t>(h - H) * hd;
      *reinterpret_cast<uint2*>(k + j) =
          make_uint2(static_cast<uint32_t>(ToBf(o1.x)) | (static_cast<uint32_t>(ToBf(o1.y)) << 16),
                     static_cast<uint32_t>(ToBf(o1.z)) | (static_cast<uint32_t>(ToBf(o1.w)) << 16));
      *reinterpret_cast<uint2*>(k + j + half) =
          make_uint2(static_cast<uint32_t>(ToBf(o2.x)) | (static_cast<uint32_t>(ToBf(o2.y)) << 16),
                     static_cast<uint32_t>(ToBf(o2.z)) | (static_cast<uint32_t>(ToBf(o2.w)) << 16));
    }
  }
}

// One row's K and V for one KV head as the decode-attention kernels read them: position p lives in
// the prefix shared by the slots forked from one prompt below plen (read by every such row, so
// mostly from L2) and in the slot's own buffers from plen up; [begin, end) is the contiguous range
// of positions of this block's split (blockIdx.z of gridDim.z).
struct HeadKv {
  const uint16_t *kpre, *vpre, *kown, *vown;  // own pointers offset so that p is at p * kvw
  int64_t kvw;
  int plen, begin, end;
  __device__ __forceinline__ const uint16_t* K(int p) const {
    return (p < plen ? kpre : kown) + static_cast<int64_t>(p) * kvw;
  }
  __device__ __forceinline__ const uint16_t* V(int p) const {
    return (p < plen ? vpre : vown) + static_cast<int64_t>(p) * kvw;
  }
};
// With own_only the range starts at the slot's plen (the prefix is PrefixAttentionKernel's).
__device__ __forceinline__ HeadKv RowHeadKv(const DevKv& c, const DevRow& ri, int kvh, int hd,
                                            int64_t kvw, bool own_only) {
  const int ctx = ri.pos + 1, from = own_only ? min(c.plen, ctx) : 0;
  const int span = (ctx - from + static_cast<int>(gridDim.z) - 1) / static_cast<int>(gridDim.z);
  const int64_t own = static_cast<int64_t>(c.plen) * kvw;
  HeadKv h;
  h.kpre = c.kp + kvh * hd;
  h.vpre = c.vp + kvh * hd;
  h.kown = c.k + kvh * hd - own;
  h.vown = c.v + kvh * hd - own;
  h.kvw = kvw;
  h.plen = c.plen;
  h.begin = from + static_cast<int>(blockIdx.z) * span;
  h.end = min(ctx, h.begin + span);
  return h;
}

constexpr int kMaxGroup = 8;
constexpr int kAttnWarps = 8;

// One output element of the NW warps' online-softmax partials of query row `row` (max sm, sum sl,
// unnormalised sacc; a warp that saw no position has sm = -inf): returns the merged unnormalised
// value at dimension d, with the merged max and sum (-inf and 0 when no warp saw a position).
template <int NW, int R, int HD>
__device__ __forceinline__ float MergeWarps(const float (&sm)[NW][R], const float (&sl)[NW][R],
                                            const float (&sacc)[NW][R][HD], int row, int d,
                                            float* mx_out, float* lsum_out) {
  float mx = -INFINITY;
  for (int w = 0; w < NW; ++w) mx = fmaxf(mx, sm[w][row]);
  float lsum = 0.0f, o = 0.0f;
  for (int w = 0; w < NW; ++w) {
    if (sm[w][row] == -INFINITY) continue;
    const float f = expf(sm[w][row] - mx);
    lsum += sl[w][row] * f;
    o += sacc[w][row][d] * f;
  }
  *mx_out = mx;
  *lsum_out = lsum;
  return o;
}

// The end of every decode-attention kernel (call after __syncthreads()): merges the warps' online-
// softmax partials of the block's (row r, KV head kvh, split blockIdx.z) kept in shared memory
// (max sm, sum sl, unnormalised sacc over hd dims, per query head of the group; a warp that saw no
// position has sm = -inf) and writes the normalised output, or with splits > 1 this split's
// unnormalised partial relative to its own max for AttentionCombineKernel (a split past the context
// leaves m = -inf, l = 0).
template <int NW, int HD, bool kCopy = false>
__device__ __forceinline__ void MergeWarpPartials(const float (&sm)[NW][kMaxGroup],
                                                  const float (&sl)[NW][kMaxGroup],
                                                  const float (&sacc)[NW][kMaxGroup][HD], int G,
                                                  int hd, int kvh, int64_t r, int H, int splits,
                                                  AttnOut out, float* part_o, float* part_ml,
                                                  int merge_from) {
  const int64_t qw = static_cast<int64_t>(H) * hd;
  const int split = blockIdx.z;
  constexpr int kMaxPrefixParts = 8;
  if (merge_from > 0 && splits - merge_from <= kMaxPrefixParts) {
    // The block's range is the row's only own one and the partials [merge_from, splits) are the
    // shared prefix's (written before this kernel started): merge them here, no combine pass.
    // The factors depend only on the head, so they are computed once per head; the element loop
    // then only loads the prefix outputs, several in flight (per element, the loads of the
    // prefix's max and the output were a chain of dependent global loads: call AI, own-range
    // kernel at Llama-3B B=512 with ~3 own positions 29.0 -> 24.7 µs).
    __shared__ float fct[kMaxGroup][kMaxPrefixParts + 1], inv[kMaxGroup];
    const int np = splits - merge_from;
    if (threadIdx.x < G) {
      const int g = threadIdx.x;
      float mx = -INFINITY, lsum = 0.0f;
      for (int w = 0; w < NW; ++w) mx = fmaxf(mx, sm[w][g]);
      for (int w = 0; w < NW; ++w) {
        if (sm[w][g] != -INFINITY) lsum += sl[w][g] * expf(sm[w][g] - mx);
      }
      const int64_t slot0 = (r * H + kvh * G + g) * splits + merge_from;
      float mc[kMaxPrefixParts], lc[kMaxPrefixParts];
      float mm = mx;
#pragma unroll
      for (int c = 0; c < kMaxPrefixParts; ++c) {
        mc[c] = c < np ? part_ml[2 * (slot0 + c)] : -INFINITY;
        lc[c] = c < np ? part_ml[2 * (slot0 + c) + 1] : 0.0f;
        mm = fmaxf(mm, mc[c]);
      }
      const float f = mx == -INFINITY ? 0.0f : expf(mx - mm);
      float tot = lsum * f;
      fct[g][0] = f;
#pragma unroll
      for (int c = 0; c < kMaxPrefixParts; ++c) {
        const float fc = mc[c] == -INFINITY ? 0.0f : expf(mc[c] - mm);
        if (c < np) fct[g][1 + c] = fc;
        tot += lc[c] * fc;
      }
      inv[g] = 1.0f / tot;
    }
    __syncthreads();
    // Chunks of kChunk elements per thread whose prefix outputs are all loaded before any output
    // is stored. The compiler may not move a load of part_o above a store to out (they could
    // alias), so an element loop left the loads one global round trip each, in a chain at the end
    // of every block (call AJ, Llama-1B B=256: 16 % of the own-range kernel's stall samples).
    constexpr int kChunk = 4;
    const int n = G * hd;
    for (int i0 = threadIdx.x; i0 < n; i0 += kChunk * blockDim.x) {
      float po[kChunk][kMaxPrefixParts];
#pragma unroll
      for (int k = 0; k < kChunk; ++k) {
        const int i = i0 + k * static_cast<int>(blockDim.x);
        const int g = i < n ? i / hd : 0, d = i % hd;
        const int64_t slot0 = (r * H + kvh * G + g) * splits + merge_from;
#pragma unroll
        for (int c = 0; c < kMaxPrefixParts; ++c) {
          po[k][c] = i < n && c < np ? part_o[(slot0 + c) * hd + d] : 0.0f;
        }
      }
#pragma unroll
      for (int k = 0; k < kChunk; ++k) {
        const int i = i0 + k * static_cast<int>(blockDim.x);
        if (i < n) {
          const int g = i / hd, d = i % hd;
          float mx, lsum;
          float o = MergeWarps(sm, sl, sacc, g, d, &mx, &lsum) * fct[g][0];
#pragma unroll
          for (int c = 0; c < kMaxPrefixParts; ++c) {
            if (c < np) o += po[k][c] * fct[g][1 + c];
          }
          out.Put<kCopy>(r * qw + (kvh * G + g) * hd + d, o * inv[g]);
        }
      }
    }
    return;
  }
  // Without a prefix, with several own ranges, or with more than kMaxPrefixParts prefix ranges
  // (PrefixRanges gives up to one per 64 prompt positions): per element.
  for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
    const int g = i / hd, d = i % hd;
    float mx, lsum;
    float o = MergeWarps(sm, sl, sacc, g, d, &mx, &lsum);
    const int64_t head = kvh * G + g;
    if (merge_from > 0) {
      // The block's range is the row's only own one and the partials [merge_from, splits) are the
      // shared prefix's (written before this kernel started): merge them here, no combine pass.
      const int64_t slot0 = (r * H + head) * splits;
      float mm = mx;
      for (int c = merge_from; c < splits; ++c) mm = fmaxf(mm, part_ml[2 * (slot0 + c)]);
      const float f = mx == -INFINITY ? 0.0f : expf(mx - mm);
      o *= f;
      lsum *= f;
      for (int c = merge_from; c < splits; ++c) {
        const float mc = part_ml[2 * (slot0 + c)];
        if (mc == -INFINITY) continue;
        const float fc = expf(mc - mm);
        lsum += part_ml[2 * (slot0 + c) + 1] * fc;
        o += part_o[(slot0 + c) * hd + d] * fc;
      }
      out.Put<kCopy>(r * qw + head * hd + d, o / lsum);
    } else if (splits == 1) {
      out.Put<kCopy>(r * qw + head * hd + d, o / lsum);
    } else {
      const int64_t slot = (r * H + head) * splits + split;
      part_o[slot * hd + d] = o;
      if (d == 0) {
        part_ml[2 * slot] = mx;
        part_ml[2 * slot + 1] = lsum;
      }
    }
  }
}

// One block per (row, KV head). Each warp walks a strided subset of the positions with an online
// softmax for the group's query heads (lanes split head_dim); the warps' partial results are merged
// at the end. EPL = head_dim / 32 elements per lane.
template <int EPL>
__global__ void __launch_bounds__(kAttnWarps * 32)
    AttentionKernel(const float* q, const DevRow* info, const DevKv* kv, int H, int Hkv, int hd,
                    AttnOut out, int splits, float* part_o, float* part_ml, bool own_only,
                    int merge_from) {
  PdlGate();
  __shared__ float sq[kMaxGroup][EPL * 32];
  __shared__ float sm[kAttnWarps][kMaxGroup], sl[kAttnWarps][kMaxGroup];
  __shared__ float sacc[kAttnWarps][kMaxGroup][EPL * 32];
  const int kvh = blockIdx.x;
  const int64_t r = blockIdx.y;
  const int G = H / Hkv;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t qw = static_cast<int64_t>(H) * hd, kvw = static_cast<int64_t>(Hkv) * hd;
  const DevRow ri = info[r];
  const float scale = rsqrtf(static_cast<float>(hd));
  for (int i = threadIdx.x; i < G * EPL * 32; i += blockDim.x) {
    const int g = i / (EPL * 32), d = i % (EPL * 32);
    sq[g][d] = d < hd ? q[r * qw + (kvh * G + g) * hd + d] * scale : 0.0f;
  }
  __syncthreads();
  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][EPL];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < EPL; ++e) acc[g][e] = 0.0f;
  }
  const HeadKv hk = RowHeadKv(kv[ri.slot], ri, kvh, hd, kvw, own_only);
  // Unrolled so the loads of the next positions are in flight while this one reduces.
#pragma unroll 2
  for (int p = hk.begin + warp; p < hk.end; p += kAttnWarps) {
    const uint16_t* kb = hk.K(p);
    const uint16_t* vb = hk.V(p);
    float kx[EPL], vv[EPL];
#pragma unroll
    for (int e = 0; e < EPL; ++e) {
      const int d = lane + 32 * e;
      kx[e] = d < hd ? Bf(kb[d]) : 0.0f;
      vv[e] = d < hd ? Bf(vb[d]) : 0.0f;
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g < G) {
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) s += sq[g][lane + 32 * e] * kx[e];
        s = WarpSum(s);
        const float mn = fmaxf(m[g], s);
        const float alpha = expf(m[g] - mn), pe = expf(s - mn);
        l[g] = l[g] * alpha + pe;
#pragma unroll
        for (int e = 0; e < EPL; ++e) acc[g][e] = acc[g][e] * alpha + pe * vv[e];
        m[g] = mn;
      }
    }
  }
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < G) {
      if (lane == 0) {
        sm[warp][g] = m[g];
        sl[warp][g] = l[g];
      }
#pragma unroll
      for (int e = 0; e < EPL; ++e) sacc[warp][g][lane + 32 * e] = acc[g][e];
    }
  }
  __syncthreads();
  MergeWarpPartials<kAttnWarps, EPL * 32>(sm, sl, sacc, G, hd, kvh, r, H, splits, out, part_o,
                                          part_ml, merge_from);
}

// Decode attention with one KV position per lane (head_dim HD = 32 * EPL, a multiple of 32): each
// warp scores 32 positions at once (a lane reads its whole K row with 16-byte loads and dots it
// with the group's queries from shared memory), updates the online softmax once per 32 positions,
// then accumulates P.V with the probabilities broadcast by shuffles and V rows read coalesced
// (lane = dimensions). About 2.5x fewer instructions per position than AttentionKernel's
// lanes-over-dimensions walk, which pays a warp reduction per position and query head.
constexpr int kLaneWarps = 4;
template <int EPL>
__global__ void __launch_bounds__(kLaneWarps * 32)
    AttentionLanesKernel(const float* q, const DevRow* info, const DevKv* kv, int H, int Hkv,
                         AttnOut out, int splits, float* part_o, float* part_ml, bool own_only,
                         int merge_from) {
  PdlGate();
  constexpr int HD = 32 * EPL;
  __shared__ float sq[kMaxGroup][HD];
  __shared__ float sm[kLaneWarps][kMaxGroup], sl[kLaneWarps][kMaxGroup];
  __shared__ float sacc[kLaneWarps][kMaxGroup][HD];
  const int kvh = blockIdx.x;
  const int64_t r = blockIdx.y;
  const int G = H / Hkv;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t qw = static_cast<int64_t>(H) * HD, kvw = static_cast<int64_t>(Hkv) * HD;
  const DevRow ri = info[r];
  const float scale = rsqrtf(static_cast<float>(HD));
  for (int i = threadIdx.x; i < G * HD; i += blockDim.x)
    sq[i / HD][i % HD] = q[r * qw + (kvh * G + i / HD) * HD + i % HD] * scale;
  __syncthreads();
  const HeadKv hk = RowHeadKv(kv[ri.slot], ri, kvh, HD, kvw, own_only);
  const int p_begin = hk.begin, p_end = hk.end;

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][EPL];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < EPL; ++e) acc[g][e] = 0.0f;
  }
  for (int base = p_begin + warp * 32; base < p_end; base += kLaneWarps * 32) {
    const int p = base + lane;
    const bool valid = p < p_end;
    // Scores of this lane's position for every query head of the group.
    float sc[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) sc[g] = 0.0f;
    if (valid) {
      const uint16_t* krow = hk.K(p);
#pragma unroll
      for (int d0 = 0; d0 < HD; d0 += 8) {
        const uint4 raw = *reinterpret_cast<const uint4*>(krow + d0);
        const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float k0 = __uint_as_float(w[j] << 16), k1 = __uint_as_float(w[j] & 0xffff0000u);
#pragma unroll
          for (int g = 0; g < kMaxGroup; ++g) {
            if (g < G) sc[g] += sq[g][d0 + 2 * j] * k0 + sq[g][d0 + 2 * j + 1] * k1;
          }
        }
      }
    }
    float pr[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= G) continue;
      float tmax = valid ? sc[g] : -INFINITY;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
      const float mn = fmaxf(m[g], tmax);
      const float alpha = expf(m[g] - mn);  // m = -inf at the start: alpha 0, nothing to scale
      pr[g] = valid ? expf(sc[g] - mn) : 0.0f;
      l[g] = l[g] * alpha + pr[g];  // lane-partial; summed over lanes at the end
#pragma unroll
      for (int e = 0; e < EPL; ++e) acc[g][e] *= alpha;
      m[g] = mn;
    }
    // P.V in groups of 8 positions: the 8 V rows are loaded before any is used, so their latencies
    // overlap (a loop that loads and uses one row at a time waits ~500 cycles per row). Positions
    // past the range have probability 0 and read row `base` instead (always valid).
    const int nvalid = min(32, p_end - base);
    for (int j0 = 0; j0 < nvalid; j0 += 8) {
      float vv[8][EPL];
#pragma unroll
      for (int jj = 0; jj < 8; ++jj) {
        const int pj = base + ((j0 + jj) < nvalid ? j0 + jj : 0);
        const uint16_t* vrow = hk.V(pj);
        if constexpr (EPL == 1) {
          vv[jj][0] = Bf(vrow[lane]);
        } else if constexpr (EPL == 2) {
          const uint32_t w = *reinterpret_cast<const uint32_t*>(vrow + 2 * lane);
          vv[jj][0] = __uint_as_float(w << 16);
          vv[jj][1] = __uint_as_float(w & 0xffff0000u);
        } else {
          const uint2 w = *reinterpret_cast<const uint2*>(vrow + 4 * lane);
          vv[jj][0] = __uint_as_float(w.x << 16);
          vv[jj][1] = __uint_as_float(w.x & 0xffff0000u);
          vv[jj][2] = __uint_as_float(w.y << 16);
          vv[jj][3] = __uint_as_float(w.y & 0xffff0000u);
        }
      }
#pragma unroll
      for (int jj = 0; jj < 8; ++jj) {
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g >= G) continue;
          const float pj_g = __shfl_sync(0xffffffffu, pr[g], j0 + jj);  // 0 past the range
#pragma unroll
          for (int e = 0; e < EPL; ++e) acc[g][e] += pj_g * vv[jj][e];
        }
      }
    }
  }
  // Lane dims: lane owns dimensions [EPL * lane, EPL * lane + EPL) (matches the V loads above).
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= G) continue;
    float lsum = l[g];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) lsum += __shfl_xor_sync(0xffffffffu, lsum, o);
    if (lane == 0) {
      sm[warp][g] = m[g];
      sl[warp][g] = lsum;
    }
#pragma unroll
    for (int e = 0; e < EPL; ++e) sacc[warp][g][EPL * lane + e] = acc[g][e];
  }
  __syncthreads();
  MergeWarpPartials<kLaneWarps, HD>(sm, sl, sacc, G, HD, kvh, r, H, splits, out, part_o, part_ml,
                                    merge_from);
}

// bf16 pair packed for a tensor-core operand register: `lo` in the low half (the smaller k index).
__device__ __forceinline__ uint32_t PackBf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ float RoundBf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// d += A B for one m16n8k16 tensor-core op, bf16 inputs, f32 accumulation. Fragments as in the PTX
// ISA (lane = 4 g + t): a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1], a2 = A[g][2t+8, 2t+9],
// a3 = A[g+8][2t+8, 2t+9]; b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g]; d = D[g][2t, 2t+1],
// D[g+8][2t, 2t+1].
__device__ __forceinline__ void MmaBf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                        uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// NW consecutive 32-bit words from p (8- or 16-byte aligned; NW = 2, 4 or 8).
template <int NW>
__device__ __forceinline__ void LoadWords(const uint16_t* p, uint32_t (&w)[NW]) {
  if constexpr (NW == 2) {
    const uint2 v = *reinterpret_cast<const uint2*>(p);
    w[0] = v.x;
    w[1] = v.y;
  } else {
#pragma unroll
    for (int i = 0; i < NW / 4; ++i) {
      const uint4 v = reinterpret_cast<const uint4*>(p)[i];
      w[4 * i] = v.x;
      w[4 * i + 1] = v.y;
      w[4 * i + 2] = v.z;
      w[4 * i + 3] = v.w;
    }
  }
}

// One warp iteration's operands of NS 16-position sub-tiles from `base` for the mma kernels, all
// loads issued before any is used; positions at or past p_end read row `base` (always valid; the
// callers give them probability 0). kw[u][j][cq]: the 16 bytes of K row base + 16u + 8j + g at
// dimensions 32 cq + 8 t + [0, 8); vw[u][i]: the HD/8 dimensions VDim(g, s), s < HD/8, of V rows
// base + 16u + {2t, 2t+1, 2t+8, 2t+9}[i].
// Head_dim 128: lane group g holds dimensions 8g + [0, 8) and 64 + 8g + [0, 8), so each 16-byte
// load instruction of the warp reads 128 contiguous bytes of a V row (whole sectors). With
// 16g + [0, 16) each instruction read half of every sector it touched (Nsight Compute, call AC:
// 32 % of the own-range kernel's sectors excessive, L1 hit 33 %); whole sectors measured -1 to -6 %
// in the attention micro-benchmark and neutral in the engine (call AD).
template <int HD>
__device__ __forceinline__ constexpr int VDim(int g, int s) {
  if constexpr (HD == 128) return (s >> 3) * 64 + g * 8 + (s & 7);
  return g * (HD / 8) + s;
}
template <int NS, int HD>
__device__ __forceinline__ void LoadKvTile(const HeadKv& hk, int base, int p_end, int g, int t,
                                           uint32_t (&kw)[NS][2][HD / 32][4],
                                           uint32_t (&vw)[NS][4][HD / 16]) {
#pragma unroll
  for (int u = 0; u < NS; ++u) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      int p = base + 16 * u + 8 * j + g;
      p = p < p_end ? p : base;
      const uint16_t* row = hk.K(p) + t * 8;
#pragma unroll
      for (int cq = 0; cq < HD / 32; ++cq) {
        const uint4 v = *reinterpret_cast<const uint4*>(row + cq * 32);
        kw[u][j][cq][0] = v.x;
        kw[u][j][cq][1] = v.y;
        kw[u][j][cq][2] = v.z;
        kw[u][j][cq][3] = v.w;
      }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      int p = base + 16 * u + 2 * t + (i & 1) + 8 * (i >> 1);
      p = p < p_end ? p : base;
      if constexpr (HD == 128) {
        const uint16_t* v = hk.V(p) + g * 8;
        const uint4 a = *reinterpret_cast<const uint4*>(v);
        const uint4 b = *reinterpret_cast<const uint4*>(v + 64);
        vw[u][i][0] = a.x;
        vw[u][i][1] = a.y;
        vw[u][i][2] = a.z;
        vw[u][i][3] = a.w;
        vw[u][i][4] = b.x;
        vw[u][i][5] = b.y;
        vw[u][i][6] = b.z;
        vw[u][i][7] = b.w;
      } else {
        LoadWords<HD / 16>(hk.V(p) + g * (HD / 8), vw[u][i]);
      }
    }
  }
}

// Decode attention on tensor cores (head_dim HD = 32, 64 or 128; group G <= 8), FlashDecoding
// style: each warp takes 16 * NS positions per iteration and runs Q.K^T and P.V as m16n8k16 mma ops
// on the group's query heads. In Q.K^T rows g < 8 hold the bf16 rounding of query head g and rows
// g + 8 the bf16 rounding of its remainder; the probabilities enter P.V the same way (value and
// remainder), so each product sums to near-f32 accuracy on the bf16 cache (max error 1.5e-5
// against a double reference, the CUDA-core kernels 1.4e-6: the remainder is itself rounded to
// bf16) while the instruction count per position drops ~10x (the CUDA-core kernels are
// latency/issue-bound at large batch, see docs/perf/cuda.md). Operands come straight from global
// memory in fragment order: the dot product does not care in which order the head dimensions are
// paired, so a lane reads 16 contiguous bytes of a K row (the k order of Q is permuted to match),
// and for P.V a lane reads HD/8 dimensions (VDim) of four V rows, transposed into (position,
// position) pairs by byte permutes.
// NS 16-position sub-tiles per warp iteration (loads in flight vs registers), NW warps per block.
//
// P.V comes in two forms. With kPvT (every variant but the one-warp kernel at head_dim <= 64) it
// is O^T += V^T P^T: V is the A operand (the same byte-permuted words) and the probabilities the
// B columns (value and remainder as two products), so the accumulator holds HD/16 tiles instead of
// HD/8 and no row carries only a remainder. With head_dim 128 the Q fragments also move to shared
// memory (kQs, up to four warps). Call AE (Llama-3B B=512, own ranges of 256, µs per layer): 210
// -> 192.5 for the one-warp kernel (168 -> 120 registers, 12 -> 16 warps per SM), 300 -> 259 for
// the four-warp one; head_dim 64's one-warp kernel was 6-19 % slower in the new form at 80
// registers and keeps the old one (with two sub-tiles per iteration in the new form, 128
// registers: neutral to +2 %, call AG). An L2 prefetch of the positions 1-4 iterations ahead
// (cp.async.bulk.prefetch) made every cell slower (call AF: Llama-3B B=512 +7 to +16 %).
template <int HD, int NW>
constexpr bool PvTransposed() {
  return HD == 128 || NW != 1;
}
// Minimum resident blocks per SM (launch bounds): the register count the variant was measured
// best at. Old form: 3 (head_dim 128), 4 (64) or 8 (32) four-warp blocks, and as many warps for
// the one-warp variant (calls K -> N: 176 registers and 2 blocks per SM were 7 % slower).
template <int HD, int NS, int NW>
constexpr int MmaMinBlocks() {
  constexpr int old_four = HD == 128 ? 3 : HD == 64 ? 4 : 8;
  constexpr int four_warps = HD == 128 ? 4 : HD == 64 ? 5 : 8;
  constexpr int one_warp = PvTransposed<HD, 1>() ? 16 : 4 * old_four;
  return NS != 1 ? 1 : NW == 4 ? four_warps : NW == 1 ? one_warp : 1;
}
template <int HD, int NS, int NW>
__global__ void __launch_bounds__(NW * 32, (MmaMinBlocks<HD, NS, NW>()))
    AttentionMmaKernel(const float* q, const DevRow* info, const DevKv* kv, int H, int Hkv,
                       AttnOut out, int splits, float* part_o, float* part_ml, bool own_only,
                       int merge_from) {
  PdlGate();
  constexpr int kMmaWarps = NW;
  constexpr int KC = HD / 16;  // k-steps of Q.K^T
  constexpr int KQ = HD / 32;  // 16-byte pieces of a K row per lane
  constexpr int DPL = HD / 8;  // V dimensions per lane = n-tiles of P.V
  constexpr int VW = DPL / 2;  // 32-bit V words per lane and position
  constexpr int kStep = 16 * NS;
  __shared__ float sm[kMmaWarps][kMaxGroup], sl[kMmaWarps][kMaxGroup];
  __shared__ float sacc[kMmaWarps][kMaxGroup][HD];
  const int kvh = blockIdx.x;
  const int64_t r = blockIdx.y;
  const int G = H / Hkv;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t qw = static_cast<int64_t>(H) * HD, kvw = static_cast<int64_t>(Hkv) * HD;
  const DevRow ri = info[r];
  const float scale = rsqrtf(static_cast<float>(HD));

  // A operand of Q.K^T for k-step kc: head g's scaled query at dimensions 32 (kc / 2) + 8 t +
  // 4 (kc % 2) + {0, 1} (k = 2t, 2t+1) and + {2, 3} (k = 2t+8, 2t+9), which is where the lane's
  // 16-byte K piece puts them. Rows g >= G are zero.
  constexpr bool kPvT = PvTransposed<HD, NW>();
  // The fragments in shared memory (up to four warps: eight would pass 48 KiB).
  constexpr bool kQs = HD == 128 && NW <= 4;
  uint32_t qa[kQs ? 1 : KC][4];
  __shared__ uint4 sqa[kQs ? kMmaWarps : 1][kQs ? KC : 1][32];
  {
    const bool has = g < G;
    const float* qrow = q + r * qw + static_cast<int64_t>(kvh * G + (has ? g : 0)) * HD;
#pragma unroll
    for (int c = 0; c < KQ; ++c) {
      const float4 x0 = *reinterpret_cast<const float4*>(qrow + c * 32 + t * 8);
      const float4 x1 = *reinterpret_cast<const float4*>(qrow + c * 32 + t * 8 + 4);
      const float xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
      float hi[8], lo[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float v = has ? xs[i] * scale : 0.0f;
        hi[i] = RoundBf16(v);
        lo[i] = v - hi[i];
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint4 f = make_uint4(
            PackBf16x2(hi[4 * h], hi[4 * h + 1]), PackBf16x2(lo[4 * h], lo[4 * h + 1]),
            PackBf16x2(hi[4 * h + 2], hi[4 * h + 3]), PackBf16x2(lo[4 * h + 2], lo[4 * h + 3]));
        if constexpr (kQs) {
          sqa[warp][2 * c + h][lane] = f;
        } else {
          qa[2 * c + h][0] = f.x;
          qa[2 * c + h][1] = f.y;
          qa[2 * c + h][2] = f.z;
          qa[2 * c + h][3] = f.w;
        }
      }
    }
  }
  const HeadKv hk = RowHeadKv(kv[ri.slot], ri, kvh, HD, kvw, own_only);
  const int p_begin = hk.begin, p_end = hk.end;

  float m = -INFINITY, l = 0.0f;  // head g's running max and this lane's share of the sum
  // acc[s]: n-tile s of O (rows: heads, value / remainder), or with kPvT m-tile s of O^T (rows:
  // dimensions, columns: heads).
  constexpr int AT = kPvT ? HD / 16 : DPL;
  float acc[AT][4];
#pragma unroll
  for (int s = 0; s < AT; ++s) {
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[s][i] = 0.0f;
  }
  for (int base = p_begin + warp * kStep; base < p_end; base += kMmaWarps * kStep) {
    // Every load of the iteration is issued before any is used. Positions past the range read
    // row `base` (always valid) and get probability 0.
    uint32_t kw[NS][2][KQ][4];
    uint32_t vw[NS][4][VW];
    LoadKvTile<NS, HD>(hk, base, p_end, g, t, kw, vw);
    // Scores: sc[u][j][e] = S[head g][position base + 16u + 8j + 2t + e] (hi row + lo row).
    float sc[NS][2][2];
    float tmax = -INFINITY;
#pragma unroll
    for (int u = 0; u < NS; ++u) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int kc = 0; kc < KC; ++kc) {
          const uint4 f =
              kQs ? sqa[warp][kc][lane] : make_uint4(qa[kc][0], qa[kc][1], qa[kc][2], qa[kc][3]);
          MmaBf16(d, f.x, f.y, f.z, f.w, kw[u][j][kc >> 1][2 * (kc & 1)],
                  kw[u][j][kc >> 1][2 * (kc & 1) + 1]);
        }
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const bool valid = base + 16 * u + 8 * j + 2 * t + e < p_end;
          sc[u][j][e] = valid ? d[e] + d[e + 2] : -INFINITY;
          tmax = fmaxf(tmax, sc[u][j][e]);
        }
      }
    }
    // The four lanes t of a row hold its 16 NS positions between them.
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
    const float mn = fmaxf(m, tmax);   // finite: position `base` is valid
    const float alpha = expf(m - mn);  // 0 on the first iteration (m = -inf)
    m = mn;
    l *= alpha;
    if constexpr (!kPvT) {
#pragma unroll
      for (int s = 0; s < AT; ++s) {
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[s][i] *= alpha;
      }
    } else {
      // The lane's accumulator columns are heads 2t and 2t + 1, whose maxima rows g = 2t, 2t + 1
      // hold (lanes 8t and 8t + 4).
      const float a0 = __shfl_sync(0xffffffffu, alpha, 8 * t);
      const float a1 = __shfl_sync(0xffffffffu, alpha, 8 * t + 4);
#pragma unroll
      for (int c = 0; c < AT; ++c) {
        acc[c][0] *= a0;
        acc[c][1] *= a1;
        acc[c][2] *= a0;
        acc[c][3] *= a1;
      }
    }
#pragma unroll
    for (int u = 0; u < NS; ++u) {
      // A operand of P.V (k = position within the sub-tile): the score layout above is already
      // the A layout (j = 0: k = 2t + e, j = 1: k = 8 + 2t + e); rows g + 8 carry the remainder.
      float ph[2][2], pl[2][2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pr = expf(sc[u][j][e] - mn);
          l += pr;
          ph[j][e] = RoundBf16(pr);
          pl[j][e] = pr - ph[j][e];
        }
      }
      const uint32_t h0 = PackBf16x2(ph[0][0], ph[0][1]), l0 = PackBf16x2(pl[0][0], pl[0][1]);
      const uint32_t h1 = PackBf16x2(ph[1][0], ph[1][1]), l1 = PackBf16x2(pl[1][0], pl[1][1]);
      if constexpr (!kPvT) {
#pragma unroll
        for (int s = 0; s < DPL; ++s) {
          // B[k][column g] = V[position k][dimension VDim(g, s)]: the halves s % 2 of the lane's
          // word s / 2 at positions (2t, 2t+1) and (2t+8, 2t+9).
          const uint32_t sel = (s & 1) ? 0x7632u : 0x5410u;
          const uint32_t b0 = __byte_perm(vw[u][0][s >> 1], vw[u][1][s >> 1], sel);
          const uint32_t b1 = __byte_perm(vw[u][2][s >> 1], vw[u][3][s >> 1], sel);
          MmaBf16(acc[s], h0, l0, h1, l1, b0, b1);
        }
      } else {
        // O^T += V^T P^T: A[row][k] = V[position k][dimension VDim(g, 2c + row / 8)] from the
        // same byte permutes, B[k][column g] = P[head g][position k], which is where the score
        // layout already holds it (b0: k = 2t + e, b1: k = 8 + 2t + e); value and remainder as
        // two products on one accumulator.
#pragma unroll
        for (int c = 0; c < AT; ++c) {
          const uint32_t v0 = __byte_perm(vw[u][0][c], vw[u][1][c], 0x5410u);
          const uint32_t v1 = __byte_perm(vw[u][0][c], vw[u][1][c], 0x7632u);
          const uint32_t v2 = __byte_perm(vw[u][2][c], vw[u][3][c], 0x5410u);
          const uint32_t v3 = __byte_perm(vw[u][2][c], vw[u][3][c], 0x7632u);
          MmaBf16(acc[c], v0, v1, v2, v3, h0, h1);
          MmaBf16(acc[c], v0, v1, v2, v3, l0, l1);
        }
      }
    }
  }
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (g < G && t == 0) {
    sm[warp][g] = m;
    sl[warp][g] = l;
  }
  if constexpr (!kPvT) {
    if (g < G) {
      // acc[s] = O[row g / g + 8][column 2t + {0, 1}] of n-tile s: dimension VDim(2t + e, s).
#pragma unroll
      for (int s = 0; s < DPL; ++s) {
        sacc[warp][g][VDim<HD>(2 * t, s)] = acc[s][0] + acc[s][2];
        sacc[warp][g][VDim<HD>(2 * t + 1, s)] = acc[s][1] + acc[s][3];
      }
    }
  } else {
    // acc[c] = O^T[row g / g + 8][column 2t + {0, 1}]: heads 2t + e at dimensions
    // VDim(g, 2c) / VDim(g, 2c + 1).
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      if (2 * t + e < G) {
#pragma unroll
        for (int c = 0; c < AT; ++c) {
          sacc[warp][2 * t + e][VDim<HD>(g, 2 * c)] = acc[c][e];
          sacc[warp][2 * t + e][VDim<HD>(g, 2 * c + 1)] = acc[c][e + 2];
        }
      }
    }
  }
  __syncthreads();
  MergeWarpPartials<kMmaWarps, HD, AttnWritesCopy<NW>()>(sm, sl, sacc, G, HD, kvh, r, H, splits,
                                                         out, part_o, part_ml, merge_from);
}

// cp.async / ldmatrix wrappers for the prefix kernel's shared-memory tiles (sm_80+ PTX).
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
// Four 8x8 b16 matrices; lanes 8j..8j+7 give the row addresses of matrix j, which lands in r[j]
// (lane 4g + t: row g, columns 2t, 2t+1; with Trans: rows 2t, 2t+1 of column g).
template <bool Trans>
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], const uint16_t* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  if constexpr (Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
  }
}

// The shared prompt prefix of decode attention for many rows at once (cascade attention), as a
// FlashAttention-style tile kernel: a block takes one task (up to kPrefixTaskRows / G rows whose
// slots share one prefix, task_rows[blockIdx.x]), one KV head (blockIdx.y) and one position range
// of the prefix (blockIdx.z of gridDim.z, whole tiles). The task's query heads are the block's
// 16 * kPrefixWarps M rows (M row m = query head m % G of the task's row m / G), 16 per warp. The
// block streams its range through shared memory in tiles of kPrefixTile positions (cp.async, two
// buffers: the next tile loads while this one is used), and every warp runs S = Q K^T and O += P V
// on the tile as m16n8k16 mma ops with operands from ldmatrix. So each prefix position is read
// from L2 once per task of up to 64 query heads, where the per-row walk (AttentionMmaKernel) reads
// it once per row: the walk is bound by the L2's bandwidth at large batch (docs/perf/cuda.md, call
// M), and an earlier version of this kernel that kept the walk's register-fed shape for 16 query
// heads per block was latency-bound and lost (call L). f32 accuracy on the bf16 cache as the walk:
// Q and P enter as bf16 value + bf16 remainder, two mma ops on the same K / V operand. Writes each
// (row, head)'s unnormalised partial of its range at split index split0 + blockIdx.z for
// AttentionCombineKernel; a range past the prefix (or a slot without one) writes m = -inf, l = 0.
constexpr int kPrefixWarps = kPrefixTaskRows / 16;
constexpr int kPrefixTile = 64;
template <int HD>
constexpr int PrefixSmemBytes() {
  return 2 * 2 * kPrefixTile * (HD + 8) * 2;  // [buffer][K, V][position][HD + 8 pad] bf16
}
template <int HD>
__global__ void __launch_bounds__(kPrefixWarps * 32)
    PrefixAttentionKernel(const float* q, const int32_t* task_rows, const DevRow* info,
                          const DevKv* kv, int H, int Hkv, int split0, int splits, float* part_o,
                          float* part_ml) {
  PdlGate();
  constexpr int KC = HD / 16;          // k-steps of Q K^T
  constexpr int DT = HD / 8;           // n-tiles of P V
  constexpr int NT = kPrefixTile / 8;  // n-tiles of S
  // Rows padded by 16 bytes: the 8 rows an ldmatrix phase reads start 4 banks apart.
  constexpr int LD = HD + 8;
  constexpr int CPR = HD / 8;  // 16-byte pieces per K / V row
  extern __shared__ __align__(16) uint16_t tiles[];
  const int kvh = blockIdx.y;
  const int G = H / Hkv, rw = kPrefixTaskRows / G;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int32_t* trow = task_rows + static_cast<int64_t>(blockIdx.x) * kPrefixTaskRows;
  const int64_t qw = static_cast<int64_t>(H) * HD, kvw = static_cast<int64_t>(Hkv) * HD;
  // This lane's M rows 16 warp + g + 8 a: batch row (-1: padding, query 0, never written), head.
  int mrow[2], mhead[2];
#pragma unroll
  for (int a = 0; a < 2; ++a) {
    const int m = 16 * warp + g + 8 * a, i = m / G;
    mrow[a] = i < rw ? trow[i] : -1;
    mhead[a] = kvh * G + m % G;
  }
  const DevKv c = kv[info[trow[0]].slot];  // every task has a first row; all share c's prefix
  // A fragments of Q K^T, [hi, lo][k-step][register]: rows g / g + 8, dimensions 16 kc + 2t + {0,
  // 1} and + {8, 9}. All 4 * KC loads of the lane are issued before the first is used, padding rows
  // reading batch row 0 (always there) and zeroed after: with each load under its own branch they
  // ran one round trip at a time, about a quarter of the kernel's stall samples at Llama-3B B=512
  // (call AJ).
  uint32_t qa[2][KC][4];
  {
    const float scale = rsqrtf(static_cast<float>(HD));
    float2 v[KC][2][2];
#pragma unroll
    for (int kc = 0; kc < KC; ++kc) {
#pragma unroll
      for (int a = 0; a < 2; ++a) {
        const int64_t row = mrow[a] >= 0 ? mrow[a] : 0;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          v[kc][a][h] = *reinterpret_cast<const float2*>(q + row * qw + mhead[a] * HD + 16 * kc +
                                                         8 * h + 2 * t);
        }
      }
    }
#pragma unroll
    for (int kc = 0; kc < KC; ++kc) {
#pragma unroll
      for (int a = 0; a < 2; ++a) {
        const bool has = mrow[a] >= 0;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const float x0 = has ? v[kc][a][h].x * scale : 0.0f;
          const float x1 = has ? v[kc][a][h].y * scale : 0.0f;
          const float h0 = RoundBf16(x0), h1 = RoundBf16(x1);
          qa[0][kc][2 * h + a] = PackBf16x2(h0, h1);
          qa[1][kc][2 * h + a] = PackBf16x2(x0 - h0, x1 - h1);
        }
      }
    }
  }
  const int zs = static_cast<int>(gridDim.z);
  const int span = ((c.plen + zs - 1) / zs + kPrefixTile - 1) / kPrefixTile * kPrefixTile;
  const int p_begin = static_cast<int>(blockIdx.z) * span, p_end = min(c.plen, p_begin + span);
  const int ntiles = p_end > p_begin ? (p_end - p_begin + kPrefixTile - 1) / kPrefixTile : 0;
  auto load = [&](int tile) {
    uint16_t* ks = tiles + (tile & 1) * 2 * kPrefixTile * LD;
    uint16_t* vs = ks + kPrefixTile * LD;
    const int base = p_begin + tile * kPrefixTile;
    for (int i = threadIdx.x; i < kPrefixTile * CPR; i += blockDim.x) {
      const int r = i / CPR, piece = i % CPR;
      // Positions past the range copy position p_begin (valid) and get probability 0.
      const int p = base + r < p_end ? base + r : p_begin;
      const int64_t off = static_cast<int64_t>(p) * kvw + kvh * HD + piece * 8;
      CpAsync16(ks + r * LD + piece * 8, c.kp + off);
      CpAsync16(vs + r * LD + piece * 8, c.vp + off);
    }
    CpAsyncCommit();
  };

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8
  float acc[DT][4];
#pragma unroll
  for (int n = 0; n < DT; ++n) {
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
  }
  if (ntiles > 0) load(0);
  for (int tile = 0; tile < ntiles; ++tile) {
    if (tile + 1 < ntiles) {
      load(tile + 1);
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();
    const uint16_t* ks = tiles + (tile & 1) * 2 * kPrefixTile * LD;
    const uint16_t* vs = ks + kPrefixTile * LD;
    const int base = p_begin + tile * kPrefixTile;
    // s[n] = S[row g / g + 8][position base + 8n + 2t + {0, 1}].
    float s[NT][4];
#pragma unroll
    for (int n = 0; n < NT; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) s[n][i] = 0.0f;
#pragma unroll
      for (int kc = 0; kc < KC; kc += 2) {
        // Matrices: positions 8n..8n+7 at dimensions 16 kc + {0, 8, 16, 24}: b0, b1 of k-steps
        // kc and kc + 1.
        uint32_t b[4];
        LdMatrixX4<false>(b, ks + (8 * n + (lane & 7)) * LD + 16 * kc + (lane >> 3) * 8);
#pragma unroll
        for (int hl = 0; hl < 2; ++hl) {
          MmaBf16(s[n], qa[hl][kc][0], qa[hl][kc][1], qa[hl][kc][2], qa[hl][kc][3], b[0], b[1]);
          if (kc + 1 < KC) {
            MmaBf16(s[n], qa[hl][kc + 1][0], qa[hl][kc + 1][1], qa[hl][kc + 1][2],
                    qa[hl][kc + 1][3], b[2], b[3]);
          }
        }
      }
    }
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < NT; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const bool valid = base + 8 * n + 2 * t + e < p_end;
#pragma unroll
        for (int a = 0; a < 2; ++a) {
          s[n][2 * a + e] = valid ? s[n][2 * a + e] : -INFINITY;
          tmax[a] = fmaxf(tmax[a], s[n][2 * a + e]);
        }
      }
    }
    float alpha[2];
#pragma unroll
    for (int a = 0; a < 2; ++a) {
      tmax[a] = fmaxf(tmax[a], __shfl_xor_sync(0xffffffffu, tmax[a], 1));
      tmax[a] = fmaxf(tmax[a], __shfl_xor_sync(0xffffffffu, tmax[a], 2));
      const float mn = fmaxf(m[a], tmax[a]);  // finite: position `base` is valid
      alpha[a] = expf(m[a] - mn);             // 0 on the first tile (m = -inf)
      m[a] = mn;
      l[a] *= alpha[a];
    }
#pragma unroll
    for (int n = 0; n < DT; ++n) {
      acc[n][0] *= alpha[0];
      acc[n][1] *= alpha[0];
      acc[n][2] *= alpha[1];
      acc[n][3] *= alpha[1];
    }
#pragma unroll
    for (int ks16 = 0; ks16 < kPrefixTile / 16; ++ks16) {
      // A operand of P V for positions base + 16 ks16 + [0, 16): S n-tiles 2 ks16 (k = 2t + e)
      // and 2 ks16 + 1 (k = 8 + 2t + e) are already in the A layout.
      uint32_t ph[4], pl[4];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
#pragma unroll
        for (int a = 0; a < 2; ++a) {
          const float p0 = expf(s[2 * ks16 + j][2 * a] - m[a]);
          const float p1 = expf(s[2 * ks16 + j][2 * a + 1] - m[a]);
          l[a] += p0 + p1;
          const float h0 = RoundBf16(p0), h1 = RoundBf16(p1);
          ph[2 * j + a] = PackBf16x2(h0, h1);
          pl[2 * j + a] = PackBf16x2(p0 - h0, p1 - h1);
        }
      }
#pragma unroll
      for (int dp = 0; dp < DT; dp += 2) {
        // Matrices (transposed): positions 16 ks16 + {0-7, 8-15} at dimensions 8 dp + {0-7}, then
        // at 8 dp + {8-15}: b0, b1 of n-tiles dp and dp + 1.
        uint32_t b[4];
        LdMatrixX4<true>(b, vs + (16 * ks16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + 8 * dp +
                                (lane >> 4) * 8);
        MmaBf16(acc[dp], ph[0], ph[1], ph[2], ph[3], b[0], b[1]);
        MmaBf16(acc[dp], pl[0], pl[1], pl[2], pl[3], b[0], b[1]);
        MmaBf16(acc[dp + 1], ph[0], ph[1], ph[2], ph[3], b[2], b[3]);
        MmaBf16(acc[dp + 1], pl[0], pl[1], pl[2], pl[3], b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this buffer before the load of tile + 2 reuses it
  }
#pragma unroll
  for (int a = 0; a < 2; ++a) {
    l[a] += __shfl_xor_sync(0xffffffffu, l[a], 1);
    l[a] += __shfl_xor_sync(0xffffffffu, l[a], 2);
    if (mrow[a] < 0) continue;
    const int64_t slot = (static_cast<int64_t>(mrow[a]) * H + mhead[a]) * splits + split0 +
                         static_cast<int64_t>(blockIdx.z);
    float* po = part_o + slot * HD + 2 * t;
#pragma unroll
    for (int n = 0; n < DT; ++n) {
      *reinterpret_cast<float2*>(po + 8 * n) = make_float2(acc[n][2 * a], acc[n][2 * a + 1]);
    }
    if (t == 0) {
      part_ml[2 * slot] = m[a];
      part_ml[2 * slot + 1] = l[a];
    }
  }
}

// Small-batch GEMM (M <= 16 rows): out[m, n] (+)= sum_k x[m, k] * w[n, k] with bf16 weights and f32
// activations, in f32 (the weights' bf16 values times f32 inputs, exact products). One block per
// kGemvCols output columns; its 8 warps take interleaved 256-element slices of K (each lane 8
// consecutive k: one 16-byte load per weight row), and the warps' partial sums are added in a fixed
// order, so the result is deterministic. Replaces, for decode at small batch, the bf16 hi/lo split
// + cuBLAS + sum-of-halves sequence (three kernels and a scratch buffer per matmul) with one kernel
// that streams the weights once at close to the memory bandwidth.
constexpr int kGemvCols = 4;
constexpr int kGemvWarps = 8;
template <int MR>
__global__ void __launch_bounds__(kGemvWarps * 32)
    GemvKernel(const uint16_t* w, int64_t N, int64_t K, const float* x, int64_t ldx, int M,
               float* out, int64_t ldo, bool accumulate) {
  // The block's weight rows (their first pass over K, up to 4 KB a row) into L2 while the kernel
  // before this one finishes.
  PdlPrefetchL2Rows(w + static_cast<int64_t>(blockIdx.x) * kGemvCols * K,
                    static_cast<int>(min(static_cast<int64_t>(kGemvCols),
                                         N - static_cast<int64_t>(blockIdx.x) * kGemvCols)),
                    K * 2, static_cast<int>(min(K * 2, int64_t{kGemvWarps} * 512)));
  PdlGate();
  __shared__ float red[kGemvWarps][kGemvCols][MR];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kGemvCols;
  float acc[kGemvCols][MR];
#pragma unroll
  for (int c = 0; c < kGemvCols; ++c) {
#pragma unroll
    for (int m = 0; m < MR; ++m) acc[c][m] = 0.0f;
  }
  for (int64_t k = (static_cast<int64_t>(warp) * 32 + lane) * 8; k < K;
       k += static_cast<int64_t>(kGemvWarps) * 256) {
    float wf[kGemvCols][8];
#pragma unroll
    for (int c = 0; c < kGemvCols; ++c) {
      // Columns past N repeat the last one (always valid) and are not written.
      const int64_t n = n0 + c < N ? n0 + c : N - 1;
      const uint4 raw = *reinterpret_cast<const uint4*>(w + n * K + k);
      const uint32_t ws[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        wf[c][2 * j] = __uint_as_float(ws[j] << 16);
        wf[c][2 * j + 1] = __uint_as_float(ws[j] & 0xffff0000u);
      }
    }
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      if (m < M) {
        const float4 a = *reinterpret_cast<const float4*>(x + m * ldx + k);
        const float4 b = *reinterpret_cast<const float4*>(x + m * ldx + k + 4);
        const float xs[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
        for (int c = 0; c < kGemvCols; ++c) {
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[c][m] = fmaf(wf[c][j], xs[j], acc[c][m]);
        }
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kGemvCols; ++c) {
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      const float v = WarpSum(acc[c][m]);
      if (lane == 0) red[warp][c][m] = v;
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kGemvCols * MR; i += blockDim.x) {
    const int c = i / MR, m = i % MR;
    const int64_t n = n0 + c;
    if (m >= M || n >= N) continue;
    float s = 0.0f;
    for (int wi = 0; wi < kGemvWarps; ++wi) s += red[wi][c][m];
    float* o = out + m * ldo + n;
    *o = accumulate ? *o + s : s;
  }
}

// The skinny GEMM of decode steps at 4-64 rows: out[m * ldo + n] (+)= sum_k x[m][k] w[n][k] with
// bf16 weights and a bf16 input (rounded, or hi rows then lo rows, whose products are summed in
// the same f32 accumulators: the split input's exactness without cuBLAS's [2M, N] scratch and the
// kernel that summed its halves). At these sizes the weight read is the whole cost, so a block
// streams a 128-feature x 64-k tile of w per pipeline stage (cp.async, kSkStages deep, XOR-swizzled
// rows for ldmatrix), and K is split over the CTAs of a thread-block cluster when the feature
// tiles alone would leave SMs idle; the cluster's partial tiles are summed through distributed
// shared memory in rank order (deterministic), each rank writing a share of the rows. The mma
// roles: A = 16 features of w (row-major, k contiguous, as stored), B = 8 input rows (k
// contiguous: the "col" operand), C = [feature][row].
constexpr int kSkFeat = 128;  // output features per block (4 warps x 2 m-tiles of 16)
constexpr int kSkKc = 64;     // k per pipeline stage (one 128-byte row of bf16)
constexpr int kSkStages = 3;
constexpr int kSkThreads = 128;
constexpr int kSkMaxSplit = 8;           // CTAs of a cluster along K (portable cluster size)
constexpr int kSkPStride = kSkFeat + 4;  // f32 partial row in shared memory (banks spread)

template <int NT, bool Split>
struct SkinnyLayout {
  static constexpr int kXRows = 8 * NT * (Split ? 2 : 1);
  static constexpr int kWBytes = kSkFeat * kSkKc * 2;
  static constexpr int kStage = kWBytes + kXRows * kSkKc * 2;
  static constexpr int kPipe = kSkStages * kStage;
  // The receive tile: rows (r / S) * S + rank for r < 8 NT, rank < S <= kSkMaxSplit.
  static constexpr int kPart = (8 * NT + kSkMaxSplit) * kSkPStride * 4;
  static constexpr int kBytes = kPipe > kPart ? kPipe : kPart;
};

// Byte offset of 16-byte chunk c of row r in a tile of 128-byte rows: chunks XOR-swizzled by the
// row so that ldmatrix's eight rows at one chunk hit eight different bank groups.
__device__ __forceinline__ int SkOffset(int r, int c) { return r * 128 + ((c ^ (r & 7)) << 4); }

template <int NT, bool Split>
__global__ void __launch_bounds__(kSkThreads, 2)
    SkinnyGemmKernel(const uint16_t* w, int N, int K, const uint16_t* x, int M, float* out,
                     int64_t ldo, bool accumulate, int chunks_per_split) {
  // The weight tiles of the first pipeline stages into L2 while the kernel before this one
  // finishes (48 KB a CTA: ~13 MB for the CTAs resident at once).
  PdlPrefetchL2Rows(w + static_cast<int64_t>(blockIdx.y) * kSkFeat * K +
                        static_cast<int64_t>(blockIdx.x) * chunks_per_split * kSkKc,
                    min(kSkFeat, N - static_cast<int>(blockIdx.y) * kSkFeat),
                    static_cast<int64_t>(K) * 2, min(chunks_per_split, kSkStages) * kSkKc * 2);
  PdlGate();
  using L = SkinnyLayout<NT, Split>;
  extern __shared__ __align__(128) unsigned char sk_smem[];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int split = blockIdx.x, n0 = blockIdx.y * kSkFeat;
  const int k_begin = split * chunks_per_split * kSkKc;
  const int chunks = chunks_per_split;

  // Stage `st` <- k chunk `c` of this split: w rows n0 + [0, 128) (rows past N read row N - 1,
  // whose features are not written), then the input rows (past M: row M - 1, likewise unused).
  auto load = [&](int st, int c) {
    unsigned char* ws = sk_smem + st * L::kStage;
    unsigned char* xs = ws + L::kWBytes;
    const int k0 = k_begin + c * kSkKc;
#pragma unroll
    for (int i = 0; i < kSkFeat * 8 / kSkThreads; ++i) {
      const int idx = tid + i * kSkThreads, r = idx >> 3, ch = idx & 7;
      const int n = min(n0 + r, N - 1);
      CpAsync16(ws + SkOffset(r, ch), w + static_cast<int64_t>(n) * K + k0 + ch * 8);
    }
    for (int idx = tid; idx < L::kXRows * 8; idx += kSkThreads) {
      const int r = idx >> 3, ch = idx & 7;
      const int half = Split && r >= 8 * NT ? 1 : 0, rr = min(r - half * 8 * NT, M - 1);
      CpAsync16(xs + SkOffset(r, ch), x + static_cast<int64_t>(half * M + rr) * K + k0 + ch * 8);
    }
  };

  float acc[2][NT][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][j][e] = 0.0f;

#pragma unroll
  for (int st = 0; st < kSkStages - 1; ++st) {
    if (st < chunks) load(st, st);
    CpAsyncCommit();
  }
  const int mat = lane >> 3, mrow = lane & 7;
  for (int c = 0; c < chunks; ++c) {
    CpAsyncWait<kSkStages - 2>();
    __syncthreads();
    if (c + kSkStages - 1 < chunks) load((c + kSkStages - 1) % kSkStages, c + kSkStages - 1);
    CpAsyncCommit();
    const unsigned char* ws = sk_smem + (c % kSkStages) * L::kStage;
    const unsigned char* xs = ws + L::kWBytes;
#pragma unroll
    for (int ks = 0; ks < kSkKc / 16; ++ks) {
      uint32_t a[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const int r = warp * 32 + mt * 16 + mrow + ((mat & 1) << 3);
        LdMatrixX4<false>(a[mt],
                          reinterpret_cast<const uint16_t*>(ws + SkOffset(r, 2 * ks + (mat >> 1))));
      }
      if constexpr (Split) {
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          uint32_t b[4];  // hi k-low, hi k-high, lo k-low, lo k-high
          const int r = (mat >= 2 ? 8 * NT : 0) + 8 * j + mrow;
          LdMatrixX4<false>(
              b, reinterpret_cast<const uint16_t*>(xs + SkOffset(r, 2 * ks + (mat & 1))));
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            MmaBf16(acc[mt][j], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[0], b[1]);
            MmaBf16(acc[mt][j], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[2], b[3]);
          }
        }
      } else {
#pragma unroll
        for (int j = 0; j < NT; j += 2) {
          uint32_t b[4];  // n-tile j k-low, k-high, n-tile j + 1 k-low, k-high
          const int jj = j + 1 < NT ? j + (mat >> 1) : j;
          LdMatrixX4<false>(b, reinterpret_cast<const uint16_t*>(
                                   xs + SkOffset(8 * jj + mrow, 2 * ks + (mat & 1))));
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            MmaBf16(acc[mt][j], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[0], b[1]);
            if (j + 1 < NT) {
              MmaBf16(acc[mt][j + 1 < NT ? j + 1 : j], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[2],
                      b[3]);
            }
          }
        }
      }
    }
  }
  CpAsyncWait<0>();
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const int S = static_cast<int>(cluster.num_blocks());
  // Every CTA of the cluster is past its pipeline before anyone writes into another's shared
  // memory, which now becomes the receive tile.
  cluster.sync();
  // Row r is written by rank r % S: each CTA pushes its partial of row r into that rank's
  // recv[(r / S) * S + this rank][feature] (f32, kSkPStride a row). Remote stores are posted, so
  // no lane waits on a round trip per element, as pulling the partials would. Lane (g, t) holds
  // features f + g (e = 0, 1) and f + g + 8 (e = 2, 3) at rows 8j + 2t + (e & 1) of m-tile f.
  float* recv = reinterpret_cast<float*>(sk_smem);
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = 8 * j + 2 * t + (e & 1), f = warp * 32 + mt * 16 + g + (e >> 1) * 8;
        if (r < M) {
          float* dst = cluster.map_shared_rank(recv, r % S);
          dst[((r / S) * S + split) * kSkPStride + f] = acc[mt][j][e];
        }
      }
    }
  }
  cluster.sync();  // the pushed rows are visible to their ranks
  // This rank's rows, the partials summed in rank order: each output written once, deterministic.
  const int n = n0 + tid;
  if (n < N) {
    for (int r = split; r < M; r += S) {
      const float* rows = recv + (r / S) * S * kSkPStride + tid;
      float sum = 0.0f;
      for (int s2 = 0; s2 < S; ++s2) sum += rows[s2 * kSkPStride];
      float* o = out + r * ldo + n;
      *o = accumulate ? *o + sum : sum;
    }
  }
}

// Merges the split-KV partials of one (row, head): out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s -
// M).
__global__ void AttentionCombineKernel(const float* part_o, const float* part_ml, int H, int hd,
                                       int splits, AttnOut out) {
  PdlGate();
  const int64_t rh = blockIdx.x;  // row * H + head
  float mx = -INFINITY;
  for (int sp = 0; sp < splits; ++sp) mx = fmaxf(mx, part_ml[2 * (rh * splits + sp)]);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float l = 0.0f, o = 0.0f;
    for (int sp = 0; sp < splits; ++sp) {
      const int64_t slot = rh * splits + sp;
      const float m = part_ml[2 * slot];
      if (m == -INFINITY) continue;
      const float f = expf(m - mx);
      l += part_ml[2 * slot + 1] * f;
      o += part_o[slot * hd + d] * f;
    }
    out.Put<true>(rh * hd + d, o / l);
  }
}

// The input column of conv channel c: col_base + c, or MambaInLlama's repeated x (mil_n > 0): each
// group of mil_n columns serves mil_rep consecutive groups of channels (as LaunchCausalConv says).
__device__ __forceinline__ int64_t ConvInputColumn(int64_t c, int64_t col_base, int64_t mil_n,
                                                   int64_t mil_rep) {
  return mil_n > 0 ? col_base + (c / (mil_n * mil_rep)) * mil_n + c % mil_n : col_base + c;
}

__global__ void CausalConvKernel(const float* in, int64_t ld_in, int64_t col_base, int64_t mil_n,
                                 int64_t mil_rep, int64_t channels, int K, const float* w,
                                 const float* b, bool silu, const DevSeq* seqs, float* state,
                                 float* out) {
  PdlGate();
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= channels) return;
  const DevSeq sq = seqs[blockIdx.y];
  // A slot's window is [K - 1][channels]: each tap's values of a warp's channels are contiguous.
  float* sc = state + static_cast<int64_t>(sq.slot) * (K - 1) * channels + c;
  const float* wc = w + c * K;
  float win[8];
  for (int k = 0; k < K - 1; ++k) win[k] = sc[k * channels];
  const int64_t col = ConvInputColumn(c, col_base, mil_n, mil_rep);
  const float bias = b ? b[c] : 0.0f;
  for (int t = 0; t < sq.n; ++t) {
    const int64_t r = sq.row0 + t;
    const float u = in[r * ld_in + col];
    float acc = 0.0f;
    for (int k = 0; k < K - 1; ++k) acc += wc[k] * win[k];
    acc += wc[K - 1] * u;
    acc += bias;
    for (int k = 0; k + 1 < K - 1; ++k) win[k] = win[k + 1];
    if (K > 1) win[K - 2] = u;
    out[r * channels + c] = silu ? Silu(acc) : acc;
  }
  for (int k = 0; k < K - 1; ++k) sc[k * channels] = win[k];
}

// CausalConvKernel for a fixed K and four adjacent channels per thread: every tap, the input, the
// weights and the output move as float4, and the window stays in registers (the general kernel
// indexes its window with a runtime K, which puts it on the stack). Four times the bytes in flight
// per thread: the general kernel moved 2 TB/s (MambaInLlama-3B B=512: 25.8 µs per layer; Llamba-3B
// 51 µs, call AP). Needs channels, ld_in, col_base and mil_n multiples of 4 and 16-byte aligned
// arrays (LaunchCausalConv checks).
template <int K>
__global__ void CausalConvVecKernel(const float* in, int64_t ld_in, int64_t col_base, int64_t mil_n,
                                    int64_t mil_rep, int64_t channels, const float* w,
                                    const float* b, bool silu, const DevSeq* seqs, float* state,
                                    float* out) {
  PdlGate();
  const int64_t c = 4 * (blockIdx.x * int64_t{blockDim.x} + threadIdx.x);
  if (c >= channels) return;
  const DevSeq sq = seqs[blockIdx.y];
  float* sc = state + static_cast<int64_t>(sq.slot) * (K - 1) * channels + c;
  float4 win[K - 1 > 0 ? K - 1 : 1];
#pragma unroll
  for (int k = 0; k < K - 1; ++k) win[k] = *reinterpret_cast<const float4*>(sc + k * channels);
  const int64_t col = ConvInputColumn(c, col_base, mil_n, mil_rep);
  // w is [channels][K]: the four channels' taps are 4K contiguous floats.
  float wv[4][K];
#pragma unroll
  for (int i = 0; i < K; ++i) {
    const float4 v = *reinterpret_cast<const float4*>(w + c * K + 4 * i);
    const float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) wv[(4 * i + j) / K][(4 * i + j) % K] = e[j];
  }
  const float4 bias = b ? *reinterpret_cast<const float4*>(b + c) : make_float4(0, 0, 0, 0);
  for (int t = 0; t < sq.n; ++t) {
    const int64_t r = sq.row0 + t;
    const float4 u = *reinterpret_cast<const float4*>(in + r * ld_in + col);
    float4 acc = bias;
#pragma unroll
    for (int k = 0; k < K - 1; ++k) {
      acc.x += wv[0][k] * win[k].x;
      acc.y += wv[1][k] * win[k].y;
      acc.z += wv[2][k] * win[k].z;
      acc.w += wv[3][k] * win[k].w;
    }
    acc.x += wv[0][K - 1] * u.x;
    acc.y += wv[1][K - 1] * u.y;
    acc.z += wv[2][K - 1] * u.z;
    acc.w += wv[3][K - 1] * u.w;
#pragma unroll
    for (int k = 0; k + 1 < K - 1; ++k) win[k] = win[k + 1];
    if (K > 1) win[K - 2] = u;
    if (silu) acc = make_float4(Silu(acc.x), Silu(acc.y), Silu(acc.z), Silu(acc.w));
    *reinterpret_cast<float4*>(out + r * channels + c) = acc;
  }
#pragma unroll
  for (int k = 0; k < K - 1; ++k) *reinterpret_cast<float4*>(sc + k * channels) = win[k];
}

// One thread per channel; the launches with a prompt (several tokens in some sequence) and every
// launch the streaming decode kernel below cannot take (Mamba1DecodeStreams). The state of a slot
// is [di][N] (element n of channel ch at ch * N + n): a channel's state is contiguous, which is
// what the decode kernel's bulk copies need. NR > 0 (N <= NR): the channel's state lives in
// registers for the whole forward (loaded once, stored once: independent loads in flight together,
// and one rounding to the storage type per forward). NR == 0: any N, updated in memory, with a
// prompt run on an f32 copy in shared memory. At most 64 registers (eight 128-thread blocks per
// SM): with 75 the kernel ran at 37 % occupancy and 1.8 TB/s on the H200 (MambaInLlama-3B, 512
// rows). Two channels per thread (8-byte state loads) and A staged in shared memory were both
// slower, and the state copied to shared memory by cp.async before the update no faster (calls W, X
// and Y in docs/perf/cuda.md). Row r's B and C vectors (N floats each) for channel ch, and its gate
// input z: MambaInLlama's grouped columns of the projection (rep = di / d_xb channels share a B
// group, N a C group), or HF Mamba's x_proj output and the projection's z half.
__device__ __forceinline__ void Mamba1RowInputs(const Mamba1ScanArgs& a, int64_t r, int64_t ch,
                                                int64_t N, int64_t rep, const float** B,
                                                const float** C, float* z) {
  const float* pr = a.proj + r * a.ld_proj;
  if (a.mil) {
    *B = pr + a.di + a.dxb + (ch / (N * rep)) * N;
    *C = pr + a.di + 2 * a.dxb + (ch / N) * N;
    *z = pr[ch];
  } else {
    *B = a.xdbc + r * (a.R + 2 * N) + a.R;
    *C = *B + N;
    *z = pr[a.di + ch];
  }
}

template <typename StateT, int NR>
__global__ void __launch_bounds__(128, 8) Mamba1ScanKernel(Mamba1ScanArgs a, const DevSeq* seqs) {
  PdlGate();
  const int64_t ch = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (ch >= a.di) return;
  const DevSeq sq = seqs[blockIdx.y];
  const int64_t N = a.N, di = a.di;
  const int64_t rep = a.mil ? a.di / a.dxb : 1;
  StateT* h = static_cast<StateT*>(a.ssm) + (static_cast<int64_t>(sq.slot) * di + ch) * N;
  const float* A = a.A + ch * N;
  const float bias = a.dt_b[ch], Dc = a.D[ch];
  extern __shared__ float stage[];
  const bool staged = NR == 0 && a.stage && sq.n > 1;
  float* hs = stage + threadIdx.x * N;
  float hv[NR > 0 ? NR : 1];
  if constexpr (NR > 0) {
#pragma unroll
    for (int n = 0; n < NR; ++n) hv[n] = n < N ? LoadState(h + n) : 0.0f;
  } else if (staged) {
    for (int64_t n = 0; n < N; ++n) hs[n] = LoadState(h + n);
  }
  for (int t = 0; t < sq.n; ++t) {
    const int64_t r = sq.row0 + t;
    const float *Bv, *Cv;
    float z;
    Mamba1RowInputs(a, r, ch, N, rep, &Bv, &Cv, &z);
    const float d = Softplus(a.dt_raw[r * a.di + ch] + bias);
    const float xv = a.xc[r * a.di + ch];
    float y = 0.0f;
    if constexpr (NR > 0) {
#pragma unroll
      for (int n = 0; n < NR; ++n) {
        if (n < N) {
          const float hn = expf(d * A[n]) * hv[n] + (d * Bv[n]) * xv;
          hv[n] = hn;
          y += hn * Cv[n];
        }
      }
    } else {
      for (int64_t n = 0; n < N; ++n) {
        const float cur = staged ? hs[n] : LoadState(h + n);
        const float hn = expf(d * A[n]) * cur + (d * Bv[n]) * xv;
        if (staged) {
          hs[n] = hn;
        } else {
          StoreState(h + n, hn);
        }
        y += hn * Cv[n];
      }
    }
    y += Dc * xv;
    const float v = y * Silu(z);
    a.out[r * a.di + ch] = v;
    if (a.gemm_in) StoreGemmInput(a.gemm_in, a.split, a.rows * a.di, r * a.di + ch, v);
  }
  if constexpr (NR > 0) {
#pragma unroll
    for (int n = 0; n < NR; ++n)
      if (n < N) StoreState(h + n, hv[n]);
  } else if (staged) {
    for (int64_t n = 0; n < N; ++n) StoreState(h + n, hs[n]);
  }
}

// A head's decay exp(dt A) and input scale for one token from its raw dt (Llamba: dt = softplus,
// A = -1 folded in, no scale; HF Mamba-2: dt clamped to [dt_min, dt_max], scale dt). Shared by the
// SSD kernels.
__device__ __forceinline__ float2 SsdDecayScale(const SsdScanArgs& a, int64_t h, float raw) {
  if (a.llamba) return make_float2(expf(-Softplus(raw)), 1.0f);
  float dtv = Softplus(raw + a.dt_bias[h]);
  dtv = fmaxf(dtv, a.dt_min);
  if (a.dt_max > 0) dtv = fminf(dtv, a.dt_max);
  return make_float2(expf(dtv * a.A[h]), dtv);
}

// Mamba-1 decode step (one token per sequence, d_state 16) as a streaming kernel: a block owns one
// tile of kM1Tile channels and walks sequences blockIdx.y, blockIdx.y + gridDim.y, ... Each
// sequence's state tile (kM1Tile x 16, contiguous in the [di][N] layout) arrives in shared memory
// by one bulk copy (cp.async.bulk, completion on an mbarrier), kM1Stages sequences ahead, so the
// bytes in flight are bounded by shared memory instead of registers; the channel's A row, bias and
// D are loaded once for all the block's sequences. The updated state goes straight back to global
// memory (coalesced 16-byte stores; nothing waits on them). The one-thread-per-channel kernel above
// held its 16 state loads in registers and reached 2.05 TB/s at 47 % occupancy (call AC:
// latency-bound, 45 % of cycles without an eligible warp), and every layout of it tried since lost.
// This one: 102 -> 85 µs at MambaInLlama-3B B=512 (calls AL, AM), DRAM 51 % of peak. With the
// sequence's inputs read from global memory, 28 % of its stall samples sat on those loads (dt, x,
// z, B, C: a round trip to L2 each per sequence, call AN), so they now travel in the same stage as
// the state tile: a few more bulk copies on the stage's mbarrier, kM1Stages sequences ahead
// (85 -> 65 µs, DRAM 67 % of peak, call AO). Launches whose rows are not 16-byte aligned go to the
// per-channel kernel (Mamba1DecodeStreams).
constexpr int kM1Tile = 128;
constexpr int kM1Stages = 4;
constexpr int kM1MaxSeqPerBlock = kM1Tile;  // the block's DevSeqs are staged by its threads
// A stage's inputs (floats): the tile's dt, x and z, MambaInLlama's C columns of the tile (one
// group of N per N channels), then B: MambaInLlama's groups the tile touches (at most
// kM1Tile / N + 1 of them), or HF Mamba's row vectors B and C (2N floats).
constexpr int kM1InDt = 0, kM1InX = kM1Tile, kM1InZ = 2 * kM1Tile, kM1InC = 3 * kM1Tile,
              kM1InB = 4 * kM1Tile, kM1In = 5 * kM1Tile + 16;

template <typename StateT>
__global__ void __launch_bounds__(kM1Tile)
    Mamba1DecodeKernel(Mamba1ScanArgs a, const DevSeq* seqs, int nseq) {
  PdlGate();
  constexpr int N = 16;
  constexpr int kVec = 16 / sizeof(StateT);  // state elements per 16 bytes
  __shared__ __align__(128) StateT buf[kM1Stages][kM1Tile * N];
  __shared__ __align__(16) float in[kM1Stages][kM1In];
  __shared__ uint64_t bar[kM1Stages];
  __shared__ DevSeq sqs[kM1MaxSeqPerBlock];
  const int64_t di = a.di, ch0 = static_cast<int64_t>(blockIdx.x) * kM1Tile;
  const int nch = static_cast<int>(di - ch0 < kM1Tile ? di - ch0 : kM1Tile);
  const int tid = threadIdx.x;
  const int count = (nseq - static_cast<int>(blockIdx.y) + gridDim.y - 1) / gridDim.y;
  const int64_t rep = a.mil ? a.di / a.dxb : 1;
  const int64_t g0 = ch0 / (N * rep);  // MambaInLlama: the tile's first B group
  const uint32_t bytes = static_cast<uint32_t>(nch * N * sizeof(StateT));
  const uint32_t col_bytes = static_cast<uint32_t>(nch * 4);
  const uint32_t b_bytes =
      a.mil ? static_cast<uint32_t>(((ch0 + nch - 1) / (N * rep) - g0 + 1) * N * 4) : 2 * N * 4;
  const uint32_t stage_bytes = bytes + (a.mil ? 4 : 3) * col_bytes + b_bytes;
  StateT* state = static_cast<StateT*>(a.ssm);
  if (tid < count) sqs[tid] = seqs[blockIdx.y + tid * gridDim.y];
  if (tid == 0) MbarInit(bar, kM1Stages);
  __syncthreads();
  // Thread 0: sequence k's state tile and inputs into stage s.
  auto fill = [&](int k, int s) {
    const DevSeq& sq = sqs[k];
    const int64_t r = sq.row0;
    const float* pr = a.proj + r * a.ld_proj;
    MbarExpectTx(&bar[s], stage_bytes);
    BulkCopy(buf[s], state + (static_cast<int64_t>(sq.slot) * di + ch0) * N, bytes, &bar[s]);
    BulkCopy(&in[s][kM1InDt], a.dt_raw + r * di + ch0, col_bytes, &bar[s]);
    BulkCopy(&in[s][kM1InX], a.xc + r * di + ch0, col_bytes, &bar[s]);
    if (a.mil) {
      BulkCopy(&in[s][kM1InZ], pr + ch0, col_bytes, &bar[s]);
      BulkCopy(&in[s][kM1InC], pr + di + 2 * a.dxb + ch0, col_bytes, &bar[s]);
      BulkCopy(&in[s][kM1InB], pr + di + a.dxb + g0 * N, b_bytes, &bar[s]);
    } else {
      BulkCopy(&in[s][kM1InZ], pr + di + ch0, col_bytes, &bar[s]);
      BulkCopy(&in[s][kM1InB], a.xdbc + r * (a.R + 2 * N) + a.R, b_bytes, &bar[s]);
    }
  };
  if (tid == 0) {
    for (int k = 0; k < kM1Stages && k < count; ++k) fill(k, k);
  }
  // The tile is kM1Tile * kPer 16-byte chunks of kVec state elements (kPer per channel). Thread
  // tid takes chunks q * kM1Tile + tid, q < kPer: channel q * (kM1Tile / kPer) + tid / kPer,
  // elements n0 + [0, kVec) with n0 = (tid % kPer) * kVec. Consecutive threads read consecutive
  // 16 bytes of shared memory and store consecutive 16 bytes to global memory (one thread per
  // channel read and stored 64-byte strides: 4-way bank conflicts and half-sector stores, with the
  // L2 at 78 % of its throughput and DRAM at 49 %, call AL); the channel's sum over n is finished
  // by shuffles among its kPer threads.
  constexpr int kPer = N / kVec;
  const int n0 = (tid % kPer) * kVec;
  int cl[kPer], bo[kPer], co[kPer];  // tile channel, its B and C offsets in a stage's inputs
  bool act[kPer];
  float Av[kPer][kVec], bias[kPer], Dc[kPer];
#pragma unroll
  for (int q = 0; q < kPer; ++q) {
    const int c = q * (kM1Tile / kPer) + tid / kPer;
    act[q] = c < nch;
    cl[q] = act[q] ? c : 0;  // idle threads of a partial tile compute channel ch0
    const int64_t ch = ch0 + cl[q];
    bo[q] = kM1InB + n0 + (a.mil ? static_cast<int>(ch / (N * rep) - g0) * N : 0);
    co[q] = n0 + (a.mil ? kM1InC + (cl[q] / N) * N : kM1InB + N);
    const float* Ar = a.A + ch * N + n0;
#pragma unroll
    for (int i = 0; i < kVec; i += 4) {
      const float4 v = *reinterpret_cast<const float4*>(Ar + i);
      Av[q][i] = v.x;
      Av[q][i + 1] = v.y;
      Av[q][i + 2] = v.z;
      Av[q][i + 3] = v.w;
    }
    bias[q] = a.dt_b[ch];
    Dc[q] = a.D[ch];
  }
  for (int k = 0; k < count; ++k) {
    const DevSeq sq = sqs[k];
    const int64_t r = sq.row0;
    const int s = k % kM1Stages;
    MbarWait(&bar[s], static_cast<uint32_t>(k / kM1Stages) & 1u);
    StateT* hg = state + (static_cast<int64_t>(sq.slot) * di + ch0) * N;
    const float* is = in[s];
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
      const int e = q * kM1Tile + tid;  // 16-byte chunk of the tile
      alignas(16) StateT hv[kVec];
      *reinterpret_cast<uint4*>(hv) = reinterpret_cast<const uint4*>(buf[s])[e];
      // An idle thread's chunk lies past the copied tile (uninitialised): from zeros, its
      // discarded f16 store cannot set the overflow word.
      if (!act[q]) *reinterpret_cast<uint4*>(hv) = make_uint4(0u, 0u, 0u, 0u);
      const float dq = Softplus(is[kM1InDt + cl[q]] + bias[q]);
      const float xv = is[kM1InX + cl[q]];
      // An idle thread adds nothing either: its state stays zero, so no store of it can report.
      const float dx = act[q] ? dq * xv : 0.0f;
      float y = 0.0f;
#pragma unroll
      for (int i = 0; i < kVec; i += 4) {
        const float4 Bv = *reinterpret_cast<const float4*>(is + bo[q] + i);
        const float4 Cv = *reinterpret_cast<const float4*>(is + co[q] + i);
        const float Bi[4] = {Bv.x, Bv.y, Bv.z, Bv.w}, Ci[4] = {Cv.x, Cv.y, Cv.z, Cv.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float hn = expf(dq * Av[q][i + j]) * LoadState(&hv[i + j]) + Bi[j] * dx;
          y += hn * Ci[j];
          StoreState(&hv[i + j], hn);
        }
      }
      if (act[q]) reinterpret_cast<uint4*>(hg)[e] = *reinterpret_cast<const uint4*>(hv);
#pragma unroll
      for (int o = 1; o < kPer; o <<= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
      y += Dc[q] * xv;
      if (act[q] && tid % kPer == 0) {
        const float v = y * Silu(is[kM1InZ + cl[q]]);
        a.out[r * di + ch0 + cl[q]] = v;
        if (a.gemm_in) StoreGemmInput(a.gemm_in, a.split, a.rows * di, r * di + ch0 + cl[q], v);
      }
    }
    // Every thread has read stage s before it is refilled. Releasing the stage per warp on an
    // mbarrier instead, so that only the refilling thread waits, was slower (65.8 µs, call AP).
    __syncthreads();
    if (tid == 0 && k + kM1Stages < count) fill(k + kM1Stages, s);
  }
}

// One block per (sequence, head); warps own rows p of the head's [P, N] state, lanes split N.
// EPL: state elements per lane per row (N <= 32 * EPL for the register path); 2 for d_state 64
// keeps the kernel under 64 registers, four 256-thread blocks per SM (72 registers and three blocks
// with room for N = 128 measured 37 % occupancy and 1.5 TB/s on the H200).
template <typename StateT, int EPL>
__global__ void __launch_bounds__(256, 4) SsdScanKernel(SsdScanArgs a, const DevSeq* seqs) {
  PdlGate();
  const int64_t h = blockIdx.x;
  const DevSeq sq = seqs[blockIdx.y];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  const int64_t N = a.N, P = a.P, C = a.di + 2 * a.G * N;
  const int64_t g = h / (a.H / a.G);
  StateT* S = static_cast<StateT*>(a.ssm) + (static_cast<int64_t>(sq.slot) * a.H + h) * P * N;
  // As in Mamba1ScanKernel: a prompt runs on an f32 shared-memory copy of the head's state.
  extern __shared__ float stage[];
  const bool staged = a.stage && sq.n > 1;  // uniform in the block
  if (staged) {
    for (int64_t i = threadIdx.x; i < P * N; i += blockDim.x) stage[i] = LoadState(S + i);
    __syncthreads();
  }
  for (int t = 0; t < sq.n; ++t) {
    const int64_t r = sq.row0 + t;
    const float* xr = a.xbc + r * C;
    const float* x = xr + h * P;
    const float* Bv = xr + a.di + g * N;
    const float* Cv = xr + a.di + a.G * N + g * N;
    const float raw = a.proj[r * a.ld_proj + a.dt_off + h];
    const float2 ds = SsdDecayScale(a, h, raw);
    const float decay = ds.x, scale = ds.y;
    if (N <= 32 * EPL) {
      // Four rows per warp at a time, their state loaded before any is used (independent loads in
      // flight together); B and C loaded once per token. Lane e-th element: n = lane + 32 e.
      constexpr int kRows = 4, kEpl = EPL;
      const int npl = static_cast<int>((N + 31) / 32);
      float bv[kEpl], cv[kEpl];
#pragma unroll
      for (int e = 0; e < kEpl; ++e) {
        const int64_t n = lane + 32 * e;
        const bool ok = e < npl && n < N;
        bv[e] = ok ? Bv[n] : 0.0f;
        cv[e] = ok ? Cv[n] : 0.0f;
      }
      for (int64_t p0 = warp; p0 < P; p0 += kRows * nw) {
        float st[kRows][kEpl];
#pragma unroll
        for (int rr = 0; rr < kRows; ++rr) {
          const int64_t p = p0 + rr * nw;
#pragma unroll
          for (int e = 0; e < kEpl; ++e) {
            const int64_t n = lane + 32 * e;
            const bool ok = p < P && e < npl && n < N;
            st[rr][e] = ok ? (staged ? stage[p * N + n] : LoadState(S + p * N + n)) : 0.0f;
          }
        }
#pragma unroll
        for (int rr = 0; rr < kRows; ++rr) {
          const int64_t p = p0 + rr * nw;
          if (p >= P) break;  // uniform in the warp
          const float xs = scale * x[p];
          float acc = 0.0f;
#pragma unroll
          for (int e = 0; e < kEpl; ++e) {
            const int64_t n = lane + 32 * e;
            if (e < npl && n < N) {
              const float v = decay * st[rr][e] + xs * bv[e];
              if (staged) {
                stage[p * N + n] = v;
              } else {
                StoreState(S + p * N + n, v);
              }
              acc += v * cv[e];
            }
          }
          acc = WarpSum(acc);
          if (lane == 0) a.y[r * a.di + h * P + p] = acc + a.D[h] * x[p];
        }
      }
    } else {
      for (int64_t p = warp; p < P; p += nw) {
        StateT* Sp = S + p * N;
        float* Ss = stage + p * N;
        const float xs = scale * x[p];
        float acc = 0.0f;
        for (int64_t n = lane; n < N; n += 32) {
          const float v = decay * (staged ? Ss[n] : LoadState(Sp + n)) + xs * Bv[n];
          if (staged) {
            Ss[n] = v;
          } else {
            StoreState(Sp + n, v);
          }
          acc += v * Cv[n];
        }
        acc = WarpSum(acc);
        if (lane == 0) a.y[r * a.di + h * P + p] = acc + a.D[h] * x[p];
      }
    }
    __syncwarp();
  }
  if (staged) {
    __syncthreads();
    for (int64_t i = threadIdx.x; i < P * N; i += blockDim.x) StoreState(S + i, stage[i]);
  }
}

// The SSD update with the head's whole state in registers, 16 bytes per load: a block of T
// threads (SsdRegThreads) holds float4 chunks i = tid + T j, j < kSsdChunks, of the head's [P][N]
// state (row p = i / (N / 4), the same four columns n for every j), all loaded before the first
// token, so up to kSsdChunks independent 16-byte loads per thread are in flight (SsdScanKernel's
// scalar loads, two rows at a time, kept ~32 KB per SM in flight and reached ~2 TB/s). Each row's
// dot product with C is reduced over the N / 4 lanes that hold it. Needs N % 4 == 0, N / 4 a power
// of two <= 32 and P N <= 4 * kSsdMaxThreads * kSsdChunks (SsdRegFits); tokens of a prompt run in
// turn on the same registers.
constexpr int kSsdMaxThreads = 256, kSsdChunks = 8;
bool SsdRegFits(int64_t N, int64_t P) {
  const int64_t l = N / 4;
  return N % 4 == 0 && l >= 1 && l <= 32 && (l & (l - 1)) == 0 &&
         P * N <= int64_t{4} * kSsdMaxThreads * kSsdChunks;
}
// Threads per block: as few as hold the state in kSsdChunks chunks each (a multiple of 32), so
// every thread has all of its loads in flight (call V: 256 threads with 4 chunks each for
// Llamba-1B's heads reached 2.6 TB/s at 50 % occupancy). TTC_CUDA_SSD_THREADS=256 restores call V.
int SsdRegThreads(int64_t N, int64_t P) {
  static const int fixed = [] {
    const char* e = std::getenv("TTC_CUDA_SSD_THREADS");
    return e == nullptr ? 0 : std::atoi(e);
  }();
  const int64_t total = P * N / 4, per = (total + kSsdChunks - 1) / kSsdChunks;
  const int t = static_cast<int>((per + 31) / 32 * 32);
  return fixed >= t && fixed <= kSsdMaxThreads && fixed % 32 == 0 ? fixed : t;
}
__device__ __forceinline__ float4 LoadState4(const float* p) {
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ float4 LoadState4(const uint16_t* p) {
  const uint2 v = *reinterpret_cast<const uint2*>(p);
  return make_float4(Bf(static_cast<uint16_t>(v.x)), Bf(static_cast<uint16_t>(v.x >> 16)),
                     Bf(static_cast<uint16_t>(v.y)), Bf(static_cast<uint16_t>(v.y >> 16)));
}
__device__ __forceinline__ void StoreState4(float* p, float4 v) {
  *reinterpret_cast<float4*>(p) = v;
}
__device__ __forceinline__ void StoreState4(uint16_t* p, float4 v) {
  *reinterpret_cast<uint2*>(p) =
      make_uint2(static_cast<uint32_t>(ToBf(v.x)) | (static_cast<uint32_t>(ToBf(v.y)) << 16),
                 static_cast<uint32_t>(ToBf(v.z)) | (static_cast<uint32_t>(ToBf(v.w)) << 16));
}
__device__ __forceinline__ float4 LoadState4(const __half* p) {
  const uint2 v = *reinterpret_cast<const uint2*>(p);
  const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&v.x));
  const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&v.y));
  return make_float4(a.x, a.y, b.x, b.y);
}
__device__ __forceinline__ void StoreState4(__half* p, float4 v) {
  const __half2 a = __halves2half2(ToHalfSat(v.x), ToHalfSat(v.y));
  const __half2 b = __halves2half2(ToHalfSat(v.z), ToHalfSat(v.w));
  uint2 u;
  u.x = *reinterpret_cast<const uint32_t*>(&a);
  u.y = *reinterpret_cast<const uint32_t*>(&b);
  *reinterpret_cast<uint2*>(p) = u;
}
template <typename StateT>
__global__ void __launch_bounds__(kSsdMaxThreads, 4)
    SsdRegKernel(SsdScanArgs a, const DevSeq* seqs) {
  PdlGate();
  const int64_t h = blockIdx.x;
  const DevSeq sq = seqs[blockIdx.y];
  const int N = static_cast<int>(a.N), P = static_cast<int>(a.P), L = N / 4;
  const int total = P * L;  // float4 chunks of the head's state
  const int64_t C = a.di + 2 * a.G * a.N;
  const int64_t g = h / (a.H / a.G);
  StateT* S = static_cast<StateT*>(a.ssm) + (static_cast<int64_t>(sq.slot) * a.H + h) * P * N;
  const int tid = threadIdx.x, T = blockDim.x, n4 = (tid % L) * 4;
  float4 st[kSsdChunks];
#pragma unroll
  for (int j = 0; j < kSsdChunks; ++j) {
    const int i = tid + j * T;
    st[j] = i < total ? LoadState4(S + static_cast<int64_t>(i) * 4)
                      : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  const float Dh = a.D[h];
  for (int t = 0; t < sq.n; ++t) {
    const int64_t r = sq.row0 + t;
    const float* xr = a.xbc + r * C;
    const float* x = xr + h * P;
    const float* Bv = xr + a.di + g * a.N + n4;
    const float* Cv = xr + a.di + a.G * a.N + g * a.N + n4;
    const float raw = a.proj[r * a.ld_proj + a.dt_off + h];
    const float2 ds = SsdDecayScale(a, h, raw);
    const float decay = ds.x, scale = ds.y;
    const float b0 = Bv[0], b1 = Bv[1], b2 = Bv[2], b3 = Bv[3];
    const float c0 = Cv[0], c1 = Cv[1], c2 = Cv[2], c3 = Cv[3];
    float* y = a.y + r * a.di + h * P;
#pragma unroll
    for (int j = 0; j < kSsdChunks; ++j) {
      if (j * T >= total) break;  // uniform in the block
      const int i = tid + j * T, p = i / L;
      const bool ok = i < total;
      const float xp = ok ? x[p] : 0.0f, xs = scale * xp;
      float4& v = st[j];
      v.x = decay * v.x + xs * b0;
      v.y = decay * v.y + xs * b1;
      v.z = decay * v.z + xs * b2;
      v.w = decay * v.w + xs * b3;
      float acc = v.x * c0 + v.y * c1 + v.z * c2 + v.w * c3;
      // Every lane shuffles (rows are aligned groups of L lanes); lanes past the state add zeros.
      for (int o = L / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (ok && tid % L == 0) y[p] = acc + Dh * xp;
    }
  }
#pragma unroll
  for (int j = 0; j < kSsdChunks; ++j) {
    const int i = tid + j * T;
    if (i < total) StoreState4(S + static_cast<int64_t>(i) * 4, st[j]);
  }
}

// The SSD update of a decode step (every sequence one token) with the head's state copied to shared
// memory by cp.async: the copies hold no registers, so a block has its whole state (16 KB for
// Llamba-1B) in flight at once, and as many blocks as shared memory allows (~13 per SM) have
// theirs: ~200 KB per SM, where SsdRegKernel's eight 16-byte register loads per thread kept 128 KB
// in flight (call W: 2.6-3 TB/s). Each thread then updates its float4 chunks i = tid + T j from
// shared memory and stores them straight to the state. The same expressions as SsdRegKernel; the
// results agree to f32 rounding, not bit for bit (call Y: the golden llamba decode error went from
// 2.25e-4 to 2.22e-4), as the compiler contracts the two kernels' multiply-adds differently. The
// chunk update is written out in both kernels: factoring it (with the B / C loads) into shared
// device functions changed SsdRegKernel's machine code (1362 -> 1618 instructions), which no device
// run has tested; the decay and scale (SsdDecayScale) factor out with identical code.
template <typename StateT>
__global__ void __launch_bounds__(kSsdMaxThreads) SsdCopyKernel(SsdScanArgs a, const DevSeq* seqs) {
  PdlGate();
  extern __shared__ __align__(16) unsigned char ssd_stage[];
  const int64_t h = blockIdx.x;
  const DevSeq sq = seqs[blockIdx.y];
  if (sq.n < 1) return;  // uniform in the block
  const int N = static_cast<int>(a.N), P = static_cast<int>(a.P), L = N / 4;
  const int total = P * L;
  const int64_t C = a.di + 2 * a.G * a.N;
  const int64_t g = h / (a.H / a.G);
  StateT* S = static_cast<StateT*>(a.ssm) + (static_cast<int64_t>(sq.slot) * a.H + h) * P * N;
  const int tid = threadIdx.x, T = blockDim.x, n4 = (tid % L) * 4;
  const int pieces = P * N * static_cast<int>(sizeof(StateT)) / 16;
  const unsigned char* src = reinterpret_cast<const unsigned char*>(S);
  for (int i = tid; i < pieces; i += T) CpAsync16(ssd_stage + 16 * i, src + 16 * i);
  CpAsyncCommit();
  const int64_t r = sq.row0;
  const float* xr = a.xbc + r * C;
  const float* x = xr + h * P;
  const float* Bv = xr + a.di + g * a.N + n4;
  const float* Cv = xr + a.di + a.G * a.N + g * a.N + n4;
  const float raw = a.proj[r * a.ld_proj + a.dt_off + h];
  const float2 ds = SsdDecayScale(a, h, raw);
  const float decay = ds.x, scale = ds.y;
  const float b0 = Bv[0], b1 = Bv[1], b2 = Bv[2], b3 = Bv[3];
  const float c0 = Cv[0], c1 = Cv[1], c2 = Cv[2], c3 = Cv[3];
  const float Dh = a.D[h];
  float* y = a.y + r * a.di + h * P;
  const StateT* st = reinterpret_cast<const StateT*>(ssd_stage);
  CpAsyncWait<0>();
  __syncthreads();
  for (int j = 0; j * T < total; ++j) {  // uniform in the block
    const int i = tid + j * T, p = i / L;
    const bool ok = i < total;
    float4 v =
        ok ? LoadState4(st + static_cast<int64_t>(i) * 4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const float xp = ok ? x[p] : 0.0f, xs = scale * xp;
    v.x = decay * v.x + xs * b0;
    v.y = decay * v.y + xs * b1;
    v.z = decay * v.z + xs * b2;
    v.w = decay * v.w + xs * b3;
    float acc = v.x * c0 + v.y * c1 + v.z * c2 + v.w * c3;
    for (int o = L / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (ok && tid % L == 0) y[p] = acc + Dh * xp;
    if (ok) StoreState4(S + static_cast<int64_t>(i) * 4, v);
  }
}

// Llamba's gate out = y * silu(z + zb), z at proj[r * ld + z_off + c]. Vec: four channels per
// thread as float4 (di, ld and z_off multiples of 4, 16-byte aligned arrays): the scalar form moved
// 1 TB/s (19.3 µs per layer at Llamba-3B B=512, call AP). Applying the gate inside the SSD kernel
// instead, as it writes y, cost that kernel more than this one takes (+37 µs per layer: each
// row's z load sat on its thread's path; call AQ).
template <bool Vec>
__global__ void LlambaGateKernel(const float* y, const float* proj, int64_t ld, int64_t z_off,
                                 const float* zb, int64_t rows, int64_t di, float* out,
                                 uint16_t* bf, bool split) {
  PdlGate();
  if constexpr (Vec) {
    const int64_t di4 = di / 4;
    TTC_FOR_ROWS_COLS(rows, di4) {
      const float4 v = reinterpret_cast<const float4*>(y + r * di)[c];
      const float4 z = reinterpret_cast<const float4*>(proj + r * ld + z_off)[c];
      const float4 b = reinterpret_cast<const float4*>(zb)[c];
      const float4 o = make_float4(v.x * Silu(z.x + b.x), v.y * Silu(z.y + b.y),
                                   v.z * Silu(z.z + b.z), v.w * Silu(z.w + b.w));
      reinterpret_cast<float4*>(out + r * di)[c] = o;
      if (bf) StoreGemmInput4(bf, split, rows * di, r * di + 4 * c, o);
    }
  } else {
    TTC_FOR_ROWS_COLS(rows, di) {
      const int64_t i = r * di + c;
      const float o = y[i] * Silu(proj[r * ld + z_off + c] + zb[c]);
      out[i] = o;
      if (bf) StoreGemmInput(bf, split, rows * di, i, o);
    }
  }
}

__global__ void Mamba2GateNormKernel(const float* y, const float* proj, int64_t ld, int64_t z_off,
                                     const float* w, float eps, int64_t di, int64_t gs,
                                     float* out) {
  PdlGate();
  __shared__ float red[32];
  const int64_t r = blockIdx.y, g0 = blockIdx.x * gs;
  float ss = 0.0f;
  for (int64_t c = g0 + threadIdx.x; c < g0 + gs; c += blockDim.x) {
    const float v = y[r * di + c] * Silu(proj[r * ld + z_off + c]);
    out[r * di + c] = v;
    ss += v * v;
  }
  ss = BlockSum(ss, red);
  const float inv = rsqrtf(ss / static_cast<float>(gs) + eps);
  for (int64_t c = g0 + threadIdx.x; c < g0 + gs; c += blockDim.x)
    out[r * di + c] = w[c] * (out[r * di + c] * inv);
}

// The grid of a TTC_FOR_ROWS_COLS kernel with 256 threads: up to 16 blocks per row (each thread
// then takes a few columns), rows up to 65535 (more are strided).
dim3 RowGrid(int64_t rows, int64_t cols) {
  const int64_t bx = std::min<int64_t>(std::max<int64_t>((cols + 255) / 256, 1), 16);
  const int64_t by = std::min<int64_t>(std::max<int64_t>(rows, 1), 65535);
  return dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by));
}

}  // namespace

void LaunchF32ToBf16(const float* x, int64_t ldx, int64_t rows, int64_t cols, uint16_t* out,
                     cudaStream_t s) {
  Launch(F32ToBf16Kernel, RowGrid(rows, cols), 256, 0, s, x, ldx, rows, cols, out);
  Check("f32->bf16");
}

void LaunchSplitBf16(const float* x, int64_t ldx, int64_t rows, int64_t cols, uint16_t* out,
                     cudaStream_t s) {
  Launch(SplitBf16Kernel, RowGrid(rows, cols), 256, 0, s, x, ldx, rows, cols, out);
  Check("split bf16");
}

void LaunchSumParts(const float* y, int parts, int64_t rows, bool halves, int64_t cols, float* out,
                    int64_t ldo, bool accumulate, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t bx = std::min<int64_t>((cols + 255) / 256, 64);
  dim3 grid(static_cast<unsigned>(bx), static_cast<unsigned>(rows));
  Launch(SumPartsKernel, grid, 256, 0, s, y, parts, rows, halves, cols, out, ldo, accumulate);
  Check("sum of split-K parts");
}

void LaunchEmbed(const uint16_t* tb, const float* tf, const int32_t* ids, int64_t rows, int64_t d,
                 float* out, cudaStream_t s, const int32_t* map, int64_t vocab) {
  Launch(EmbedKernel, static_cast<unsigned>(rows), 256, 0, s, tb, tf, ids, map, vocab, d, out);
  Check("embed");
}

namespace {
bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
// TTC_CUDA_SCALAR_ELEMENTWISE=1: the scalar RMSNorm and SwiGLU kernels (A/B measurements).
bool ScalarElementwise() {
  static const bool on = [] {
    const char* e = std::getenv("TTC_CUDA_SCALAR_ELEMENTWISE");
    return e != nullptr && std::strcmp(e, "1") == 0;
  }();
  return on;
}
}  // namespace

void LaunchRmsNorm(const float* x, const float* w, float eps, int64_t rows, int64_t n, float* out,
                   cudaStream_t s, uint16_t* gemm_in, bool split) {
  const unsigned grid = static_cast<unsigned>(rows);
  const int64_t v = (n / 4 + 255) / 256;  // float4 per thread
  if (!ScalarElementwise() && n % 4 == 0 && v <= 4 && Aligned16(x) && Aligned16(w) &&
      Aligned16(out) && (gemm_in == nullptr || reinterpret_cast<uintptr_t>(gemm_in) % 8 == 0)) {
    if (v <= 1) {
      Launch(RmsNormVecKernel<1>, grid, 256, 0, s, x, w, eps, n, out, gemm_in, split);
    } else if (v == 2) {
      Launch(RmsNormVecKernel<2>, grid, 256, 0, s, x, w, eps, n, out, gemm_in, split);
    } else if (v == 3) {
      Launch(RmsNormVecKernel<3>, grid, 256, 0, s, x, w, eps, n, out, gemm_in, split);
    } else {
      Launch(RmsNormVecKernel<4>, grid, 256, 0, s, x, w, eps, n, out, gemm_in, split);
    }
  } else {
    Launch(RmsNormKernel, grid, 256, 0, s, x, w, eps, n, out, gemm_in, split);
  }
  Check("rmsnorm");
}

void LaunchSwiGlu(const float* gu, int64_t rows, int64_t ff, float* out, cudaStream_t s,
                  uint16_t* gemm_in, bool split) {
  if (!ScalarElementwise() && ff % 4 == 0 && Aligned16(gu) && Aligned16(out) &&
      (gemm_in == nullptr || reinterpret_cast<uintptr_t>(gemm_in) % 8 == 0)) {
    Launch(SwiGluVecKernel, RowGrid(rows, ff / 4), 256, 0, s, gu, rows, ff, out, gemm_in, split);
  } else {
    Launch(SwiGluKernel, RowGrid(rows, ff), 256, 0, s, gu, rows, ff, out, gemm_in, split);
  }
  Check("swiglu");
}

void LaunchGatherRows(const float* x, const int64_t* rows, int64_t n, int64_t cols, float* out,
                      cudaStream_t s) {
  Launch(Copy2DKernel, static_cast<unsigned>(n), 256, 0, s, x, cols, cols, out, cols, rows);
  Check("gather rows");
}

void LaunchCopy2D(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,
                  int64_t ld_dst, cudaStream_t s) {
  Launch(Copy2DKernel, static_cast<unsigned>(rows), 256, 0, s, src, ld_src, cols, dst, ld_dst,
         nullptr);
  Check("copy2d");
}

bool LaunchGemv(const uint16_t* w, int64_t N, int64_t K, const float* x, int64_t ldx, int64_t M,
                float* out, int64_t ldo, bool accumulate, cudaStream_t s) {
  const bool aligned = K % 8 == 0 && ldx % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(w) % 16 == 0;
  if (M < 1 || M > kGemvMaxRows || N < 1 || !aligned) return false;
  const unsigned blocks = static_cast<unsigned>((N + kGemvCols - 1) / kGemvCols);
  const int m = static_cast<int>(M);
  if (M <= 1) {
    Launch(GemvKernel<1>, blocks, kGemvWarps * 32, 0, s, w, N, K, x, ldx, m, out, ldo, accumulate);
  } else if (M <= 2) {
    Launch(GemvKernel<2>, blocks, kGemvWarps * 32, 0, s, w, N, K, x, ldx, m, out, ldo, accumulate);
  } else if (M <= 4) {
    Launch(GemvKernel<4>, blocks, kGemvWarps * 32, 0, s, w, N, K, x, ldx, m, out, ldo, accumulate);
  } else if (M <= 8) {
    Launch(GemvKernel<8>, blocks, kGemvWarps * 32, 0, s, w, N, K, x, ldx, m, out, ldo, accumulate);
  } else {
    Launch(GemvKernel<16>, blocks, kGemvWarps * 32, 0, s, w, N, K, x, ldx, m, out, ldo, accumulate);
  }
  Check("gemv");
  return true;
}

namespace {
// What one instantiation of the skinny kernel can do on one device: whether it runs at all (its
// dynamic shared memory set above the 48 KiB default) and how many of its CTAs are resident at
// once as clusters of S (cudaOccupancyMaxActiveClusters x S; clusters must fit a GPC, so this is
// below 2 x SMs). Probed once per device, before any graph records a launch: each batch size's
// first decode step runs eagerly.
struct SkinnyProbe {
  bool usable = false;
  int resident[kSkMaxSplit + 1] = {};
};
template <int NT, bool Split>
SkinnyProbe ProbeSkinnyHere() {
  SkinnyProbe p;
  constexpr int bytes = SkinnyLayout<NT, Split>::kBytes;
  if (cudaFuncSetAttribute(SkinnyGemmKernel<NT, Split>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           bytes) != cudaSuccess) {
    cudaGetLastError();
    return p;
  }
  for (int S = 1; S <= kSkMaxSplit; ++S) {
    cudaLaunchAttribute attr = ClusterAttribute(static_cast<unsigned>(S));
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(S), 1);
    cfg.blockDim = dim3(kSkThreads);
    cfg.dynamicSmemBytes = bytes;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, SkinnyGemmKernel<NT, Split>, &cfg) !=
        cudaSuccess) {
      cudaGetLastError();
      clusters = 0;
    }
    p.resident[S] = clusters * S;
  }
  p.usable = p.resident[1] > 0;
  return p;
}

// Launches the <NT, Split> kernel, or returns false where it cannot run here. K is split over the
// largest cluster (<= kSkMaxSplit CTAs, dividing the 64-wide chunks evenly) whose grid is still
// resident in one wave: the weights stream from every SM at once, and no partial second wave of
// CTAs trails at a fraction of the bandwidth. Tiles that alone fill the GPU run unsplit.
template <int NT, bool Split>
bool LaunchSkinny(int64_t tiles, int chunks, cudaStream_t s, const uint16_t* w, int N, int K,
                  const uint16_t* x, int M, float* out, int64_t ldo, bool accumulate) {
  const SkinnyProbe probe = OncePerDevice([] { return ProbeSkinnyHere<NT, Split>(); });
  if (!probe.usable) return false;
  int S = 1;
  for (int c = kSkMaxSplit; c > 1; --c) {
    if (chunks % c == 0 && probe.resident[c] > 0 && tiles * c <= probe.resident[c]) {
      S = c;
      break;
    }
  }
  const dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(tiles));
  LaunchCluster(SkinnyGemmKernel<NT, Split>, grid, kSkThreads, SkinnyLayout<NT, Split>::kBytes, s,
                static_cast<unsigned>(S), w, N, K, x, M, out, ldo, accumulate, chunks / S);
  Check("skinny gemm");
  return true;
}
}  // namespace

bool LaunchSkinnyGemm(const uint16_t* w, int64_t N, int64_t K, const uint16_t* x, int64_t M,
                      bool split, float* out, int64_t ldo, bool accumulate, cudaStream_t s) {
  const int64_t tiles = (N + kSkFeat - 1) / kSkFeat;
  if (M < 1 || M > kSkinnyMaxRows || N < 1 || N > (int64_t{1} << 30) || K < kSkKc ||
      K % kSkKc != 0 || K > (int64_t{1} << 24) || tiles > 65535 || !Aligned16(w) || !Aligned16(x)) {
    return false;
  }
  const int chunks = static_cast<int>(K / kSkKc);
  const int n = static_cast<int>(N), k = static_cast<int>(K), m = static_cast<int>(M);
  auto go = [&](auto nt, auto sp) {
    return LaunchSkinny<decltype(nt)::value, decltype(sp)::value>(tiles, chunks, s, w, n, k, x, m,
                                                                  out, ldo, accumulate);
  };
  auto with_split = [&](auto nt) {
    return split ? go(nt, std::true_type{}) : go(nt, std::false_type{});
  };
  if (M <= 8) return with_split(std::integral_constant<int, 1>{});
  if (M <= 16) return with_split(std::integral_constant<int, 2>{});
  if (M <= 32) return with_split(std::integral_constant<int, 4>{});
  return with_split(std::integral_constant<int, 8>{});
}

void LaunchRopeAppend(const float* qkv, int64_t rows, const DevRow* info, const float* inv_freq,
                      int H, int Hkv, int hd, float* q_out, const DevKv* kv, cudaStream_t s,
                      bool scalar) {
  // TTC_CUDA_ROPE_SCALAR=1 keeps the scalar kernel everywhere (A/B measurements).
  static const bool scalar_env = [] {
    const char* e = std::getenv("TTC_CUDA_ROPE_SCALAR");
    return e != nullptr && std::strcmp(e, "1") == 0;
  }();
  if (!scalar && !scalar_env && hd % 8 == 0 && Aligned16(qkv) && Aligned16(q_out)) {
    Launch(RopeAppendVecKernel, static_cast<unsigned>(rows), kRopeThreads,
           static_cast<size_t>(hd / 2) * sizeof(float2), s, qkv, info, inv_freq, H, Hkv, hd, q_out,
           kv);
  } else {
    Launch(RopeAppendKernel, static_cast<unsigned>(rows), 128, 0, s, qkv, info, inv_freq, H, Hkv,
           hd, q_out, kv);
  }
  Check("rope+append");
}

namespace {
// The mma kernel's variants: by default one 16-position sub-tile per warp iteration and four warps
// per block (measured fastest on the H200: two sub-tiles, i.e. more loads in flight but more
// registers and fewer resident warps, were 9 % slower at Llama-1B B=256, eight warps 23 % slower).
template <int HD>
void LaunchMma(AttnKernel kernel, dim3 grid, cudaStream_t s, const float* q, const DevRow* info,
               const DevKv* kv, int H, int Hkv, AttnOut out, int splits, float* part_o,
               float* part_ml, bool own_only, int merge_from) {
  if (kernel == AttnKernel::kMmaW1) {
    Launch(AttentionMmaKernel<HD, 1, 1>, grid, 32, 0, s, q, info, kv, H, Hkv, out, splits, part_o,
           part_ml, own_only, merge_from);
  } else if (kernel == AttnKernel::kMmaW8) {
    Launch(AttentionMmaKernel<HD, 1, 8>, grid, 8 * 32, 0, s, q, info, kv, H, Hkv, out, splits,
           part_o, part_ml, own_only, merge_from);
  } else if (kernel == AttnKernel::kMmaNs2 && HD < 128) {
    Launch(AttentionMmaKernel<HD, 2, 4>, grid, 4 * 32, 0, s, q, info, kv, H, Hkv, out, splits,
           part_o, part_ml, own_only, merge_from);
  } else {
    Launch(AttentionMmaKernel<HD, 1, 4>, grid, 4 * 32, 0, s, q, info, kv, H, Hkv, out, splits,
           part_o, part_ml, own_only, merge_from);
  }
}

template <int HD>
void LaunchPrefix(const PrefixPlan& plan, cudaStream_t s, const float* q, const DevRow* info,
                  const DevKv* kv, int H, int Hkv, int split0, int splits, float* part_o,
                  float* part_ml) {
  constexpr int bytes = PrefixSmemBytes<HD>();
  // Above the 48 KiB default for head_dim 128; set once per device, before any graph records the
  // launch.
  OncePerDevice([] {
    return cudaFuncSetAttribute(PrefixAttentionKernel<HD>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) == cudaSuccess;
  });
  dim3 grid(static_cast<unsigned>(plan.tasks), static_cast<unsigned>(Hkv),
            static_cast<unsigned>(plan.chunks));
  Launch(PrefixAttentionKernel<HD>, grid, kPrefixWarps * 32, bytes, s, q, plan.task_rows, info, kv,
         H, Hkv, split0, splits, part_o, part_ml);
}
}  // namespace

void LaunchAttention(const float* q, int64_t rows, const DevRow* info, const DevKv* kv, int H,
                     int Hkv, int hd, float* out_f32, int splits, float* part_o, float* part_ml,
                     cudaStream_t s, AttnKernel kernel, const PrefixPlan* prefix, uint16_t* gemm_in,
                     bool split) {
  const AttnOut out{out_f32, gemm_in, rows * H * hd, split};
  if (H % Hkv != 0 || H / Hkv > kMaxGroup || hd > 128 || hd % 2 != 0) {
    std::fprintf(
        stderr,
        "cuda backend: attention with %d query heads, %d KV heads, head_dim %d is not supported "
        "(group <= %d, head_dim <= 128)\n",
        H, Hkv, hd, kMaxGroup);
    std::abort();
  }
  const bool pow2 = hd == 32 || hd == 64 || hd == 128;
  if (prefix != nullptr && (!pow2 || prefix->tasks < 1 || prefix->chunks < 1)) {
    std::fprintf(stderr,
                 "cuda backend: the shared-prefix attention needs head_dim 32, 64 or 128 and at "
                 "least one task and chunk (head_dim %d, %d tasks, %d chunks)\n",
                 hd, prefix ? prefix->tasks : 0, prefix ? prefix->chunks : 0);
    std::abort();
  }
  splits = splits < 1 ? 1 : splits;
  // The own-position kernels take split indices [0, splits), the prefix ranges the ones after.
  const int total = prefix ? splits + prefix->chunks : splits;
  const bool own_only = prefix != nullptr;
  // The prefix part runs first; with a single own range the own kernel then merges the prefix's
  // partials itself (merge_from), which saves the combine pass and the own partials' round trip.
  const int merge_from = prefix != nullptr && splits == 1 ? 1 : 0;
  if (prefix) {
    if (hd == 32) {
      LaunchPrefix<32>(*prefix, s, q, info, kv, H, Hkv, splits, total, part_o, part_ml);
    } else if (hd == 64) {
      LaunchPrefix<64>(*prefix, s, q, info, kv, H, Hkv, splits, total, part_o, part_ml);
    } else {
      LaunchPrefix<128>(*prefix, s, q, info, kv, H, Hkv, splits, total, part_o, part_ml);
    }
    Check("prefix attention");
  }
  dim3 grid(static_cast<unsigned>(Hkv), static_cast<unsigned>(rows), static_cast<unsigned>(splits));
  if (kernel == AttnKernel::kAuto) {
    // TTC_ATTN_KERNEL=mma|mma-ns2|mma-w8|lanes|warp picks one for measurements; tensor cores
    // by default.
    static const AttnKernel env = [] {
      const char* e = std::getenv("TTC_ATTN_KERNEL");
      if (e == nullptr) return AttnKernel::kMma;
      if (std::strcmp(e, "mma-ns2") == 0) return AttnKernel::kMmaNs2;
      if (std::strcmp(e, "mma-w8") == 0) return AttnKernel::kMmaW8;
      if (std::strcmp(e, "mma-w1") == 0) return AttnKernel::kMmaW1;
      if (std::strcmp(e, "lanes") == 0) return AttnKernel::kLanes;
      if (std::strcmp(e, "warp") == 0) return AttnKernel::kWarp;
      return AttnKernel::kMma;
    }();
    kernel = env;
  }
  const bool mma = kernel == AttnKernel::kMma || kernel == AttnKernel::kMmaNs2 ||
                   kernel == AttnKernel::kMmaW8 || kernel == AttnKernel::kMmaW1;
  // The cascade leaves each row only its own positions (a few to a few hundred): with enough
  // (row, KV head) blocks to fill the GPU, one warp per block does the same work as four without
  // three idle warps holding registers, so four times as many rows are in flight (ncu, call R: the
  // four-warp own kernel at Llama-3B B=512 took 82 us for ~4 positions per row, latency-bound).
  // TTC_OWN_KERNEL=w4 keeps four warps (measurements).
  static const bool own_w4 = [] {
    const char* e = std::getenv("TTC_OWN_KERNEL");
    return e != nullptr && std::strcmp(e, "w4") == 0;
  }();
  if (kernel == AttnKernel::kMma && own_only && !own_w4 && rows * Hkv * splits >= kOneWarpBlocks) {
    kernel = AttnKernel::kMmaW1;
  }
  if (mma && pow2) {
    if (hd == 32) {
      LaunchMma<32>(kernel, grid, s, q, info, kv, H, Hkv, out, total, part_o, part_ml, own_only,
                    merge_from);
    } else if (hd == 64) {
      LaunchMma<64>(kernel, grid, s, q, info, kv, H, Hkv, out, total, part_o, part_ml, own_only,
                    merge_from);
    } else {
      LaunchMma<128>(kernel, grid, s, q, info, kv, H, Hkv, out, total, part_o, part_ml, own_only,
                     merge_from);
    }
  } else if (kernel != AttnKernel::kWarp && pow2) {
    if (hd == 32) {
      Launch(AttentionLanesKernel<1>, grid, kLaneWarps * 32, 0, s, q, info, kv, H, Hkv, out, total,
             part_o, part_ml, own_only, merge_from);
    } else if (hd == 64) {
      Launch(AttentionLanesKernel<2>, grid, kLaneWarps * 32, 0, s, q, info, kv, H, Hkv, out, total,
             part_o, part_ml, own_only, merge_from);
    } else {
      Launch(AttentionLanesKernel<4>, grid, kLaneWarps * 32, 0, s, q, info, kv, H, Hkv, out, total,
             part_o, part_ml, own_only, merge_from);
    }
  } else if (hd <= 32) {
    Launch(AttentionKernel<1>, grid, kAttnWarps * 32, 0, s, q, info, kv, H, Hkv, hd, out, total,
           part_o, part_ml, own_only, merge_from);
  } else if (hd <= 64) {
    Launch(AttentionKernel<2>, grid, kAttnWarps * 32, 0, s, q, info, kv, H, Hkv, hd, out, total,
           part_o, part_ml, own_only, merge_from);
  } else {
    Launch(AttentionKernel<4>, grid, kAttnWarps * 32, 0, s, q, info, kv, H, Hkv, hd, out, total,
           part_o, part_ml, own_only, merge_from);
  }
  Check("attention");
  const bool combine = total > 1 && merge_from == 0;
  if (combine) {
    Launch(AttentionCombineKernel, static_cast<unsigned>(rows * H), 128, 0, s, part_o, part_ml, H,
           hd, total, out);
    Check("attention combine");
  }
  // The copy where the kernel that normalised the output did not write it (AttnWritesCopy).
  const bool copied = combine || (mma && pow2 && kernel == AttnKernel::kMmaW1);
  if (gemm_in != nullptr && !copied) {
    const int64_t cols = static_cast<int64_t>(H) * hd;
    if (split) {
      LaunchSplitBf16(out_f32, cols, rows, cols, gemm_in, s);
    } else {
      LaunchF32ToBf16(out_f32, cols, rows, cols, gemm_in, s);
    }
  }
}

bool CausalConvVectorised(const float* in, int64_t ld_in, int64_t col_base, int64_t mil_n,
                          int64_t channels, int K, const float* w, const float* b,
                          const float* state, const float* out) {
  return K == 4 && channels % 4 == 0 && ld_in % 4 == 0 && col_base % 4 == 0 && mil_n % 4 == 0 &&
         Aligned16(in) && Aligned16(w) && (b == nullptr || Aligned16(b)) && Aligned16(state) &&
         Aligned16(out);
}

void LaunchCausalConv(const float* in, int64_t ld_in, int64_t col_base, int64_t mil_n,
                      int64_t mil_rep, int64_t channels, int K, const float* w, const float* b,
                      bool silu, const DevSeq* seqs, int nseq, float* state, float* out,
                      cudaStream_t s) {
  if (K < 1 || K > 9) {
    std::fprintf(stderr, "cuda backend: d_conv %d is not supported (1..9)\n", K);
    std::abort();
  }
  if (CausalConvVectorised(in, ld_in, col_base, mil_n, channels, K, w, b, state, out)) {
    const dim3 grid(Blocks(channels / 4, 128), static_cast<unsigned>(nseq));
    Launch(CausalConvVecKernel<4>, grid, 128, 0, s, in, ld_in, col_base, mil_n, mil_rep, channels,
           w, b, silu, seqs, state, out);
    Check("causal conv");
    return;
  }
  dim3 grid(Blocks(channels, 128), static_cast<unsigned>(nseq));
  Launch(CausalConvKernel, grid, 128, 0, s, in, ld_in, col_base, mil_n, mil_rep, channels, K, w, b,
         silu, seqs, state, out);
  Check("causal conv");
}

bool Mamba1DecodeStreams(const Mamba1ScanArgs& a) {
  // Every bulk copy of a stage (state tile, dt, x, z, B, C) starts and ends on 16 bytes: rows of
  // 4-float multiples, 16-byte aligned bases, channel tiles of whole 16-channel groups.
  if (a.stage || a.N != 16 || a.di % 16 != 0 || a.ld_proj % 4 != 0) return false;
  if (!Aligned16(a.proj) || !Aligned16(a.xc) || !Aligned16(a.dt_raw) || !Aligned16(a.ssm)) {
    return false;
  }
  if (a.mil) return a.dxb > 0 && a.di % a.dxb == 0 && a.dxb % 4 == 0;
  return a.R % 4 == 0 && Aligned16(a.xdbc);
}

unsigned* ArmStateOverflowWord() {
  static std::mutex mu;
  static unsigned* word = nullptr;
  static std::vector<int> armed;
  std::lock_guard<std::mutex> lock(mu);
  if (word == nullptr) {
    void* p = nullptr;
    if (cudaHostAlloc(&p, sizeof(unsigned), cudaHostAllocMapped | cudaHostAllocPortable) !=
        cudaSuccess) {
      return nullptr;
    }
    word = static_cast<unsigned*>(p);
    *word = 0;
  }
  int device = 0;
  cudaGetDevice(&device);
  if (std::find(armed.begin(), armed.end(), device) == armed.end()) {
    unsigned* dev = nullptr;
    if (cudaHostGetDevicePointer(reinterpret_cast<void**>(&dev), word, 0) != cudaSuccess ||
        cudaMemcpyToSymbol(g_state_overflow, &dev, sizeof(dev)) != cudaSuccess) {
      return nullptr;
    }
    armed.push_back(device);
  }
  return word;
}

void LaunchMamba1Scan(const Mamba1ScanArgs& a, const DevSeq* seqs, int nseq, cudaStream_t s) {
  if (Mamba1DecodeStreams(a)) {
    // About four blocks per SM, each walking at most kM1MaxSeqPerBlock sequences.
    int sms = a.sm_count;
    if (sms <= 0) {
      int d = 0;
      cudaGetDevice(&d);
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, d);
      sms = std::max(sms, 1);
    }
    const int tiles = static_cast<int>((a.di + kM1Tile - 1) / kM1Tile);
    int ys = std::max(1, (4 * sms + tiles - 1) / tiles);
    ys = std::max(ys, (nseq + kM1MaxSeqPerBlock - 1) / kM1MaxSeqPerBlock);
    ys = std::min(ys, nseq);
    const dim3 g(static_cast<unsigned>(tiles), static_cast<unsigned>(ys));
    WithStateType(a.store, [&](auto tag) {
      Launch(Mamba1DecodeKernel<decltype(tag)>, g, kM1Tile, 0, s, a, seqs, nseq);
    });
    Check("mamba1 decode");
    return;
  }
  dim3 grid(Blocks(a.di, 128), static_cast<unsigned>(nseq));
  if (a.N <= 16) {  // state in registers (MambaInLlama and HF Mamba use d_state 16)
    WithStateType(a.store, [&](auto tag) {
      Launch(Mamba1ScanKernel<decltype(tag), 16>, grid, 128, 0, s, a, seqs);
    });
  } else {
    const size_t smem = a.stage ? static_cast<size_t>(128 * a.N) * 4 : 0;
    WithStateType(a.store, [&](auto tag) {
      Launch(Mamba1ScanKernel<decltype(tag), 0>, grid, 128, smem, s, a, seqs);
    });
  }
  Check("mamba1 scan");
}

void LaunchSsdScan(const SsdScanArgs& a, const DevSeq* seqs, int nseq, cudaStream_t s) {
  dim3 grid(static_cast<unsigned>(a.H), static_cast<unsigned>(nseq));
  // TTC_CUDA_SSD_KERNEL=scan keeps SsdScanKernel for every shape, =reg SsdRegKernel also for decode
  // steps (A/B measurements).
  static const int choice = [] {
    const char* e = std::getenv("TTC_CUDA_SSD_KERNEL");
    if (e != nullptr && std::strcmp(e, "scan") == 0) return 0;
    return e != nullptr && std::strcmp(e, "reg") == 0 ? 1 : 2;
  }();
  const size_t copy_smem = static_cast<size_t>(a.P * a.N) * (a.store == StateStore::kF32 ? 4 : 2);
  if (choice == 2 && !a.stage && SsdRegFits(a.N, a.P) && copy_smem % 16 == 0) {
    OncePerDevice([] {
      // As many 16-32 KB blocks per SM as shared memory holds (the copies are what is in flight).
      cudaFuncSetAttribute(SsdCopyKernel<float>, cudaFuncAttributePreferredSharedMemoryCarveout,
                           cudaSharedmemCarveoutMaxShared);
      cudaFuncSetAttribute(SsdCopyKernel<uint16_t>, cudaFuncAttributePreferredSharedMemoryCarveout,
                           cudaSharedmemCarveoutMaxShared);
      cudaFuncSetAttribute(SsdCopyKernel<__half>, cudaFuncAttributePreferredSharedMemoryCarveout,
                           cudaSharedmemCarveoutMaxShared);
      return true;
    });
    const int threads = SsdRegThreads(a.N, a.P);
    WithStateType(a.store, [&](auto tag) {
      Launch(SsdCopyKernel<decltype(tag)>, grid, threads, copy_smem, s, a, seqs);
    });
    Check("ssd scan");
    return;
  }
  if (choice != 0 && SsdRegFits(a.N, a.P)) {
    const int threads = SsdRegThreads(a.N, a.P);
    WithStateType(a.store, [&](auto tag) {
      Launch(SsdRegKernel<decltype(tag)>, grid, threads, 0, s, a, seqs);
    });
    Check("ssd scan");
    return;
  }
  constexpr size_t kMaxStage = 160 * 1024;
  OncePerDevice([] {
    auto allow = [](auto kernel) {
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxStage);
    };
    allow(SsdScanKernel<float, 2>);
    allow(SsdScanKernel<float, 4>);
    allow(SsdScanKernel<uint16_t, 2>);
    allow(SsdScanKernel<uint16_t, 4>);
    allow(SsdScanKernel<__half, 2>);
    allow(SsdScanKernel<__half, 4>);
    return true;
  });
  SsdScanArgs b = a;
  const size_t need = static_cast<size_t>(a.P * a.N) * 4;
  b.stage = a.stage && need <= kMaxStage;  // larger heads update the state in place
  const size_t smem = b.stage ? need : 0;
  WithStateType(a.store, [&](auto tag) {
    using StateT = decltype(tag);
    if (a.N <= 64) {
      Launch(SsdScanKernel<StateT, 2>, grid, 256, smem, s, b, seqs);
    } else {
      Launch(SsdScanKernel<StateT, 4>, grid, 256, smem, s, b, seqs);
    }
  });
  Check("ssd scan");
}

void LaunchLlambaGate(const float* y, const float* proj, int64_t ld, int64_t z_off, const float* zb,
                      int64_t rows, int64_t di, float* out, cudaStream_t s, uint16_t* gemm_in,
                      bool split) {
  if (di % 4 == 0 && ld % 4 == 0 && z_off % 4 == 0 && Aligned16(y) && Aligned16(proj) &&
      Aligned16(zb) && Aligned16(out) &&
      (gemm_in == nullptr || reinterpret_cast<uintptr_t>(gemm_in) % 8 == 0)) {
    Launch(LlambaGateKernel<true>, RowGrid(rows, di / 4), 256, 0, s, y, proj, ld, z_off, zb, rows,
           di, out, gemm_in, split);
  } else {
    Launch(LlambaGateKernel<false>, RowGrid(rows, di), 256, 0, s, y, proj, ld, z_off, zb, rows, di,
           out, gemm_in, split);
  }
  Check("llamba gate");
}

void LaunchMamba2GateNorm(const float* y, const float* proj, int64_t ld, int64_t z_off,
                          const float* w, float eps, int64_t rows, int64_t di, int64_t groups,
                          float* out, cudaStream_t s) {
  dim3 grid(static_cast<unsigned>(groups), static_cast<unsigned>(rows));
  Launch(Mamba2GateNormKernel, grid, 256, 0, s, y, proj, ld, z_off, w, eps, di, di / groups, out);
  Check("mamba2 gate norm");
}

}  // namespace ttc::engine::cuda
