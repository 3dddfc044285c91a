// The GPU sampler: SampleToken (engine/sampler.cc) per draw, one thread block per draw, with the
// same steps in the same order — argmax for greedy; scaled logits; top-k by a radix select over
// the float bit patterns (ties at the boundary kept); unnormalised probabilities expf(z); mass
// summed in 256-id chunks with the CPU's four interleaved double accumulators, chunks in id order;
// top-p by a radix select over the probabilities' bit patterns weighted by mass (boundary ties
// kept in ascending id order); inverse CDF with the Philox uniform of engine/rng.h. No sort of the
// vocabulary and no host round trip but the ids. Without top-k and top-p (the default) the
// probabilities are never stored: one pass for the maximum, one for the chunk sums, and the chunk
// the draw lands in recomputed (same result, 2 reads of the logits instead of ~6 passes). Where it
// can differ from the CPU: expf is not correctly rounded on the GPU (<= 2 ulp), and the top-p
// boundary compares mass sums taken per radix digit rather than one running sum, so a draw whose
// uniform lands within rounding of a boundary may pick the neighbouring token; the distribution is
// the same (tests/cuda checks it with a chi-square test against SamplingDistribution).
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/cuda/bulk_copy.cuh"
#include "engine/cuda/kernels.h"
#include "engine/cuda/launch.cuh"
#include "engine/rng.h"
#include "engine/sampler_sum.h"

namespace ttc::engine::cuda {

namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = static_cast<int>(kSampleChunk);  // engine/sampler_sum.h

// The chunks of a vocabulary of V ids (the last may be partial).
__host__ __device__ constexpr int64_t Chunks(int64_t V) { return (V + kChunk - 1) / kChunk; }

// An id's unnormalised probability on the fast paths, from its logit v, the row's maximum and the
// temperature (NaN: 0). Every fast-path kernel computes it here, so that all draw the same ids.
__device__ __forceinline__ float Mass(float v, float mx, float temp) {
  return isnan(v) ? 0.0f : expf((v - mx) / temp);
}

struct ArgBest {
  float v;
  int32_t id;
  bool found;
};

// (found, value desc, id asc): the CPU Argmax's order (NaN never found).
__device__ __forceinline__ ArgBest Better(ArgBest a, ArgBest b) {
  if (!b.found) return a;
  if (!a.found) return b;
  if (b.v > a.v || (b.v == a.v && b.id < a.id)) return b;
  return a;
}

__device__ __forceinline__ ArgBest WarpBest(ArgBest a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    ArgBest b;
    b.v = __shfl_xor_sync(0xffffffffu, a.v, o);
    b.id = __shfl_xor_sync(0xffffffffu, a.id, o);
    b.found = __shfl_xor_sync(0xffffffffu, static_cast<int>(a.found), o) != 0;
    a = Better(a, b);
  }
  return a;
}

// Keeps in `best` the first of a thread's ids (taken in ascending order) with the largest value
// (NaN never taken): with WarpBest / Better afterwards, the CPU Argmax's pick.
__device__ __forceinline__ void Take(float v, int64_t i, ArgBest& best) {
  if (!isnan(v) && (!best.found || v > best.v)) best = {v, static_cast<int32_t>(i), true};
}

// Take over the float4 quads x4[q0, q1) (ids 4q to 4q + 3), shared by kT threads: each thread's
// ids ascending, four 16-byte loads in flight.
template <int kT>
__device__ __forceinline__ void TakeQuads(const float4* x4, int64_t q0, int64_t q1, ArgBest& best) {
  for (int64_t q = q0 + threadIdx.x; q < q1; q += 4 * kT) {
    float4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int64_t j = q + u * kT;
      v[u] = j < q1 ? x4[j] : make_float4(NAN, NAN, NAN, NAN);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int64_t i = 4 * (q + u * kT);
      Take(v[u].x, i, best);
      Take(v[u].y, i + 1, best);
      Take(v[u].z, i + 2, best);
      Take(v[u].w, i + 3, best);
    }
  }
}

struct Shared {
  ArgBest best[kWarps];
  uint32_t hist[256];
  double mass[256];
  uint32_t warp_count[kWarps];
  double total;
  uint32_t prefix;
  uint32_t rank;
  int32_t pick;
  int32_t tie_id;
  int flag;
  int64_t cand;      // fast path: the chunk to scan next (-1: none)
  double running;    // fast path: the mass of the chunks before it
  float pc[kChunk];  // fast path: that chunk's probabilities
};

// Fills chunk[] with the chunk sums of p and returns the total (every thread gets it).
__device__ double Totals(const float* p, int64_t V, double* chunk, Shared& sh) {
  const int64_t nchunks = Chunks(V);
  for (int64_t c = threadIdx.x; c < nchunks; c += blockDim.x) {
    const int64_t b = c * kChunk;
    chunk[c] = ChunkSum(p + b, V - b < kChunk ? V - b : kChunk);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int64_t c = 0; c < nchunks; ++c) t += chunk[c];
    sh.total = t;
  }
  __syncthreads();
  return sh.total;
}

__device__ __forceinline__ uint32_t Bits(float f) { return __float_as_uint(f); }

