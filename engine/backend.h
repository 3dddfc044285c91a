// The compute backend interface: the generic decoder (engine/model.h) is written once against these
// ops, and each backend (CPU reference in engine/cpu/, CUDA in engine/cuda/) implements them on
// memory it owns. No backend-specific type appears here: weights, activations and per-sequence
// state are opaque objects created by the backend; the host only sees them through CopyToHost.
//
// Data model:
//  - Weight: a matrix [rows, cols] (nn.Linear layout [out, in]); vectors are [1, n]. Uploaded once
//  from host
//    BF16/F16/F32 data; several host blocks can be concatenated along rows (fused QKV, gate|up,
//    MambaInLlama's split projections) so the backend sees one matrix. The backend chooses its
//    storage precision.
//  - Activation: float math, logically [rows, cols]; a batch of token rows. Rows are grouped by
//  sequence as a
//    BatchLayout describes: sequence s owns rows [row_offset(s), row_offset(s) + num_tokens) at
//    positions start_pos .. start_pos + num_tokens - 1. Prefill is one sequence with L rows; decode
//    is B sequences with one row each; both go through the same ops.
//  - StateCache: per-layer, per-slot recurrent state (attention KV cache; conv and SSM state for
//  Mamba mixers).
//    A slot is one sequence. Slots are independent: forking a prompt's state to N samples is
//    CopySlot.
//
// Thread-safety: a Backend and the objects it creates are used by one thread at a time (the backend
// may use many threads inside an op). Different Backend instances are independent.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/config.h"
#include "engine/sampler.h"

namespace ttc::engine {

enum class HostDType { kF32, kBF16, kF16 };

// A host-side row-major matrix the backend copies (and converts) at upload. data is not necessarily
// aligned.
struct HostMatrix {
  const void* data = nullptr;
  HostDType dtype = HostDType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
};

class Weight {
 public:
  virtual ~Weight() = default;
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }

 protected:
  Weight(int64_t rows, int64_t cols) : rows_(rows), cols_(cols) {}

 private:
  int64_t rows_, cols_;
};

class Activation {
 public:
  virtual ~Activation() = default;
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }

 protected:
  Activation(int64_t rows, int64_t cols) : rows_(rows), cols_(cols) {}

 private:
  int64_t rows_, cols_;
};

class StateCache {
 public:
  virtual ~StateCache() = default;
  virtual int num_slots() const = 0;
  // Tokens consumed by the slot so far (0 after Reset).
  virtual int64_t length(int slot) const = 0;
  // Makes `slot` an empty sequence (zero conv/SSM state, empty KV cache).
  virtual void Reset(int slot) = 0;
  // Makes `dst` an exact copy of `src` (the fork of a prompt's state into a sample's slot).
  virtual void CopySlot(int src, int dst) = 0;
  // Records that `n` more tokens of the slot went through every layer (the model calls it once per
  // forward).
  virtual void Advance(int slot, int64_t n) = 0;
  // Bytes of state currently held by one slot (for logs and memory planning).
  virtual int64_t SlotBytes(int slot) const = 0;
};

// One sequence of a batch.
struct SeqSpan {
  int slot = 0;           // state slot of the sequence
  int64_t start_pos = 0;  // position of its first row; must equal the slot's length()
  int64_t num_tokens = 0;
};

struct BatchLayout {
  std::vector<SeqSpan> seqs;
  int64_t total_rows() const;
  int64_t row_offset(size_t seq) const;  // O(seq); callers iterate
};

// Attention mixer geometry. qkv rows are [q (num_heads*head_dim) | k (num_kv_heads*head_dim) | v
// (same)], heads head-major; the output is [num_heads*head_dim] per row (before o_proj).
struct AttentionSpec {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  std::vector<float>
      inv_freq;  // RoPE inverse frequencies, head_dim/2 entries (half-split/NeoX rotation)
};

