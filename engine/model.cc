#include "engine/model.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"

namespace ttc::engine {

struct Model::Layer {
  MixerKind kind = MixerKind::kAttention;
  std::unique_ptr<Weight> norm1, norm2, in_proj, out_proj, gate_up, down;
  // SSM mixers.
  std::unique_ptr<Weight> conv_w, conv_b, A, D, dt_w, dt_b, x_proj, z_bias, dt_bias, norm_w;
};

Model::~Model() = default;

namespace {

// A host tensor with its storage, ready for Backend::Upload.
struct HostTensor {
  HostMatrix m;
  std::vector<uint16_t> u16;
  std::vector<float> f32;
};

// Element i (row-major) of a host matrix as float32 (exact from bf16 and f16).
float ElementF32(const HostMatrix& m, int64_t i) {
  const auto* bytes = static_cast<const std::byte*>(m.data);
  if (m.dtype == HostDType::kF32) {
    float v;
    std::memcpy(&v, bytes + 4 * i, 4);
    return v;
  }
  uint16_t v;
  std::memcpy(&v, bytes + 2 * i, 2);
  return m.dtype == HostDType::kBF16 ? BF16ToFloat32(v) : F16ToFloat32(v);
}

enum class Init {
  kLinear,     // U(-a, a) with std 1/sqrt(cols)
  kEmbedding,  // std 1
  kNormOne,    // 1 + small noise
  kConv,       // std 0.5
  kBias,       // small
  kALog,       // log(1..N) per row
  kDtBias,     // in [-2.5, -0.5]
  kOne,        // 1
};

// Where weights come from: a checkpoint (names of the family) or a seeded generator.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual bool Has(const std::string& name) const = 0;
  // The tensor with `shape`, as a [rows, cols] matrix (rows = shape[0], cols = the product of the
  // rest; a vector is [1, n]).
  virtual Result<HostTensor> Get(const std::string& name, const std::vector<int64_t>& shape,
                                 Init init) = 0;
  // The same converted to float32.
  Result<std::vector<float>> GetF32(const std::string& name, const std::vector<int64_t>& shape,
                                    Init init) {
    TTC_ASSIGN_OR_RETURN(HostTensor t, Get(name, shape, init));
    if (t.m.dtype == HostDType::kF32) {
      if (!t.f32.empty()) return std::move(t.f32);
      std::vector<float> out(static_cast<size_t>(t.m.rows * t.m.cols));
      std::memcpy(out.data(), t.m.data, out.size() * 4);
      return out;
    }
    std::vector<float> out(static_cast<size_t>(t.m.rows * t.m.cols));
    for (size_t i = 0; i < out.size(); ++i) out[i] = ElementF32(t.m, static_cast<int64_t>(i));
    return out;
  }
};

HostMatrix MatrixOf(const void* data, HostDType dtype, const std::vector<int64_t>& shape) {
  HostMatrix m;
  m.data = data;
  m.dtype = dtype;
  if (shape.size() == 1) {
    m.rows = 1;
    m.cols = shape[0];
  } else {
    m.rows = shape[0];
    m.cols = 1;
    for (size_t i = 1; i < shape.size(); ++i) m.cols *= shape[i];
  }
  return m;
}

class CheckpointSource final : public TensorSource {
 public:
  explicit CheckpointSource(Checkpoint ckpt) : ckpt_(std::move(ckpt)) {}
  bool Has(const std::string& name) const override { return ckpt_.Has(name); }
  Result<HostTensor> Get(const std::string& name, const std::vector<int64_t>& shape,
                         Init) override {
    TTC_ASSIGN_OR_RETURN(const TensorView* view, ckpt_.Get(name, shape));
    HostTensor t;
    switch (view->dtype) {
      case DType::kBF16:
        t.m = MatrixOf(view->data, HostDType::kBF16, shape);
        break;
      case DType::kF16:
        t.m = MatrixOf(view->data, HostDType::kF16, shape);
        break;
      case DType::kF32:
        t.m = MatrixOf(view->data, HostDType::kF32, shape);
        break;
      case DType::kF64: {
        TTC_ASSIGN_OR_RETURN(t.f32, ToFloat32(*view));
        t.m = MatrixOf(t.f32.data(), HostDType::kF32, shape);
        break;
      }
      default:
        return Corrupt("{}: tensor {} has dtype {}, expected BF16, F16 or F32", ckpt_.FileOf(name),
                       name, DTypeName(view->dtype));
    }
    return t;
  }