// The draw when u * total rounded above every partial sum: the last id with non-zero probability
// (`positive(i)`), or the argmax when there is none; thread 0 writes it to *out. Every thread of
// the block calls it.
template <int kT, typename Sh, typename Positive>
__device__ void PickLastPositive(int64_t V, Positive positive, int32_t argmax, Sh& sh,
                                 int32_t* out) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int32_t last = -1;
  for (int64_t i = tid; i < V; i += kT)
    if (positive(i)) last = static_cast<int32_t>(i);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) last = max(last, __shfl_xor_sync(0xffffffffu, last, o));
  if (lane == 0) sh.warp_count[warp] = static_cast<uint32_t>(last + 1);
  __syncthreads();
  if (tid == 0) {
    int32_t m = 0;
    for (int w = 0; w < kT / 32; ++w) m = max(m, static_cast<int32_t>(sh.warp_count[w]));
    *out = m > 0 ? m - 1 : argmax;
  }
}

// The temperature-only draw once chunk[] holds the row's chunk sums (each summed in ChunkSum's
// order): the total, the chunk the uniform lands in, that chunk's ids scanned in order (a chunk
// whose ids do not reach r, its sum having been taken in another order, passes to the next chunk
// that crosses r, as in the general path's step 6), and the last positive id or the argmax where
// nothing is picked. Thread 0 writes *out. Every thread of the block calls it; `prob` recomputes
// an id's probability from its logit (the same expression, so the same bits).
template <int kT, typename Sh, typename Prob>
__device__ void DrawFromChunkSums(const float* x, int64_t V, const double* chunk, Prob prob,
                                  const DevSampleKey* key, int32_t argmax, Sh& sh, int32_t* out) {
  const int tid = threadIdx.x;
  const int64_t nchunks = Chunks(V);
  double r = 0.0;
  if (tid == 0) {
    double t = 0.0;
    for (int64_t c = 0; c < nchunks; ++c) t += chunk[c];
    sh.total = t;
    sh.cand = -1;
    sh.pick = -1;
    if (t > 0.0) {
      r = SamplingUniform(key->seed, key->sample_index, key->step) * t;
      double running = 0.0;
      int64_t c = 0;
      while (c < nchunks && !(running + chunk[c] > r)) running += chunk[c++];
      sh.cand = c < nchunks ? c : -1;
      sh.running = running;
    }
  }
  __syncthreads();
  if (!(sh.total > 0.0)) {
    if (tid == 0) *out = argmax;
    return;
  }
  while (sh.cand >= 0) {
    const int64_t c = sh.cand, b = c * kChunk, n = V - b < kChunk ? V - b : kChunk;
    for (int64_t i = tid; i < n; i += kT) sh.pc[i] = prob(x[b + i]);
    __syncthreads();
    if (tid == 0) {
      double acc = sh.running;
      int32_t pick = -1;
      for (int64_t i = 0; i < n; ++i) {
        acc += sh.pc[i];
        if (acc > r && sh.pc[i] > 0.0f) {
          pick = static_cast<int32_t>(b + i);
          break;
        }
      }
      if (pick >= 0) {
        sh.pick = pick;
        sh.cand = -1;
      } else {
        double running = sh.running + chunk[c];
        int64_t next = c + 1;
        while (next < nchunks && !(running + chunk[next] > r)) running += chunk[next++];
        sh.cand = next < nchunks ? next : -1;
        sh.running = running;
      }
    }
    __syncthreads();
  }
  if (sh.pick >= 0) {
    if (tid == 0) *out = sh.pick;
    return;
  }
  PickLastPositive<kT>(
      V, [&](int64_t i) { return prob(x[i]) > 0.0f; }, argmax, sh, out);
}

// Accumulator `a` (0-3) of ChunkSum over the n probabilities of a chunk's logits at cp (n a
// multiple of 4): prob(cp[a]) + prob(cp[a + 4]) + ... in that order, in double. Eight loads are
// issued before any is used: `prob` branches on NaN, and a load behind a branch waits for the
// values before it (one load in flight per thread otherwise).
template <typename Prob>
__device__ __forceinline__ double AccumulatorSum(const float* cp, int n, int a, Prob prob) {
  constexpr int kAhead = 8;
  static_assert(kChunk % (4 * kAhead) == 0, "a whole chunk takes whole rounds of loads");
  double acc = 0.0;
  if (n == kChunk) {  // every chunk but perhaps a row's last: no bounds in the loop
    for (int i0 = a; i0 < kChunk; i0 += 4 * kAhead) {
      float v[kAhead];
#pragma unroll
      for (int u = 0; u < kAhead; ++u) v[u] = cp[i0 + 4 * u];
#pragma unroll
      for (int u = 0; u < kAhead; ++u) acc += prob(v[u]);
    }
  } else {
    for (int i = a; i < n; i += 4) acc += prob(cp[i]);
  }
  return acc;
}

