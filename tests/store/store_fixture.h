// Shared helpers of the store tests: a temporary database and a small experiment to work on. Not
// thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "store/store.h"
#include "tests/test_util.h"

namespace ttc::store::testing {

#define ASSERT_OK(expr)                      \
  do {                                       \
    const ::ttc::Status _st = (expr);        \
    ASSERT_TRUE(_st.ok()) << _st.ToString(); \
  } while (0)

// Unwraps a Result in a test, failing the test (and returning) on error.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                                         \
  auto TTC_CONCAT(_r_, __LINE__) = (expr);                                                      \
  ASSERT_TRUE(TTC_CONCAT(_r_, __LINE__).ok()) << TTC_CONCAT(_r_, __LINE__).status().ToString(); \
  lhs = std::move(TTC_CONCAT(_r_, __LINE__)).value()

// Two models, three problems; units: per (model, problem) one generate unit of samples [0, 4) at
// T=0.8, plus one two-problem unit of model "b" with samples [4, 6).
inline NewExperiment SmallExperiment(const std::string& name = "exp") {
  NewExperiment spec;
  spec.experiment.name = name;
  spec.experiment.grid_spec_json = R"({"models": ["a", "b"],   "k": [1, 2, 4]})";
  spec.experiment.dataset_fingerprint = "sha256:abc";
  spec.experiment.seed = 0xFEDCBA9876543210ULL;  // above INT64_MAX: must round-trip bit-for-bit
  spec.models = {{0, 0, "a", "/models/a", R"({"dtype":"bf16"})"}, {0, 0, "b", "/models/b", ""}};
  for (int i = 0; i < 3; ++i) {
    spec.problems.push_back({0, i, "p" + std::to_string(i), "What is " + std::to_string(i) + "+1?",
                             std::to_string(i + 1), i == 0 ? R"({"level":3})" : ""});
  }
  int64_t order = 0;
  for (const char* model : {"a", "b"}) {
    for (int p = 0; p < 3; ++p) {
      Unit u;
      u.model_name = model;
      u.temperature = 0.8;
      u.problem_indices = {p};
      u.sample_begin = 0;
      u.sample_end = 4;
      u.seed = 1000 + order;
      u.order_key = order++;
      u.max_attempts = 2;
      spec.units.push_back(u);
    }
  }
  Unit multi;
  multi.model_name = "b";
  multi.temperature = 0.8;
  multi.problem_indices = {0, 2};
  multi.sample_begin = 4;
  multi.sample_end = 6;
  multi.order_key = order++;
  spec.units.push_back(multi);
  return spec;
}

inline Sample MakeSample(const Unit& u, int problem, int index, int attempt) {
  Sample s;
  s.unit_id = u.id;
  s.problem_index = problem;
  s.sample_index = index;
  s.attempt = attempt;
  s.text = "The answer is " + std::to_string(problem + index) + ".";
  s.num_tokens = 10 + index;
  s.finish_reason = "stop";
  s.prefill_s = 0.01;
  s.decode_s = 0.1 * (index + 1);
  s.steps = 10 + index;
  s.extra_json = R"({"top_p":1})";
  return s;
}

// A test with a fresh database file in a temporary directory.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_ / "ttc.db").string();
    auto s = Store::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  std::unique_ptr<Store> Reopen(OpenOptions options = {}) {
    auto s = Store::Open(path_, options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  ttc::testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

}  // namespace ttc::store::testing