 private:
  Checkpoint ckpt_;
};

// Counter-based so a tensor's values do not depend on thread count or load order.
inline uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class RandomSource final : public TensorSource {
 public:
  explicit RandomSource(uint64_t seed) : seed_(seed) {}
  bool Has(const std::string&) const override { return false; }
  Result<HostTensor> Get(const std::string& name, const std::vector<int64_t>& shape,
                         Init init) override {
    uint64_t h = SplitMix(seed_);
    for (char c : name) h = SplitMix(h ^ static_cast<uint8_t>(c));
    HostTensor t;
    t.m = MatrixOf(nullptr, HostDType::kBF16, shape);
    const int64_t rows = t.m.rows, cols = t.m.cols, n = rows * cols;
    t.u16.resize(static_cast<size_t>(n));
    float scale = 0.0f, offset = 0.0f;
    switch (init) {
      case Init::kLinear:
        scale = 1.0f / std::sqrt(static_cast<float>(cols));
        break;
      case Init::kEmbedding:
        scale = 1.0f;
        break;
      case Init::kNormOne:
        scale = 0.05f;
        offset = 1.0f;
        break;
      case Init::kConv:
        scale = 0.5f;
        break;
      case Init::kBias:
        scale = 0.1f;
        break;
      case Init::kDtBias:
        scale = 0.0f;
        break;
      case Init::kOne:
        offset = 1.0f;
        break;
      case Init::kALog:
        break;
    }
    const float a = std::sqrt(3.0f) * scale;  // U(-a, a) has std `scale`
#pragma omp parallel for schedule(static) if (n > (1 << 20))
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t bits = SplitMix(h + static_cast<uint64_t>(i));
      const float u = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      float v;
      if (init == Init::kALog) {
        v = std::log(static_cast<float>(i % cols + 1)) + 0.1f * (u - 0.5f);
      } else if (init == Init::kDtBias) {
        v = -2.5f + 2.0f * u;
      } else {
        v = offset + a * (2.0f * u - 1.0f);
      }
      t.u16[static_cast<size_t>(i)] = Float32ToBF16(v);
    }
    t.m.data = t.u16.data();
    return t;
  }

 private:
  uint64_t seed_;
};

int64_t Numel(const HostMatrix& m) { return m.rows * m.cols; }

}  // namespace

// Builds a Model from a config and a tensor source (the one place that knows every family's names).
class ModelBuilder {
 public:
  // round_to: kBf16 / kF16 round the weight matrices to that type at upload (see WeightDType).
  ModelBuilder(Model* model, TensorSource* src, std::optional<WeightDType> round_to)
      : m_(model), src_(src), c_(model->config_), round_to_(round_to) {}

  Status Build() {
    const int64_t d = c_.hidden_size, V = c_.vocab_size;
    std::string embed_name, final_name, prefix;
    switch (c_.family) {
      case ModelFamily::kLlama:
      case ModelFamily::kMambaInLlama:
        embed_name = "model.embed_tokens.weight";
        final_name = "model.norm.weight";
        prefix = "model.layers.";
        break;
      case ModelFamily::kLlamba:
        embed_name = "backbone.embedding.weight";
        final_name = "backbone.final_layernorm.weight";
        prefix = "backbone.layers.";
        break;
      case ModelFamily::kMamba:
      case ModelFamily::kMamba2:
        embed_name = "backbone.embeddings.weight";
        final_name = "backbone.norm_f.weight";
        prefix = "backbone.layers.";
        break;
    }
    TTC_ASSIGN_OR_RETURN(m_->embed_, Upload({embed_name}, {V, d}, Init::kEmbedding));
    TTC_ASSIGN_OR_RETURN(m_->final_norm_, Upload({final_name}, {d}, Init::kNormOne));
    // Tied unless the config says otherwise; a present lm_head.weight wins (architectures.md §2.2).
    if (!c_.tie_embeddings || src_->Has("lm_head.weight")) {
      TTC_ASSIGN_OR_RETURN(m_->head_, Upload({"lm_head.weight"}, {V, d}, Init::kLinear));
    }
    for (int64_t i = 0; i < c_.num_layers; ++i) {
      auto layer = std::make_unique<Model::Layer>();
      layer->kind = c_.layer_mixers[static_cast<size_t>(i)];
      TTC_RETURN_IF_ERROR(BuildLayer(prefix + std::to_string(i) + ".", layer.get()));
      m_->layers_.push_back(std::move(layer));
    }
    if (c_.num_layers_of(MixerKind::kAttention) > 0) {
      m_->attention_spec_.num_heads = c_.num_heads;
      m_->attention_spec_.num_kv_heads = c_.num_kv_heads;
      m_->attention_spec_.head_dim = c_.head_dim;
      m_->attention_spec_.inv_freq = RopeInverseFrequencies(c_.rope, c_.head_dim);
    }
    m_->parameter_count_ = params_;
    return Status::Ok();
  }

