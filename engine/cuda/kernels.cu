// Kernels of the CUDA backend. Weights are bf16 (large matrices) or f32 (vectors, conv, small
// matrices); activations and recurrent state are f32; the KV cache is bf16. Every reduction
// accumulates in f32. See engine/cuda/kernels.h for the contracts.
#include <cuda_bf16.h>

#include <cstdio>
#include <cstdlib>

#include "engine/cuda/kernels.h"

namespace ttc::engine::cuda {

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
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    std::fprintf(stderr, "cuda backend: launch of %s failed: %s\n", what, cudaGetErrorString(e));
    std::abort();
  }
}

unsigned Blocks(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

__global__ void F32ToBf16Kernel(const float* x, int64_t ldx, int64_t rows, int64_t cols,
                                uint16_t* out) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    out[i] = ToBf(x[r * ldx + c]);
  }
}

__global__ void SplitBf16Kernel(const float* x, int64_t ldx, int64_t rows, int64_t cols,
                                uint16_t* out) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const float v = x[r * ldx + c];
    const uint16_t hi = ToBf(v);
    out[i] = hi;
    out[total + i] = ToBf(v - Bf(hi));
  }
}

__global__ void SumHalvesKernel(const float* y, int64_t rows, int64_t cols, float* out, int64_t ldo,
                                bool acc) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const float v = y[i] + y[total + i];
    float* o = out + r * ldo + c;
    *o = acc ? *o + v : v;
  }
}

__global__ void EmbedKernel(const uint16_t* tb, const float* tf, const int32_t* ids, int64_t d,
                            float* out) {
  const int64_t r = blockIdx.x;
  const int64_t id = ids[r];
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
    out[r * d + c] = tb ? Bf(tb[id * d + c]) : tf[id * d + c];
  }
}

__global__ void RmsNormKernel(const float* x, const float* w, float eps, int64_t n, float* out) {
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * n;
  float* orow = out + blockIdx.x * n;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  ss = BlockSum(ss, red);
  const float inv = rsqrtf(ss / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) orow[i] = w[i] * (xr[i] * inv);
}

__global__ void SwiGluKernel(const float* gu, int64_t rows, int64_t ff, float* out) {
  const int64_t total = rows * ff;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / ff, j = i % ff;
    const float g = gu[r * 2 * ff + j], u = gu[r * 2 * ff + ff + j];
    out[i] = Silu(g) * u;
  }
}

__global__ void Copy2DKernel(const float* src, int64_t ld_src, int64_t cols, float* dst,
                             int64_t ld_dst, const int64_t* rows) {
  const int64_t r = blockIdx.x;
  const int64_t sr = rows ? rows[r] : r;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    dst[r * ld_dst + c] = src[sr * ld_src + c];
}

__global__ void RopeAppendKernel(const float* qkv, const DevRow* info, const float* inv_freq, int H,
                                 int Hkv, int hd, float* q_out, uint16_t* const* kcache,
                                 uint16_t* const* vcache) {
  const int64_t r = blockIdx.x;
  const int half = hd / 2;
  const int64_t qw = static_cast<int64_t>(H) * hd, kvw = static_cast<int64_t>(Hkv) * hd;
  const DevRow ri = info[r];
  const float* src = qkv + r * (qw + 2 * kvw);
  uint16_t* kd = kcache[ri.slot] + static_cast<int64_t>(ri.pos) * kvw;
  uint16_t* vd = vcache[ri.slot] + static_cast<int64_t>(ri.pos) * kvw;
  const int total = (H + Hkv) * half;
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int h = i / half, j = i % half;
    float sn, cs;
    sincosf(static_cast<float>(ri.pos) * inv_freq[j], &sn, &cs);
    if (h < H) {
      const float* a = src + h * hd;
      const float x1 = a[j], x2 = a[j + half];
      q_out[r * qw + h * hd + j] = x1 * cs - x2 * sn;
      q_out[r * qw + h * hd + j + half] = x2 * cs + x1 * sn;
    } else {
      const int kh = h - H;
      const float* a = src + qw + kh * hd;
      const float x1 = a[j], x2 = a[j + half];
      kd[kh * hd + j] = ToBf(x1 * cs - x2 * sn);
      kd[kh * hd + j + half] = ToBf(x2 * cs + x1 * sn);
    }
  }
  for (int64_t i = threadIdx.x; i < kvw; i += blockDim.x) vd[i] = ToBf(src[qw + kvw + i]);
}