// Mamba-1 mixers after the input projection. Output per row: y * silu(z), [d_inner] (before
// out_proj).
struct Mamba1Spec {
  // kMamba1Mil: proj row = [z (d_inner) | x (d_xb) | B (d_xb) | C (d_inner) | dt_low (dt_rank)]; x
  // and B are
  //   repeated from d_xb groups of d_state channels; C has its own group per d_state channels.
  // kMamba1 (HF): proj row = [x (d_inner) | z (d_inner)]; dt_low | B | C come from x_proj on the
  // conv output.
  MixerKind kind = MixerKind::kMamba1Mil;
  int64_t d_inner = 0, d_state = 0, d_conv = 0, dt_rank = 0, d_xb = 0;
};
struct Mamba1Weights {
  const Weight* conv_w = nullptr;  // [d_inner, d_conv]
  const Weight* conv_b = nullptr;  // [1, d_inner] or null
  const Weight* A = nullptr;       // [d_inner, d_state], already A = -exp(A_log)
  const Weight* D = nullptr;       // [1, d_inner]
  const Weight* dt_w = nullptr;    // [d_inner, dt_rank]
  const Weight* dt_b = nullptr;    // [1, d_inner]; MambaInLlama's double bias is uploaded as 2*b
  const Weight* x_proj = nullptr;  // kMamba1 only: [dt_rank + 2*d_state, d_inner]
};

// Mamba-2-style mixers (heads with scalar decay) after the input projection. Output per row:
// [d_inner].
struct SsdSpec {
  // kDiscreteMamba2 (Llamba): proj row = [xBC | z | l (heads)]; conv identity; decay
  // exp(-softplus(l));
  //   out = (S.C + D x) * silu(z + z_bias).
  // kMamba2 (HF): proj row = [z | xBC | dt (heads)]; conv + silu; dt = softplus(dt + dt_bias)
  // clamped;
  //   decay exp(dt*A); input dt*x; out = RMSNorm_group((S.C + D x) * silu(z)) * norm_w.
  MixerKind kind = MixerKind::kDiscreteMamba2;
  int64_t d_inner = 0, d_state = 0, d_conv = 0, heads = 0, head_dim = 0, groups = 0;
  float norm_eps = 1e-5f;
  float dt_min = 0.0f, dt_max = 0.0f;  // kMamba2 clamp; dt_max 0 = none
};
struct SsdWeights {
  const Weight* conv_w = nullptr;   // [conv_channels, d_conv]
  const Weight* conv_b = nullptr;   // [1, conv_channels] or null
  const Weight* D = nullptr;        // [1, heads]
  const Weight* z_bias = nullptr;   // kDiscreteMamba2: [1, d_inner]
  const Weight* dt_bias = nullptr;  // kMamba2: [1, heads]
  const Weight* A = nullptr;        // kMamba2: [1, heads], already -exp(A_log)
  const Weight* norm_w = nullptr;   // kMamba2: [1, d_inner]
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Weights: `blocks` concatenated along rows (all with the same cols).
  virtual Result<std::unique_ptr<Weight>> Upload(std::span<const HostMatrix> blocks) = 0;
  Result<std::unique_ptr<Weight>> Upload(const HostMatrix& m) { return Upload(std::span(&m, 1)); }

  virtual std::unique_ptr<Activation> NewActivation(int64_t rows, int64_t cols) = 0;
  // State for `num_slots` sequences of a model with this config. Memory grows with use (KV cache).
  virtual Result<std::unique_ptr<StateCache>> NewStateCache(const ModelConfig& config,
                                                            int num_slots) = 0;

  // out[r] = table[ids[r]]. ids must be < table.rows() (checked by the caller).
  virtual void Embed(const Weight& table, std::span<const int32_t> ids, Activation* out) = 0;
  // out = x / sqrt(mean(x^2) + eps) * w, per row (statistics in float32).
  virtual void RmsNorm(const Activation& x, const Weight& w, float eps, Activation* out) = 0;
  // out = x * w^T (+ out when accumulate: the residual add). x [M, K], w [N, K], out [M, N].
  virtual void MatMul(const Activation& x, const Weight& w, Activation* out, bool accumulate) = 0;
  // out[:, j] = silu(gu[:, j]) * gu[:, ff + j] for gu = [gate | up] of width 2*ff.
  virtual void SwiGlu(const Activation& gate_up, Activation* out) = 0;
  // An op that feeds a GEMM, with that GEMM: out = RmsNorm(x) * w^T and out = SwiGlu(gate_up) *
  // w^T (+ out when accumulate). `scratch` ([M, K]) holds the GEMM's input; what it holds after
  // the call is unspecified: a backend may keep that input only in the form its GEMM reads (the
  // CUDA backend writes the bf16 copy and skips the f32 one). The defaults run the two ops.
  virtual void RmsNormMatMul(const Activation& x, const Weight& norm, float eps, const Weight& w,
                             Activation* scratch, Activation* out, bool accumulate) {
    RmsNorm(x, norm, eps, scratch);
    MatMul(*scratch, w, out, accumulate);
  }
  virtual void SwiGluMatMul(const Activation& gate_up, const Weight& w, Activation* scratch,
                            Activation* out, bool accumulate) {
    SwiGlu(gate_up, scratch);
    MatMul(*scratch, w, out, accumulate);
  }
  // Copies the listed rows of x into out (rows.size() rows), e.g. the last token of each sequence.
  virtual void GatherRows(const Activation& x, std::span<const int64_t> rows, Activation* out) = 0;