 private:
  // Uploads the row-concatenation of the named tensors (each [rows_i] + trailing dims of `shape`).
  Result<std::unique_ptr<Weight>> Upload(const std::vector<std::string>& names,
                                         const std::vector<int64_t>& shape, Init init) {
    return UploadParts(names, {shape}, init);
  }
  Result<std::unique_ptr<Weight>> UploadParts(const std::vector<std::string>& names,
                                              const std::vector<std::vector<int64_t>>& shapes,
                                              Init init) {
    std::vector<HostTensor> parts;
    std::vector<HostMatrix> blocks;
    for (size_t i = 0; i < names.size(); ++i) {
      const auto& shape = shapes.size() == 1 ? shapes[0] : shapes[i];
      TTC_ASSIGN_OR_RETURN(HostTensor t, src_->Get(names[i], shape, init));
      if (init == Init::kLinear || init == Init::kEmbedding) RoundMatrix(&t);
      parts.push_back(std::move(t));
    }
    for (auto& p : parts) {
      blocks.push_back(p.m);
      params_ += Numel(p.m);
    }
    return m_->backend_->Upload(blocks);
  }
  // The matrix in round_to_'s 16-bit type (values rounded to nearest even), unless it is already.
  void RoundMatrix(HostTensor* t) const {
    if (!round_to_ || *round_to_ == WeightDType::kF32) return;
    const HostDType want = *round_to_ == WeightDType::kBf16 ? HostDType::kBF16 : HostDType::kF16;
    if (t->m.dtype == want) return;
    const int64_t n = Numel(t->m);
    std::vector<uint16_t> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float v = ElementF32(t->m, i);
      out[static_cast<size_t>(i)] = want == HostDType::kBF16 ? Float32ToBF16(v) : Float32ToF16(v);
    }
    t->u16 = std::move(out);
    t->f32.clear();
    t->m.data = t->u16.data();
    t->m.dtype = want;
  }
  Result<std::unique_ptr<Weight>> UploadF32(std::vector<float> values, int64_t rows, int64_t cols) {
    HostMatrix m{values.data(), HostDType::kF32, rows, cols};
    params_ += rows * cols;
    return m_->backend_->Upload(m);
  }

  Status BuildLayer(const std::string& p, Model::Layer* L) {
    const int64_t d = c_.hidden_size, ff = c_.intermediate_size;
    const bool hf_mamba = c_.family == ModelFamily::kMamba || c_.family == ModelFamily::kMamba2;
    TTC_ASSIGN_OR_RETURN(
        L->norm1,
        Upload({p + (hf_mamba ? "norm.weight" : "input_layernorm.weight")}, {d}, Init::kNormOne));
    if (ff > 0) {
      TTC_ASSIGN_OR_RETURN(L->norm2,
                           Upload({p + "post_attention_layernorm.weight"}, {d}, Init::kNormOne));
      TTC_ASSIGN_OR_RETURN(
          L->gate_up,
          Upload({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, {ff, d}, Init::kLinear));
      TTC_ASSIGN_OR_RETURN(L->down, Upload({p + "mlp.down_proj.weight"}, {d, ff}, Init::kLinear));
    }
    switch (L->kind) {
      case MixerKind::kAttention:
        return BuildAttention(p, L);
      case MixerKind::kMamba1Mil:
        return BuildMamba1Mil(p, L);
      case MixerKind::kMamba1:
        return BuildMamba1(p, L);
      case MixerKind::kDiscreteMamba2:
      case MixerKind::kMamba2:
        return BuildSsd(p, L);
    }
    return Internal("unknown mixer");
  }

  Status BuildAttention(const std::string& p, Model::Layer* L) {
    const int64_t d = c_.hidden_size, q = c_.num_heads * c_.head_dim,
                  kv = c_.num_kv_heads * c_.head_dim;
    if (src_->Has(p + "mha.in_proj.weight")) {  // MambaInLlama fused (mamba_ssm MHA) format
      TTC_ASSIGN_OR_RETURN(L->in_proj,
                           Upload({p + "mha.in_proj.weight"}, {q + 2 * kv, d}, Init::kLinear));
      TTC_ASSIGN_OR_RETURN(L->out_proj, Upload({p + "mha.out_proj.weight"}, {d, q}, Init::kLinear));
      return Status::Ok();
    }
    TTC_ASSIGN_OR_RETURN(L->in_proj,
                         UploadParts({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                                      p + "self_attn.v_proj.weight"},
                                     {{q, d}, {kv, d}, {kv, d}}, Init::kLinear));
    TTC_ASSIGN_OR_RETURN(L->out_proj,
                         Upload({p + "self_attn.o_proj.weight"}, {d, q}, Init::kLinear));
    return Status::Ok();
  }

  // A = -exp(A_log), computed once in float32.
  Result<std::unique_ptr<Weight>> NegExp(const std::string& name, const std::vector<int64_t>& shape,
                                         int64_t rows, int64_t cols) {
    TTC_ASSIGN_OR_RETURN(auto a, src_->GetF32(name, shape, Init::kALog));
    for (float& v : a) v = -std::exp(v);
    return UploadF32(std::move(a), rows, cols);
  }

  Status BuildConv(const std::string& p, Model::Layer* L, int64_t channels) {
    TTC_ASSIGN_OR_RETURN(L->conv_w,
                         Upload({p + "conv1d.weight"}, {channels, 1, c_.d_conv}, Init::kConv));
    if (c_.conv_bias) {
      TTC_ASSIGN_OR_RETURN(L->conv_b, Upload({p + "conv1d.bias"}, {channels}, Init::kBias));
    }
    return Status::Ok();
  }

  Status BuildMamba1Mil(const std::string& lp, Model::Layer* L) {
    const std::string p = lp + "mamba.";
    const int64_t d = c_.hidden_size, di = c_.d_inner, dxb = c_.d_xb, R = c_.dt_rank,
                  N = c_.d_state;
    if (src_->Has(p + "in_proj.weight")) {  // fused format: rows z | x | B | C | dt
      TTC_ASSIGN_OR_RETURN(
          L->in_proj, Upload({p + "in_proj.weight"}, {2 * di + 2 * dxb + R, d}, Init::kLinear));
    } else {
      TTC_ASSIGN_OR_RETURN(
          L->in_proj,
          UploadParts({p + "in_proj_z.weight", p + "in_proj_x.weight", p + "B_proj.weight",
                       p + "C_proj.weight", p + "dt_proj_down.weight"},
                      {{di, d}, {dxb, d}, {dxb, d}, {di, d}, {R, d}}, Init::kLinear));
    }
    TTC_RETURN_IF_ERROR(BuildConv(p, L, di));
    TTC_ASSIGN_OR_RETURN(L->dt_w, Upload({p + "dt_proj.weight"}, {di, R}, Init::kLinear));
    // The reference adds dt_proj.bias twice (dt_proj, then the scan's delta_bias): architectures.md
    // §3.3.
    TTC_ASSIGN_OR_RETURN(auto bias, src_->GetF32(p + "dt_proj.bias", {di}, Init::kDtBias));
    for (float& v : bias) v *= 2.0f;
    TTC_ASSIGN_OR_RETURN(L->dt_b, UploadF32(std::move(bias), 1, di));
    TTC_ASSIGN_OR_RETURN(L->A, NegExp(p + "A_log", {di, N}, di, N));
    TTC_ASSIGN_OR_RETURN(L->D, Upload({p + "D"}, {di}, Init::kOne));
    TTC_ASSIGN_OR_RETURN(L->out_proj, Upload({p + "out_proj.weight"}, {d, di}, Init::kLinear));
    return Status::Ok();
  }

  Status BuildMamba1(const std::string& lp, Model::Layer* L) {
    const std::string p = lp + "mixer.";
    const int64_t d = c_.hidden_size, di = c_.d_inner, R = c_.dt_rank, N = c_.d_state;
    TTC_ASSIGN_OR_RETURN(L->in_proj, Upload({p + "in_proj.weight"}, {2 * di, d}, Init::kLinear));
    TTC_RETURN_IF_ERROR(BuildConv(p, L, di));
    TTC_ASSIGN_OR_RETURN(L->x_proj, Upload({p + "x_proj.weight"}, {R + 2 * N, di}, Init::kLinear));
    TTC_ASSIGN_OR_RETURN(L->dt_w, Upload({p + "dt_proj.weight"}, {di, R}, Init::kLinear));
    TTC_ASSIGN_OR_RETURN(auto bias, src_->GetF32(p + "dt_proj.bias", {di}, Init::kDtBias));
    TTC_ASSIGN_OR_RETURN(L->dt_b, UploadF32(std::move(bias), 1, di));
    TTC_ASSIGN_OR_RETURN(L->A, NegExp(p + "A_log", {di, N}, di, N));
    TTC_ASSIGN_OR_RETURN(L->D, Upload({p + "D"}, {di}, Init::kOne));
    TTC_ASSIGN_OR_RETURN(L->out_proj, Upload({p + "out_proj.weight"}, {d, di}, Init::kLinear));
    return Status::Ok();
  }

  Status BuildSsd(const std::string& lp, Model::Layer* L) {
    const std::string p = lp + "mixer.";
    const int64_t d = c_.hidden_size, di = c_.d_inner, H = c_.ssm_heads;
    const MixerKind kind = L->kind;
    TTC_ASSIGN_OR_RETURN(L->in_proj,
                         Upload({p + "in_proj.weight"}, {c_.in_proj_rows(kind), d}, Init::kLinear));
    TTC_RETURN_IF_ERROR(BuildConv(p, L, c_.conv_channels(kind)));
    TTC_ASSIGN_OR_RETURN(L->D, Upload({p + "D"}, {H}, Init::kOne));
    if (kind == MixerKind::kDiscreteMamba2) {
      TTC_ASSIGN_OR_RETURN(L->z_bias, Upload({p + "z_bias"}, {di}, Init::kBias));
    } else {
      TTC_ASSIGN_OR_RETURN(L->dt_bias, Upload({p + "dt_bias"}, {H}, Init::kDtBias));
      TTC_ASSIGN_OR_RETURN(L->A, NegExp(p + "A_log", {H}, 1, H));
      TTC_ASSIGN_OR_RETURN(L->norm_w, Upload({p + "norm.weight"}, {di}, Init::kNormOne));
    }
    TTC_ASSIGN_OR_RETURN(L->out_proj, Upload({p + "out_proj.weight"}, {d, di}, Init::kLinear));
    return Status::Ok();
  }

  Model* m_;
  TensorSource* src_;
  const ModelConfig& c_;
  std::optional<WeightDType> round_to_;
  int64_t params_ = 0;
};