constexpr int kMaxGroup = 8;
constexpr int kAttnWarps = 8;

// One block per (row, KV head). Each warp walks a strided subset of the positions with an online
// softmax for the group's query heads (lanes split head_dim); the warps' partial results are merged
// at the end. EPL = head_dim / 32 elements per lane.
template <int EPL>
__global__ void __launch_bounds__(kAttnWarps * 32)
    AttentionKernel(const float* q, const DevRow* info, const uint16_t* const* kcache,
                    const uint16_t* const* vcache, int H, int Hkv, int hd, float* out) {
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
  const uint16_t* kb = kcache[ri.slot] + kvh * hd;
  const uint16_t* vb = vcache[ri.slot] + kvh * hd;
  const int ctx = ri.pos + 1;
  // Unrolled so the loads of the next positions are in flight while this one reduces.
#pragma unroll 2
  for (int p = warp; p < ctx; p += kAttnWarps) {
    float kv[EPL], vv[EPL];
#pragma unroll
    for (int e = 0; e < EPL; ++e) {
      const int d = lane + 32 * e;
      kv[e] = d < hd ? Bf(kb[p * kvw + d]) : 0.0f;
      vv[e] = d < hd ? Bf(vb[p * kvw + d]) : 0.0f;
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g < G) {
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) s += sq[g][lane + 32 * e] * kv[e];
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
  for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
    const int g = i / hd, d = i % hd;
    float mx = -INFINITY;
    for (int w = 0; w < kAttnWarps; ++w) mx = fmaxf(mx, sm[w][g]);
    float lsum = 0.0f, o = 0.0f;
    for (int w = 0; w < kAttnWarps; ++w) {
      if (sm[w][g] == -INFINITY) continue;  // a warp that saw no position
      const float f = expf(sm[w][g] - mx);
      lsum += sl[w][g] * f;
      o += sacc[w][g][d] * f;
    }
    out[r * qw + (kvh * G + g) * hd + d] = o / lsum;
  }
}

__global__ void CausalConvKernel(const float* in, int64_t ld_in, int64_t col_base, int64_t mil_n,
                                 int64_t mil_rep, int64_t channels, int K, const float* w,
                                 const float* b, bool silu, const DevSeq* seqs, float* state,
                                 float* out) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= channels) return;
  const DevSeq sq = seqs[blockIdx.y];
  float* sc = state + (static_cast<int64_t>(sq.slot) * channels + c) * (K - 1);
  const float* wc = w + c * K;
  float win[8];
  for (int k = 0; k < K - 1; ++k) win[k] = sc[k];
  const int64_t col =
      mil_n > 0 ? col_base + (c / (mil_n * mil_rep)) * mil_n + c % mil_n : col_base + c;
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
  for (int k = 0; k < K - 1; ++k) sc[k] = win[k];
}

__global__ void Mamba1ScanKernel(Mamba1ScanArgs a, const DevSeq* seqs) {
  const int64_t ch = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (ch >= a.di) return;
  const DevSeq sq = seqs[blockIdx.y];
  const int64_t N = a.N;
  const int64_t rep = a.mil ? a.di / a.dxb : 1;
  float* h = a.ssm + (static_cast<int64_t>(sq.slot) * a.di + ch) * N;
  const float* A = a.A + ch * N;
  const float bias = a.dt_b[ch], Dc = a.D[ch];
  for (int t = 0; t < sq.n; ++t) {
    const int64_t r = sq.row0 + t;
    const float* pr = a.proj + r * a.ld_proj;
    const float *Bv, *Cv;
    float z;
    if (a.mil) {
      Bv = pr + a.di + a.dxb + (ch / (N * rep)) * N;
      Cv = pr + a.di + 2 * a.dxb + (ch / N) * N;
      z = pr[ch];
    } else {
      Bv = a.xdbc + r * (a.R + 2 * N) + a.R;
      Cv = Bv + N;
      z = pr[a.di + ch];
    }
    const float d = Softplus(a.dt_raw[r * a.di + ch] + bias);
    const float xv = a.xc[r * a.di + ch];
    float y = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const float hn = expf(d * A[n]) * h[n] + (d * Bv[n]) * xv;
      h[n] = hn;
      y += hn * Cv[n];
    }
    y += Dc * xv;
    a.out[r * a.di + ch] = y * Silu(z);
  }
}

