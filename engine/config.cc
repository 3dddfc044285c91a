#include "engine/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

namespace ttc::engine {

namespace {

using nlohmann::json;

const char* JsonTypeName(const json& j) { return j.type_name(); }

// Typed field access with errors that name the file and the field.
class Fields {
 public:
  Fields(const json& j, std::string file) : j_(&j), file_(std::move(file)) {}

  bool Has(const std::string& key) const { return j_->contains(key) && !j_->at(key).is_null(); }
  const json& Raw(const std::string& key) const { return j_->at(key); }
  const std::string& file() const { return file_; }

  Result<int64_t> Int(const std::string& key) const {
    if (!Has(key)) return Corrupt("{}: field '{}' is missing", file_, key);
    return IntValue(key, j_->at(key));
  }
  Result<int64_t> Int(const std::string& key, int64_t fallback) const {
    if (!Has(key)) return fallback;
    return IntValue(key, j_->at(key));
  }
  Result<double> Double(const std::string& key) const {
    if (!Has(key)) return Corrupt("{}: field '{}' is missing", file_, key);
    return DoubleValue(key, j_->at(key));
  }
  Result<double> Double(const std::string& key, double fallback) const {
    if (!Has(key)) return fallback;
    return DoubleValue(key, j_->at(key));
  }
  Result<bool> Bool(const std::string& key, bool fallback) const {
    if (!Has(key)) return fallback;
    const json& v = j_->at(key);
    if (!v.is_boolean()) return TypeError(key, "a boolean", v);
    return v.get<bool>();
  }
  Result<std::string> String(const std::string& key, const std::string& fallback) const {
    if (!Has(key)) return fallback;
    const json& v = j_->at(key);
    if (!v.is_string()) return TypeError(key, "a string", v);
    return v.get<std::string>();
  }
  Result<Fields> Object(const std::string& key) const {
    if (!Has(key)) return Fields(EmptyObject(), file_ + " " + key);
    const json& v = j_->at(key);
    if (!v.is_object()) return TypeError(key, "an object", v);
    return Fields(v, file_ + " " + key);
  }
  // An int or a list of ints (eos_token_id).
  Result<std::vector<int32_t>> IntOrList(const std::string& key) const {
    std::vector<int32_t> out;
    if (!Has(key)) return out;
    const json& v = j_->at(key);
    if (v.is_number_integer()) {
      out.push_back(static_cast<int32_t>(v.get<int64_t>()));
      return out;
    }
    if (!v.is_array()) return TypeError(key, "an integer or a list of integers", v);
    for (const json& e : v) {
      if (!e.is_number_integer()) return TypeError(key, "a list of integers", v);
      out.push_back(static_cast<int32_t>(e.get<int64_t>()));
    }
    return out;
  }

 private:
  static const json& EmptyObject() {
    static const json kEmpty = json::object();
    return kEmpty;
  }
  Status TypeError(const std::string& key, const char* expected, const json& v) const {
    return Corrupt("{}: field '{}' must be {}, found {}", file_, key, expected, JsonTypeName(v));
  }
  Result<int64_t> IntValue(const std::string& key, const json& v) const {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::floor(d) == d && std::fabs(d) < 1e15) return static_cast<int64_t>(d);
    }
    return TypeError(key, "an integer", v);
  }
  Result<double> DoubleValue(const std::string& key, const json& v) const {
    if (v.is_number()) return v.get<double>();
    return TypeError(key, "a number", v);
  }

  const json* j_;
  std::string file_;
};

Result<json> ParseJson(const std::string& text, const std::string& file) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt("{}: malformed JSON", file);
  if (!j.is_object()) return Corrupt("{}: expected a JSON object at the top level", file);
  return j;
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError("{}: read failed", path.string());
  return ss.str();
}

