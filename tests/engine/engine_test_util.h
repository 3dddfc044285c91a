// Helpers for the engine tests: model folders to check (golden fixtures and trained experiment
// models), golden tensors, and small hand-made configs. Not thread-safe.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/score.h"
#include "tests/test_util.h"

namespace ttc::testing {

// Every folder with a golden.safetensors: ../shared/golden/models/* and experiments/models/*.
inline std::vector<std::filesystem::path> GoldenModelDirs() {
  std::vector<std::filesystem::path> out;
  for (const auto& root :
       {SharedDir() / "golden" / "models", SourceDir() / "experiments" / "models"}) {
    std::error_code ec;
    if (!std::filesystem::is_directory(root, ec)) continue;
    for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
      if (std::filesystem::exists(e.path() / "golden.safetensors")) out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Score requests of the given lengths over a vocabulary of V ids: random tokens, three scored
// positions (the last, the first and the middle) with random ids, two random candidate ids.
inline std::vector<engine::ScoreRequest> RandomScoreRequests(int64_t V,
                                                             std::initializer_list<int64_t> lengths,
                                                             uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(V - 1));
  std::vector<engine::ScoreRequest> reqs;
  for (const int64_t L : lengths) {
    engine::ScoreRequest r;
    for (int64_t i = 0; i < L; ++i) r.token_ids.push_back(id(gen));
    r.queries = {{L - 1, id(gen)}, {0, id(gen)}, {L / 2, id(gen)}};
    r.candidate_ids = {id(gen), id(gen)};
    reqs.push_back(std::move(r));
  }
  return reqs;
}

// Tests run single-threaded: CI has 2 cores shared by the whole suite.
inline engine::ModelOptions OneThread() {
  engine::ModelOptions o;
  o.threads = 1;
  return o;
}

inline std::filesystem::path GoldenModel(const std::string& name) {
  return SharedDir() / "golden" / "models" / name;
}

inline std::vector<int64_t> ReadI64(const engine::TensorView& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data, v.size() * sizeof(int64_t));
  return v;
}

inline float MaxAbsDiff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace ttc::testing
