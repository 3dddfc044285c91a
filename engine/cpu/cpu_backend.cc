#include "engine/cpu/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "engine/safetensors.h"

// The hot loops get an AVX2 clone picked at load time on machines that have it; the default clone
// is portable x86-64 (SSE2). Both clones do the same float operations in the same order (no FMA
// contraction: ISO C++ mode compiles with -ffp-contract=off), so results do not depend on the
// machine.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define TTC_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TTC_CPU_CLONES
#endif

// The vector helpers below are internal and inlined; the ABI note GCC gives for 32-byte vector
// arguments in the portable clone does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace ttc::engine {

namespace {

constexpr int kLanes = 8;

// Eight floats as a GCC/Clang vector: one ymm register in the AVX2 clone, two xmm registers in the
// portable one. Element-wise ops only (no reassociation), so both clones compute identical results.
typedef float V8 __attribute__((vector_size(32)));
typedef uint16_t U16x8 __attribute__((vector_size(16)));
typedef uint32_t U32x8 __attribute__((vector_size(32)));

inline V8 Load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Lanes summed in a fixed order.
inline float Sum8(V8 a) {
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

// bf16 bits -> float for 8 values.
inline V8 Bf16x8(const uint16_t* p) {
  U16x8 h;
  std::memcpy(&h, p, sizeof(h));
  U32x8 w = __builtin_convertvector(h, U32x8) << 16;
  V8 v;
  std::memcpy(&v, &w, sizeof(v));
  return v;
}

inline float Bf16Bits(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float Silu(float v) { return v / (1.0f + std::exp(-v)); }
// Softplus as the reference kernels compute it: identity above 20.
inline float Softplus(float v) { return v > 20.0f ? v : std::log1p(std::exp(v)); }

// Dot product with 8 lane accumulators: the one summation order every op uses.
inline float Dot(const float* a, const float* b, int64_t n) {
  V8 acc = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) acc += Load8(a + k) * Load8(b + k);
  float s = Sum8(acc);
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

class CpuWeight final : public Weight {
 public:
  CpuWeight(int64_t rows, int64_t cols) : Weight(rows, cols) {}
  bool is_bf16() const { return !bf16.empty(); }
  const float* f32_data() const {
    assert(!is_bf16());
    return f32.data();
  }
  void RowToFloat(int64_t r, float* out) const {
    const int64_t c = cols();
    if (is_bf16()) {
      const uint16_t* src = bf16.data() + r * c;
      for (int64_t i = 0; i < c; ++i) out[i] = Bf16Bits(src[i]);
    } else {
      std::memcpy(out, f32.data() + r * c, static_cast<size_t>(c) * sizeof(float));
    }
  }
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
};

class CpuActivation final : public Activation {
 public:
  CpuActivation(int64_t rows, int64_t cols)
      : Activation(rows, cols), data(static_cast<size_t>(rows * cols)) {}
  float* row(int64_t r) { return data.data() + r * cols(); }
  const float* row(int64_t r) const { return data.data() + r * cols(); }
  std::vector<float> data;
};

const CpuWeight& W(const Weight& w) { return static_cast<const CpuWeight&>(w); }
const CpuWeight* Wp(const Weight* w) { return static_cast<const CpuWeight*>(w); }
const CpuActivation& A(const Activation& a) { return static_cast<const CpuActivation&>(a); }
CpuActivation& A(Activation* a) { return *static_cast<CpuActivation*>(a); }

// --- GEMM
// ----------------------------------------------------------------------------------------------------

// One block of NR weight rows against rows m0..m1 of x. Each (m, n) output is an independent 8-lane
// dot product in the order of Dot(), so the result does not depend on M, the blocking or the thread
// split.
template <int NR>
inline void MicroKernel(const float* x, int64_t ldx, int64_t m0, int64_t m1, int64_t K,
                        const float* const* w, float* out, int64_t ldo, int64_t n0,
                        bool accumulate) {
  auto store = [&](int64_t m, int r, float v) {
    float* o = out + m * ldo + n0 + r;
    *o = accumulate ? *o + v : v;
  };
  int64_t m = m0;
  for (; m + 2 <= m1; m += 2) {
    const float* x0 = x + m * ldx;
    const float* x1 = x0 + ldx;
    V8 acc0[NR] = {}, acc1[NR] = {};
    int64_t k = 0;
    for (; k + kLanes <= K; k += kLanes) {
      const V8 a = Load8(x0 + k), b = Load8(x1 + k);
      for (int r = 0; r < NR; ++r) {
        const V8 wv = Load8(w[r] + k);
        acc0[r] += a * wv;
        acc1[r] += b * wv;
      }
    }
    for (int r = 0; r < NR; ++r) {
      float s0 = Sum8(acc0[r]), s1 = Sum8(acc1[r]);
      for (int64_t kk = k; kk < K; ++kk) {
        s0 += x0[kk] * w[r][kk];
        s1 += x1[kk] * w[r][kk];
      }
      store(m, r, s0);
      store(m + 1, r, s1);
    }
  }
  for (; m < m1; ++m) {
    const float* x0 = x + m * ldx;
    V8 acc0[NR] = {};
    int64_t k = 0;
    for (; k + kLanes <= K; k += kLanes) {
      const V8 a = Load8(x0 + k);
      for (int r = 0; r < NR; ++r) acc0[r] += a * Load8(w[r] + k);
    }
    for (int r = 0; r < NR; ++r) {
      float s0 = Sum8(acc0[r]);
      for (int64_t kk = k; kk < K; ++kk) s0 += x0[kk] * w[r][kk];
      store(m, r, s0);
    }
  }
}

constexpr int64_t kRowBlock = 4;  // weight rows per micro-kernel call
constexpr int64_t kMBlock = 64;   // x rows kept hot in cache while a weight block is reused
// x bytes per pass over a thread's weight rows (below).
constexpr int64_t kPassBytes = int64_t{1} << 19;

// Weight rows [nb0, nb1) blocks of kRowBlock against all of x. A separate function so the AVX2
// clone covers the loops: OpenMP outlines a parallel region into a function that would not inherit
// target_clones. x goes in passes of rows that stay in L2 (kPassBytes) while every weight block of
// the range meets them; each pass converts the bf16 weight rows again, which costs one operation
// per weight against a pass's 64+ multiply-adds. Decode batches take one pass. Without passes a
// long prompt streamed all of x past every 4-row weight block from L3 or memory: scoring 64
// conversations of ~300 tokens as one batch ran at 0.57x the speed of one per forward
// (score_bench, small Llama, 2 threads).
template <bool kBf16>
TTC_CPU_CLONES void GemmRange(const float* x, int64_t ldx, int64_t M, int64_t K, const void* wv,
                              int64_t N, float* out, int64_t ldo, bool accumulate, int64_t nb0,
                              int64_t nb1, float* conv) {
  const int64_t pass =
      std::max<int64_t>(kMBlock, kPassBytes / (std::max<int64_t>(K, 1) * 4) / kMBlock * kMBlock);
  for (int64_t p0 = 0; p0 < M; p0 += pass) {
    const int64_t p1 = std::min(M, p0 + pass);
    for (int64_t nb = nb0; nb < nb1; ++nb) {
      const int64_t n0 = nb * kRowBlock;
      const int64_t nr = std::min(kRowBlock, N - n0);
      const float* rows[kRowBlock];
      for (int64_t r = 0; r < nr; ++r) {
        if constexpr (kBf16) {
          const uint16_t* src = static_cast<const uint16_t*>(wv) + (n0 + r) * K;
          float* dst = conv + r * K;
          int64_t k = 0;
          for (; k + kLanes <= K; k += kLanes) {
            const V8 v = Bf16x8(src + k);
            std::memcpy(dst + k, &v, sizeof(v));
          }
          for (; k < K; ++k) dst[k] = Bf16Bits(src[k]);
          rows[r] = dst;
        } else {
          rows[r] = static_cast<const float*>(wv) + (n0 + r) * K;
        }
      }
      for (int64_t m0 = p0; m0 < p1; m0 += kMBlock) {
        const int64_t m1 = std::min(p1, m0 + kMBlock);
        switch (nr) {
          case 4:
            MicroKernel<4>(x, ldx, m0, m1, K, rows, out, ldo, n0, accumulate);
            break;
          case 3:
            MicroKernel<3>(x, ldx, m0, m1, K, rows, out, ldo, n0, accumulate);
            break;
          case 2:
            MicroKernel<2>(x, ldx, m0, m1, K, rows, out, ldo, n0, accumulate);
            break;
          default:
            MicroKernel<1>(x, ldx, m0, m1, K, rows, out, ldo, n0, accumulate);
            break;
        }
      }
    }
  }
}

template <bool kBf16>
void GemmImpl(const float* x, int64_t ldx, int64_t M, int64_t K, const void* wv, int64_t N,
              float* out, int64_t ldo, bool accumulate, int threads) {
  const int64_t nblocks = (N + kRowBlock - 1) / kRowBlock;
  // Small problems stay on one thread: the fork/join would cost more than the work.
  const int nthreads = (M * N * K < (int64_t{1} << 16)) ? 1 : threads;
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<float> conv(kBf16 ? static_cast<size_t>(kRowBlock * K) : 0);
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    // Contiguous static split; each thread converts and streams its own weight rows.
    const int64_t nb0 = nblocks * t / nt, nb1 = nblocks * (t + 1) / nt;
    GemmRange<kBf16>(x, ldx, M, K, wv, N, out, ldo, accumulate, nb0, nb1, conv.data());
  }
}

// --- State
// ---------------------------------------------------------------------------------------------------

struct LayerSlotState {
  std::vector<float> k, v;  // attention: [len][kv_width], grown as tokens arrive
  std::vector<float> conv;  // SSM: [channels][d_conv - 1], oldest first
  std::vector<float> ssm;   // SSM: Mamba-1 [d_inner][d_state]; SSD [heads][head_dim][d_state]
};

class CpuStateCache final : public StateCache {
 public:
  CpuStateCache(const ModelConfig& c, int num_slots) : config_(c) {
    layers_.resize(static_cast<size_t>(c.num_layers));
    for (int64_t l = 0; l < c.num_layers; ++l) {
      MixerKind kind = c.layer_mixers[static_cast<size_t>(l)];
      auto& slots = layers_[static_cast<size_t>(l)];
      slots.resize(static_cast<size_t>(num_slots));
      for (auto& s : slots) {
        if (kind == MixerKind::kAttention) continue;
        s.conv.assign(static_cast<size_t>(c.conv_channels(kind) * (c.d_conv - 1)), 0.0f);
        int64_t ssm = (kind == MixerKind::kMamba1Mil || kind == MixerKind::kMamba1)
                          ? c.d_inner * c.d_state
                          : c.ssm_heads * c.ssm_head_dim * c.d_state;
        s.ssm.assign(static_cast<size_t>(ssm), 0.0f);
      }
    }
    lengths_.assign(static_cast<size_t>(num_slots), 0);
  }

  int num_slots() const override { return static_cast<int>(lengths_.size()); }
  int64_t length(int slot) const override { return lengths_[static_cast<size_t>(slot)]; }
  void Reset(int slot) override {
    for (auto& layer : layers_) {
      auto& s = layer[static_cast<size_t>(slot)];
      s.k.clear();
      s.v.clear();
      std::fill(s.conv.begin(), s.conv.end(), 0.0f);
      std::fill(s.ssm.begin(), s.ssm.end(), 0.0f);
    }
    lengths_[static_cast<size_t>(slot)] = 0;
  }
  void CopySlot(int src, int dst) override {
    if (src == dst) return;
    for (auto& layer : layers_) {
      const auto& a = layer[static_cast<size_t>(src)];
      auto& b = layer[static_cast<size_t>(dst)];
      b.k = a.k;
      b.v = a.v;
      b.conv = a.conv;
      b.ssm = a.ssm;
    }
    lengths_[static_cast<size_t>(dst)] = lengths_[static_cast<size_t>(src)];
  }
  void Advance(int slot, int64_t n) override { lengths_[static_cast<size_t>(slot)] += n; }
  int64_t SlotBytes(int slot) const override {
    int64_t bytes = 0;
    for (const auto& layer : layers_) {
      const auto& s = layer[static_cast<size_t>(slot)];
      bytes += static_cast<int64_t>((s.k.size() + s.v.size() + s.conv.size() + s.ssm.size()) *
                                    sizeof(float));
    }
    return bytes;
  }

  LayerSlotState& at(int layer, int slot) {
    return layers_[static_cast<size_t>(layer)][static_cast<size_t>(slot)];
  }

 private:
  ModelConfig config_;
  std::vector<std::vector<LayerSlotState>> layers_;
  std::vector<int64_t> lengths_;
};

// Rows of the batch with their sequence: the flat work list the mixers parallelise over.
struct SeqRows {
  int slot;
  int64_t row0, n, pos0;
};
std::vector<SeqRows> Flatten(const BatchLayout& batch) {
  // (rows of one sequence are consecutive; the sequences are in batch order)
  std::vector<SeqRows> out;
  int64_t row = 0;
  for (const auto& s : batch.seqs) {
    out.push_back({s.slot, row, s.num_tokens, s.start_pos});
    row += s.num_tokens;
  }
  return out;
}

// Causal depthwise conv over `channels` for every sequence of the batch, sequential in time per
// channel: out[r][c] = act(sum_k w[c][k] * window_k + b[c]) with window = (state[c][0..K-2],
// input_r[c]); then the state shifts. `input(r, c)` reads the pre-conv value of channel c at row r.
template <typename InputFn>
void CausalConv(CpuStateCache* st, int layer, const std::vector<SeqRows>& seqs, int64_t channels,
                int64_t K, const CpuWeight& w, const CpuWeight* b, bool silu, InputFn input,
                CpuActivation* out, int threads) {
  const float* wd = w.f32_data();
  const float* bd = b ? b->f32_data() : nullptr;
  constexpr int64_t kChanBlock = 64;
  const int64_t cblocks = (channels + kChanBlock - 1) / kChanBlock;
  const int64_t work = static_cast<int64_t>(seqs.size()) * cblocks;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t item = 0; item < work; ++item) {
    const SeqRows& s = seqs[static_cast<size_t>(item / cblocks)];
    const int64_t c0 = (item % cblocks) * kChanBlock, c1 = std::min(channels, c0 + kChanBlock);
    float* state = st->at(layer, s.slot).conv.data();
    for (int64_t c = c0; c < c1; ++c) {
      float* sc = state + c * (K - 1);
      const float* wc = wd + c * K;
      for (int64_t t = 0; t < s.n; ++t) {
        const int64_t r = s.row0 + t;
        const float u = input(r, c);
        float acc = 0.0f;
        for (int64_t k = 0; k < K - 1; ++k) acc += wc[k] * sc[k];
        acc += wc[K - 1] * u;
        if (bd) acc += bd[c];
        for (int64_t k = 0; k + 1 < K - 1; ++k) sc[k] = sc[k + 1];
        if (K > 1) sc[K - 2] = u;
        out->row(r)[c] = silu ? Silu(acc) : acc;
      }
    }
  }
}

// --- The backend
// -------------------------------------------------------------------------------------------

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads) {}
  std::string name() const override { return CpuDeviceName(threads_); }
  // Batches for the prefix their conversations share (score_bench: 1.36x with a third of each
  // request shared in groups of 32; without one, batches are as fast as one per forward).
  int64_t PrefillBatchTokens() const override { return 4096; }

  Result<std::unique_ptr<Weight>> Upload(std::span<const HostMatrix> blocks) override {
    if (blocks.empty()) return InvalidArgument("cpu backend: upload of no blocks");
    int64_t rows = 0;
    const int64_t cols = blocks[0].cols;
    bool all_bf16 = true;
    for (const auto& b : blocks) {
      if (b.cols != cols || b.rows < 0 || cols <= 0) {
        return InvalidArgument("cpu backend: blocks of [{}, {}] and [{}, {}] cannot be stacked",
                               blocks[0].rows, cols, b.rows, b.cols);
      }
      rows += b.rows;
      all_bf16 = all_bf16 && b.dtype == HostDType::kBF16;
    }
    auto w = std::make_unique<CpuWeight>(rows, cols);
    // BF16 matrices used by GEMMs stay BF16 (half the memory traffic); small tensors read
    // element-wise (norms, conv, biases) become float32.
    const bool keep_bf16 = all_bf16 && rows >= 64 && cols > 64;
    const size_t total = static_cast<size_t>(rows * cols);
    if (keep_bf16) {
      w->bf16.resize(total);
    } else {
      w->f32.resize(total);
    }
    size_t off = 0;
    for (const auto& b : blocks) {
      const size_t n = static_cast<size_t>(b.rows * b.cols);
      const auto* bytes = static_cast<const std::byte*>(b.data);
      if (keep_bf16) {
        std::memcpy(w->bf16.data() + off, bytes, n * 2);
      } else {
        float* dst = w->f32.data() + off;
        switch (b.dtype) {
          case HostDType::kF32:
            std::memcpy(dst, bytes, n * 4);
            break;
          case HostDType::kBF16:
            for (size_t i = 0; i < n; ++i) {
              uint16_t v;
              std::memcpy(&v, bytes + 2 * i, 2);
              dst[i] = Bf16Bits(v);
            }
            break;
          case HostDType::kF16:
            for (size_t i = 0; i < n; ++i) {
              uint16_t v;
              std::memcpy(&v, bytes + 2 * i, 2);
              dst[i] = F16ToFloat32(v);
            }
            break;
        }
      }
      off += n;
    }
    return std::unique_ptr<Weight>(std::move(w));
  }

  std::unique_ptr<Activation> NewActivation(int64_t rows, int64_t cols) override {
    return std::make_unique<CpuActivation>(rows, cols);
  }

  Result<std::unique_ptr<StateCache>> NewStateCache(const ModelConfig& config,
                                                    int num_slots) override {
    if (num_slots <= 0) return InvalidArgument("cpu backend: state cache needs at least one slot");
    return std::unique_ptr<StateCache>(std::make_unique<CpuStateCache>(config, num_slots));
  }

  void Embed(const Weight& table, std::span<const int32_t> ids, Activation* out) override {
    auto& o = A(out);
    const auto& t = W(table);
    for (size_t r = 0; r < ids.size(); ++r) t.RowToFloat(ids[r], o.row(static_cast<int64_t>(r)));
  }

  void RmsNorm(const Activation& x, const Weight& w, float eps, Activation* out) override {
    const auto& xa = A(x);
    auto& o = A(out);
    const float* wd = W(w).f32_data();
    const int64_t n = xa.cols();
#pragma omp parallel for schedule(static) num_threads(xa.rows() > 8 ? threads_ : 1)
    for (int64_t r = 0; r < xa.rows(); ++r) {
      const float* xr = xa.row(r);
      float* orow = o.row(r);
      const float ms = Dot(xr, xr, n) / static_cast<float>(n);
      const float inv = 1.0f / std::sqrt(ms + eps);
      for (int64_t i = 0; i < n; ++i) orow[i] = wd[i] * (xr[i] * inv);
    }
  }

  void MatMul(const Activation& x, const Weight& w, Activation* out, bool accumulate) override {
    const auto& xa = A(x);
    const auto& wa = W(w);
    auto& o = A(out);
    assert(xa.cols() == wa.cols() && o.cols() == wa.rows() && o.rows() == xa.rows());
    if (wa.is_bf16()) {
      cpu::GemmBF16(xa.data.data(), xa.cols(), xa.rows(), xa.cols(), wa.bf16.data(), wa.rows(),
                    o.data.data(), o.cols(), accumulate, threads_);
    } else {
      cpu::GemmF32(xa.data.data(), xa.cols(), xa.rows(), xa.cols(), wa.f32.data(), wa.rows(),
                   o.data.data(), o.cols(), accumulate, threads_);
    }
  }

  void SwiGlu(const Activation& gate_up, Activation* out) override {
    const auto& g = A(gate_up);
    auto& o = A(out);
    const int64_t ff = o.cols();
    for (int64_t r = 0; r < g.rows(); ++r) {
      const float* gr = g.row(r);
      float* orow = o.row(r);
      for (int64_t j = 0; j < ff; ++j) orow[j] = Silu(gr[j]) * gr[ff + j];
    }
  }

  void GatherRows(const Activation& x, std::span<const int64_t> rows, Activation* out) override {
    const auto& xa = A(x);
    auto& o = A(out);
    for (size_t i = 0; i < rows.size(); ++i) {
      std::memcpy(o.row(static_cast<int64_t>(i)), xa.row(rows[i]),
                  static_cast<size_t>(xa.cols()) * sizeof(float));
    }
  }

  void CopyToHost(const Activation& x, std::span<float> out) override {
    const auto& xa = A(x);
    assert(out.size() == xa.data.size());
    std::memcpy(out.data(), xa.data.data(), xa.data.size() * sizeof(float));
  }

  void Attention(StateCache* state, int layer, const Activation& qkv, const BatchLayout& batch,
                 const AttentionSpec& spec, Activation* out) override;
  void Mamba1(StateCache* state, int layer, const Activation& proj, const BatchLayout& batch,
              const Mamba1Spec& spec, const Mamba1Weights& w, Activation* out) override;
  void Ssd(StateCache* state, int layer, const Activation& proj, const BatchLayout& batch,
           const SsdSpec& spec, const SsdWeights& w, Activation* out) override;

 private:
  int threads_;
};