Status ParseRope(const Fields& f, ModelConfig* c) {
  // transformers >= 4.x legacy keys (rope_theta + rope_scaling) or the newer rope_parameters
  // object.
  std::optional<Fields> scaling;
  double theta = 10000.0;
  if (f.Has("rope_parameters")) {
    TTC_ASSIGN_OR_RETURN(Fields p, f.Object("rope_parameters"));
    TTC_ASSIGN_OR_RETURN(theta, p.Double("rope_theta", f.Has("rope_theta") ? 0.0 : 10000.0));
    if (theta == 0.0) {
      TTC_ASSIGN_OR_RETURN(theta, f.Double("rope_theta"));
    }
    scaling = p;
  } else {
    TTC_ASSIGN_OR_RETURN(theta, f.Double("rope_theta", 10000.0));
    if (f.Has("rope_scaling")) {
      TTC_ASSIGN_OR_RETURN(Fields s, f.Object("rope_scaling"));
      scaling = s;
    }
  }
  c->rope = RopeConfig{};
  c->rope.theta = theta;
  if (!scaling) return Status::Ok();
  TTC_ASSIGN_OR_RETURN(std::string type, scaling->String("rope_type", ""));
  if (type.empty()) {
    TTC_ASSIGN_OR_RETURN(type, scaling->String("type", "default"));
  }
  if (type == "default") return Status::Ok();
  if (type != "llama3") {
    return Unimplemented("{}: rope_type '{}' is not supported (llama3 or default)", scaling->file(),
                         type);
  }
  c->rope.type = RopeType::kLlama3;
  TTC_ASSIGN_OR_RETURN(c->rope.factor, scaling->Double("factor"));
  TTC_ASSIGN_OR_RETURN(c->rope.low_freq_factor, scaling->Double("low_freq_factor"));
  TTC_ASSIGN_OR_RETURN(c->rope.high_freq_factor, scaling->Double("high_freq_factor"));
  TTC_ASSIGN_OR_RETURN(c->rope.original_max_position,
                       scaling->Double("original_max_position_embeddings"));
  if (c->rope.factor <= 0 || c->rope.high_freq_factor <= c->rope.low_freq_factor ||
      c->rope.original_max_position <= 0) {
    return Corrupt("{}: inconsistent llama3 rope scaling parameters", scaling->file());
  }
  return Status::Ok();
}

// Llama dims from a HF LlamaForCausalLM config.json (also the MambaInLlama teacher config).
Status ParseLlama(const Fields& f, ModelConfig* c) {
  TTC_ASSIGN_OR_RETURN(c->vocab_size, f.Int("vocab_size"));
  TTC_ASSIGN_OR_RETURN(c->hidden_size, f.Int("hidden_size"));
  TTC_ASSIGN_OR_RETURN(c->num_layers, f.Int("num_hidden_layers"));
  TTC_ASSIGN_OR_RETURN(c->intermediate_size, f.Int("intermediate_size"));
  TTC_ASSIGN_OR_RETURN(c->num_heads, f.Int("num_attention_heads"));
  TTC_ASSIGN_OR_RETURN(c->num_kv_heads, f.Int("num_key_value_heads", c->num_heads));
  if (c->num_heads <= 0) return Corrupt("{}: num_attention_heads must be positive", f.file());
  TTC_ASSIGN_OR_RETURN(c->head_dim, f.Int("head_dim", c->hidden_size / c->num_heads));
  TTC_ASSIGN_OR_RETURN(double eps, f.Double("rms_norm_eps", 1e-6));
  c->norm_eps = c->final_norm_eps = static_cast<float>(eps);
  // LlamaConfig's default is untied; every Llama 3.2 config states true explicitly.
  TTC_ASSIGN_OR_RETURN(c->tie_embeddings, f.Bool("tie_word_embeddings", false));
  TTC_ASSIGN_OR_RETURN(bool attention_bias, f.Bool("attention_bias", false));
  TTC_ASSIGN_OR_RETURN(bool mlp_bias, f.Bool("mlp_bias", false));
  if (attention_bias) return Unimplemented("{}: attention_bias = true is not supported", f.file());
  if (mlp_bias) return Unimplemented("{}: mlp_bias = true is not supported", f.file());
  TTC_ASSIGN_OR_RETURN(std::string act, f.String("hidden_act", "silu"));
  if (act != "silu")
    return Unimplemented("{}: hidden_act '{}' is not supported (silu)", f.file(), act);
  TTC_RETURN_IF_ERROR(ParseRope(f, c));
  c->layer_mixers.assign(static_cast<size_t>(std::max<int64_t>(c->num_layers, 0)),
                         MixerKind::kAttention);
  return Status::Ok();
}

