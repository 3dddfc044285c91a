// A loaded model: configuration, weights uploaded to a backend, optional tokenizer, and the generic
// decoder forward pass shared by every family (embedding -> blocks [pre-norm mixer (+ SwiGLU MLP)]
// -> final norm -> tied or untied head). Loading maps each family's checkpoint names
// (architectures.md §2.2, §3.2 split and fused, §4.2, HF Mamba / Mamba2) onto one set of fused
// backend weights. RandomModel builds the same network from a config with seeded random weights
// (benchmarks, CUDA backend tests, real-shape smoke runs). Thread-safety: a Model is used by one
// thread at a time (Forward mutates the backend's scratch and the StateCache passed in); config()
// and tokenizer() may be read concurrently.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/backend.h"
#include "engine/config.h"

namespace ttc::engine {

class Tokenizer;

// Precision of the weight matrices: every GEMM matrix and the embedding table (norm weights,
// biases, convolutions and the SSM vectors stay f32). kBf16 and kF16 round the matrices at load (to
// nearest even), so the CPU backend, which multiplies in f32, computes with the weights a bf16 (or
// f16) deployment of the checkpoint has; kF32 keeps the checkpoint's values. The CUDA backend
// multiplies bf16 matrices only: kF16 and kF32 are refused there. Unset in ModelOptions: each
// backend's own (CPU: the checkpoint's values; CUDA: bf16).
enum class WeightDType { kF32, kBf16, kF16 };
std::string_view WeightDTypeName(WeightDType t);  // "f32", "bf16", "f16"
Result<WeightDType> ParseWeightDType(std::string_view name);

struct ModelOptions {
  BackendKind backend = BackendKind::kCpu;
  int threads = 0;                            // CPU threads, 0 = all
  int device = 0;                             // CUDA device
  StateDType state_dtype = StateDType::kF32;  // see BackendOptions
  std::optional<WeightDType> weight_dtype{};  // see WeightDType
  // RoPE variant of attention layers: unset = the config's (llama3 for Llama 3.x and MambaInLlama's
  // training-path attention). kPlain reproduces MambaInLlama's mamba_ssm generation wrapper
  // (architectures.md §3.4).
  std::optional<RopeType> rope_override{};
  bool load_tokenizer = true;  // read tokenizer.json from the model folder when present
};

class Model {
 public:
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  Backend& backend() { return *backend_; }
  // Null when the folder had no tokenizer.json (or load_tokenizer was false).
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  // Where the model was loaded from ("" for random models).
  const std::filesystem::path& dir() const { return dir_; }
  int64_t parameter_count() const { return parameter_count_; }
  // "llama: 3 layers (attention x3), d 128, vocab 512, 1.0 M params, cpu (2 threads)".
  std::string Describe() const;

  // State for num_slots sequences.
  Result<std::unique_ptr<StateCache>> NewState(int num_slots);

  // Runs batch.total_rows() tokens (tokens[r] is row r) through the model, advancing each
  // sequence's slot. For each entry of logit_rows (row indices into the batch) appends vocab_size
  // logits to *logits (resized to logit_rows.size() * vocab_size). Errors: token ids outside the
  // vocabulary, a sequence whose start_pos is not its slot's length, repeated or out-of-range
  // slots, logit rows out of range; and, here and in the calls below, kFailedPrecondition once the
  // backend's recurrent state has lost the model's values (Backend::StateHealth: an f16 state
  // past its range), checked before the forward and after any results reach the host.
  Status Forward(StateCache* state, const BatchLayout& batch, std::span<const int32_t> tokens,
                 std::span<const int64_t> logit_rows, std::vector<float>* logits);
  // The same forward, then tokens drawn on the backend (Backend::SampleRows) instead of logits
  // returned: each logit row feeds keys.size() / logit_rows.size() consecutive draws (one per
  // decode row, or every sample of a prompt from its prefill row); out[i] is the draw with RNG key
  // keys[i]. The logits stay on the backend (a GPU backend copies back only the ids).
  // keys.size() must be a non-zero multiple of logit_rows.size(); out.size() == keys.size().
  Status ForwardSample(StateCache* state, const BatchLayout& batch, std::span<const int32_t> tokens,
                       std::span<const int64_t> logit_rows, const SamplingParams& params,
                       std::span<const SampleKey> keys, std::span<int32_t> out);
  // Pipelined decoding: ForwardSample without waiting for the draws, so that the host prepares
  // and launches the next step while this one runs (Generate's decode loop on a GPU). The tokens
  // are either host ids (`tokens`) or, with `prev_draws` instead (one entry per row, `tokens`
  // empty), the draws of the previous ForwardSampleAsync call: row r's token is its draw
  // prev_draws[r], never copied through the host. CollectSample returns the draws of the oldest
  // uncollected call (out.size() == its keys.size()). At most Backend::kMaxPendingDraws calls
  // may be uncollected; ForwardSample needs none pending. Errors as ForwardSample, and
  // prev_draws without a previous call or out of its range, too many pending calls, nothing to
  // collect, a wrong out size.
  Status ForwardSampleAsync(StateCache* state, const BatchLayout& batch,
                            std::span<const int32_t> tokens, std::span<const int64_t> prev_draws,
                            std::span<const int64_t> logit_rows, const SamplingParams& params,
                            std::span<const SampleKey> keys);
  Status CollectSample(std::span<int32_t> out);

