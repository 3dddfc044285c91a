// Launchers of the CUDA backend's kernels (engine/cuda/kernels.cu), callable from host C++20 code
// that cannot include CUDA device code. Private to engine/cuda/: CUDA types appear here and must
// not leak into headers outside this folder. Every launcher is asynchronous on the given stream;
// the caller keeps the buffers alive until the stream has passed them. Thread-safety: the launchers
// are stateless; concurrent use on different streams is safe.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ttc::engine::cuda {

// Whether kernels are launched with programmatic dependent launch (engine/cuda/launch.cuh says
// why and what keeps it exact). Process-wide, default off; each CudaBackend sets it from
// TTC_CUDA_PDL when it is created ("1": on).
bool ProgrammaticLaunch();
void SetProgrammaticLaunch(bool on);

// One sequence of a batch on the device: its slot, its first row and its number of rows.
struct DevSeq {
  int32_t slot;
  int32_t row0;
  int32_t n;
  int32_t pos0;
};
// One row of a batch: the slot it belongs to and its position.
struct DevRow {
  int32_t slot;
  int32_t pos;
};

// out[r, c] = bf16(x[r * ldx + c]) (round to nearest even), out dense [rows, cols].
void LaunchF32ToBf16(const float* x, int64_t ldx, int64_t rows, int64_t cols, uint16_t* out,
                     cudaStream_t s);
// Splits x into two bf16 matrices, hi = bf16(x) in rows [0, rows) and lo = bf16(x - hi) in rows
// [rows, 2 rows) of out, so that hi + lo represents x to about 2^-17 relative.
void LaunchSplitBf16(const float* x, int64_t ldx, int64_t rows, int64_t cols, uint16_t* out,
                     cudaStream_t s);
// out[r * ldo + c] (+)= the sum over the `parts` K-slices of a split-K GEMM of y[part][r][c], y
// holding [parts][rows (x 2 with halves)][cols]; with halves also the bf16 lo half of each row
// (rows + r of each part), as a split-input GEMM stacks them. Fixed order: deterministic. rows must
// fit in a grid's y dimension (65535).
void LaunchSumParts(const float* y, int parts, int64_t rows, bool halves, int64_t cols, float* out,
                    int64_t ldo, bool accumulate, cudaStream_t s);
// Small-batch matmul in f32 on bf16 weights: out[m * ldo + n] (+)= sum_k x[m * ldx + k] * w[n * K +
// k] for M <= kGemvMaxRows rows, deterministic. Returns false (nothing launched) when the shape or
// alignment does not suit it (K % 8, 16-byte aligned x rows and w); the caller then uses cuBLAS.
constexpr int64_t kGemvMaxRows = 16;
bool LaunchGemv(const uint16_t* w, int64_t N, int64_t K, const float* x, int64_t ldx, int64_t M,
                float* out, int64_t ldo, bool accumulate, cudaStream_t s);
// Decode-sized matmul on tensor cores: out[m * ldo + n] (+)= sum_k x[m][k] * w[n][k] for
// M <= kSkinnyMaxRows rows, bf16 weights [N, K] and a dense bf16 input: [M, K] rounded, or with
// split [2M, K], hi rows then lo rows (LaunchSplitBf16's form), both halves' products summed in the
// f32 accumulators. Streams the weights once, K split over a thread-block cluster (as large as
// still fits one resident wave) where the 128-feature tiles alone would leave SMs idle;
// deterministic. Returns false (nothing launched) when the shape does not suit it (K % 64,
// 16-byte aligned w and x) or the device cannot run it (its shared memory or clusters); the
// caller then uses cuBLAS.
constexpr int64_t kSkinnyMaxRows = 64;
bool LaunchSkinnyGemm(const uint16_t* w, int64_t N, int64_t K, const uint16_t* x, int64_t M,
                      bool split, float* out, int64_t ldo, bool accumulate, cudaStream_t s);
// out[r] = table[ids[r]] (bf16 or f32 table, exactly one non-null); with map, table[ids[map[r]]]
// (the previous step's draws feeding a pipelined decode step), an id outside [0, vocab) reading
// row 0.
void LaunchEmbed(const uint16_t* table_bf16, const float* table_f32, const int32_t* ids,
                 int64_t rows, int64_t d, float* out, cudaStream_t s, const int32_t* map = nullptr,
                 int64_t vocab = 0);
// RMSNorm and SwiGLU also write their output as the next GEMM's bf16 input when gemm_in is set:
// rounded ([rows, n]) or, with split, bf16 hi rows then lo rows ([2 * rows, n]), exactly what
// LaunchF32ToBf16 / LaunchSplitBf16 would make of `out`, saving that kernel. With gemm_in set,
// out may be null: only the GEMM input is written.
void LaunchRmsNorm(const float* x, const float* w, float eps, int64_t rows, int64_t n, float* out,
                   cudaStream_t s, uint16_t* gemm_in = nullptr, bool split = false);
