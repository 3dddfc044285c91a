// Engine invariants per family, on the golden fixture models: incremental decode equals a longer
// prefill, batching does not change a sample, sample i is the same for any N, the fused
// MambaInLlama format equals the split one, and forked state equals a fresh prefill.
#include <gtest/gtest.h>

#include "engine/checkpoint.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "tests/engine/engine_test_util.h"

namespace ttc {
namespace {

using engine::BatchLayout;

const char* kFamilies[] = {"llama", "mambainllama", "llamba", "mamba", "mamba2"};

std::unique_ptr<engine::Model> Load(const std::filesystem::path& dir) {
  auto m = engine::LoadModel(dir, testing::OneThread());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::vector<int32_t> SomeTokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> t;
  uint32_t x = seed;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    t.push_back(static_cast<int32_t>((x >> 8) % vocab));
  }
  return t;
}

class Family : public ::testing::TestWithParam<const char*> {};

TEST_P(Family, TokenByTokenDecodeEqualsLongerPrefill) {
  auto model = Load(testing::GoldenModel(GetParam()));
  ASSERT_TRUE(model);
  const int64_t V = model->config().vocab_size;
  const int64_t L = 20, k = 7;
  auto tokens = SomeTokens(L, V, 17);
  // Full prefill, logits at every row.
  auto full_state = model->NewState(1);
  ASSERT_TRUE(full_state.ok());
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < L; ++i) rows.push_back(i);
  std::vector<float> full;
  ASSERT_TRUE(model->Forward(full_state->get(), {{{0, 0, L}}}, tokens, rows, &full).ok());
  // Prefill k tokens, then one at a time.
  auto state = model->NewState(1);
  ASSERT_TRUE(state.ok());
  std::vector<float> logits;
  const int64_t last = k - 1;
  ASSERT_TRUE(model
                  ->Forward(state->get(), {{{0, 0, k}}}, std::span(tokens.data(), k),
                            std::span(&last, 1), &logits)
                  .ok());
  EXPECT_LE(testing::MaxAbsDiff(logits.data(), full.data() + last * V, V), 1e-5f);
  const int64_t row0 = 0;
  for (int64_t t = k; t < L; ++t) {
    ASSERT_TRUE(model
                    ->Forward(state->get(), {{{0, t, 1}}}, std::span(tokens.data() + t, 1),
                              std::span(&row0, 1), &logits)
                    .ok());
    EXPECT_LE(testing::MaxAbsDiff(logits.data(), full.data() + t * V, V), 1e-5f)
        << "position " << t;
  }
  EXPECT_EQ((*state)->length(0), L);
}

TEST_P(Family, ForkedStateEqualsFreshPrefill) {
  auto model = Load(testing::GoldenModel(GetParam()));
  ASSERT_TRUE(model);
  const int64_t V = model->config().vocab_size;
  auto prompt = SomeTokens(9, V, 5);
  auto state = model->NewState(3);
  ASSERT_TRUE(state.ok());
  std::vector<float> a, b;
  const int64_t last = 8;
  ASSERT_TRUE(model->Forward(state->get(), {{{2, 0, 9}}}, prompt, std::span(&last, 1), &a).ok());
  (*state)->CopySlot(2, 0);
  (*state)->Reset(2);
  EXPECT_EQ((*state)->length(2), 0);
  // Slot 0 (forked) and slot 2 (refilled) decode the same token in one batch: identical rows.
  ASSERT_TRUE(model->Forward(state->get(), {{{2, 0, 9}}}, prompt, std::span(&last, 1), &a).ok());
  std::vector<int32_t> next = {3, 3};
  std::vector<int64_t> rows = {0, 1};
  ASSERT_TRUE(model->Forward(state->get(), {{{0, 9, 1}, {2, 9, 1}}}, next, rows, &b).ok());
  EXPECT_EQ(testing::MaxAbsDiff(b.data(), b.data() + V, V), 0.0f);
}

engine::GenerateRequest Request(int n, int64_t first = 0, uint64_t seed = 11) {
  engine::GenerateRequest req;
  req.prompts.push_back({{5, 17, 42, 7, 99, 3}, seed, first, n});
  req.sampling.temperature = 1.0f;
  req.max_new_tokens = 10;
  req.stop_ids = std::vector<int32_t>{};
  return req;
}

TEST_P(Family, BatchOfNEqualsNSeparateRuns) {
  auto model = Load(testing::GoldenModel(GetParam()));
  ASSERT_TRUE(model);
  auto batched = engine::Generate(*model, Request(4));
  ASSERT_TRUE(batched.ok()) << batched.status().ToString();
  ASSERT_EQ(batched->samples.size(), 4u);
  std::set<std::vector<int32_t>> distinct;
  for (int i = 0; i < 4; ++i) {
    auto single = engine::Generate(*model, Request(1, i));
    ASSERT_TRUE(single.ok());
    EXPECT_EQ(single->samples[0].sample_index, i);
    EXPECT_EQ(single->samples[0].tokens, batched->samples[static_cast<size_t>(i)].tokens)
        << "sample " << i;
    distinct.insert(single->samples[0].tokens);
  }
  EXPECT_GT(distinct.size(), 1u) << "temperature-1 samples should differ";
}

