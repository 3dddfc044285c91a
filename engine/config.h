// Model configuration: what a checkpoint folder says about the network's shape, read from
// config.json (and mamba_config.json for MambaInLlama, generation_config.json for stop ids) into
// one family-neutral ModelConfig that the generic decoder (engine/model.h) and every backend
// consume. Supported layouts: HF Llama 3.x (LlamaForCausalLM), MambaInLlama hybrids (Llama
// config.json + mamba_config.json), Cartesia Llamba (LlambaConfig), HF MambaForCausalLM and HF
// Mamba2ForCausalLM. Math and formats: ../shared/reference/architectures.md. Thread-safety: plain
// value types and pure functions; safe to use from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace ttc::engine {

enum class ModelFamily { kLlama, kMambaInLlama, kLlamba, kMamba, kMamba2 };

// The sequence mixer of one block. Blocks are pre-norm: x += Mixer(Norm(x)), then (if the family
// has an MLP) x += SwiGLU(Norm(x)).
enum class MixerKind {
  kAttention,       // Llama GQA attention with RoPE
  kMamba1Mil,       // MambaInLlama's Mamba-1 variant (d_xb groups, double dt bias)
  kDiscreteMamba2,  // Llamba (Cartesia discrete Mamba-2, A = -1, no dt parameters)
  kMamba1,          // HF MambaForCausalLM mixer
  kMamba2,          // HF Mamba2ForCausalLM mixer (gated RMSNorm before out_proj)
};

enum class RopeType { kPlain, kLlama3 };

const char* ModelFamilyName(ModelFamily family);
const char* MixerKindName(MixerKind kind);
const char* RopeTypeName(RopeType type);

struct RopeConfig {
  RopeType type = RopeType::kPlain;
  double theta = 10000.0;
  // llama3 scaling parameters (used only when type == kLlama3).
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position = 8192.0;
};

struct ModelConfig {
  ModelFamily family = ModelFamily::kLlama;
  std::string
      architecture;  // as written in the config (architectures[0] or model_type), for messages

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t intermediate_size = 0;  // SwiGLU width; 0 = blocks have no MLP (HF Mamba / Mamba2)
  float norm_eps = 1e-5f;         // block norms
  float final_norm_eps = 1e-5f;   // final norm (Llamba reads norm_epsilon for it, blocks use 1e-5)
  bool tie_embeddings = true;
  std::vector<MixerKind> layer_mixers;  // one per layer

  // Attention layers.
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  RopeConfig rope;

  // Mamba-1 (MambaInLlama and HF Mamba) and the conv of every SSM mixer.
  int64_t d_inner = 0;
  int64_t d_state = 0;
  int64_t d_conv = 4;
  int64_t dt_rank = 0;
  int64_t d_xb = 0;  // MambaInLlama: width of the x and B projections (num_kv_heads * head_dim)
  bool conv_bias = true;

  // Discrete Mamba-2 (Llamba) and HF Mamba-2: heads of ssm_head_dim channels, B/C shared by
  // ssm_groups groups.
  int64_t ssm_heads = 0;
  int64_t ssm_groups = 0;
  int64_t ssm_head_dim = 0;
  float time_step_min = 0.0f;  // HF Mamba-2 time_step_limit (clamp of dt after softplus)
  float time_step_max = 0.0f;  // 0 = no upper clamp (infinity)

  // Token ids. stop_ids from generation_config.json when present, else config.json eos_token_id.
  int32_t bos_id = -1;
  std::vector<int32_t> stop_ids;

  // Derived sizes.
  int64_t num_layers_of(MixerKind kind) const;
  int64_t conv_channels(MixerKind kind) const;  // channels of the causal conv of an SSM mixer
  int64_t in_proj_rows(MixerKind kind) const;   // rows of the fused input projection of a mixer
};

// Reads dir/config.json (+ mamba_config.json, generation_config.json when present). Errors name the
// file and the field: "config.json: field 'hidden_size' is missing", "config.json: unknown
// architecture 'GPT2LMHeadModel'".
Result<ModelConfig> LoadModelConfig(const std::filesystem::path& dir);

// Parses from strings (tests, random models). mamba_config_json / generation_config_json may be
// empty.
Result<ModelConfig> ParseModelConfig(const std::string& config_json,
                                     const std::string& mamba_config_json = "",
                                     const std::string& generation_config_json = "");

// Checks internal consistency (positive sizes, divisibility). Called by the loaders; exposed for
// hand-made configs.
Status ValidateModelConfig(const ModelConfig& config);

// RoPE inverse frequencies f'_i, i < head_dim/2, in float32 exactly as HF computes them
// (architectures.md §2.3).
std::vector<float> RopeInverseFrequencies(const RopeConfig& rope, int64_t head_dim);

}  // namespace ttc::engine