// kVec: the argmax pass on float4 loads, four per thread in flight, and the chunk sums' loads
// unrolled 8 deep (the same ids: ties still go to the lowest id, sums in the same order). Call V's
// profile had the sampler at ~200 µs per Llama-1B B=256 step for two reads of 131 MB of logits:
// each block's scalar argmax loop waited on one load per iteration. kVec = false
// (TTC_CUDA_SAMPLE_SCALAR=1) is the previous kernel, for A/B runs.
template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    SampleKernel(const float* logits, int64_t V, int64_t per_row, DevSampling sp,
                 const DevSampleKey* keys, float* probs, int32_t* out) {
  PdlGate();
  extern __shared__ double chunk[];  // ceil(V / kChunk)
  __shared__ Shared sh;
  const int64_t draw = blockIdx.x;
  const float* x = logits + (draw / per_row) * V;
  float* p = probs + draw * V;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  // 1. Argmax (greedy, and the fallback of every degenerate case) and the maximum.
  ArgBest best{-INFINITY, 0, false};
  if (kVec && V % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0) {
    TakeQuads<kThreads>(reinterpret_cast<const float4*>(x), 0, V / 4, best);
  } else {
    for (int64_t i = tid; i < V; i += kThreads) Take(x[i], i, best);
  }
  best = WarpBest(best);
  if (lane == 0) sh.best[warp] = best;
  __syncthreads();
  if (warp == 0) {
    ArgBest b = sh.best[lane];
    b = WarpBest(b);
    if (lane == 0) sh.best[0] = b;
  }
  __syncthreads();
  const ArgBest top = sh.best[0];
  const int32_t argmax = top.found ? top.id : 0;
  const bool use_argmax = sp.greedy || !(sp.temperature > 0.0f) || sp.top_k == 1;
  if (use_argmax || !top.found || !isfinite(top.v)) {
    if (tid == 0) out[draw] = argmax;
    return;
  }
  const float mx = top.v;

  // Temperature sampling over the whole vocabulary (no top-k, no top-p; the default): the same
  // probabilities, chunk sums, total and pick as steps 2-6 below, bit for bit, without storing the
  // probabilities: the chunk sums come from one pass over the logits, and only the chunk the
  // uniform lands in has its probabilities computed again (same expression, same rounding).
  if (!SampleNeedsProbs(sp, V)) {
    const float temp = sp.temperature;
    auto prob = [&](float v) { return Mass(v, mx, temp); };
    const int64_t nchunks = Chunks(V);
    const bool vec = (V % 4) == 0 && (reinterpret_cast<uintptr_t>(x) % 16) == 0;
    for (int64_t c = tid; c < nchunks; c += kThreads) {
      // ChunkSum's order (engine/sampler_sum.h): four interleaved double accumulators.
      const int64_t b = c * kChunk, n = V - b < kChunk ? V - b : kChunk;
      double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      int64_t i = 0;
      if (vec) {
        const float4* x4 = reinterpret_cast<const float4*>(x + b);
#pragma unroll(kVec ? 8 : 4)
        for (; i + 4 <= n; i += 4) {
          const float4 v = x4[i / 4];
          a0 += prob(v.x);
          a1 += prob(v.y);
          a2 += prob(v.z);
          a3 += prob(v.w);
        }
      } else {
        for (; i + 4 <= n; i += 4) {
          a0 += prob(x[b + i]);
          a1 += prob(x[b + i + 1]);
          a2 += prob(x[b + i + 2]);
          a3 += prob(x[b + i + 3]);
        }
      }
      for (; i < n; ++i) a0 += prob(x[b + i]);
      chunk[c] = (a0 + a1) + (a2 + a3);
    }
    __syncthreads();
    DrawFromChunkSums<kThreads>(x, V, chunk, prob, keys + draw, argmax, sh, out + draw);
    return;
  }

  // 2. Scaled logits z <= 0 (NaN -> -inf).
  for (int64_t i = tid; i < V; i += kThreads) {
    const float v = x[i];
    p[i] = isnan(v) ? -INFINITY : (v - mx) / sp.temperature;
  }
  __syncthreads();

  // 3. Top-k: the k-th largest z is the k-th smallest |z| bit pattern; radix select, 8 bits a pass.
  const bool top_k = sp.top_k > 0 && static_cast<int64_t>(sp.top_k) < V;
  float threshold = -INFINITY;
  if (top_k) {
    uint32_t prefix = 0, mask = 0;
    if (tid == 0) sh.rank = static_cast<uint32_t>(sp.top_k);
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = tid; i < 256; i += kThreads) sh.hist[i] = 0;
      __syncthreads();
      for (int64_t i = tid; i < V; i += kThreads) {
        const uint32_t key = Bits(p[i]) & 0x7fffffffu;
        if ((key & mask) == prefix) atomicAdd(&sh.hist[(key >> shift) & 255u], 1u);
      }
      __syncthreads();
      if (tid == 0) {
        uint32_t rank = sh.rank, d = 0;
        while (d < 255 && sh.hist[d] < rank) rank -= sh.hist[d++];
        sh.rank = rank;
        sh.prefix = prefix | (d << shift);
      }
      __syncthreads();
      prefix = sh.prefix;
      mask |= 255u << shift;
    }
    threshold = -__uint_as_float(prefix);
  }

  // 4. Unnormalised probabilities of the kept tokens.
  for (int64_t i = tid; i < V; i += kThreads) {
    const float z = p[i];
    p[i] = (!top_k || z >= threshold) ? expf(z) : 0.0f;
  }
  __syncthreads();
  double total = Totals(p, V, chunk, sh);

  // 5. Top-p: the boundary value by a mass-weighted radix select from the largest probabilities
  // down; ties at the boundary kept from the lowest id up until the mass reaches the target.
  if (sp.top_p < 1.0f) {
    const double target = static_cast<double>(fmaxf(sp.top_p, 0.0f)) * total;
    double before = 0.0;  // mass strictly above the current prefix range
    uint32_t prefix = 0, mask = 0;
    bool reached = true;
    for (int shift = 24; shift >= 0 && reached; shift -= 8) {
      for (int i = tid; i < 256; i += kThreads) {
        sh.mass[i] = 0.0;
        sh.hist[i] = 0;
      }
      __syncthreads();
      for (int64_t i = tid; i < V; i += kThreads) {
        const float pi = p[i];
        if (!(pi > 0.0f)) continue;
        const uint32_t key = Bits(pi);
        if ((key & mask) == prefix) {
          const uint32_t d = (key >> shift) & 255u;
          atomicAdd(&sh.mass[d], static_cast<double>(pi));
          atomicAdd(&sh.hist[d], 1u);
        }
      }
      __syncthreads();
      if (tid == 0) {
        int d = 255;
        for (; d >= 0; --d) {
          if (sh.hist[d] > 0 && before + sh.mass[d] >= target) break;
          before += sh.mass[d];
        }
        sh.flag = d >= 0;
        sh.prefix = prefix | (static_cast<uint32_t>(d < 0 ? 0 : d) << shift);
        sh.total = before;
      }
      __syncthreads();
      reached = sh.flag != 0;
      before = sh.total;
      prefix = sh.prefix;
      mask |= 255u << shift;
    }
    if (reached) {  // else rounding left the target unreached: every token stays (as on the CPU)
      const float pb = __uint_as_float(prefix);
      // Ties needed: the fewest n >= 1 with before + n * pb >= target.
      __syncthreads();
      if (tid == 0) {
        double need = ceil((target - before) / static_cast<double>(pb));
        sh.rank = static_cast<uint32_t>(fmax(1.0, fmin(need, 4294967295.0)));
        sh.tie_id = -1;
      }
      __syncthreads();
      const uint32_t n_ties = sh.rank;
      uint32_t seen = 0;
      for (int64_t base = 0; base < V; base += kThreads) {
        const int64_t i = base + tid;
        const bool tie = i < V && p[i] == pb;
        const unsigned ballot = __ballot_sync(0xffffffffu, tie);
        if (lane == 0) sh.warp_count[warp] = __popc(ballot);
        __syncthreads();
        uint32_t before_warp = 0, in_tile = 0;
        for (int w = 0; w < kWarps; ++w) {
          if (w < warp) before_warp += sh.warp_count[w];
          in_tile += sh.warp_count[w];
        }
        if (tie) {
          const uint32_t rank = seen + before_warp + __popc(ballot & ((1u << lane) - 1u)) + 1;
          if (rank == n_ties) sh.tie_id = static_cast<int32_t>(i);
        }
        seen += in_tile;
        __syncthreads();
        if (seen >= n_ties || sh.tie_id >= 0) break;  // uniform: every thread sees the same
      }
      __syncthreads();
      const int32_t ib = sh.tie_id >= 0 ? sh.tie_id : static_cast<int32_t>(V);
      for (int64_t i = tid; i < V; i += kThreads) {
        const float pi = p[i];
        const bool keep = pi > pb || (pi == pb && i <= ib);
        if (!keep) p[i] = 0.0f;
      }
      __syncthreads();
      total = Totals(p, V, chunk, sh);
    }
  }

  // 6. Inverse CDF: chunk sums in id order, then the ids of the chunk that crosses u * total.
  if (!(total > 0.0)) {
    if (tid == 0) out[draw] = argmax;
    return;
  }
  if (tid == 0) {
    const DevSampleKey k = keys[draw];
    const double r = SamplingUniform(k.seed, k.sample_index, k.step) * total;
    const int64_t nchunks = Chunks(V);
    double running = 0.0;
    int32_t pick = -1;
    for (int64_t c = 0; c < nchunks && pick < 0; ++c) {
      const double block = chunk[c];
      if (running + block > r) {
        double acc = running;
        const int64_t end = (c + 1) * kChunk < V ? (c + 1) * kChunk : V;
        for (int64_t i = c * kChunk; i < end; ++i) {
          acc += p[i];
          if (acc > r && p[i] > 0.0f) {
            pick = static_cast<int32_t>(i);
            break;
          }
        }
      }
      running += block;
    }
    sh.pick = pick;
  }
  __syncthreads();
  if (sh.pick >= 0) {
    if (tid == 0) out[draw] = sh.pick;
    return;
  }
  PickLastPositive<kThreads>(
      V, [&](int64_t i) { return p[i] > 0.0f; }, argmax, sh, out + draw);
}