std::string Model::Describe() const {
  std::map<std::string, int> kinds;
  for (MixerKind k : config_.layer_mixers) kinds[MixerKindName(k)]++;
  std::string mix;
  for (const auto& [k, n] : kinds) mix += fmt::format("{}{} x{}", mix.empty() ? "" : ", ", k, n);
  return fmt::format("{}: {} layers ({}), d {}, vocab {}, {:.1f} M params, {}",
                     ModelFamilyName(config_.family), config_.num_layers, mix, config_.hidden_size,
                     config_.vocab_size, parameter_count_ / 1e6, backend_->name());
}

Result<std::unique_ptr<StateCache>> Model::NewState(int num_slots) {
  return backend_->NewStateCache(config_, num_slots);
}

Status Model::Forward(StateCache* state, const BatchLayout& batch, std::span<const int32_t> tokens,
                      std::span<const int64_t> logit_rows, std::vector<float>* logits) {
  TTC_RETURN_IF_ERROR(ForwardLogits(state, batch, tokens, logit_rows, nullptr, 0));
  if (logits == nullptr) return Status::Ok();
  logits->resize(logit_rows.size() * static_cast<size_t>(config_.vocab_size));
  if (logits_) backend_->CopyToHost(*logits_, *logits);
  return backend_->StateHealth();
}