void LaunchSwiGlu(const float* gu, int64_t rows, int64_t ff, float* out, cudaStream_t s,
                  uint16_t* gemm_in = nullptr, bool split = false);
void LaunchGatherRows(const float* x, const int64_t* rows, int64_t n, int64_t cols, float* out,
                      cudaStream_t s);
// dst[r * ld_dst + c] = src[r * ld_src + c].
void LaunchCopy2D(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,
                  int64_t ld_dst, cudaStream_t s);

// One slot's KV cache in one attention layer: positions [0, plen) in the prefix shared by every
// slot forked from the same prompt (kp, vp; read-only), positions >= plen in the slot's own
// buffers (k, v, indexed from plen). Rows are [Hkv * hd] bf16.
struct DevKv {
  const uint16_t* kp;
  const uint16_t* vp;
  uint16_t* k;
  uint16_t* v;
  int32_t plen;
  int32_t pad;
};

// Rotates q (into q_out, [rows, H*hd]) and k, appends rotated k and v (bf16) to each row's slot at
// its position (>= the slot's plen). `scalar`: the one-element-per-thread kernel even where the
// 16-byte one applies (tests compare the two).
void LaunchRopeAppend(const float* qkv, int64_t rows, const DevRow* info, const float* inv_freq,
                      int H, int Hkv, int hd, float* q_out, const DevKv* kv, cudaStream_t s,
                      bool scalar = false);
// Causal attention of each row over its slot's cache positions 0..pos (GQA: one block per row and
// KV head handles the group of query heads sharing it). out [rows, H*hd]. With splits > 1 each
// (row, KV head) is cut into `splits` position ranges run as separate blocks (split-KV, so that a
// small batch still fills the GPU) and merged by a second kernel; part_o holds rows*H*splits*hd
// floats and part_ml rows*H*splits*2 (unused when splits == 1).
// `kernel` picks the implementation (kAuto: TTC_ATTN_KERNEL=mma|mma-ns2|mma-w8|mma-w1|lanes|warp if
// set, else kMma): kMma (m16n8k16 bf16 mma, head_dim 32/64/128; kMmaNs2 / kMmaW8 / kMmaW1 are its
// variants with 32 positions per warp iteration / 8 warps / 1 warp per block), kLanes (CUDA cores,
// one position per lane, head_dim 32/64/128), kWarp (CUDA cores, lanes over head_dim, any even
// head_dim <= 128; also the fallback of the others). All agree with a double-precision reference on
// the bf16 cache to <= 2e-5 (tests/cuda/cuda_kernel_test.cc).
//
// With `prefix` (decode rows only; head_dim 32/64/128) the attention runs in two parts (cascade
// attention): first a tile kernel walks the shared prefixes [0, plen) for whole tasks of rows at
// once (the task's query heads as the M rows of tensor-core tiles, K/V tiles staged in shared
// memory), each prefix position read once per task instead of once per row, in prefix->chunks
// ranges (split indices [splits, splits + chunks)); then the kernel above walks only each row's
// own positions [plen, pos] in `splits` ranges (split indices [0, splits)). With splits == 1 the
// own-range kernel merges the prefix partials itself; otherwise the combine kernel merges all.
// part_o / part_ml then hold rows*H*(splits + chunks) partials. With at least kOneWarpBlocks
// own-range blocks, kMma runs the own ranges as kMmaW1 (one warp per block: a short own range
// leaves three of four warps idle, and one-warp blocks put four times as many rows in flight).
// gemm_in, split: as LaunchRmsNorm's; whichever kernel writes the normalised output also writes
// its bf16 copy for the O projection.
enum class AttnKernel { kAuto, kMma, kMmaNs2, kMmaW8, kMmaW1, kLanes, kWarp };
constexpr int64_t kOneWarpBlocks = 1024;
// A task is up to PrefixRowsPerTask(H / Hkv) rows whose slots have the same prefix (DevKv kp, vp,
// plen; slots without one can form tasks too: they write empty partials), as batch row indices in
// task_rows[task * kPrefixTaskRows + i], -1 after the last; every task has at least one row. A task
// is one block of the prefix kernel: its rows' query heads fill the block's 64 tile rows.
constexpr int kPrefixTaskRows = 64;
constexpr int PrefixRowsPerTask(int group) { return kPrefixTaskRows / group; }
struct PrefixPlan {
  const int32_t* task_rows = nullptr;  // device
  int tasks = 0;
  int chunks = 1;  // position ranges per (task, KV head): separate blocks and partials
};
// How many position ranges (split-KV blocks) to cut `blocks` (row or task, KV head) blocks of up to
// `len` positions into: enough for about four blocks per SM, none shorter than 64 positions.
inline int AttentionRanges(int64_t blocks, int64_t len, int sm_count) {
  const int64_t want = 4 * int64_t{sm_count};
  if (blocks >= want) return 1;
  const int64_t by_blocks = (want + blocks - 1) / blocks, by_len = len / 64 > 1 ? len / 64 : 1;
  return static_cast<int>(by_blocks < by_len ? by_blocks : by_len);
}
// How many position ranges (PrefixPlan::chunks) to cut the prefix kernel's `blocks` (task, KV head)
// blocks over `len` prefix positions into: about one block per SM, at least 64 positions each. A
// block holds up to 64 query heads, so one per SM already has work; more ranges only add partials
// to merge (the attention micro-benchmark, call Q in docs/perf/cuda.md).
inline int PrefixRanges(int64_t blocks, int64_t len, int sm_count) {
  const int64_t by_blocks = (sm_count + blocks - 1) / blocks, tiles = (len + 63) / 64;
  const int64_t n = by_blocks < tiles ? by_blocks : tiles;
  return static_cast<int>(n > 1 ? n : 1);
}
void LaunchAttention(const float* q, int64_t rows, const DevRow* info, const DevKv* kv, int H,
                     int Hkv, int hd, float* out, int splits, float* part_o, float* part_ml,
                     cudaStream_t s, AttnKernel kernel = AttnKernel::kAuto,
                     const PrefixPlan* prefix = nullptr, uint16_t* gemm_in = nullptr,
                     bool split = false);