// The temperature-only draw (SampleNeedsProbs false, not greedy) with the row read from memory
// once. SampleKernel reads it twice, once for the maximum and once for the chunk sums, on one block
// per row: 1024 threads at 64 registers fill an SM, so its serial sections (thread 0 totals 501
// chunk sums and scans the landing chunk) leave the SM idle, and half its threads wait out the
// chunk pass (318 µs per MambaInLlama-3B B=512 step for 2 x 263 MB, call AP). Here a cluster of
// `cs` blocks holds the row in shared memory: block `rank` owns chunks [rank * cpb, +cpb), which
// one bulk copy per chunk brings in (kClPieces mbarriers, so the maximum starts on the first
// piece). The blocks swap their maxima through distributed shared memory, sum their chunks (four
// threads per chunk, one per ChunkSum accumulator, so no thread idles and each accumulator keeps
// its order), and write the sums into rank 0, which draws as SampleKernel does (DrawFromChunkSums,
// re-reading only the landing chunk). Each chunk sits 1040 bytes from the next in shared memory,
// so the 8 chunks of a warp's loads fall in different banks. Same ids as SampleKernel, bit for bit.
constexpr int kClThreads = 256;
constexpr int kClStride = kChunk + 4;  // floats from one chunk to the next in shared memory
constexpr int kClPieces = 4;
constexpr int kClMaxCluster = 8;  // the portable cluster size
// Shared memory per block at most: the row's slice and rank 0's chunk sums. 72 KB lets three blocks
// share an SM; Llama 3's 128,256 ids take 8 blocks of 63 chunks (69.5 KB).
constexpr size_t kClMaxSmem = 72 * 1024;