// One block per (sequence, head); warps own rows p of the head's [P, N] state, lanes split N.
__global__ void SsdScanKernel(SsdScanArgs a, const DevSeq* seqs) {
  const int64_t h = blockIdx.x;
  const DevSeq sq = seqs[blockIdx.y];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  const int64_t N = a.N, P = a.P, C = a.di + 2 * a.G * N;
  const int64_t g = h / (a.H / a.G);
  float* S = a.ssm + (static_cast<int64_t>(sq.slot) * a.H + h) * P * N;
  for (int t = 0; t < sq.n; ++t) {
    const int64_t r = sq.row0 + t;
    const float* xr = a.xbc + r * C;
    const float* x = xr + h * P;
    const float* Bv = xr + a.di + g * N;
    const float* Cv = xr + a.di + a.G * N + g * N;
    const float raw = a.proj[r * a.ld_proj + a.dt_off + h];
    float decay, scale;
    if (a.llamba) {
      decay = expf(-Softplus(raw));
      scale = 1.0f;
    } else {
      float dtv = Softplus(raw + a.dt_bias[h]);
      dtv = fmaxf(dtv, a.dt_min);
      if (a.dt_max > 0) dtv = fminf(dtv, a.dt_max);
      decay = expf(dtv * a.A[h]);
      scale = dtv;
    }
    for (int64_t p = warp; p < P; p += nw) {
      float* Sp = S + p * N;
      const float xs = scale * x[p];
      float acc = 0.0f;
      for (int64_t n = lane; n < N; n += 32) {
        const float v = decay * Sp[n] + xs * Bv[n];
        Sp[n] = v;
        acc += v * Cv[n];
      }
      acc = WarpSum(acc);
      if (lane == 0) a.y[r * a.di + h * P + p] = acc + a.D[h] * x[p];
    }
    __syncwarp();
  }
}

__global__ void LlambaGateKernel(const float* y, const float* proj, int64_t ld, int64_t z_off,
                                 const float* zb, int64_t rows, int64_t di, float* out) {
  const int64_t total = rows * di;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / di, c = i % di;
    out[i] = y[i] * Silu(proj[r * ld + z_off + c] + zb[c]);
  }
}

__global__ void Mamba2GateNormKernel(const float* y, const float* proj, int64_t ld, int64_t z_off,
                                     const float* w, float eps, int64_t di, int64_t gs,
                                     float* out) {
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

unsigned GridStride(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return static_cast<unsigned>(b < 65535 * 16 ? (b > 0 ? b : 1) : 65535 * 16);
}

}  // namespace

void LaunchF32ToBf16(const float* x, int64_t ldx, int64_t rows, int64_t cols, uint16_t* out,
                     cudaStream_t s) {
  F32ToBf16Kernel<<<GridStride(rows * cols), 256, 0, s>>>(x, ldx, rows, cols, out);
  Check("f32->bf16");
}

void LaunchSplitBf16(const float* x, int64_t ldx, int64_t rows, int64_t cols, uint16_t* out,
                     cudaStream_t s) {
  SplitBf16Kernel<<<GridStride(rows * cols), 256, 0, s>>>(x, ldx, rows, cols, out);
  Check("split bf16");
}

void LaunchSumHalves(const float* y, int64_t rows, int64_t cols, float* out, int64_t ldo,
                     bool accumulate, cudaStream_t s) {
  SumHalvesKernel<<<GridStride(rows * cols), 256, 0, s>>>(y, rows, cols, out, ldo, accumulate);
  Check("sum halves");
}

void LaunchEmbed(const uint16_t* tb, const float* tf, const int32_t* ids, int64_t rows, int64_t d,
                 float* out, cudaStream_t s) {
  EmbedKernel<<<static_cast<unsigned>(rows), 256, 0, s>>>(tb, tf, ids, d, out);
  Check("embed");
}

void LaunchRmsNorm(const float* x, const float* w, float eps, int64_t rows, int64_t n, float* out,
                   cudaStream_t s) {
  RmsNormKernel<<<static_cast<unsigned>(rows), 256, 0, s>>>(x, w, eps, n, out);
  Check("rmsnorm");
}

void LaunchSwiGlu(const float* gu, int64_t rows, int64_t ff, float* out, cudaStream_t s) {
  SwiGluKernel<<<GridStride(rows * ff), 256, 0, s>>>(gu, rows, ff, out);
  Check("swiglu");
}

void LaunchGatherRows(const float* x, const int64_t* rows, int64_t n, int64_t cols, float* out,
                      cudaStream_t s) {
  Copy2DKernel<<<static_cast<unsigned>(n), 256, 0, s>>>(x, cols, cols, out, cols, rows);
  Check("gather rows");
}