Status ParseMambaInLlama(const Fields& m, ModelConfig* c) {
  c->family = ModelFamily::kMambaInLlama;
  TTC_ASSIGN_OR_RETURN(int64_t d_model, m.Int("d_model"));
  if (d_model != c->hidden_size) {
    return Corrupt("mamba_config.json: d_model {} differs from config.json hidden_size {}", d_model,
                   c->hidden_size);
  }
  TTC_ASSIGN_OR_RETURN(int64_t n_layer, m.Int("n_layer"));
  if (n_layer != c->num_layers) {
    return Corrupt("mamba_config.json: n_layer {} differs from config.json num_hidden_layers {}",
                   n_layer, c->num_layers);
  }
  TTC_ASSIGN_OR_RETURN(Fields ssm, m.Object("ssm_cfg"));
  TTC_ASSIGN_OR_RETURN(int64_t expand, ssm.Int("expand", 2));
  TTC_ASSIGN_OR_RETURN(c->d_state, ssm.Int("d_state", 16));
  TTC_ASSIGN_OR_RETURN(c->d_conv, ssm.Int("d_conv", 4));
  TTC_ASSIGN_OR_RETURN(c->conv_bias, ssm.Bool("conv_bias", true));
  TTC_ASSIGN_OR_RETURN(bool bias, ssm.Bool("bias", false));
  if (bias) return Unimplemented("mamba_config.json: ssm_cfg.bias = true is not supported");
  c->dt_rank = (d_model + 15) / 16;
  if (ssm.Has("dt_rank")) {
    const auto& v = ssm.Raw("dt_rank");
    if (!(v.is_string() && v.get<std::string>() == "auto")) {
      TTC_ASSIGN_OR_RETURN(c->dt_rank, ssm.Int("dt_rank"));
    }
  }
  TTC_ASSIGN_OR_RETURN(c->d_inner, m.Int("d_inner", expand * d_model));
  TTC_ASSIGN_OR_RETURN(c->d_xb, m.Int("d_xb", c->num_kv_heads * c->head_dim));
  TTC_ASSIGN_OR_RETURN(c->intermediate_size, m.Int("intermediate_size", c->intermediate_size));
  TTC_ASSIGN_OR_RETURN(double eps, m.Double("rms_norm_eps", c->norm_eps));
  c->norm_eps = c->final_norm_eps = static_cast<float>(eps);
  if (!m.Has("attn_layers")) return Corrupt("mamba_config.json: field 'attn_layers' is missing");
  const auto& al = m.Raw("attn_layers");
  if (!al.is_array())
    return Corrupt("mamba_config.json: field 'attn_layers' must be a list of integers");
  c->layer_mixers.assign(static_cast<size_t>(c->num_layers), MixerKind::kMamba1Mil);
  for (const auto& e : al) {
    if (!e.is_number_integer()) {
      return Corrupt("mamba_config.json: field 'attn_layers' must be a list of integers");
    }
    int64_t i = e.get<int64_t>();
    if (i < 0 || i >= c->num_layers) {
      return Corrupt("mamba_config.json: attn_layers entry {} is outside 0..{}", i,
                     c->num_layers - 1);
    }
    c->layer_mixers[static_cast<size_t>(i)] = MixerKind::kAttention;
  }
  return Status::Ok();
}