Status Model::CheckSampleArgs(std::span<const int64_t> logit_rows, const SamplingParams& params,
                              std::span<const SampleKey> keys) const {
  if (logit_rows.empty() || keys.empty() || keys.size() % logit_rows.size() != 0) {
    return InvalidArgument(
        "forward: {} logit rows and {} sampling keys (keys must be a non-zero multiple of the "
        "rows)",
        logit_rows.size(), keys.size());
  }
  return ValidateSamplingParams(params);
}

Status Model::ForwardSample(StateCache* state, const BatchLayout& batch,
                            std::span<const int32_t> tokens, std::span<const int64_t> logit_rows,
                            const SamplingParams& params, std::span<const SampleKey> keys,
                            std::span<int32_t> out) {
  if (out.size() != keys.size()) {
    return InvalidArgument("forward: {} sampling keys and {} outputs (one output per key)",
                           keys.size(), out.size());
  }
  TTC_RETURN_IF_ERROR(CheckSampleArgs(logit_rows, params, keys));
  if (!pending_draws_.empty()) {
    return FailedPrecondition("forward: {} pipelined draws are not collected yet",
                              pending_draws_.size());
  }
  TTC_RETURN_IF_ERROR(
      ForwardLogits(state, batch, tokens, logit_rows, &params, static_cast<int64_t>(keys.size())));
  backend_->SampleRows(*logits_, params, keys, out);
  last_async_draws_ = -1;
  return backend_->StateHealth();
}