struct ClusterShared {
  ArgBest best[kClThreads / 32];
  ArgBest rank_best[kClMaxCluster];  // every rank's maximum, written by that rank
  uint32_t warp_count[kClThreads / 32];
  uint64_t bar[kClPieces];
  double total;
  double running;
  int64_t cand;
  int32_t pick;
  float pc[kChunk];
};

__global__ void __launch_bounds__(kClThreads)
    SampleClusterKernel(const float* logits, int64_t V, int64_t per_row, DevSampling sp,
                        const DevSampleKey* keys, int32_t* out, int cpb) {
  PdlGate();
  extern __shared__ __align__(128) unsigned char cl_smem[];
  __shared__ ClusterShared sh;
  float* slice = reinterpret_cast<float*>(cl_smem);
  double* csum = reinterpret_cast<double*>(cl_smem + static_cast<size_t>(cpb) * kClStride * 4);
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int cs = static_cast<int>(cluster.num_blocks());
  const int64_t draw = blockIdx.x / cs;
  const float* x = logits + (draw / per_row) * V;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t nchunks = Chunks(V);
  const int64_t c0 = static_cast<int64_t>(rank) * cpb;
  const int nloc = static_cast<int>(max(int64_t{0}, min(c0 + cpb, nchunks) - c0));
  const int per_piece = max(1, (nloc + kClPieces - 1) / kClPieces);
  // Chunk j's ids (a multiple of 4: V is, so is every chunk).
  auto chunk_len = [&](int j) { return min(int64_t{kChunk}, V - (c0 + j) * kChunk); };

  if (tid == 0) MbarInit(sh.bar, kClPieces);
  __syncthreads();
  if (warp == 0) {
    if (lane == 0) {
      for (int pc = 0; pc < kClPieces; ++pc) {
        uint32_t bytes = 0;
        for (int j = pc * per_piece; j < min(nloc, (pc + 1) * per_piece); ++j)
          bytes += static_cast<uint32_t>(chunk_len(j) * 4);
        MbarExpectTx(&sh.bar[pc], bytes);
      }
    }
    __syncwarp();
    for (int j = lane; j < nloc; j += 32) {
      BulkCopy(slice + j * kClStride, x + (c0 + j) * kChunk,
               static_cast<uint32_t>(chunk_len(j) * 4), &sh.bar[j / per_piece]);
    }
  }
  // Every block of the cluster has started: its shared memory may be written from here on.
  cluster.sync();

  // 1. The maximum and argmax of the slice, each thread's ids ascending (ties to the lowest id).
  ArgBest best{-INFINITY, 0, false};
  for (int pc = 0; pc < kClPieces; ++pc) {
    MbarWait(&sh.bar[pc], 0);
    const int j_end = min(nloc, (pc + 1) * per_piece);
    for (int q = pc * per_piece * (kChunk / 4) + tid; q < j_end * (kChunk / 4); q += kClThreads) {
      const int j = q / (kChunk / 4), o = 4 * (q % (kChunk / 4));
      if (o >= chunk_len(j)) continue;
      const float4 v = *reinterpret_cast<const float4*>(slice + j * kClStride + o);
      const int64_t i = (c0 + j) * kChunk + o;
      const float vs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        if (!isnan(vs[u]) && (!best.found || vs[u] > best.v))
          best = {vs[u], static_cast<int32_t>(i + u), true};
      }
    }
  }
  best = WarpBest(best);
  if (lane == 0) sh.best[warp] = best;
  __syncthreads();
  if (warp == 0) {
    ArgBest b = lane < kClThreads / 32 ? sh.best[lane] : ArgBest{-INFINITY, 0, false};
    b = WarpBest(b);
    if (lane < cs) *cluster.map_shared_rank(&sh.rank_best[rank], lane) = b;
  }
  cluster.sync();
  ArgBest top = sh.rank_best[0];
  for (int r = 1; r < cs; ++r) top = Better(top, sh.rank_best[r]);
  const int32_t argmax = top.found ? top.id : 0;
  if (sp.greedy || !(sp.temperature > 0.0f) || sp.top_k == 1 || !top.found || !isfinite(top.v)) {
    if (rank == 0 && tid == 0) out[draw] = argmax;
    return;  // (no block touches another's shared memory after the last cluster.sync)
  }
  const float mx = top.v, temp = sp.temperature;
  auto prob = [&](float v) { return Mass(v, mx, temp); };

  // 2. Chunk sums: thread 4g + a sums accumulator a of chunk g (ids a, a + 4, ... in order), then
  // lane 4g adds them as ChunkSum does, (a0 + a1) + (a2 + a3), into rank 0's csum. The loop runs
  // the same number of times on every lane of a warp, so the shuffles see all 32.
  double* csum0 = cluster.map_shared_rank(csum, 0);
  const int g = tid >> 2, a = tid & 3;
  for (int base = 0; base < nloc; base += kClThreads / 4) {
    const int j = base + g;
    const double acc =
        j < nloc ? AccumulatorSum(slice + j * kClStride, static_cast<int>(chunk_len(j)), a, prob)
                 : 0.0;
    const double pair = acc + __shfl_down_sync(0xffffffffu, acc, 1);   // a0 + a1 at a = 0
    const double sum = pair + __shfl_down_sync(0xffffffffu, pair, 2);  // + (a2 + a3)
    if (j < nloc && a == 0) csum0[c0 + j] = sum;
  }
  cluster.sync();  // rank 0 holds every chunk sum; the other blocks are done
  if (rank != 0) return;
  DrawFromChunkSums<kClThreads>(x, V, csum, prob, keys + draw, argmax, sh, out + draw);
}