void CpuBackend::Attention(StateCache* state, int layer, const Activation& qkv,
                           const BatchLayout& batch, const AttentionSpec& spec, Activation* out) {
  auto* st = static_cast<CpuStateCache*>(state);
  const auto& in = A(qkv);
  auto& o = A(out);
  const int64_t H = spec.num_heads, Hkv = spec.num_kv_heads, hd = spec.head_dim, half = hd / 2;
  const int64_t q_width = H * hd, kv_width = Hkv * hd;
  const int64_t group = H / Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto seqs = Flatten(batch);

  // 1. Rotate q into a scratch buffer and append rotated k and v to each sequence's cache.
  std::vector<float> q(static_cast<size_t>(in.rows() * q_width));
  for (const auto& s : seqs) {
    auto& ls = st->at(layer, s.slot);
    assert(static_cast<int64_t>(ls.k.size()) == s.pos0 * kv_width);
    ls.k.resize(static_cast<size_t>((s.pos0 + s.n) * kv_width));
    ls.v.resize(static_cast<size_t>((s.pos0 + s.n) * kv_width));
  }
  const int64_t rows = in.rows();
  std::vector<int32_t> row_seq(static_cast<size_t>(rows));
  for (size_t si = 0; si < seqs.size(); ++si) {
    for (int64_t t = 0; t < seqs[si].n; ++t)
      row_seq[static_cast<size_t>(seqs[si].row0 + t)] = static_cast<int32_t>(si);
  }
#pragma omp parallel for schedule(static) num_threads(rows > 4 ? threads_ : 1)
  for (int64_t item = 0; item < rows; ++item) {
    const SeqRows& s = seqs[static_cast<size_t>(row_seq[static_cast<size_t>(item)])];
    const int64_t t = item - s.row0;
    const int64_t pos = s.pos0 + t;
    auto& ls = st->at(layer, s.slot);
    const float* src = in.row(item);
    float* qd = q.data() + item * q_width;
    float* kd = ls.k.data() + pos * kv_width;
    float* vd = ls.v.data() + pos * kv_width;
    std::vector<float> cs(static_cast<size_t>(2 * half));
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos) * spec.inv_freq[static_cast<size_t>(i)];
      cs[static_cast<size_t>(i)] = std::cos(angle);
      cs[static_cast<size_t>(half + i)] = std::sin(angle);
    }
    auto rotate = [&](const float* a, float* b) {
      for (int64_t j = 0; j < half; ++j) {
        const float c = cs[static_cast<size_t>(j)], sn = cs[static_cast<size_t>(half + j)];
        const float x1 = a[j], x2 = a[j + half];
        b[j] = x1 * c - x2 * sn;
        b[j + half] = x2 * c + x1 * sn;
      }
    };
    for (int64_t h = 0; h < H; ++h) rotate(src + h * hd, qd + h * hd);
    for (int64_t h = 0; h < Hkv; ++h) rotate(src + q_width + h * hd, kd + h * hd);
    std::memcpy(vd, src + q_width + kv_width, static_cast<size_t>(kv_width) * sizeof(float));
  }

  // 2. Causal attention per (row, head).
  const int64_t work = rows * H;