Status Model::ForwardSampleAsync(StateCache* state, const BatchLayout& batch,
                                 std::span<const int32_t> tokens,
                                 std::span<const int64_t> prev_draws,
                                 std::span<const int64_t> logit_rows, const SamplingParams& params,
                                 std::span<const SampleKey> keys) {
  TTC_RETURN_IF_ERROR(CheckSampleArgs(logit_rows, params, keys));
  if (static_cast<int>(pending_draws_.size()) >= Backend::kMaxPendingDraws) {
    return FailedPrecondition("forward: {} pipelined draws are already pending (at most {})",
                              pending_draws_.size(), Backend::kMaxPendingDraws);
  }
  if (!prev_draws.empty()) {
    if (!tokens.empty())
      return InvalidArgument("forward: give either host tokens or previous draws, not both");
    if (last_async_draws_ < 0)
      return FailedPrecondition("forward: previous draws asked for, but there was no such call");
    for (size_t r = 0; r < prev_draws.size(); ++r) {
      if (prev_draws[r] < 0 || prev_draws[r] >= last_async_draws_) {
        return InvalidArgument("forward: row {} takes draw {} of a call that made {}", r,
                               prev_draws[r], last_async_draws_);
      }
    }
  }
  TTC_RETURN_IF_ERROR(ForwardLogits(state, batch, tokens, logit_rows, &params,
                                    static_cast<int64_t>(keys.size()), prev_draws));
  backend_->SampleRowsAsync(*logits_, params, keys);
  pending_draws_.push_back(static_cast<int64_t>(keys.size()));
  last_async_draws_ = static_cast<int64_t>(keys.size());
  return Status::Ok();
}

Status Model::CollectSample(std::span<int32_t> out) {
  if (pending_draws_.empty()) return FailedPrecondition("collect: no pipelined draws are pending");
  if (static_cast<int64_t>(out.size()) != pending_draws_.front()) {
    return InvalidArgument("collect: {} outputs for a call that made {} draws", out.size(),
                           pending_draws_.front());
  }
  backend_->CollectDraws(out);
  pending_draws_.pop_front();
  return backend_->StateHealth();
}