Status ParseLlamba(const Fields& f, ModelConfig* c) {
  c->family = ModelFamily::kLlamba;
  TTC_ASSIGN_OR_RETURN(c->vocab_size, f.Int("vocab_size"));
  TTC_ASSIGN_OR_RETURN(int64_t pad, f.Int("pad_vocab_size_multiple", 1));
  if (pad > 1 && c->vocab_size % pad != 0) c->vocab_size += pad - c->vocab_size % pad;
  TTC_ASSIGN_OR_RETURN(c->hidden_size, f.Int("d_model"));
  TTC_ASSIGN_OR_RETURN(c->num_layers, f.Int("n_layer"));
  TTC_ASSIGN_OR_RETURN(c->tie_embeddings, f.Bool("tie_embeddings", true));
  TTC_ASSIGN_OR_RETURN(bool lm_head_bias, f.Bool("lm_head_bias", false));
  if (lm_head_bias) return Unimplemented("config.json: lm_head_bias = true is not supported");
  TTC_ASSIGN_OR_RETURN(double eps, f.Double("norm_epsilon", 1e-5));
  c->final_norm_eps = static_cast<float>(eps);
  c->norm_eps = 1e-5f;  // Block norms hard-code 1e-5 upstream (llamba.py Block).
  TTC_ASSIGN_OR_RETURN(Fields mlp, f.Object("mlp_cfg"));
  TTC_ASSIGN_OR_RETURN(c->intermediate_size, mlp.Int("intermediate_size"));
  TTC_ASSIGN_OR_RETURN(bool mlp_bias, mlp.Bool("bias", false));
  if (mlp_bias) return Unimplemented("config.json: mlp_cfg.bias = true is not supported");
  TTC_ASSIGN_OR_RETURN(std::string act, mlp.String("act_fn", "silu"));
  if (act != "silu") return Unimplemented("config.json: mlp_cfg.act_fn '{}' is not supported", act);
  TTC_ASSIGN_OR_RETURN(Fields ssm, f.Object("ssm_cfg"));
  TTC_ASSIGN_OR_RETURN(c->d_state, ssm.Int("d_state"));
  TTC_ASSIGN_OR_RETURN(c->ssm_heads, ssm.Int("n_v_heads"));
  TTC_ASSIGN_OR_RETURN(c->ssm_groups, ssm.Int("n_qk_heads"));
  TTC_ASSIGN_OR_RETURN(int64_t expand, ssm.Int("expand", 1));
  TTC_ASSIGN_OR_RETURN(c->d_conv, ssm.Int("d_conv", 4));
  TTC_ASSIGN_OR_RETURN(bool bias, ssm.Bool("bias", false));
  if (bias) return Unimplemented("config.json: ssm_cfg.bias = true is not supported");
  TTC_ASSIGN_OR_RETURN(std::string activation, ssm.String("activation", "identity"));
  if (activation != "identity") {
    return Unimplemented("config.json: ssm_cfg.activation '{}' is not supported (identity)",
                         activation);
  }
  c->d_inner = expand * c->hidden_size;
  if (c->ssm_heads <= 0) return Corrupt("config.json: ssm_cfg.n_v_heads must be positive");
  c->ssm_head_dim = c->d_inner / c->ssm_heads;
  c->layer_mixers.assign(static_cast<size_t>(std::max<int64_t>(c->num_layers, 0)),
                         MixerKind::kDiscreteMamba2);
  return Status::Ok();
}