// Causal depthwise conv over `channels`, sequential in time per (sequence, channel); the input of
// channel c is in[r * ld_in + col_base + c], or for MambaInLlama's repeated x (mil_n > 0)
// in[r * ld_in + col_base + (c / (mil_n * mil_rep)) * mil_n + c % mil_n]. state
// [slots][K-1][channels] (a tap's values of neighbouring channels adjacent: coalesced).
// Whether LaunchCausalConv takes CausalConvVecKernel (d_conv 4, four channels per thread as
// float4) for these operands rather than the general kernel.
bool CausalConvVectorised(const float* in, int64_t ld_in, int64_t col_base, int64_t mil_n,
                          int64_t channels, int K, const float* w, const float* b,
                          const float* state, const float* out);
void LaunchCausalConv(const float* in, int64_t ld_in, int64_t col_base, int64_t mil_n,
                      int64_t mil_rep, int64_t channels, int K, const float* w, const float* b,
                      bool silu, const DevSeq* seqs, int nseq, float* state, float* out,
                      cudaStream_t s);

// Mamba-1 selective scan (both kinds), output y * silu(z) per channel. dt_raw [M, di] before bias.
// How the recurrent state is kept between forwards (engine::StateDType); the arithmetic is f32 for
// all three. f16 is stored saturated to +-65504 (its largest finite value) instead of overflowing.
enum class StateStore : uint8_t { kF32, kBf16, kF16 };
// Whether an f16 state store of v overflows: round to nearest takes |v| >= 65520 (half-way to the
// next power of two's first step) to infinity; below that, 65504 < |v| is an ordinary rounding
// to 65504 and loses no more than any other store. False for NaN.
#if defined(__CUDACC__)
__host__ __device__
#endif
    inline bool
    F16StoreOverflows(float v) {
  return v >= 65520.0f || v <= -65520.0f;
}
// The word that f16 state stores set to 1 when they saturate a value that would overflow: host
// memory mapped into the device (no copy or sync to read it), one per process, armed for the
// current device on the first call from it; null if the host memory cannot be had or mapped.
// Thread-safe. Readers use a volatile load; a kernel's write is visible once the host has
// synchronised with it (an event or stream sync).
unsigned* ArmStateOverflowWord();

struct Mamba1ScanArgs {
  const float* proj;
  int64_t ld_proj;
  const float* xc;      // conv output [M, di]
  const float* dt_raw;  // [M, di]
  const float* dt_b;    // [di]
  const float* A;       // [di, N]
  const float* D;       // [di]
  const float* xdbc;    // HF only: [M, R + 2N]
  int64_t R, di, N, dxb;
  bool mil;
  void* ssm;  // [slots][di][N] (element n of channel c at c * N + n), elements as `store` says
  StateStore store;
  bool stage;        // some sequence has several tokens: run those on an f32 copy in shared memory
  float* out;        // [M, di]
  int sm_count = 0;  // the device's SMs (sizes the decode kernel's grid); 0: asked of the driver
  // When set: out also as the next GEMM's bf16 input (as LaunchRmsNorm's gemm_in), rows = M.
  uint16_t* gemm_in = nullptr;
  bool split = false;
  int64_t rows = 0;
};
void LaunchMamba1Scan(const Mamba1ScanArgs& a, const DevSeq* seqs, int nseq, cudaStream_t s);
// Whether LaunchMamba1Scan runs `a` on the streaming decode kernel (decode steps, d_state 16, rows
// and bases that its 16-byte bulk copies can read) rather than the per-channel kernel.
bool Mamba1DecodeStreams(const Mamba1ScanArgs& a);