Status Model::ForwardLogits(StateCache* state, const BatchLayout& batch,
                            std::span<const int32_t> tokens, std::span<const int64_t> logit_rows,
                            const SamplingParams* sample, int64_t draws,
                            std::span<const int64_t> prev_draws) {
  logits_.reset();
  const int64_t M = batch.total_rows();
  const int64_t d = config_.hidden_size, V = config_.vocab_size;
  if (state == nullptr) return InvalidArgument("forward: no state cache");
  TTC_RETURN_IF_ERROR(backend_->StateHealth());
  if (M <= 0) return InvalidArgument("forward: empty batch");
  const bool from_draws = !prev_draws.empty();
  if (static_cast<int64_t>(from_draws ? prev_draws.size() : tokens.size()) != M) {
    return InvalidArgument("forward: {} tokens for a batch of {} rows",
                           from_draws ? prev_draws.size() : tokens.size(), M);
  }
  for (int64_t r = 0; !from_draws && r < M; ++r) {  // (draws are in the vocabulary)
    if (tokens[r] < 0 || tokens[r] >= V) {
      return InvalidArgument("forward: token id {} at row {} is outside the vocabulary (size {})",
                             tokens[r], r, V);
    }
  }
  std::set<int> slots;
  for (const auto& s : batch.seqs) {
    if (s.slot < 0 || s.slot >= state->num_slots()) {
      return InvalidArgument("forward: slot {} is outside the state cache ({} slots)", s.slot,
                             state->num_slots());
    }
    if (!slots.insert(s.slot).second)
      return InvalidArgument("forward: slot {} appears twice in a batch", s.slot);
    if (s.num_tokens <= 0)
      return InvalidArgument("forward: a sequence with {} tokens", s.num_tokens);
    if (s.start_pos != state->length(s.slot)) {
      return InvalidArgument(
          "forward: sequence in slot {} starts at position {} but the slot holds {} tokens", s.slot,
          s.start_pos, state->length(s.slot));
    }
  }
  for (int64_t r : logit_rows) {
    if (r < 0 || r >= M)
      return InvalidArgument("forward: logit row {} outside the batch of {} rows", r, M);
  }

  Backend& be = *backend_;
  be.BeginForward(state, batch, sample, draws, from_draws);
  // Scratch activations by width, reused across layers.
  std::map<int64_t, std::unique_ptr<Activation>> scratch[3];
  auto buf = [&](int which, int64_t cols) -> Activation* {
    auto& slot = scratch[which][cols];
    if (!slot) slot = be.NewActivation(M, cols);
    return slot.get();
  };
  auto x = be.NewActivation(M, d);
  auto h = be.NewActivation(M, d);
  if (from_draws) {
    be.EmbedDraws(*embed_, prev_draws, x.get());
  } else {
    be.Embed(*embed_, tokens, x.get());
  }
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& L = *layers_[li];
    const int layer = static_cast<int>(li);
    Activation* proj = buf(0, L.in_proj->rows());
    be.RmsNormMatMul(*x, *L.norm1, config_.norm_eps, *L.in_proj, h.get(), proj, false);
    switch (L.kind) {
      case MixerKind::kAttention: {
        Activation* att = buf(1, config_.num_heads * config_.head_dim);
        be.Attention(state, layer, *proj, batch, attention_spec_, att);
        be.MatMul(*att, *L.out_proj, x.get(), true);
        break;
      }
      case MixerKind::kMamba1Mil:
      case MixerKind::kMamba1: {
        Mamba1Spec spec{L.kind,         config_.d_inner, config_.d_state,
                        config_.d_conv, config_.dt_rank, config_.d_xb};
        Mamba1Weights w{L.conv_w.get(), L.conv_b.get(), L.A.get(),     L.D.get(),
                        L.dt_w.get(),   L.dt_b.get(),   L.x_proj.get()};
        Activation* y = buf(1, config_.d_inner);
        be.Mamba1(state, layer, *proj, batch, spec, w, y);
        be.MatMul(*y, *L.out_proj, x.get(), true);
        break;
      }
      case MixerKind::kDiscreteMamba2:
      case MixerKind::kMamba2: {
        SsdSpec spec{L.kind,
                     config_.d_inner,
                     config_.d_state,
                     config_.d_conv,
                     config_.ssm_heads,
                     config_.ssm_head_dim,
                     config_.ssm_groups,
                     config_.norm_eps,
                     config_.time_step_min,
                     config_.time_step_max};
        SsdWeights w{L.conv_w.get(),  L.conv_b.get(), L.D.get(),     L.z_bias.get(),
                     L.dt_bias.get(), L.A.get(),      L.norm_w.get()};
        Activation* y = buf(1, config_.d_inner);
        be.Ssd(state, layer, *proj, batch, spec, w, y);
        be.MatMul(*y, *L.out_proj, x.get(), true);
        break;
      }
    }
    if (L.gate_up) {
      Activation* gu = buf(2, L.gate_up->rows());
      be.RmsNormMatMul(*x, *L.norm2, config_.norm_eps, *L.gate_up, h.get(), gu, false);
      be.SwiGluMatMul(*gu, *L.down, buf(1, config_.intermediate_size), x.get(), true);
    }
  }
  for (const auto& s : batch.seqs) state->Advance(s.slot, s.num_tokens);
  if (logit_rows.empty()) return Status::Ok();
  const int64_t R = static_cast<int64_t>(logit_rows.size());
  auto sel = be.NewActivation(R, d);
  auto normed = be.NewActivation(R, d);
  be.GatherRows(*x, logit_rows, sel.get());
  logits_ = be.NewActivation(R, V);
  be.RmsNormMatMul(*sel, *final_norm_, config_.final_norm_eps, head_ ? *head_ : *embed_,
                   normed.get(), logits_.get(), false);
  return Status::Ok();
}