Status ParseHfMamba(const Fields& f, ModelConfig* c, bool mamba2) {
  c->family = mamba2 ? ModelFamily::kMamba2 : ModelFamily::kMamba;
  TTC_ASSIGN_OR_RETURN(c->vocab_size, f.Int("vocab_size"));
  TTC_ASSIGN_OR_RETURN(c->hidden_size, f.Int("hidden_size"));
  TTC_ASSIGN_OR_RETURN(c->num_layers, f.Int("num_hidden_layers"));
  TTC_ASSIGN_OR_RETURN(c->d_state, f.Int("state_size"));
  TTC_ASSIGN_OR_RETURN(int64_t expand, f.Int("expand", 2));
  TTC_ASSIGN_OR_RETURN(c->d_conv, f.Int("conv_kernel", 4));
  TTC_ASSIGN_OR_RETURN(c->conv_bias, f.Bool("use_conv_bias", true));
  TTC_ASSIGN_OR_RETURN(bool use_bias, f.Bool("use_bias", false));
  if (use_bias) return Unimplemented("config.json: use_bias = true is not supported");
  TTC_ASSIGN_OR_RETURN(double eps, f.Double("layer_norm_epsilon", 1e-5));
  c->norm_eps = c->final_norm_eps = static_cast<float>(eps);
  TTC_ASSIGN_OR_RETURN(std::string act, f.String("hidden_act", "silu"));
  if (act != "silu")
    return Unimplemented("config.json: hidden_act '{}' is not supported (silu)", act);
  c->intermediate_size = 0;  // No MLP in HF Mamba blocks.
  c->dt_rank = (c->hidden_size + 15) / 16;
  if (f.Has("time_step_rank")) {
    const auto& v = f.Raw("time_step_rank");
    if (!(v.is_string() && v.get<std::string>() == "auto")) {
      TTC_ASSIGN_OR_RETURN(c->dt_rank, f.Int("time_step_rank"));
    }
  }
  if (!mamba2) {
    TTC_ASSIGN_OR_RETURN(c->d_inner, f.Int("intermediate_size", expand * c->hidden_size));
    TTC_ASSIGN_OR_RETURN(c->tie_embeddings, f.Bool("tie_word_embeddings", true));
    c->layer_mixers.assign(static_cast<size_t>(std::max<int64_t>(c->num_layers, 0)),
                           MixerKind::kMamba1);
    return Status::Ok();
  }
  c->d_inner = expand * c->hidden_size;
  TTC_ASSIGN_OR_RETURN(c->ssm_heads, f.Int("num_heads"));
  TTC_ASSIGN_OR_RETURN(c->ssm_head_dim, f.Int("head_dim"));
  TTC_ASSIGN_OR_RETURN(c->ssm_groups, f.Int("n_groups", 1));
  TTC_ASSIGN_OR_RETURN(c->tie_embeddings, f.Bool("tie_word_embeddings", false));
  TTC_ASSIGN_OR_RETURN(bool rms_norm, f.Bool("rms_norm", true));
  if (!rms_norm) return Unimplemented("config.json: rms_norm = false is not supported");
  if (c->ssm_heads * c->ssm_head_dim != c->d_inner) {
    return Corrupt("config.json: num_heads {} x head_dim {} != expand x hidden_size {}",
                   c->ssm_heads, c->ssm_head_dim, c->d_inner);
  }
  if (f.Has("time_step_limit")) {
    const auto& v = f.Raw("time_step_limit");
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() ||
        !(v[1].is_number() || v[1].is_null() || v[1].is_string())) {
      return Corrupt("config.json: field 'time_step_limit' must be a pair of numbers");
    }
    c->time_step_min = v[0].get<float>();
    c->time_step_max = v[1].is_number() ? v[1].get<float>() : 0.0f;
    if (std::isinf(c->time_step_max)) c->time_step_max = 0.0f;
  }
  c->layer_mixers.assign(static_cast<size_t>(std::max<int64_t>(c->num_layers, 0)),
                         MixerKind::kMamba2);
  return Status::Ok();
}

}  // namespace

const char* ModelFamilyName(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama:
      return "llama";
    case ModelFamily::kMambaInLlama:
      return "mambainllama";
    case ModelFamily::kLlamba:
      return "llamba";
    case ModelFamily::kMamba:
      return "mamba";
    case ModelFamily::kMamba2:
      return "mamba2";
  }
  return "unknown";
}

const char* MixerKindName(MixerKind kind) {
  switch (kind) {
    case MixerKind::kAttention:
      return "attention";
    case MixerKind::kMamba1Mil:
      return "mamba1_mil";
    case MixerKind::kDiscreteMamba2:
      return "discrete_mamba2";
    case MixerKind::kMamba1:
      return "mamba1";
    case MixerKind::kMamba2:
      return "mamba2";
  }
  return "unknown";
}