#pragma omp parallel num_threads(work > 8 ? threads_ : 1)
  {
    std::vector<float> scores;
#pragma omp for schedule(dynamic, 4)
    for (int64_t item = 0; item < work; ++item) {
      const int64_t r = item / H, h = item % H, g = h / group;
      const SeqRows& s = seqs[static_cast<size_t>(row_seq[static_cast<size_t>(r)])];
      const int64_t ctx = s.pos0 + (r - s.row0) + 1;
      const auto& ls = st->at(layer, s.slot);
      const float* qh = q.data() + r * q_width + h * hd;
      scores.resize(static_cast<size_t>(ctx));
      float mx = -INFINITY;
      for (int64_t p = 0; p < ctx; ++p) {
        const float sc = Dot(qh, ls.k.data() + p * kv_width + g * hd, hd) * scale;
        scores[static_cast<size_t>(p)] = sc;
        mx = std::max(mx, sc);
      }
      float sum = 0.0f;
      for (int64_t p = 0; p < ctx; ++p) {
        const float e = std::exp(scores[static_cast<size_t>(p)] - mx);
        scores[static_cast<size_t>(p)] = e;
        sum += e;
      }
      const float inv = 1.0f / sum;
      float* oh = o.row(r) + h * hd;
      std::fill(oh, oh + hd, 0.0f);
      for (int64_t p = 0; p < ctx; ++p) {
        const float pw = scores[static_cast<size_t>(p)] * inv;
        const float* vp = ls.v.data() + p * kv_width + g * hd;
        for (int64_t j = 0; j < hd; ++j) oh[j] += pw * vp[j];
      }
    }
  }
}