Status AttachTokenizer(Model& model, const std::filesystem::path& dir,
                       const ModelOptions& options) {
  std::error_code ec;
  if (!options.load_tokenizer || !std::filesystem::exists(dir / "tokenizer.json", ec)) {
    return Status::Ok();
  }
  auto tok = Tokenizer::Load(dir / "tokenizer.json");
  if (!tok.ok()) return tok.status().WithContext(dir.string());
  model.tokenizer_ = std::make_unique<Tokenizer>(std::move(tok).value());
  // Without stop ids in the config, fall back to the tokenizer's end-of-text / end-of-turn tokens.
  if (model.config_.stop_ids.empty()) {
    for (const char* name : {"<|end_of_text|>", "<|eot_id|>"}) {
      auto id = model.tokenizer_->TokenToId(name);
      if (id && *id < model.config_.vocab_size) model.config_.stop_ids.push_back(*id);
    }
  }
  return Status::Ok();
}

namespace {
BackendOptions BackendOptionsOf(const ModelOptions& o) {
  return {o.backend, o.threads, o.device, o.state_dtype};
}
// The CUDA backend's GEMMs take bf16 matrices (engine/cuda/cuda_backend.cc).
Status CheckWeightDType(const ModelOptions& o) {
  if (o.backend == BackendKind::kCuda && o.weight_dtype && *o.weight_dtype != WeightDType::kBf16) {
    return InvalidArgument(
        "weight dtype {} needs the CPU backend: the CUDA backend multiplies bf16 weight matrices",
        WeightDTypeName(*o.weight_dtype));
  }
  return Status::Ok();
}
}  // namespace

std::string_view WeightDTypeName(WeightDType t) {
  switch (t) {
    case WeightDType::kF32:
      return "f32";
    case WeightDType::kBf16:
      return "bf16";
    case WeightDType::kF16:
      return "f16";
  }
  return "?";
}

Result<WeightDType> ParseWeightDType(std::string_view name) {
  for (WeightDType t : {WeightDType::kF32, WeightDType::kBf16, WeightDType::kF16}) {
    if (name == WeightDTypeName(t)) return t;
  }
  return InvalidArgument("unknown weight dtype '{}' (expected bf16, f16 or f32)", name);
}

Result<std::unique_ptr<Model>> LoadModel(const std::filesystem::path& dir,
                                         const ModelOptions& options) {
  TTC_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  if (options.rope_override) config.rope.type = *options.rope_override;
  TTC_RETURN_IF_ERROR(CheckWeightDType(options));
  TTC_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(dir));
  CheckpointSource src(std::move(ckpt));
  TTC_ASSIGN_OR_RETURN(auto backend, CreateBackend(BackendOptionsOf(options)));
  std::unique_ptr<Model> model(new Model());
  model->config_ = config;
  model->dir_ = dir;
  model->backend_ = std::move(backend);
  ModelBuilder builder(model.get(), &src, options.weight_dtype);
  TTC_RETURN_IF_ERROR(builder.Build());
  TTC_RETURN_IF_ERROR(AttachTokenizer(*model, dir, options));
  return model;
}

Result<std::unique_ptr<Model>> RandomModel(const ModelConfig& config_in, uint64_t seed,
                                           const ModelOptions& options) {
  ModelConfig config = config_in;
  if (options.rope_override) config.rope.type = *options.rope_override;
  TTC_RETURN_IF_ERROR(ValidateModelConfig(config));
  TTC_RETURN_IF_ERROR(CheckWeightDType(options));
  RandomSource src(seed);
  TTC_ASSIGN_OR_RETURN(auto backend, CreateBackend(BackendOptionsOf(options)));
  std::unique_ptr<Model> model(new Model());
  model->config_ = config;
  model->backend_ = std::move(backend);
  ModelBuilder builder(model.get(), &src, options.weight_dtype);
  TTC_RETURN_IF_ERROR(builder.Build());
  return model;
}

Result<std::unique_ptr<Model>> RandomModelFromDir(const std::filesystem::path& dir, uint64_t seed,
                                                  const ModelOptions& options) {
  TTC_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  TTC_ASSIGN_OR_RETURN(auto model, RandomModel(config, seed, options));
  model->dir_ = dir;
  TTC_RETURN_IF_ERROR(AttachTokenizer(*model, dir, options));
  return model;
}

}  // namespace ttc::engine