  // Mixers: consume their input projection for every row of the batch, update the state of each
  // sequence's slot (appending KV / advancing the recurrence), write the pre-out_proj output.
  virtual void Attention(StateCache* state, int layer, const Activation& qkv,
                         const BatchLayout& batch, const AttentionSpec& spec, Activation* out) = 0;
  virtual void Mamba1(StateCache* state, int layer, const Activation& proj,
                      const BatchLayout& batch, const Mamba1Spec& spec, const Mamba1Weights& w,
                      Activation* out) = 0;
  virtual void Ssd(StateCache* state, int layer, const Activation& proj, const BatchLayout& batch,
                   const SsdSpec& spec, const SsdWeights& w, Activation* out) = 0;

  // Copies an activation to host memory (out.size() == rows*cols, row-major float32).
  virtual void CopyToHost(const Activation& x, std::span<float> out) = 0;

  // Draws keys.size() tokens from the rows of `logits` ([rows, vocab]) under the contract of
  // SampleToken (engine/sampler.h): draw i uses row i / (keys.size() / rows) and the RNG keyed by
  // keys[i] (so one prompt row can feed all its samples' first draws). keys.size() is a multiple of
  // rows; out.size() == keys.size(). The default copies the rows to the host and runs SampleToken;
  // a device backend overrides it so that only the token ids cross to the host.
  virtual void SampleRows(const Activation& logits, const SamplingParams& params,
                          std::span<const SampleKey> keys, std::span<int32_t> out);

  // Pipelined decoding (Model::ForwardSampleAsync): the same draws as SampleRows, but not waited
  // for. They stay readable as the next forward's tokens (EmbedDraws) and are returned by
  // CollectDraws, oldest call first; at most kMaxPendingDraws calls are uncollected at a time.
  // A device backend overrides the three so that a decode step is launched while the previous
  // one still runs (no host sync between steps); the defaults run SampleRows at once and keep
  // the ids on the host.
  static constexpr int kMaxPendingDraws = 2;
  virtual void SampleRowsAsync(const Activation& logits, const SamplingParams& params,
                               std::span<const SampleKey> keys);
  virtual void CollectDraws(std::span<int32_t> out);
  // out[r] = the embedding of the last SampleRowsAsync call's draw draw_rows[r].
  virtual void EmbedDraws(const Weight& table, std::span<const int64_t> draw_rows, Activation* out);
  // Whether Generate should pipeline its decode steps by default: true where launching a step
  // costs host time that can overlap the previous step (a GPU); false on the CPU, where a
  // pipelined step is computed for the samples that stopped one step earlier for nothing.
  virtual bool PrefersPipelinedDecode() const { return false; }
  // How many tokens a forward over several sequences' whole prompts (ScoreInBatches: PRM scoring)
  // should hold at most; 0: one sequence per forward. A batch shares the prefix its conversations
  // have in common (engine::ScoreBatch), which pays on any backend; beyond that, more rows per
  // forward pay only where a forward of a few hundred rows leaves hardware idle (a GPU; the CPU's
  // GEMMs are as efficient at a few hundred rows: score_bench 0.98-1.04x without a shared prefix).
  virtual int64_t PrefillBatchTokens() const { return 0; }