const char* RopeTypeName(RopeType type) { return type == RopeType::kLlama3 ? "llama3" : "plain"; }

int64_t ModelConfig::num_layers_of(MixerKind kind) const {
  int64_t n = 0;
  for (MixerKind k : layer_mixers) n += (k == kind);
  return n;
}

int64_t ModelConfig::conv_channels(MixerKind kind) const {
  switch (kind) {
    case MixerKind::kAttention:
      return 0;
    case MixerKind::kMamba1Mil:
    case MixerKind::kMamba1:
      return d_inner;
    case MixerKind::kDiscreteMamba2:
    case MixerKind::kMamba2:
      return d_inner + 2 * ssm_groups * d_state;
  }
  return 0;
}

int64_t ModelConfig::in_proj_rows(MixerKind kind) const {
  switch (kind) {
    case MixerKind::kAttention:
      return (num_heads + 2 * num_kv_heads) * head_dim;
    case MixerKind::kMamba1Mil:
      return 2 * d_inner + 2 * d_xb + dt_rank;  // z | x | B | C | dt
    case MixerKind::kMamba1:
      return 2 * d_inner;             // x | z
    case MixerKind::kDiscreteMamba2:  // xBC | z | A_log
    case MixerKind::kMamba2:          // z | xBC | dt
      return 2 * d_inner + 2 * ssm_groups * d_state + ssm_heads;
  }
  return 0;
}

Status ValidateModelConfig(const ModelConfig& c) {
  auto positive = [](int64_t v, const char* what) -> Status {
    if (v <= 0) return Corrupt("config: {} must be positive, found {}", what, v);
    return Status::Ok();
  };
  TTC_RETURN_IF_ERROR(positive(c.vocab_size, "vocab_size"));
  TTC_RETURN_IF_ERROR(positive(c.hidden_size, "hidden_size"));
  TTC_RETURN_IF_ERROR(positive(c.num_layers, "the number of layers"));
  if (c.intermediate_size < 0) return Corrupt("config: intermediate_size must not be negative");
  if (static_cast<int64_t>(c.layer_mixers.size()) != c.num_layers) {
    return Internal("config: {} layer mixers for {} layers", c.layer_mixers.size(), c.num_layers);
  }
  if (!(c.norm_eps > 0) || !(c.final_norm_eps > 0))
    return Corrupt("config: norm epsilon must be positive");
  // Sizes above this cannot be real models and would overflow index arithmetic downstream.
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  for (int64_t v :
       {c.vocab_size, c.hidden_size, c.num_layers, c.intermediate_size, c.d_inner, c.d_state,
        c.num_heads, c.num_kv_heads, c.head_dim, c.ssm_heads, c.ssm_head_dim}) {
    if (v > kMaxDim) return Corrupt("config: a dimension ({}) is implausibly large", v);
  }
  if (c.num_layers_of(MixerKind::kAttention) > 0) {
    TTC_RETURN_IF_ERROR(positive(c.num_heads, "num_attention_heads"));
    TTC_RETURN_IF_ERROR(positive(c.num_kv_heads, "num_key_value_heads"));
    TTC_RETURN_IF_ERROR(positive(c.head_dim, "head_dim"));
    if (c.num_heads % c.num_kv_heads != 0) {
      return Corrupt("config: num_attention_heads {} is not a multiple of num_key_value_heads {}",
                     c.num_heads, c.num_kv_heads);
    }
    if (c.head_dim % 2 != 0)
      return Corrupt("config: head_dim {} must be even for RoPE", c.head_dim);
    if (!(c.rope.theta > 0)) return Corrupt("config: rope_theta must be positive");
  }
  bool mamba1 = c.num_layers_of(MixerKind::kMamba1Mil) + c.num_layers_of(MixerKind::kMamba1) > 0;
  bool ssd = c.num_layers_of(MixerKind::kDiscreteMamba2) + c.num_layers_of(MixerKind::kMamba2) > 0;
  if (mamba1 || ssd) {
    TTC_RETURN_IF_ERROR(positive(c.d_inner, "d_inner"));
    TTC_RETURN_IF_ERROR(positive(c.d_state, "d_state"));
    TTC_RETURN_IF_ERROR(positive(c.d_conv, "d_conv"));
    if (c.d_conv > 64) return Corrupt("config: d_conv {} is implausibly large", c.d_conv);
  }
  if (mamba1) TTC_RETURN_IF_ERROR(positive(c.dt_rank, "dt_rank"));
  if (c.num_layers_of(MixerKind::kMamba1Mil) > 0) {
    TTC_RETURN_IF_ERROR(positive(c.d_xb, "d_xb"));
    if (c.d_xb % c.d_state != 0 || c.d_inner % c.d_xb != 0) {
      return Corrupt("config: d_xb {} must be a multiple of d_state {} and divide d_inner {}",
                     c.d_xb, c.d_state, c.d_inner);
    }
  }
  if (ssd) {
    TTC_RETURN_IF_ERROR(positive(c.ssm_heads, "ssm heads"));
    TTC_RETURN_IF_ERROR(positive(c.ssm_groups, "ssm groups"));
    TTC_RETURN_IF_ERROR(positive(c.ssm_head_dim, "ssm head dim"));
    if (c.ssm_heads * c.ssm_head_dim != c.d_inner || c.ssm_heads % c.ssm_groups != 0) {
      return Corrupt(
          "config: ssm heads {} x head dim {} must equal d_inner {} and heads divide into {} "
          "groups",
          c.ssm_heads, c.ssm_head_dim, c.d_inner, c.ssm_groups);
    }
  }
  for (int32_t id : c.stop_ids) {
    if (id < 0 || id >= c.vocab_size) {
      return Corrupt("config: stop token id {} is outside the vocabulary (size {})", id,
                     c.vocab_size);
    }
  }
  return Status::Ok();
}