 private:
  friend class ModelBuilder;
  friend Result<std::unique_ptr<Model>> LoadModel(const std::filesystem::path&,
                                                  const ModelOptions&);
  friend Result<std::unique_ptr<Model>> RandomModel(const ModelConfig&, uint64_t,
                                                    const ModelOptions&);
  friend Result<std::unique_ptr<Model>> RandomModelFromDir(const std::filesystem::path&, uint64_t,
                                                           const ModelOptions&);
  friend Status AttachTokenizer(Model&, const std::filesystem::path&, const ModelOptions&);
  Model() = default;

  struct Layer;
  // Validates, runs every layer and leaves the head output for logit_rows in logits_ (null when
  // logit_rows is empty). sample/draws: the SampleRows call that follows (Backend::BeginForward).
  // prev_draws (instead of tokens): the rows' tokens are draws of the last ForwardSampleAsync.
  Status ForwardLogits(StateCache* state, const BatchLayout& batch, std::span<const int32_t> tokens,
                       std::span<const int64_t> logit_rows, const SamplingParams* sample,
                       int64_t draws, std::span<const int64_t> prev_draws = {});
  Status CheckSampleArgs(std::span<const int64_t> logit_rows, const SamplingParams& params,
                         std::span<const SampleKey> keys) const;
  std::deque<int64_t> pending_draws_;  // keys.size() of each uncollected ForwardSampleAsync
  int64_t last_async_draws_ = -1;      // keys.size() of the last one (-1: none since a sync call)
  ModelConfig config_;
  std::filesystem::path dir_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Weight> embed_, final_norm_, head_;  // head_ null when tied
  std::vector<std::unique_ptr<Layer>> layers_;
  AttentionSpec attention_spec_;
  int64_t parameter_count_ = 0;
  // The last head output; declared after backend_ so it is destroyed first.
  std::unique_ptr<Activation> logits_;
};

// Loads dir (config.json [+ mamba_config.json, generation_config.json], model.safetensors or a
// sharded index, tokenizer.json when present). Errors name the file and the tensor.
Result<std::unique_ptr<Model>> LoadModel(const std::filesystem::path& dir,
                                         const ModelOptions& options = {});

// The network of `config` with seeded random weights (BF16 like real checkpoints; deterministic for
// a seed).
Result<std::unique_ptr<Model>> RandomModel(const ModelConfig& config, uint64_t seed,
                                           const ModelOptions& options = {});

// dir's configuration (and tokenizer.json when present) with random weights instead of the folder's
// safetensors: real shapes without real weights (e.g. a folder holding only a Llama-3.2-1B
// config.json and the Llama 3 tokenizer.json).
Result<std::unique_ptr<Model>> RandomModelFromDir(const std::filesystem::path& dir, uint64_t seed,
                                                  const ModelOptions& options = {});

// Loads dir/tokenizer.json into the model when present (and options.load_tokenizer); when the
// config has no stop ids, <|end_of_text|> and <|eot_id|> become the stop ids.
Status AttachTokenizer(Model& model, const std::filesystem::path& dir, const ModelOptions& options);

}  // namespace ttc::engine
