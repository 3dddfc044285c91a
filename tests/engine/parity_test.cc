// Golden parity: every model folder with a golden.safetensors (../shared/golden/models/* and
// experiments/models/*) must reproduce the reference prefill logits and every incremental decode
// step within the tolerance its README states, with identical greedy ids. Also what the weight
// dtype (engine::WeightDType) does to the golden llama's logits on the CPU backend.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>

#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/sampler.h"
#include "tests/engine/engine_test_util.h"

namespace ttc {
namespace {

using engine::BatchLayout;

// "within 1e-3 absolute" in the folder's README; 1e-3 (the float32 bound of golden/README.md)
// otherwise.
float ToleranceOf(const std::filesystem::path& dir) {
  std::ifstream in(dir / "README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::smatch m;
  std::string text = ss.str();
  static const std::regex kRe(R"(within\s+([0-9.]+(?:e-?[0-9]+)?)\s+absolute)");
  if (std::regex_search(text, m, kRe)) return std::stof(m[1].str());
  return 1e-3f;
}

class Parity : public ::testing::TestWithParam<std::filesystem::path> {};

TEST_P(Parity, PrefillAndDecodeMatchGolden) {
  const auto dir = GetParam();
  const float tol = ToleranceOf(dir);
  auto model = engine::LoadModel(dir, testing::OneThread());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto golden = engine::SafetensorsFile::Open(dir / "golden.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status().ToString();
  const auto* prompt_t = (*golden)->Find("prompt_ids");
  const auto* prefill_t = (*golden)->Find("prefill_logits");
  const auto* ids_t = (*golden)->Find("decode_ids");
  const auto* decode_t = (*golden)->Find("decode_logits");
  ASSERT_TRUE(prompt_t && prefill_t && ids_t && decode_t);
  auto prompt64 = testing::ReadI64(*prompt_t);
  auto decode_ids = testing::ReadI64(*ids_t);
  auto prefill_ref = engine::ToFloat32(*prefill_t);
  auto decode_ref = engine::ToFloat32(*decode_t);
  ASSERT_TRUE(prefill_ref.ok() && decode_ref.ok());
  const int64_t V = (*model)->config().vocab_size;
  const int64_t L = static_cast<int64_t>(prompt64.size());
  ASSERT_EQ(prefill_t->shape, (std::vector<int64_t>{L, V}));

  auto state = (*model)->NewState(1);
  ASSERT_TRUE(state.ok());
  std::vector<int32_t> prompt(prompt64.begin(), prompt64.end());
  std::vector<int64_t> rows(static_cast<size_t>(L));
  for (int64_t i = 0; i < L; ++i) rows[static_cast<size_t>(i)] = i;
  std::vector<float> logits;
  BatchLayout batch{{{0, 0, L}}};
  ASSERT_TRUE((*model)->Forward(state->get(), batch, prompt, rows, &logits).ok());
  float worst = testing::MaxAbsDiff(logits.data(), prefill_ref->data(), logits.size());
  EXPECT_LE(worst, tol) << dir << ": prefill logits differ by " << worst;
  std::span<const float> last(logits.data() + (L - 1) * V, static_cast<size_t>(V));
  EXPECT_EQ(engine::Argmax(last), decode_ids[0]) << dir;

  float worst_decode = 0;
  for (size_t i = 0; i < decode_ids.size(); ++i) {
    int32_t tok = static_cast<int32_t>(decode_ids[i]);
    BatchLayout step{{{0, L + static_cast<int64_t>(i), 1}}};
    std::vector<int64_t> row0 = {0};
    ASSERT_TRUE((*model)->Forward(state->get(), step, std::span(&tok, 1), row0, &logits).ok());
    const float* ref = decode_ref->data() + i * V;
    float diff = testing::MaxAbsDiff(logits.data(), ref, static_cast<size_t>(V));
    worst_decode = std::max(worst_decode, diff);
    EXPECT_LE(diff, tol) << dir << ": decode step " << i << " differs by " << diff;
    if (i + 1 < decode_ids.size()) {
      EXPECT_EQ(engine::Argmax(logits), decode_ids[i + 1]) << dir << " step " << i;
    }
  }
  std::cout << dir.filename().string() << ": max |prefill diff| " << worst << ", max |decode diff| "
            << worst_decode << " (tolerance " << tol << ")\n";
}

std::string DirName(const ::testing::TestParamInfo<std::filesystem::path>& info) {
  std::string s = info.param.parent_path().parent_path().filename().string() + "_" +
                  info.param.filename().string();
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(GoldenModels, Parity, ::testing::ValuesIn(testing::GoldenModelDirs()),
                         DirName);

// The weight dtype (a grid's models[i].dtype): on the CPU backend kBf16 and kF16 round an f32
// checkpoint's matrices at load, so the prefill logits move by about one rounding of the weights:
// more than f32 noise, far less than the logits' scale (0.07 measured for bf16), and f16 (three
// more mantissa bits) by about 8x less than bf16 (11x measured), which pins the precision each
// one rounds to; kF32 is the checkpoint as stored, the same logits as no weight dtype at all. The
// demo's teacher (trained in f32) is the checkpoint: the golden fixtures' f32 weights are bf16
// values already. The CUDA backend refuses f16 and f32 before it touches a device.
TEST(WeightDType, RoundsTheMatricesOnTheCpuAndIsRefusedOnCuda) {
  const auto dir = testing::SourceDir() / "experiments" / "models" / "teacher-llama";
  auto golden = engine::SafetensorsFile::Open(dir / "golden.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status().ToString();
  const auto prompt64 = testing::ReadI64(*(*golden)->Find("prompt_ids"));
  const std::vector<int32_t> prompt(prompt64.begin(), prompt64.end());
  const int64_t L = static_cast<int64_t>(prompt.size());
  auto prefill = [&](std::optional<engine::WeightDType> dt) {
    engine::ModelOptions o = testing::OneThread();
    o.weight_dtype = dt;
    auto model = engine::LoadModel(dir, o);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    auto state = (*model)->NewState(1);
    std::vector<int64_t> rows(static_cast<size_t>(L));
    for (int64_t i = 0; i < L; ++i) rows[static_cast<size_t>(i)] = i;
    std::vector<float> logits;
    EXPECT_TRUE(
        (*model)->Forward(state->get(), BatchLayout{{{0, 0, L}}}, prompt, rows, &logits).ok());
    return logits;
  };
  const auto as_stored = prefill(std::nullopt), f32 = prefill(engine::WeightDType::kF32),
             bf16 = prefill(engine::WeightDType::kBf16), f16 = prefill(engine::WeightDType::kF16);
  ASSERT_EQ(f32.size(), as_stored.size());
  EXPECT_EQ(testing::MaxAbsDiff(f32.data(), as_stored.data(), f32.size()), 0.0f);
  const float d_bf16 = testing::MaxAbsDiff(bf16.data(), f32.data(), f32.size());
  const float d_f16 = testing::MaxAbsDiff(f16.data(), f32.data(), f32.size());
  EXPECT_GT(d_bf16, 1e-3f);
  EXPECT_LT(d_bf16, 0.5f);
  EXPECT_GT(d_f16, 1e-5f);
  EXPECT_LT(d_f16, d_bf16 / 4);
  std::cout << "teacher-llama, max |prefill logit - f32 weights|: bf16 " << d_bf16 << ", f16 "
            << d_f16 << "\n";

  engine::ModelOptions cuda;
  cuda.backend = engine::BackendKind::kCuda;
  cuda.weight_dtype = engine::WeightDType::kF32;
  auto refused = engine::LoadModel(dir, cuda);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().ToString(), ::testing::HasSubstr("needs the CPU backend"));
  EXPECT_FALSE(engine::ParseWeightDType("fp16").ok());
  EXPECT_EQ(*engine::ParseWeightDType("bf16"), engine::WeightDType::kBf16);
}

TEST(ParityCoverage, EveryFamilyHasAGolden) {
  for (const char* name : {"llama", "mambainllama", "llamba", "mamba", "mamba2"}) {
    EXPECT_TRUE(std::filesystem::exists(testing::GoldenModel(name) / "golden.safetensors")) << name;
  }
}

}  // namespace
}  // namespace ttc