TEST_P(Family, SampleIndependentOfN) {
  auto model = Load(testing::GoldenModel(GetParam()));
  ASSERT_TRUE(model);
  auto n16 = engine::Generate(*model, Request(16));
  auto n4 = engine::Generate(*model, Request(4));
  auto n1 = engine::Generate(*model, Request(1));
  ASSERT_TRUE(n16.ok() && n4.ok() && n1.ok());
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(n4->samples[i].tokens, n16->samples[i].tokens) << i;
  EXPECT_EQ(n1->samples[0].tokens, n16->samples[0].tokens);
  // A second prompt in the same request changes nothing for the first.
  auto two = Request(4);
  two.prompts.push_back({{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 99, 0, 3});
  auto mixed = engine::Generate(*model, two);
  ASSERT_TRUE(mixed.ok());
  ASSERT_EQ(mixed->samples.size(), 7u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(mixed->samples[i].tokens, n4->samples[i].tokens) << i;
  EXPECT_EQ(mixed->samples[4].prompt_index, 1);
}

INSTANTIATE_TEST_SUITE_P(Golden, Family, ::testing::ValuesIn(kFamilies));

// The fused MambaInLlama format (mamba.in_proj = [z|x|B|C|dt], mha.in_proj = [q|k|v], mha.out_proj)
// built from the split fixture gives the same logits.
TEST(MambaInLlama, FusedFormatEqualsSplit) {
  const auto src = testing::GoldenModel("mambainllama");
  auto ckpt = engine::Checkpoint::Open(src);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  std::vector<engine::OwnedTensor> out;
  auto copy = [&](const engine::TensorView& v, const std::string& name) {
    engine::OwnedTensor t{name, v.dtype, v.shape,
                          std::vector<std::byte>(v.data, v.data + v.nbytes)};
    out.push_back(std::move(t));
  };
  auto concat = [&](const std::vector<std::string>& names, const std::string& name) {
    engine::OwnedTensor t{name, engine::DType::kBF16, {0, 0}, {}};
    for (const auto& n : names) {
      auto v = ckpt->Get(n);
      ASSERT_TRUE(v.ok());
      t.shape[0] += (*v)->shape[0];
      t.shape[1] = (*v)->shape[1];
      t.data.insert(t.data.end(), (*v)->data, (*v)->data + (*v)->nbytes);
    }
    out.push_back(std::move(t));
  };
  std::set<std::string> fused_away;
  for (const char* l : {"model.layers.0.", "model.layers.2."}) {
    std::string p = std::string(l) + "mamba.";
    std::vector<std::string> parts = {p + "in_proj_z.weight", p + "in_proj_x.weight",
                                      p + "B_proj.weight", p + "C_proj.weight",
                                      p + "dt_proj_down.weight"};
    concat(parts, p + "in_proj.weight");
    fused_away.insert(parts.begin(), parts.end());
  }
  {
    std::string p = "model.layers.1.";
    std::vector<std::string> parts = {p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                                      p + "self_attn.v_proj.weight"};
    concat(parts, p + "mha.in_proj.weight");
    fused_away.insert(parts.begin(), parts.end());
    auto o = ckpt->Get(p + "self_attn.o_proj.weight");
    ASSERT_TRUE(o.ok());
    copy(**o, p + "mha.out_proj.weight");
    fused_away.insert(p + "self_attn.o_proj.weight");
  }
  for (const auto& name : ckpt->names()) {
    if (!fused_away.count(name)) copy(**ckpt->Get(name), name);
  }
  testing::TempDir dir;
  ASSERT_TRUE(engine::WriteSafetensors(dir / "model.safetensors", out).ok());
  std::filesystem::copy_file(src / "config.json", dir / "config.json");
  std::filesystem::copy_file(src / "mamba_config.json", dir / "mamba_config.json");
  auto split = Load(src);
  auto fused = Load(dir.path());
  ASSERT_TRUE(split && fused);
  auto tokens = SomeTokens(12, 512, 3);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < 12; ++i) rows.push_back(i);
  std::vector<float> a, b;
  auto sa = split->NewState(1);
  auto sb = fused->NewState(1);
  ASSERT_TRUE(split->Forward(sa->get(), {{{0, 0, 12}}}, tokens, rows, &a).ok());
  ASSERT_TRUE(fused->Forward(sb->get(), {{{0, 0, 12}}}, tokens, rows, &b).ok());
  EXPECT_EQ(testing::MaxAbsDiff(a.data(), b.data(), a.size()), 0.0f);
}

engine::ModelOptions PlainRope() {
  auto o = testing::OneThread();
  o.rope_override = engine::RopeType::kPlain;
  return o;
}

// Plain RoPE (MambaInLlama's generation wrapper) is a real option and changes attention outputs.
TEST(MambaInLlama, RopeOverrideChangesLogits) {
  auto llama3 = engine::LoadModel(testing::GoldenModel("mambainllama"), testing::OneThread());
  auto plain = engine::LoadModel(testing::GoldenModel("mambainllama"), PlainRope());
  ASSERT_TRUE(llama3.ok() && plain.ok());
  EXPECT_EQ((*plain)->config().rope.type, engine::RopeType::kPlain);
  auto tokens = SomeTokens(24, 512, 9);
  const int64_t last = 23;
  std::vector<float> a, b;
  auto sa = (*llama3)->NewState(1);
  auto sb = (*plain)->NewState(1);
  ASSERT_TRUE((*llama3)->Forward(sa->get(), {{{0, 0, 24}}}, tokens, std::span(&last, 1), &a).ok());
  ASSERT_TRUE((*plain)->Forward(sb->get(), {{{0, 0, 24}}}, tokens, std::span(&last, 1), &b).ok());
  EXPECT_GT(testing::MaxAbsDiff(a.data(), b.data(), a.size()), 1e-4f);
}

}  // namespace
}  // namespace ttc