  // Called by the model before the ops of every forward, after validation. `sample` is the
  // sampling of the SampleRows call that will end the forward (`draws` draws), or null when the
  // logits go to the host; `tokens_from_draws`: the forward embeds the previous draws
  // (EmbedDraws) instead of host ids (Embed). A backend may record the ops of a decode forward
  // (every sequence one token) that ends in SampleRows and replay that recording (a CUDA graph)
  // for later forwards of the same shape; the model still calls every op in the same order, so
  // that the backend can upload each step's inputs (token ids, positions, RNG keys) before the
  // replay. Default: nothing.
  virtual void BeginForward(StateCache* state, const BatchLayout& batch,
                            const SamplingParams* sample, int64_t draws, bool tokens_from_draws) {
    (void)state, (void)batch, (void)sample, (void)draws, (void)tokens_from_draws;
  }

  // An error once a recurrent-state store of an earlier forward lost the model's values (the f16
  // state saturates past +-65504); the model checks it before every forward and after every
  // forward whose results reach the host, so that no sample is made from such a state. Sticky
  // until the backend's next NewStateCache. Default: always fine.
  virtual Status StateHealth() const { return Status::Ok(); }

  // Memory planning: the largest number of sequences that fit in the memory free now when `prompts`
  // prompts of up to `prompt_len` tokens fork into sequences of up to `max_new_tokens` new tokens
  // each (a prompt's KV positions are stored once and shared by its sequences). Callers split
  // larger batches. -1: the backend does not plan (the CPU backend lives in host memory, which
  // grows on demand); 0: not even one sequence fits.
  virtual int64_t PlanMaxSequences(const ModelConfig& config, int64_t prompt_len,
                                   int64_t max_new_tokens, int64_t prompts) {
    (void)config, (void)prompt_len, (void)max_new_tokens, (void)prompts;
    return -1;
  }

 private:
  // The default SampleRows' host copy of the logits and per-thread sampler buffers, kept across
  // decode steps instead of reallocated for every step.
  std::vector<float> sample_host_;
  std::vector<SamplerScratch> sample_scratch_;
  // The default pipelined sampling's draws: uncollected calls, oldest first, and the last call's.
  std::deque<std::vector<int32_t>> pending_draws_;
  std::vector<int32_t> last_draws_;
};

enum class BackendKind { kCpu, kCuda };

// How the SSM layers' recurrent state is stored between steps (the arithmetic is f32 either way).
// Both 16-bit kinds halve the state's bytes per decode step (the state engine-perf.md's roofline
// assumes) and round the state to nearest at every step:
// - kBf16, as mamba_ssm's bf16 inference cache: 8 significant bits. On the goldens the decode
//   logits move by up to 0.07 within 16 steps and 0.19 within 256 steps (mambainllama; tests/cuda,
//   docs/perf/cuda.md), past the 0.05 parity bound of the f32 state. Stochastic rounding was no
//   closer (session 8).
// - kF16: 11 significant bits, so an eighth of bf16's rounding per step (0.011 within 16 steps and
//   0.024 within 256 on the same goldens, emulated on the CPU), but a range of +-65504. A store
//   past it saturates and marks the state (Backend::StateHealth), and the model's next forward
//   fails with an error that says to use bf16 or f32: no sample comes from a clipped state.
// Only the CUDA backend offers the 16-bit kinds.
enum class StateDType { kF32, kBf16, kF16 };
// "f32", "bf16", "f16"; ParseStateDType accepts those names.
std::string_view StateDTypeName(StateDType t);
Result<StateDType> ParseStateDType(std::string_view name);

struct BackendOptions {
  BackendKind kind = BackendKind::kCpu;
  int threads = 0;  // CPU threads; 0 = all hardware threads
  int device = 0;   // CUDA device ordinal
  StateDType state_dtype = StateDType::kF32;
};

// Creates a backend. kCuda fails with kUnimplemented when the CUDA backend is not compiled in.
Result<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options);

// The CPU backend's device name, "cpu (1 thread)" / "cpu (N threads)": the backend's name() and a
// CPU worker's device before any model is loaded.
std::string CpuDeviceName(int threads);

#ifdef TTC_HAVE_CUDA_BACKEND
// Defined by engine/cuda/ when it is compiled (TTC_HAVE_CUDA_BACKEND is set by
// engine/CMakeLists.txt).
Result<std::unique_ptr<Backend>> CreateCudaBackend(const BackendOptions& options);
#endif

}  // namespace ttc::engine
