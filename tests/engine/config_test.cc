// Config loading: every golden layout parses to the shapes its README states; real hub layouts
// (Llama 3.2 1B, the MambaInLlama 3B mamba_config.json, Llamba-3B) parse; eos lists and
// generation_config.json stop ids.
#include "engine/config.h"

#include <gtest/gtest.h>

#include "tests/engine/engine_test_util.h"

namespace ttc {
namespace {

using engine::MixerKind;
using engine::ModelFamily;

TEST(Config, GoldenLlama) {
  auto c = engine::LoadModelConfig(testing::GoldenModel("llama"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->family, ModelFamily::kLlama);
  EXPECT_EQ(c->hidden_size, 128);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->rope.type, engine::RopeType::kLlama3);
  EXPECT_TRUE(c->tie_embeddings);
  EXPECT_EQ(c->stop_ids, std::vector<int32_t>{1});
  EXPECT_EQ(c->num_layers_of(MixerKind::kAttention), 3);
}

TEST(Config, GoldenMambaInLlamaReadsAttnLayers) {
  auto c = engine::LoadModelConfig(testing::GoldenModel("mambainllama"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->family, ModelFamily::kMambaInLlama);
  EXPECT_EQ(c->layer_mixers, (std::vector<MixerKind>{MixerKind::kMamba1Mil, MixerKind::kAttention,
                                                     MixerKind::kMamba1Mil}));
  EXPECT_EQ(c->d_inner, 128);
  EXPECT_EQ(c->d_xb, 64);
  EXPECT_EQ(c->d_state, 16);
  EXPECT_EQ(c->dt_rank, 8);
  EXPECT_EQ(c->in_proj_rows(MixerKind::kMamba1Mil), 2 * 128 + 2 * 64 + 8);
}

TEST(Config, GoldenSsmFamilies) {
  auto llamba = engine::LoadModelConfig(testing::GoldenModel("llamba"));
  ASSERT_TRUE(llamba.ok()) << llamba.status().ToString();
  EXPECT_EQ(llamba->family, ModelFamily::kLlamba);
  EXPECT_EQ(llamba->ssm_heads, 4);
  EXPECT_EQ(llamba->ssm_head_dim, 32);
  EXPECT_EQ(llamba->in_proj_rows(MixerKind::kDiscreteMamba2), 388);
  auto mamba = engine::LoadModelConfig(testing::GoldenModel("mamba"));
  ASSERT_TRUE(mamba.ok());
  EXPECT_EQ(mamba->family, ModelFamily::kMamba);
  EXPECT_EQ(mamba->intermediate_size, 0);
  EXPECT_EQ(mamba->d_inner, 256);
  EXPECT_TRUE(mamba->tie_embeddings);
  auto mamba2 = engine::LoadModelConfig(testing::GoldenModel("mamba2"));
  ASSERT_TRUE(mamba2.ok());
  EXPECT_EQ(mamba2->family, ModelFamily::kMamba2);
  EXPECT_FALSE(mamba2->tie_embeddings);
  EXPECT_EQ(mamba2->in_proj_rows(MixerKind::kMamba2), 552);
  EXPECT_EQ(mamba2->conv_channels(MixerKind::kMamba2), 288);
}

constexpr const char* kLlama32_1B = R"({
  "architectures": ["LlamaForCausalLM"], "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
  "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 128256})";

TEST(Config, RealLlama32Shapes) {
  auto c = engine::ParseModelConfig(kLlama32_1B);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->stop_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(c->bos_id, 128000);
  EXPECT_EQ(c->in_proj_rows(MixerKind::kAttention), (32 + 16) * 64);
  // generation_config.json overrides the stop ids.
  auto g = engine::ParseModelConfig(kLlama32_1B, "",
                                    R"({"eos_token_id": 128009, "bos_token_id": 128000})");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->stop_ids, std::vector<int32_t>{128009});
}

TEST(Config, MambaInLlama3BLayout) {
  auto c =
      engine::ParseModelConfig(std::string(kLlama32_1B),
                               R"({"d_model": 2048, "ssm_cfg": {"expand": 1}, "rms_norm_eps": 1e-05,
      "vocab_size": null, "d_inner": null, "d_xb": 512, "intermediate_size": 8192, "hidden_act": "silu",
      "n_layer": 16, "attn_layers": [3, 7, 11, 15]})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->d_inner, 2048);
  EXPECT_EQ(c->dt_rank, 128);
  EXPECT_EQ(c->num_layers_of(MixerKind::kAttention), 4);
  EXPECT_EQ(c->layer_mixers[7], MixerKind::kAttention);
  EXPECT_EQ(c->layer_mixers[8], MixerKind::kMamba1Mil);
}

TEST(Config, Llamba3BHubLayout) {
  auto c = engine::ParseModelConfig(
      R"({"model_type":"llamba","vocab_size":128256,"tie_embeddings":true,"pad_vocab_size_multiple":8,
      "lm_head_bias":false,"d_model":3072,"n_layer":28,"resid_dropout":0.0,"norm_epsilon":1e-5,
      "mlp_cfg":{"intermediate_size":8192,"bias":false,"act_fn":"silu"},
      "ssm_cfg":{"d_state":64,"n_v_heads":32,"n_qk_heads":32,"expand":1,"chunk_size":128,
                 "activation":"identity","bias":false}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ssm_head_dim, 96);
  EXPECT_EQ(c->conv_channels(MixerKind::kDiscreteMamba2), 7168);
  EXPECT_EQ(c->in_proj_rows(MixerKind::kDiscreteMamba2), 10272);
  // No eos in the Llamba config: the Llama 3 stop tokens.
  EXPECT_EQ(c->stop_ids, (std::vector<int32_t>{128001, 128008, 128009}));
}

TEST(Config, RopeInverseFrequenciesLlama3) {
  engine::RopeConfig plain{engine::RopeType::kPlain, 500000.0};
  engine::RopeConfig l3{engine::RopeType::kLlama3, 500000.0, 32.0, 1.0, 4.0, 8192.0};
  auto p = engine::RopeInverseFrequencies(plain, 64);
  auto s = engine::RopeInverseFrequencies(l3, 64);
  ASSERT_EQ(p.size(), 32u);
  EXPECT_FLOAT_EQ(p[0], 1.0f);
  EXPECT_FLOAT_EQ(s[0], 1.0f);                       // high frequencies unchanged
  EXPECT_NEAR(s[31], p[31] / 32.0f, p[31] * 1e-5f);  // low frequencies divided by the factor
  int differ = 0;
  for (size_t i = 0; i < p.size(); ++i) differ += p[i] != s[i];
  EXPECT_GT(differ, 10);
}

}  // namespace
}  // namespace ttc