// The cluster kernel's shape for a vocabulary: blocks per row (cs, 0 where it does not apply),
// chunks per block and shared memory per block.
struct ClusterShape {
  int cs = 0;
  int cpb = 0;
  size_t smem = 0;
};
ClusterShape SampleClusterShape(int64_t vocab) {
  const int64_t nchunks = Chunks(vocab);
  for (int cs = 1; cs <= kClMaxCluster; ++cs) {
    const int64_t cpb = (nchunks + cs - 1) / cs;
    const size_t smem = static_cast<size_t>(cpb * kClStride * 4 + nchunks * 8);
    if (smem <= kClMaxSmem) return {cs, static_cast<int>(cpb), smem};
  }
  return {};
}

// Whether the current device runs the cluster kernel at all (probed once per device;
// TTC_CUDA_SAMPLE_CLUSTER=0 turns it off for A/B runs).
bool ClusterKernelUsable() {
  static const bool off = [] {
    const char* e = std::getenv("TTC_CUDA_SAMPLE_CLUSTER");
    return e != nullptr && std::strcmp(e, "0") == 0;
  }();
  if (off) return false;
  return OncePerDevice([] {
    if (cudaFuncSetAttribute(SampleClusterKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(kClMaxSmem)) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    // The largest cluster must fit on the device with the largest slice.
    cudaLaunchConfig_t cfg{};
    cudaLaunchAttribute attr = ClusterAttribute(kClMaxCluster);
    cfg.gridDim = dim3(kClMaxCluster);
    cfg.blockDim = dim3(kClThreads);
    cfg.dynamicSmemBytes = kClMaxSmem;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, SampleClusterKernel, &cfg) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return clusters > 0;
  });
}

// The split sampler: the temperature-only draw as three kernels over the whole batch instead of
// one block (or one cluster) per row. Call AS measured both one-row kernels at 0.7-0.8 TB/s over
// one read of the logits (B=256: 181-196 µs, B=512: 333-356 µs, H200): each row's serial sections
// (the total of 501 chunk sums, the scan, the landing chunk) and its phases (maximum, then sums)
// run one after another on the SMs that hold the row, so a wave of rows waits on its slowest
// phase. Here every phase is spread over the batch:
//   1. SampleSplitMaxKernel: blocks of (64-chunk group, row) take their slice's argmax;
//   2. SampleSplitSumKernel: the same blocks combine their row's partial maxima and sum their 64
//      chunks, four threads per chunk (one per ChunkSum accumulator, in its order, as the cluster
//      kernel does from shared memory), into scratch;
//   3. SampleSplitDrawKernel: a block per draw copies its row's chunk sums to shared memory and
//      draws as the other kernels do (DrawFromChunkSums).
// The logits are read twice (1 and 2), both at full occupancy; the draws are those of the other
// paths, bit for bit (the same maximum, since Better is a total order; the same sums in the same
// order; the same pick). Needs a vocabulary of a multiple of 4 ids and 16-byte aligned rows.
constexpr int kSpThreads = 256;
constexpr int kSpChunks = kSpThreads / 4;  // chunks per block of kernels 1 and 2
constexpr int64_t kSpIds = int64_t{kSpChunks} * kChunk;
constexpr int kSpDrawThreads = 128;
// Kernel 3's chunk sums sit in dynamic shared memory; past this the split path is not taken
// (5,120 chunks = 1.3 M ids; no real vocabulary comes near).
constexpr int64_t kSpMaxChunkBytes = 40 * 1024;