void CpuBackend::Mamba1(StateCache* state, int layer, const Activation& proj,
                        const BatchLayout& batch, const Mamba1Spec& spec, const Mamba1Weights& w,
                        Activation* out) {
  auto* st = static_cast<CpuStateCache*>(state);
  const auto& p = A(proj);
  auto& o = A(out);
  const int64_t di = spec.d_inner, N = spec.d_state, R = spec.dt_rank, K = spec.d_conv;
  const bool mil = spec.kind == MixerKind::kMamba1Mil;
  const int64_t dxb = spec.d_xb;
  const int64_t rep = mil ? di / dxb : 1;  // channels of C per channel of x/B
  const auto seqs = Flatten(batch);
  const int64_t M = p.rows();

  // 1. Causal conv + SiLU over the d_inner channels (MambaInLlama: over x repeated from d_xb
  // groups).
  CpuActivation xc(M, di);
  if (mil) {
    // x̂[ch] = xs[kvg(ch)*N + ch%N], kvg(ch) = ch / (N*rep).
    CausalConv(
        st, layer, seqs, di, K, W(*w.conv_w), Wp(w.conv_b), /*silu=*/true,
        [&](int64_t r, int64_t ch) { return p.row(r)[di + (ch / (N * rep)) * N + ch % N]; }, &xc,
        threads_);
  } else {
    CausalConv(
        st, layer, seqs, di, K, W(*w.conv_w), Wp(w.conv_b), /*silu=*/true,
        [&](int64_t r, int64_t ch) { return p.row(r)[ch]; }, &xc, threads_);
  }

  // 2. HF Mamba: x_proj on the conv output gives [dt_low | B | C].
  CpuActivation xdbc(mil ? 0 : M, mil ? 0 : R + 2 * N);
  if (!mil) MatMul(xc, *w.x_proj, &xdbc, false);

  // 3. dt = softplus(dt_proj(dt_low) + bias).
  CpuActivation dt(M, di);
  {
    const auto& dw = W(*w.dt_w);
    const float* x = mil ? p.data.data() + (2 * di + 2 * dxb) : xdbc.data.data();
    const int64_t ldx = mil ? p.cols() : xdbc.cols();
    if (dw.is_bf16()) {
      cpu::GemmBF16(x, ldx, M, R, dw.bf16.data(), di, dt.data.data(), di, false, threads_);
    } else {
      cpu::GemmF32(x, ldx, M, R, dw.f32.data(), di, dt.data.data(), di, false, threads_);
    }
    const float* bias = W(*w.dt_b).f32_data();
    for (int64_t r = 0; r < M; ++r) {
      float* d = dt.row(r);
      for (int64_t c = 0; c < di; ++c) d[c] = Softplus(d[c] + bias[c]);
    }
  }

  // 4. Selective scan, sequential in time per channel, parallel over (sequence, channel block).
  const float* Ad = W(*w.A).f32_data();
  const float* Dd = W(*w.D).f32_data();
  constexpr int64_t kChanBlock = 16;
  const int64_t cblocks = (di + kChanBlock - 1) / kChanBlock;
  const int64_t work = static_cast<int64_t>(seqs.size()) * cblocks;
#pragma omp parallel for schedule(static) num_threads(threads_)
  for (int64_t item = 0; item < work; ++item) {
    const SeqRows& s = seqs[static_cast<size_t>(item / cblocks)];
    const int64_t c0 = (item % cblocks) * kChanBlock, c1 = std::min(di, c0 + kChanBlock);
    float* hs = st->at(layer, s.slot).ssm.data();
    for (int64_t ch = c0; ch < c1; ++ch) {
      float* h = hs + ch * N;
      const float* a = Ad + ch * N;
      for (int64_t t = 0; t < s.n; ++t) {
        const int64_t r = s.row0 + t;
        const float* pr = p.row(r);
        const float* Bv;
        const float* Cv;
        float z;
        if (mil) {
          Bv = pr + di + dxb + (ch / (N * rep)) * N;
          Cv = pr + di + 2 * dxb + (ch / N) * N;
          z = pr[ch];
        } else {
          Bv = xdbc.row(r) + R;
          Cv = xdbc.row(r) + R + N;
          z = pr[di + ch];
        }
        const float d = dt.row(r)[ch];
        const float xv = xc.row(r)[ch];
        float y = 0.0f;
        for (int64_t n = 0; n < N; ++n) {
          h[n] = std::exp(d * a[n]) * h[n] + (d * Bv[n]) * xv;
          y += h[n] * Cv[n];
        }
        y += Dd[ch] * xv;
        o.row(r)[ch] = y * Silu(z);
      }
    }
  }
}