Result<ModelConfig> ParseModelConfig(const std::string& config_json,
                                     const std::string& mamba_config_json,
                                     const std::string& generation_config_json) {
  TTC_ASSIGN_OR_RETURN(json j, ParseJson(config_json, "config.json"));
  Fields f(j, "config.json");
  ModelConfig c;
  TTC_ASSIGN_OR_RETURN(std::string model_type, f.String("model_type", ""));
  std::string arch;
  if (f.Has("architectures")) {
    const auto& a = f.Raw("architectures");
    if (!a.is_array() || a.empty() || !a[0].is_string()) {
      return Corrupt("config.json: field 'architectures' must be a non-empty list of strings");
    }
    arch = a[0].get<std::string>();
  }
  c.architecture = arch.empty() ? model_type : arch;

  if (!mamba_config_json.empty()) {
    if (arch != "LlamaForCausalLM" && model_type != "llama") {
      return Unimplemented(
          "config.json: mamba_config.json present but the teacher architecture is '{}'",
          c.architecture);
    }
    TTC_RETURN_IF_ERROR(ParseLlama(f, &c));
    TTC_ASSIGN_OR_RETURN(json mj, ParseJson(mamba_config_json, "mamba_config.json"));
    TTC_RETURN_IF_ERROR(ParseMambaInLlama(Fields(mj, "mamba_config.json"), &c));
  } else if (model_type == "llamba") {
    TTC_RETURN_IF_ERROR(ParseLlamba(f, &c));
  } else if (arch == "MambaForCausalLM" || (arch.empty() && model_type == "mamba")) {
    TTC_RETURN_IF_ERROR(ParseHfMamba(f, &c, /*mamba2=*/false));
  } else if (arch == "Mamba2ForCausalLM" || (arch.empty() && model_type == "mamba2")) {
    TTC_RETURN_IF_ERROR(ParseHfMamba(f, &c, /*mamba2=*/true));
  } else if (arch == "LlamaForCausalLM" || (arch.empty() && model_type == "llama")) {
    c.family = ModelFamily::kLlama;
    TTC_RETURN_IF_ERROR(ParseLlama(f, &c));
  } else {
    return Unimplemented(
        "config.json: unknown architecture '{}' (model_type '{}'); supported: LlamaForCausalLM (+ "
        "mamba_config.json for MambaInLlama), llamba, MambaForCausalLM, Mamba2ForCausalLM",
        arch, model_type);
  }

  TTC_ASSIGN_OR_RETURN(int64_t bos, f.Int("bos_token_id", -1));
  c.bos_id = static_cast<int32_t>(bos);
  TTC_ASSIGN_OR_RETURN(c.stop_ids, f.IntOrList("eos_token_id"));
  if (!generation_config_json.empty()) {
    TTC_ASSIGN_OR_RETURN(json gj, ParseJson(generation_config_json, "generation_config.json"));
    Fields g(gj, "generation_config.json");
    TTC_ASSIGN_OR_RETURN(auto stops, g.IntOrList("eos_token_id"));
    if (!stops.empty()) c.stop_ids = stops;
    if (g.Has("bos_token_id")) {
      TTC_ASSIGN_OR_RETURN(bos, g.Int("bos_token_id"));
      c.bos_id = static_cast<int32_t>(bos);
    }
  }
  if (c.stop_ids.empty() && c.family == ModelFamily::kLlamba && c.vocab_size == 128256) {
    // Llamba repos ship no tokenizer or eos ids; they use the Llama 3 tokenizer (architectures.md
    // §1.2).
    c.stop_ids = {128001, 128008, 128009};
    c.bos_id = 128000;
  }
  // Stop ids outside the vocabulary can never be produced; drop them rather than fail on odd
  // configs.
  std::vector<int32_t> stops;
  for (int32_t id : c.stop_ids) {
    if (id >= 0 && id < c.vocab_size) stops.push_back(id);
  }
  c.stop_ids = stops;
  if (c.bos_id >= c.vocab_size) c.bos_id = -1;
  TTC_RETURN_IF_ERROR(ValidateModelConfig(c));
  return c;
}