struct alignas(16) SpBest {  // a slice's ArgBest in scratch (one 16-byte load)
  float v;
  int32_t id;
  int32_t found;
  int32_t unused;
};

// The split kernels' scratch for `rows` rows: their chunk sums (doubles), then their slices'
// maxima. SampleScratchBytes sizes it and LaunchSample carves it up by this one layout.
struct SplitLayout {
  int64_t rows, nchunks, groups;
  size_t SumsBytes() const { return static_cast<size_t>(rows * nchunks) * sizeof(double); }
  size_t Bytes() const { return SumsBytes() + static_cast<size_t>(rows * groups) * sizeof(SpBest); }
};
SplitLayout SplitLayoutOf(int64_t vocab, int64_t rows) {
  return {rows, Chunks(vocab), (vocab + kSpIds - 1) / kSpIds};
}

__device__ __forceinline__ ArgBest RowBest(const SpBest* part, int groups) {
  ArgBest top{-INFINITY, 0, false};
  for (int k = 0; k < groups; ++k) {
    const SpBest p = part[k];
    top = Better(top, ArgBest{p.v, p.id, p.found != 0});
  }
  return top;
}

__global__ void __launch_bounds__(kSpThreads)
    SampleSplitMaxKernel(const float* logits, int64_t V, SpBest* part) {
  PdlGate();
  __shared__ ArgBest warp_best[kSpThreads / 32];
  const int64_t row = blockIdx.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const float4* x4 = reinterpret_cast<const float4*>(logits + row * V);
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * (kSpIds / 4);
  const int64_t q1 = min(V / 4, q0 + kSpIds / 4);
  ArgBest best{-INFINITY, 0, false};
  TakeQuads<kSpThreads>(x4, q0, q1, best);
  best = WarpBest(best);
  if (lane == 0) warp_best[warp] = best;
  __syncthreads();
  if (warp == 0) {
    ArgBest b = lane < kSpThreads / 32 ? warp_best[lane] : ArgBest{-INFINITY, 0, false};
    b = WarpBest(b);
    if (lane == 0) {
      part[row * gridDim.x + blockIdx.x] = SpBest{b.v, b.id, b.found ? 1 : 0, 0};
    }
  }
}

__global__ void __launch_bounds__(kSpThreads)
    SampleSplitSumKernel(const float* logits, int64_t V, const SpBest* part, float temp,
                         double* csum) {
  PdlGate();
  const int64_t row = blockIdx.y;
  const ArgBest top = RowBest(part + row * gridDim.x, static_cast<int>(gridDim.x));
  if (!top.found || !isfinite(top.v)) return;  // kernel 3 draws the argmax; no sums needed
  const float mx = top.v;
  auto prob = [&](float v) { return Mass(v, mx, temp); };
  const float* x = logits + row * V;
  const int64_t nchunks = Chunks(V);
  const int g = threadIdx.x >> 2, a = threadIdx.x & 3;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kSpChunks + g;
  // Thread 4g + a: accumulator a of chunk j; the four lanes of a chunk read 16 consecutive bytes
  // per load, the next load the rest of the same sectors.
  const double acc =
      j < nchunks ? AccumulatorSum(x + j * kChunk,
                                   static_cast<int>(min(int64_t{kChunk}, V - j * kChunk)), a, prob)
                  : 0.0;
  // ChunkSum's (a0 + a1) + (a2 + a3), on lane 4g; every lane of the warp reaches the shuffles.
  const double pair = acc + __shfl_down_sync(0xffffffffu, acc, 1);
  const double sum = pair + __shfl_down_sync(0xffffffffu, pair, 2);
  if (j < nchunks && a == 0) csum[row * nchunks + j] = sum;
}

struct SplitDrawShared {
  uint32_t warp_count[kSpDrawThreads / 32];
  double total;
  double running;
  int64_t cand;
  int32_t pick;
  float pc[kChunk];
};

__global__ void __launch_bounds__(kSpDrawThreads)
    SampleSplitDrawKernel(const float* logits, int64_t V, int64_t per_row, const SpBest* part,
                          int groups, const double* csum, float temp, const DevSampleKey* keys,
                          int32_t* out) {
  PdlGate();
  extern __shared__ double row_sums[];  // the row's chunk sums
  __shared__ SplitDrawShared sh;
  const int64_t draw = blockIdx.x, row = draw / per_row;
  const ArgBest top = RowBest(part + row * groups, groups);
  const int32_t argmax = top.found ? top.id : 0;
  if (!top.found || !isfinite(top.v)) {
    if (threadIdx.x == 0) out[draw] = argmax;
    return;
  }
  const float mx = top.v;
  auto prob = [&](float v) { return Mass(v, mx, temp); };
  const int64_t nchunks = Chunks(V);
  for (int64_t c = threadIdx.x; c < nchunks; c += kSpDrawThreads) {
    row_sums[c] = csum[row * nchunks + c];
  }
  __syncthreads();
  DrawFromChunkSums<kSpDrawThreads>(logits + row * V, V, row_sums, prob, keys + draw, argmax, sh,
                                    out + draw);
}

