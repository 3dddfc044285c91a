// Bad model folders and bad calls: every failure is a clear error naming the file and the tensor or
// field, never a crash (this executable also runs under AddressSanitizer, label "robust").
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/checkpoint.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "tests/engine/engine_test_util.h"

namespace ttc {
namespace {

using nlohmann::json;

// A writable copy of a golden model folder (without golden.safetensors).
class BadFolder : public ::testing::Test {
 protected:
  void CopyFrom(const std::string& name) {
    for (const auto& e : std::filesystem::directory_iterator(testing::GoldenModel(name))) {
      if (e.path().filename() == "golden.safetensors") continue;
      std::filesystem::copy_file(e.path(), dir_ / e.path().filename().string());
      std::filesystem::permissions(dir_ / e.path().filename().string(),
                                   std::filesystem::perms::owner_write,
                                   std::filesystem::perm_options::add);
    }
  }
  json ReadJson(const std::string& file) {
    std::ifstream in(dir_ / file);
    return json::parse(in);
  }
  void WriteText(const std::string& file, const std::string& text) {
    std::ofstream out(dir_ / file, std::ios::trunc);
    out << text;
  }
  // Rewrites model.safetensors through `edit`, which may drop or replace tensors.
  void EditWeights(const std::function<void(std::vector<engine::OwnedTensor>*)>& edit) {
    std::vector<engine::OwnedTensor> tensors;
    {
      auto file = engine::SafetensorsFile::Open(dir_ / "model.safetensors");
      ASSERT_TRUE(file.ok()) << file.status().ToString();
      for (const auto& v : (*file)->tensors()) {
        tensors.push_back(
            {v.name, v.dtype, v.shape, std::vector<std::byte>(v.data, v.data + v.nbytes)});
      }
    }
    edit(&tensors);
    ASSERT_TRUE(engine::WriteSafetensors(dir_ / "model.safetensors", tensors).ok());
  }
  Status Load() {
    auto m = engine::LoadModel(dir_.path(), testing::OneThread());
    return m.status();
  }
  void ExpectError(const Status& st, std::initializer_list<std::string> words) {
    ASSERT_FALSE(st.ok());
    for (const auto& w : words)
      EXPECT_NE(st.message().find(w), std::string::npos) << st.message() << " | " << w;
  }
  testing::TempDir dir_;
};

TEST_F(BadFolder, MissingTensorNamesFileAndTensor) {
  CopyFrom("llama");
  EditWeights([](auto* t) {
    std::erase_if(*t, [](const auto& x) { return x.name == "model.layers.1.mlp.up_proj.weight"; });
  });
  ExpectError(Load(), {"model.safetensors", "model.layers.1.mlp.up_proj.weight"});
}

TEST_F(BadFolder, WrongShapeNamesTensorAndShapes) {
  CopyFrom("llama");
  EditWeights([](auto* t) {
    for (auto& x : *t) {
      if (x.name == "model.layers.2.self_attn.q_proj.weight") x.shape = {64, 256};
    }
  });
  ExpectError(Load(), {"model.layers.2.self_attn.q_proj.weight", "[64, 256]", "[128, 128]"});
}

TEST_F(BadFolder, WrongDtypeNamesTensor) {
  CopyFrom("mamba");
  EditWeights([](auto* t) {
    for (auto& x : *t) {
      if (x.name == "backbone.layers.0.mixer.D") {
        x.dtype = engine::DType::kI16;
      }
    }
  });
  ExpectError(Load(), {"backbone.layers.0.mixer.D", "I16"});
}

TEST_F(BadFolder, TruncatedWeightsFile) {
  CopyFrom("llamba");
  std::filesystem::resize_file(dir_ / "model.safetensors", 5000);
  ExpectError(Load(), {"model.safetensors"});
}

TEST_F(BadFolder, MissingWeightsFile) {
  CopyFrom("llama");
  std::filesystem::remove(dir_ / "model.safetensors");
  EXPECT_FALSE(Load().ok());
}

TEST_F(BadFolder, UnknownArchitecture) {
  CopyFrom("llama");
  json j = ReadJson("config.json");
  j["architectures"] = {"GPT2LMHeadModel"};
  j["model_type"] = "gpt2";
  WriteText("config.json", j.dump());
  ExpectError(Load(), {"config.json", "GPT2LMHeadModel"});
  EXPECT_EQ(Load().code(), StatusCode::kUnimplemented);
}

TEST_F(BadFolder, MalformedConfigJson) {
  CopyFrom("llama");
  WriteText("config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 12)");
  ExpectError(Load(), {"config.json", "malformed JSON"});
}

TEST_F(BadFolder, MissingAndMistypedFields) {
  CopyFrom("llama");
  json j = ReadJson("config.json");
  j.erase("hidden_size");
  WriteText("config.json", j.dump());
  ExpectError(Load(), {"config.json", "hidden_size", "missing"});
  j = ReadJson("config.json");
  j["hidden_size"] = "wide";
  WriteText("config.json", j.dump());
  ExpectError(Load(), {"config.json", "hidden_size", "integer"});
  j["hidden_size"] = 128;
  j["num_key_value_heads"] = 3;
  WriteText("config.json", j.dump());
  ExpectError(Load(), {"num_key_value_heads"});
}

TEST_F(BadFolder, MambaConfigProblems) {
  CopyFrom("mambainllama");
  json m = ReadJson("mamba_config.json");
  m["attn_layers"] = {1, 7};
  WriteText("mamba_config.json", m.dump());
  ExpectError(Load(), {"mamba_config.json", "attn_layers", "7"});
  m.erase("attn_layers");
  WriteText("mamba_config.json", m.dump());
  ExpectError(Load(), {"mamba_config.json", "attn_layers", "missing"});
  WriteText("mamba_config.json", "{\"d_model\": ");
  ExpectError(Load(), {"mamba_config.json", "malformed"});
  // attn_layers naming a layer whose weights are Mamba: the attention tensors are missing.
  WriteText("mamba_config.json", R"({"d_model": 128, "ssm_cfg": {"expand": 1}, "d_xb": 64,
      "intermediate_size": 256, "n_layer": 3, "attn_layers": [0]})");
  ExpectError(Load(), {"model.layers.0.self_attn.q_proj.weight"});
}

TEST_F(BadFolder, HeaderOffsetsOutOfRange) {
  CopyFrom("llama");
  // Corrupt the JSON header's first data offset to point past the end of the file.
  std::fstream f(dir_ / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, ' ');
  f.read(header.data(), static_cast<std::streamsize>(n));
  auto pos = header.find("\"data_offsets\":[");
  ASSERT_NE(pos, std::string::npos);
  pos = header.find(',', pos);
  ASSERT_LT(pos + 1, header.size());
  header[pos + 1] = '9';  // end offset gets a leading 9: far beyond the buffer
  f.seekp(8);
  f.write(header.data(), static_cast<std::streamsize>(n));
  f.close();
  ExpectError(Load(), {"model.safetensors"});
}

TEST(BadCalls, ForwardRejectsBadBatches) {
  auto model = engine::LoadModel(testing::GoldenModel("llama"), testing::OneThread());
  ASSERT_TRUE(model.ok());
  auto state = (*model)->NewState(2);
  ASSERT_TRUE(state.ok());
  std::vector<float> logits;
  std::vector<int32_t> bad = {1, 512};
  auto st = (*model)->Forward(state->get(), {{{0, 0, 2}}}, bad, {}, &logits);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("512"), std::string::npos);
  std::vector<int32_t> ok = {1, 2};
  EXPECT_FALSE(
      (*model)->Forward(state->get(), {{{0, 3, 2}}}, ok, {}, &logits).ok());  // wrong start_pos
  EXPECT_FALSE(
      (*model)->Forward(state->get(), {{{5, 0, 2}}}, ok, {}, &logits).ok());  // no such slot
  EXPECT_FALSE((*model)
                   ->Forward(state->get(), {{{0, 0, 1}, {0, 0, 1}}}, ok, {}, &logits)
                   .ok());  // slot twice
  EXPECT_FALSE(
      (*model)->Forward(state->get(), {{{0, 0, 3}}}, ok, {}, &logits).ok());  // token count
  const int64_t row = 7;
  EXPECT_FALSE(
      (*model)->Forward(state->get(), {{{0, 0, 2}}}, ok, std::span(&row, 1), &logits).ok());
  // A failed call leaves the state usable.
  const int64_t last = 1;
  EXPECT_TRUE(
      (*model)->Forward(state->get(), {{{0, 0, 2}}}, ok, std::span(&last, 1), &logits).ok());
  EXPECT_EQ(logits.size(), 512u);
}

}  // namespace
}  // namespace ttc