Result<ModelConfig> LoadModelConfig(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return NotFound("{}: not a model directory", dir.string());
  auto config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path, ec))
    return NotFound("{}: missing config.json", dir.string());
  TTC_ASSIGN_OR_RETURN(std::string config, ReadFile(config_path));
  std::string mamba_config, generation_config;
  if (std::filesystem::exists(dir / "mamba_config.json", ec)) {
    TTC_ASSIGN_OR_RETURN(mamba_config, ReadFile(dir / "mamba_config.json"));
  }
  if (std::filesystem::exists(dir / "generation_config.json", ec)) {
    TTC_ASSIGN_OR_RETURN(generation_config, ReadFile(dir / "generation_config.json"));
  }
  auto result = ParseModelConfig(config, mamba_config, generation_config);
  if (!result.ok()) return result.status().WithContext(dir.string());
  return result;
}

std::vector<float> RopeInverseFrequencies(const RopeConfig& rope, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  // HF: 1 / base ** (arange(0, dim, 2).float() / dim), all float32.
  for (int64_t i = 0; i < half; ++i) {
    float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    float p = std::pow(static_cast<float>(rope.theta), exponent);
    inv[static_cast<size_t>(i)] = 1.0f / p;
  }
  if (rope.type != RopeType::kLlama3) return inv;
  const float factor = static_cast<float>(rope.factor);
  const float low = static_cast<float>(rope.low_freq_factor);
  const float high = static_cast<float>(rope.high_freq_factor);
  const float old_ctx = static_cast<float>(rope.original_max_position);
  const float low_freq_wavelen = old_ctx / low;
  const float high_freq_wavelen = old_ctx / high;
  const float two_pi = static_cast<float>(2.0 * M_PI);
  for (auto& f : inv) {
    float wavelen = two_pi / f;
    float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
      float smooth = (old_ctx / wavelen - low) / (high - low);
      scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
    }
    f = scaled;
  }
  return inv;
}

}  // namespace ttc::engine