// TTC_CUDA_SAMPLE_SCALAR=1: every draw on the one-block kernel's scalar loads (A/B measurements).
bool ScalarSampling() {
  static const bool scalar = [] {
    const char* e = std::getenv("TTC_CUDA_SAMPLE_SCALAR");
    return e != nullptr && std::strcmp(e, "1") == 0;
  }();
  return scalar;
}

// The logits rows `draws` draws of `per_row` each read.
int64_t LogitRows(int64_t draws, int64_t per_row) {
  return (draws + per_row - 1) / std::max<int64_t>(1, per_row);
}

// Temperature-only draws on whole 16-byte pieces of the rows: what the cluster and split kernels
// take (both read the logits as float4 or by bulk copies).
bool FastVectorDraw(const DevSampling& params, int64_t vocab, const float* logits) {
  const bool draws_by_mass = !params.greedy && params.temperature > 0.0f && params.top_k != 1;
  return draws_by_mass && !ScalarSampling() && !params.one_block &&
         !SampleNeedsProbs(params, vocab) && vocab % 4 == 0 &&
         reinterpret_cast<uintptr_t>(logits) % 16 == 0;
}
}  // namespace

bool SampleUsesSplit(const DevSampling& params, int64_t vocab, const float* logits, int64_t rows) {
  return params.split && FastVectorDraw(params, vocab, logits) &&
         Chunks(vocab) * 8 <= kSpMaxChunkBytes && rows <= 65535;
}

bool SampleUsesCluster(const DevSampling& params, int64_t vocab, const float* logits) {
  return FastVectorDraw(params, vocab, logits) && SampleClusterShape(vocab).cs > 0 &&
         ClusterKernelUsable();
}

size_t SampleScratchBytes(const DevSampling& params, int64_t vocab, int64_t draws, int64_t per_row,
                          const float* logits) {
  if (SampleNeedsProbs(params, vocab)) return static_cast<size_t>(draws * vocab) * 4;
  const int64_t rows = LogitRows(draws, per_row);
  if (draws > 0 && SampleUsesSplit(params, vocab, logits, rows)) {
    return SplitLayoutOf(vocab, rows).Bytes();
  }
  return 16;
}

void LaunchSample(const float* logits, int64_t draws, int64_t per_row, int64_t vocab,
                  DevSampling params, const DevSampleKey* keys, float* probs, int32_t* out,
                  cudaStream_t s) {
  if (draws <= 0) return;
  const size_t shared = static_cast<size_t>(Chunks(vocab)) * sizeof(double);
  OncePerDevice([] {
    // Vocabularies past 48 KB of chunk sums (12,288 chunks = 3.1 M ids) need the opt-in.
    cudaFuncSetAttribute(SampleKernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         160 * 1024);
    cudaFuncSetAttribute(SampleKernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         160 * 1024);
    ClusterKernelUsable();  // its attribute and occupancy queries, before any graph capture
    return true;
  });
  cudaError_t e = cudaSuccess;
  const int64_t rows = LogitRows(draws, per_row);
  if (ScalarSampling()) {
    Launch(SampleKernel<false>, static_cast<unsigned>(draws), kThreads, shared, s, logits, vocab,
           per_row, params, keys, probs, out);
    e = TakeLaunchError();
  } else if (SampleUsesSplit(params, vocab, logits, rows)) {
    const SplitLayout lay = SplitLayoutOf(vocab, rows);
    double* csum = reinterpret_cast<double*>(probs);
    SpBest* part = reinterpret_cast<SpBest*>(reinterpret_cast<char*>(probs) + lay.SumsBytes());
    const dim3 grid(static_cast<unsigned>(lay.groups), static_cast<unsigned>(rows));
    Launch(SampleSplitMaxKernel, grid, kSpThreads, 0, s, logits, vocab, part);
    e = TakeLaunchError();
    if (e == cudaSuccess) {
      Launch(SampleSplitSumKernel, grid, kSpThreads, 0, s, logits, vocab, part, params.temperature,
             csum);
      e = TakeLaunchError();
    }
    if (e == cudaSuccess) {
      Launch(SampleSplitDrawKernel, static_cast<unsigned>(draws), kSpDrawThreads,
             static_cast<size_t>(lay.nchunks) * sizeof(double), s, logits, vocab, per_row, part,
             static_cast<int>(lay.groups), csum, params.temperature, keys, out);
      e = TakeLaunchError();
    }
  } else if (SampleUsesCluster(params, vocab, logits)) {
    const ClusterShape shape = SampleClusterShape(vocab);
    LaunchCluster(SampleClusterKernel, static_cast<unsigned>(draws * shape.cs), kClThreads,
                  shape.smem, s, static_cast<unsigned>(shape.cs), logits, vocab, per_row, params,
                  keys, out, shape.cpb);
    e = TakeLaunchError();
  } else {
    Launch(SampleKernel<true>, static_cast<unsigned>(draws), kThreads, shared, s, logits, vocab,
           per_row, params, keys, probs, out);
    e = TakeLaunchError();
  }
  if (e != cudaSuccess) {
    std::fprintf(stderr, "cuda backend: launch of the sampler failed: %s\n", cudaGetErrorString(e));
    std::abort();
  }
}

}  // namespace ttc::engine::cuda