void CpuBackend::Ssd(StateCache* state, int layer, const Activation& proj, const BatchLayout& batch,
                     const SsdSpec& spec, const SsdWeights& w, Activation* out) {
  auto* st = static_cast<CpuStateCache*>(state);
  const auto& p = A(proj);
  auto& o = A(out);
  const int64_t di = spec.d_inner, N = spec.d_state, K = spec.d_conv, H = spec.heads,
                P = spec.head_dim, G = spec.groups;
  const bool llamba = spec.kind == MixerKind::kDiscreteMamba2;
  const int64_t C = di + 2 * G * N;
  const int64_t xbc_off = llamba ? 0 : di;
  const int64_t z_off = llamba ? C : 0;
  const int64_t dt_off = llamba ? C + di : di + C;
  const int64_t heads_per_group = H / G;
  const auto seqs = Flatten(batch);
  const int64_t M = p.rows();

  // 1. Causal conv over x|B|C (identity for Llamba, SiLU for HF Mamba-2).
  CpuActivation xbc(M, C);
  CausalConv(
      st, layer, seqs, C, K, W(*w.conv_w), Wp(w.conv_b), /*silu=*/!llamba,
      [&](int64_t r, int64_t c) { return p.row(r)[xbc_off + c]; }, &xbc, threads_);

  // 2. Per-head recurrence S = decay * S + (scale * x) B^T, y = S C + D x.
  const float* Dd = W(*w.D).f32_data();
  const float* dt_bias = llamba ? nullptr : W(*w.dt_bias).f32_data();
  const float* Ad = llamba ? nullptr : W(*w.A).f32_data();
  CpuActivation y(M, di);
  const int64_t work = static_cast<int64_t>(seqs.size()) * H;
#pragma omp parallel for schedule(static) num_threads(threads_)
  for (int64_t item = 0; item < work; ++item) {
    const SeqRows& s = seqs[static_cast<size_t>(item / H)];
    const int64_t h = item % H, g = h / heads_per_group;
    float* S = st->at(layer, s.slot).ssm.data() + h * P * N;
    for (int64_t t = 0; t < s.n; ++t) {
      const int64_t r = s.row0 + t;
      const float* xr = xbc.row(r);
      const float* x = xr + h * P;
      const float* Bv = xr + di + g * N;
      const float* Cv = xr + di + G * N + g * N;
      const float raw = p.row(r)[dt_off + h];
      float decay, scale;
      if (llamba) {
        const float delta = Softplus(raw);
        decay = std::exp(-delta);
        scale = 1.0f;
      } else {
        float dtv = Softplus(raw + dt_bias[h]);
        dtv = std::max(dtv, spec.dt_min);
        if (spec.dt_max > 0) dtv = std::min(dtv, spec.dt_max);
        decay = std::exp(dtv * Ad[h]);
        scale = dtv;
      }
      float* yr = y.row(r) + h * P;
      for (int64_t pi = 0; pi < P; ++pi) {
        float* Sp = S + pi * N;
        const float xs = scale * x[pi];
        for (int64_t n = 0; n < N; ++n) Sp[n] = decay * Sp[n] + xs * Bv[n];
        yr[pi] = Dot(Sp, Cv, N) + Dd[h] * x[pi];
      }
    }
  }

  // 3. Gate (and HF's grouped RMSNorm).
  if (llamba) {
    const float* zb = W(*w.z_bias).f32_data();
    for (int64_t r = 0; r < M; ++r) {
      const float* zr = p.row(r) + z_off;
      const float* yr = y.row(r);
      float* orow = o.row(r);
      for (int64_t c = 0; c < di; ++c) orow[c] = yr[c] * Silu(zr[c] + zb[c]);
    }
  } else {
    const float* nw = W(*w.norm_w).f32_data();
    const int64_t gs = di / G;
    for (int64_t r = 0; r < M; ++r) {
      const float* zr = p.row(r) + z_off;
      const float* yr = y.row(r);
      float* orow = o.row(r);
      for (int64_t c = 0; c < di; ++c) orow[c] = yr[c] * Silu(zr[c]);
      for (int64_t g0 = 0; g0 < di; g0 += gs) {
        const float ms = Dot(orow + g0, orow + g0, gs) / static_cast<float>(gs);
        const float inv = 1.0f / std::sqrt(ms + spec.norm_eps);
        for (int64_t c = g0; c < g0 + gs; ++c) orow[c] = nw[c] * (orow[c] * inv);
      }
    }
  }
}

}  // namespace

namespace cpu {

void GemmF32(const float* x, int64_t ldx, int64_t M, int64_t K, const float* w, int64_t N,
             float* out, int64_t ldo, bool accumulate, int threads) {
  GemmImpl<false>(x, ldx, M, K, w, N, out, ldo, accumulate, threads);
}

void GemmBF16(const float* x, int64_t ldx, int64_t M, int64_t K, const uint16_t* w, int64_t N,
              float* out, int64_t ldo, bool accumulate, int threads) {
  GemmImpl<true>(x, ldx, M, K, w, N, out, ldo, accumulate, threads);
}

}  // namespace cpu

std::unique_ptr<Backend> CreateCpuBackend(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace ttc::engine