void LaunchCopy2D(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,
                  int64_t ld_dst, cudaStream_t s) {
  Copy2DKernel<<<static_cast<unsigned>(rows), 256, 0, s>>>(src, ld_src, cols, dst, ld_dst, nullptr);
  Check("copy2d");
}

void LaunchRopeAppend(const float* qkv, int64_t rows, const DevRow* info, const float* inv_freq,
                      int H, int Hkv, int hd, float* q_out, uint16_t* const* kcache,
                      uint16_t* const* vcache, cudaStream_t s) {
  RopeAppendKernel<<<static_cast<unsigned>(rows), 128, 0, s>>>(qkv, info, inv_freq, H, Hkv, hd,
                                                               q_out, kcache, vcache);
  Check("rope+append");
}

void LaunchAttention(const float* q, int64_t rows, const DevRow* info,
                     const uint16_t* const* kcache, const uint16_t* const* vcache, int H, int Hkv,
                     int hd, float* out, cudaStream_t s) {
  if (H % Hkv != 0 || H / Hkv > kMaxGroup || hd > 128 || hd % 2 != 0) {
    std::fprintf(
        stderr,
        "cuda backend: attention with %d query heads, %d KV heads, head_dim %d is not supported "
        "(group <= %d, head_dim <= 128)\n",
        H, Hkv, hd, kMaxGroup);
    std::abort();
  }
  dim3 grid(static_cast<unsigned>(Hkv), static_cast<unsigned>(rows));
  if (hd <= 32) {
    AttentionKernel<1><<<grid, kAttnWarps * 32, 0, s>>>(q, info, kcache, vcache, H, Hkv, hd, out);
  } else if (hd <= 64) {
    AttentionKernel<2><<<grid, kAttnWarps * 32, 0, s>>>(q, info, kcache, vcache, H, Hkv, hd, out);
  } else {
    AttentionKernel<4><<<grid, kAttnWarps * 32, 0, s>>>(q, info, kcache, vcache, H, Hkv, hd, out);
  }
  Check("attention");
}

void LaunchCausalConv(const float* in, int64_t ld_in, int64_t col_base, int64_t mil_n,
                      int64_t mil_rep, int64_t channels, int K, const float* w, const float* b,
                      bool silu, const DevSeq* seqs, int nseq, float* state, float* out,
                      cudaStream_t s) {
  if (K < 1 || K > 9) {
    std::fprintf(stderr, "cuda backend: d_conv %d is not supported (1..9)\n", K);
    std::abort();
  }
  dim3 grid(Blocks(channels, 128), static_cast<unsigned>(nseq));
  CausalConvKernel<<<grid, 128, 0, s>>>(in, ld_in, col_base, mil_n, mil_rep, channels, K, w, b,
                                        silu, seqs, state, out);
  Check("causal conv");
}

void LaunchMamba1Scan(const Mamba1ScanArgs& a, const DevSeq* seqs, int nseq, cudaStream_t s) {
  dim3 grid(Blocks(a.di, 128), static_cast<unsigned>(nseq));
  Mamba1ScanKernel<<<grid, 128, 0, s>>>(a, seqs);
  Check("mamba1 scan");
}

void LaunchSsdScan(const SsdScanArgs& a, const DevSeq* seqs, int nseq, cudaStream_t s) {
  dim3 grid(static_cast<unsigned>(a.H), static_cast<unsigned>(nseq));
  SsdScanKernel<<<grid, 256, 0, s>>>(a, seqs);
  Check("ssd scan");
}

void LaunchLlambaGate(const float* y, const float* proj, int64_t ld, int64_t z_off, const float* zb,
                      int64_t rows, int64_t di, float* out, cudaStream_t s) {
  LlambaGateKernel<<<GridStride(rows * di), 256, 0, s>>>(y, proj, ld, z_off, zb, rows, di, out);
  Check("llamba gate");
}

void LaunchMamba2GateNorm(const float* y, const float* proj, int64_t ld, int64_t z_off,
                          const float* w, float eps, int64_t rows, int64_t di, int64_t groups,
                          float* out, cudaStream_t s) {
  dim3 grid(static_cast<unsigned>(groups), static_cast<unsigned>(rows));
  Mamba2GateNormKernel<<<grid, 256, 0, s>>>(y, proj, ld, z_off, w, eps, di, di / groups, out);
  Check("mamba2 gate norm");
}

}  // namespace ttc::engine::cuda
