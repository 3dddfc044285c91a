// Shared by the CPU-side engine benchmarks (generate_bench, score_bench): the random-weight model
// they time, built from a config (the built-in small Llama-3-shaped network, or a folder's
// config.json). Thread-safety: plain functions, no state.
#pragma once

#include <filesystem>
#include <memory>

#include "common/result.h"
#include "engine/config.h"
#include "engine/model.h"

namespace ttc::bench {

// A small Llama-3-shaped model (40.9 M parameters): fast enough for a 2-core CI box.
inline constexpr const char* kSmallLlama = R"({
  "architectures": ["LlamaForCausalLM"], "hidden_size": 512, "intermediate_size": 1536,
  "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 64, "num_hidden_layers": 8,
  "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": true, "vocab_size": 32768,
  "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192}})";

// Random bf16 weights (seed 1) of `model_dir`'s config.json, or of kSmallLlama when it is empty.
inline Result<std::unique_ptr<engine::Model>> RandomBenchModel(
    const std::filesystem::path& model_dir, const engine::ModelOptions& options) {
  TTC_ASSIGN_OR_RETURN(engine::ModelConfig config, model_dir.empty()
                                                       ? engine::ParseModelConfig(kSmallLlama)
                                                       : engine::LoadModelConfig(model_dir));
  return engine::RandomModel(config, 1, options);
}

}  // namespace ttc::bench