struct SsdScanArgs {
  const float* proj;
  int64_t ld_proj, dt_off;
  const float* xbc;  // conv output [M, di + 2GN]
  int64_t di, N, H, P, G;
  bool llamba;
  const float* D;        // [H]
  const float* dt_bias;  // [H] (HF)
  const float* A;        // [H] (HF)
  float dt_min, dt_max;
  void* ssm;  // [slots][H][P][N], elements as `store` says
  StateStore store;
  bool stage;  // as Mamba1ScanArgs::stage
  float* y;    // [M, di]
};
void LaunchSsdScan(const SsdScanArgs& a, const DevSeq* seqs, int nseq, cudaStream_t s);
// Llamba: out = y * silu(z + zb); z at proj[r * ld + z_off + c]; gemm_in, split: as LaunchRmsNorm.
void LaunchLlambaGate(const float* y, const float* proj, int64_t ld, int64_t z_off, const float* zb,
                      int64_t rows, int64_t di, float* out, cudaStream_t s,
                      uint16_t* gemm_in = nullptr, bool split = false);
// HF Mamba-2: out = RMSNorm_group(y * silu(z)) * w.
void LaunchMamba2GateNorm(const float* y, const float* proj, int64_t ld, int64_t z_off,
                          const float* w, float eps, int64_t rows, int64_t di, int64_t groups,
                          float* out, cudaStream_t s);

// Sampling (engine/cuda/sample_kernels.cu): SamplingParams and SampleKey as plain device structs.
struct DevSampling {
  float temperature;
  int top_k;
  float top_p;
  bool greedy;
  bool full_passes = false;  // tests: the general path even without top-k and top-p
  bool one_block = false;    // tests: the one-block kernel where the cluster kernel would run
  bool split = false;        // the split kernels wherever they apply (SampleUsesSplit)
};
struct DevSampleKey {
  uint64_t seed;
  uint64_t sample_index;
  uint64_t step;
};
// Whether a draw takes the general path, which stores each row's probabilities in `probs`.
#if defined(__CUDACC__)
__host__ __device__
#endif
    inline bool
    SampleNeedsProbs(const DevSampling& p, int64_t vocab) {
  return p.full_passes || (!p.greedy && p.temperature > 0.0f &&
                           ((p.top_k > 1 && p.top_k < vocab) || p.top_p < 1.0f));
}
// Whether LaunchSample draws with the cluster kernel (the row read once, spread over a cluster's
// shared memory): temperature-only draws on a vocabulary of a multiple of 4 ids with 16-byte
// aligned rows, unless TTC_CUDA_SAMPLE_CLUSTER=0, TTC_CUDA_SAMPLE_SCALAR=1 or params.one_block;
// the same ids either way.
bool SampleUsesCluster(const DevSampling& params, int64_t vocab, const float* logits);
// Whether LaunchSample draws over `rows` logits rows with the split kernels (the temperature-only
// draw as three kernels across the batch: slice maxima, chunk sums, one block per draw): with
// params.split, for temperature-only draws (not one_block, not TTC_CUDA_SAMPLE_SCALAR=1) on a
// vocabulary of a multiple of 4 ids and at most 1.3 M, 16-byte aligned rows, and at most 65,535
// rows. Takes precedence over the cluster kernel; the same ids either way. (The CUDA backend sets
// params.split for draws over at least TTC_CUDA_SAMPLE_SPLIT_ROWS rows; default 0, never.)
bool SampleUsesSplit(const DevSampling& params, int64_t vocab, const float* logits, int64_t rows);
// The bytes of scratch LaunchSample needs for these draws: draws * vocab floats on the general
// path (SampleNeedsProbs), the rows' chunk sums and slice maxima on the split kernels (about 4 KB
// a row for Llama 3), else 16.
size_t SampleScratchBytes(const DevSampling& params, int64_t vocab, int64_t draws, int64_t per_row,
                          const float* logits);
// Draw i (of `draws`) samples from logits row i / per_row ([rows, vocab] f32) with keys[i] and
// writes the id to out[i]; probs is scratch of SampleScratchBytes bytes.
void LaunchSample(const float* logits, int64_t draws, int64_t per_row, int64_t vocab,
                  DevSampling params, const DevSampleKey* keys, float* probs, int32_t* out,
                  cudaStream_t s);
}  // namespace ttc::engine::cuda
