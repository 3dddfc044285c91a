// Grid spec: defaults, every validation error path (with its field path), did-you-mean suggestions,
// file checks, JSON syntax errors with positions, path resolution, the JSON round trip and the
// example grids.
#include "experiments/grid.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "../test_util.h"

namespace ttc::experiments {
namespace {

using nlohmann::json;

json Minimal() {
  return json::parse(
      R"({"name": "g", "dataset": "gsm8k", "models": [{"name": "m", "path": "/models/m"}]})");
}

std::vector<std::string> Errors(const json& doc, bool check_files = false) {
  GridParseOptions options;
  options.check_files = check_files;
  options.base_dir = "/base";
  std::vector<std::string> out;
  for (const GridError& e : CheckGridSpec(doc, options, nullptr)) out.push_back(e.ToString());
  return out;
}

// The errors of Minimal() with `patch` merged in (RFC 7386: null removes a field).
std::vector<std::string> ErrorsWith(const std::string& patch) {
  json doc = Minimal();
  doc.merge_patch(json::parse(patch));
  return Errors(doc);
}

::testing::AssertionResult HasError(const std::vector<std::string>& errors,
                                    const std::string& expected) {
  for (const std::string& e : errors) {
    if (e.find(expected) != std::string::npos) return ::testing::AssertionSuccess();
  }
  std::string all;
  for (const std::string& e : errors) all += "\n  " + e;
  return ::testing::AssertionFailure()
         << "no error containing \"" << expected << "\" among:" << all;
}

TEST(GridDefaultsTest, MinimalSpecGetsDocumentedDefaults) {
  GridParseOptions options;
  options.check_files = false;
  auto spec = ParseGridSpec(Minimal(), options);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->name, "g");
  EXPECT_EQ(spec->dataset.kind, DatasetKind::kGsm8k);
  EXPECT_EQ(spec->dataset.limit, 0);
  EXPECT_EQ(spec->prompt.template_kind, PromptTemplate::kGsm8k);  // follows the dataset's task
  EXPECT_EQ(spec->prompt.chat_template, "sal");
  EXPECT_EQ(spec->prompt.date, "26 Jul 2024");
  ASSERT_EQ(spec->models.size(), 1u);
  EXPECT_EQ(spec->models[0].dtype, "bf16");
  EXPECT_EQ(spec->models[0].rope, "auto");
  EXPECT_EQ(spec->models[0].backend, "auto");
  EXPECT_EQ(spec->temperatures, std::vector<double>{0.8});
  EXPECT_EQ(spec->n_samples, 16);
  EXPECT_EQ(spec->k_values, (std::vector<int>{1, 2, 4, 8, 16}));
  EXPECT_EQ(spec->top_k, -1);
  EXPECT_EQ(spec->top_p, 1.0);
  EXPECT_EQ(spec->max_new_tokens, 2048);
  EXPECT_EQ(spec->seed, 0u);
  EXPECT_FALSE(spec->reward_model.has_value());
  EXPECT_EQ(spec->grader, "sal");
  EXPECT_EQ(spec->units.max_samples_per_unit, 64);
  EXPECT_EQ(spec->units.target_seconds_per_unit, 120.0);

  json math = Minimal();
  math["dataset"] = "math500";
  EXPECT_EQ(ParseGridSpec(math, options)->prompt.template_kind, PromptTemplate::kMath);
  EXPECT_EQ(ParseGridSpec(math, options)->prompt.form, "sal");
}

TEST(GridDefaultsTest, DefaultKValues) {
  EXPECT_EQ(DefaultKValues(1), std::vector<int>{1});
  EXPECT_EQ(DefaultKValues(12), (std::vector<int>{1, 2, 4, 8, 12}));
  EXPECT_EQ(DefaultKValues(256).back(), 256);
  EXPECT_EQ(DefaultKValues(256).size(), 9u);
  json doc = Minimal();
  doc["n_samples"] = 12;
  GridParseOptions options;
  options.check_files = false;
  EXPECT_EQ(ParseGridSpec(doc, options)->k_values, (std::vector<int>{1, 2, 4, 8, 12}));
}

TEST(GridErrorsTest, DocumentAndName) {
  EXPECT_TRUE(HasError(Errors(json::array()), "a grid spec is a JSON object, got an array"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"name": null})"), "name: required field is missing"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"name": ""})"), "name: must not be empty"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"name": 3})"), "name: expected a string, got an integer"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"name": "has space"})"),
                       "name: 'has space' must be 1-64 characters"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"description": false})"),
                       "description: expected a string, got a boolean"));
}

TEST(GridErrorsTest, UnknownFieldsGetSuggestions) {
  EXPECT_TRUE(HasError(ErrorsWith(R"({"temperature": [0.5]})"),
                       "temperature: unknown field; did you mean 'temperatures'?"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"n_sample": 4})"),
                       "n_sample: unknown field; did you mean 'n_samples'?"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"zzzzzzzz": 4})"), "zzzzzzzz: unknown field"));
  EXPECT_FALSE(HasError(ErrorsWith(R"({"zzzzzzzz": 4})"), "did you mean"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": [{"name": "m", "path": "/p", "dtpye": "f16"}]})"),
                       "models[0].dtpye: unknown field; did you mean 'dtype'?"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "gsm8k", "limt": 3}})"),
                       "dataset.limt: unknown field; did you mean 'limit'?"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"units": {"max_samples": 3}})"),
                       "units.max_samples: unknown field; did you mean 'max_samples_per_unit'?"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"prompt": {"tempalte": "math"}})"),
                       "prompt.tempalte: unknown field; did you mean 'template'?"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"reward_model": {"path": "/p", "agregation": "min"}})"),
                       "reward_model.agregation: unknown field; did you mean 'aggregation'?"));
}

TEST(GridErrorsTest, Dataset) {
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": null})"), "dataset: required field is missing"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"dataset": 5})"), "dataset: expected an object or a dataset name"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"dataset": {}})"), "dataset.name: required field is missing"));
  EXPECT_TRUE(HasError(
      ErrorsWith(R"({"dataset": "math5000"})"),
      "dataset.name: 'math5000' is not one of 'math500', 'gsm8k', 'synthetic' or 'jsonl'; did you "
      "mean 'math500'?"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "gsm8k", "limit": -1}})"),
                       "dataset.limit: -1 is out of range"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "gsm8k", "limit": 2.5}})"),
                       "dataset.limit: expected an integer, got the number 2.5"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "gsm8k", "ids": "gsm8k/1"}})"),
                       "dataset.ids: expected an array"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "gsm8k", "ids": ["a", 3]}})"),
                       "dataset.ids[1]: expected a non-empty string"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "gsm8k", "ids": ["a", "a"]}})"),
                       "dataset.ids[1]: duplicate id 'a'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "gsm8k", "path": "x.jsonl"}})"),
                       "dataset.path: only used with dataset.name 'jsonl', not 'gsm8k'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "math500", "count": 3}})"),
                       "dataset.count: only used with dataset.name 'synthetic', not 'math500'"));
}

TEST(GridErrorsTest, JsonlDataset) {
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "jsonl"}})"),
                       "dataset.path: required field is missing"));
  EXPECT_TRUE(HasError(
      ErrorsWith(R"({"dataset": {"name": "jsonl", "path": "a.jsonl", "task": "algebra"}})"),
      "dataset.task: 'algebra' is not one of 'math' or 'gsm8k'"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"dataset": {"name": "jsonl", "path": "a.jsonl", "fields": []}})"),
               "dataset.fields: expected an object {question, answer, id}"));
  EXPECT_TRUE(HasError(
      ErrorsWith(
          R"({"dataset": {"name": "jsonl", "path": "a.jsonl", "fields": {"questio": "q"}}})"),
      "dataset.fields.questio: unknown field; did you mean 'question'?"));
  EXPECT_TRUE(HasError(
      ErrorsWith(R"({"dataset": {"name": "jsonl", "path": "a.jsonl", "fields": {"answer": ""}}})"),
      "dataset.fields.answer: must not be empty"));
  // With file checks on, the file must exist; relative paths resolve against the base folder.
  json doc = Minimal();
  doc["dataset"] = json::parse(R"({"name": "jsonl", "path": "no/such.jsonl"})");
  EXPECT_TRUE(HasError(Errors(doc, true), "dataset.path: no such file: /base/no/such.jsonl"));
}

TEST(GridErrorsTest, SyntheticDataset) {
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "synthetic", "count": 0}})"),
                       "dataset.count: 0 is out of range [1, 1000000]"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "synthetic", "seed": -4}})"),
                       "dataset.seed: must be >= 0"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "synthetic", "seed": "7"}})"),
                       "dataset.seed: expected a non-negative integer, got a string"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "synthetic", "max_level": 9}})"),
                       "dataset.max_level: 9 is out of range [1, 5]"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"dataset": {"name": "synthetic", "min_level": 3, "max_level": 2}})"),
               "dataset.min_level: min_level 3 is greater than max_level 2"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"dataset": {"name": "synthetic", "min_level": 4}})"),
                       "dataset.min_level: min_level 4 is above the default max_level 3"));
  GridParseOptions options;
  options.check_files = false;
  json doc = Minimal();
  doc["dataset"] = json::parse(
      R"({"name": "synthetic", "count": 5, "seed": 18446744073709551615, "max_level": 5})");
  auto spec = ParseGridSpec(doc, options);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->dataset.seed, 18446744073709551615ull);
  EXPECT_EQ(spec->dataset.EffectiveTask(), Task::kGsm8k);
}

TEST(GridErrorsTest, DataFilesAndDataDir) {
  testing::TempDir empty;
  json doc = Minimal();
  doc["models"] = json::array();  // keep the model error out of the way: it is reported on its own
  doc["data_dir"] = empty.path().string();
  auto errors = Errors(doc, true);
  EXPECT_TRUE(HasError(errors, "models: at least one model is needed"));
  doc = Minimal();
  doc["data_dir"] = (empty / "missing").string();
  EXPECT_TRUE(HasError(Errors(doc, true),
                       "data_dir: " + (empty / "missing").string() + " is not a folder"));
  doc["data_dir"] = 4;
  EXPECT_TRUE(HasError(Errors(doc), "data_dir: expected a string"));
}

TEST(GridErrorsTest, Prompt) {
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"prompt": "math"})"), "prompt: expected an object, got a string"));
  EXPECT_TRUE(HasError(
      ErrorsWith(R"({"prompt": {"template": "maths"}})"),
      "prompt.template: 'maths' is not one of 'math', 'gsm8k' or 'custom'; did you mean 'math'?"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"prompt": {"template": "gsm8k", "form": "meta"}})"),
                       "prompt.form: only used with prompt.template 'math', not 'gsm8k'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"prompt": {"template": "math", "form": "lmeval"}})"),
                       "prompt.form: 'lmeval' is not one of 'sal' or 'meta'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"prompt": {"template": "custom"}})"),
                       "prompt.text: required field is missing"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"prompt": {"template": "custom", "text": "Solve {problem}"}})"),
               "prompt.text: a custom prompt must contain {question}"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"prompt": {"template": "gsm8k", "text": "x {question}"}})"),
                       "prompt.text: only used with prompt.template 'custom', not 'gsm8k'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"prompt": {"system": "be nice"}})"),
                       "prompt.system: only used with prompt.template 'custom', not 'gsm8k'"));
  EXPECT_TRUE(HasError(
      ErrorsWith(R"({"prompt": {"chat_template": "llama3"}})"),
      "prompt.chat_template: 'llama3' is not one of 'sal', 'llama3-stock', 'tokenizer-config' or "
      "'none'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"prompt": {"date": "2024-07-26"}})"),
                       "prompt.date: '2024-07-26' is not a date like '26 Jul 2024'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"prompt": {"date": "32 Jul 2024"}})"), "prompt.date"));
  GridParseOptions options;
  options.check_files = false;
  json doc = Minimal();
  doc["prompt"] = json::parse(
      R"({"template": "custom", "text": "Q: {question}", "system": "S", "date": "01 Jan 2025"})");
  auto spec = ParseGridSpec(doc, options);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->prompt.template_kind, PromptTemplate::kCustom);
  EXPECT_EQ(spec->prompt.text, "Q: {question}");
  EXPECT_EQ(spec->prompt.date, "01 Jan 2025");
}

TEST(GridErrorsTest, Models) {
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": null})"), "models: required field is missing"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": {"name": "m"}})"),
                       "models: expected an array of models, got an object"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": []})"), "models: at least one model is needed"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": ["m"]})"),
                       "models[0]: expected an object {name, path, ...}"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": [{"path": "/p"}]})"),
                       "models[0].name: required field is missing"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": [{"name": "a/b", "path": "/p"}]})"),
                       "models[0].name: 'a/b' must be"));
  EXPECT_TRUE(HasError(
      ErrorsWith(R"({"models": [{"name": "m", "path": "/p"}, {"name": "m", "path": "/q"}]})"),
      "models[1].name: duplicate model name 'm'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": [{"name": "m"}]})"),
                       "models[0].path: required field is missing"));
  EXPECT_TRUE(HasError(
      ErrorsWith(R"({"models": [{"name": "m", "path": "/p", "dtype": "fp16"}]})"),
      "models[0].dtype: 'fp16' is not one of 'bf16', 'f16' or 'f32'; did you mean 'f16'?"));
  EXPECT_TRUE(HasError(
      ErrorsWith(R"({"models": [{"name": "m", "path": "/p", "dtype": "f32", "backend": "cuda"}]})"),
      "models[0].dtype: 'f32' needs the cpu backend (or auto): the cuda backend multiplies bf16 "
      "weights"));
  EXPECT_TRUE(HasError(
      ErrorsWith(
          R"({"models": [{"name": "m", "path": "/p"}], "reward_model": {"path": "/r", "dtype": "f16", "backend": "cuda"}})"),
      "reward_model.dtype: 'f16' needs the cpu backend"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": [{"name": "m", "path": "/p", "rope": "yarn"}]})"),
                       "models[0].rope: 'yarn' is not one of 'auto', 'llama3' or 'plain'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": [{"name": "m", "path": "/p", "backend": "gpu"}]})"),
                       "models[0].backend: 'gpu' is not one of 'auto', 'cuda' or 'cpu'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"models": [{"name": "m", "path": "/p", "max_batch": -2}]})"),
                       "models[0].max_batch: -2 is out of range [0, 65536]"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"models": [{"name": "m", "path": "/p", "state_dtype": "fp16"}]})"),
               "models[0].state_dtype: 'fp16' is not one of 'f32', 'bf16' or 'f16'"));
  EXPECT_TRUE(HasError(
      ErrorsWith(
          R"({"models": [{"name": "m", "path": "/p", "backend": "cpu", "state_dtype": "bf16"}]})"),
      "models[0].state_dtype: bf16 needs the cuda backend"));
  EXPECT_TRUE(HasError(
      ErrorsWith(
          R"({"models": [{"name": "m", "path": "/p", "backend": "cpu", "state_dtype": "f16"}]})"),
      "models[0].state_dtype: f16 needs the cuda backend (backend is 'cpu')"));
  EXPECT_TRUE(HasError(
      ErrorsWith(
          R"({"models": [{"name": "m", "path": "/p", "dtype": "f32", "state_dtype": "bf16"}]})"),
      "models[0].state_dtype: bf16 needs the cuda backend, which multiplies bf16 weights (dtype "
      "is 'f32')"));
}

// Which workers claim a model's units: cuda or a 16-bit state needs GPU workers; cpu, or weights in
// f16 / f32 (the CUDA backend multiplies bf16 only), CPU workers; otherwise any.
TEST(GridWorkersTest, BackendStateAndWeightDtypePickTheWorkers) {
  GridParseOptions options;
  options.check_files = false;
  auto spec = ParseGridSpec(json::parse(R"({"name": "w", "dataset": "math500", "models": [
      {"name": "any", "path": "/p"},
      {"name": "gpu", "path": "/p", "backend": "cuda"},
      {"name": "state", "path": "/p", "state_dtype": "bf16"},
      {"name": "state16", "path": "/p", "state_dtype": "f16"},
      {"name": "cpu", "path": "/p", "backend": "cpu", "dtype": "bf16"},
      {"name": "f32", "path": "/p", "dtype": "f32"},
      {"name": "f16", "path": "/p", "dtype": "f16", "backend": "auto"}],
      "reward_model": {"name": "prm", "path": "/r", "dtype": "f32"}})"),
                            options);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  std::map<std::string, WorkerKind> kinds;
  for (const auto& [name, kind] : GridWorkers(*spec)) kinds[name] = kind;
  EXPECT_EQ(kinds["any"], WorkerKind::kAny);
  EXPECT_EQ(kinds["gpu"], WorkerKind::kGpu);
  EXPECT_EQ(kinds["state"], WorkerKind::kGpu);
  EXPECT_EQ(kinds["state16"], WorkerKind::kGpu);
  EXPECT_EQ(kinds["cpu"], WorkerKind::kCpu);
  EXPECT_EQ(kinds["f32"], WorkerKind::kCpu);
  EXPECT_EQ(kinds["f16"], WorkerKind::kCpu);
  EXPECT_EQ(kinds["prm"], WorkerKind::kCpu);
}

TEST(GridErrorsTest, ModelFilesAreChecked) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "good");
  std::ofstream(dir / "good" / "config.json") << "{}";
  std::filesystem::create_directories(dir / "empty");
  std::ofstream(dir / "file") << "x";
  json doc = Minimal();
  doc["models"] = json::array({{{"name", "a"}, {"path", (dir / "good").string()}},
                               {{"name", "b"}, {"path", (dir / "empty").string()}},
                               {{"name", "c"}, {"path", (dir / "absent").string()}},
                               {{"name", "d"}, {"path", (dir / "file").string()}}});
  auto errors = Errors(doc, true);
  EXPECT_EQ(errors.size(), 3u);
  EXPECT_TRUE(HasError(errors, "models[1].path: no config.json in " + (dir / "empty").string()));
  EXPECT_TRUE(HasError(errors, "models[2].path: " + (dir / "absent").string() + " does not exist"));
  EXPECT_TRUE(HasError(errors, "models[3].path: " + (dir / "file").string() + " is not a folder"));
}

TEST(GridErrorsTest, Sampling) {
  EXPECT_TRUE(HasError(ErrorsWith(R"({"temperatures": 0.7})"),
                       "temperatures: expected an array of numbers"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"temperatures": []})"),
                       "temperatures: at least one temperature is needed"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"temperatures": [0.5, "hot"]})"),
                       "temperatures[1]: expected a number, got a string"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"temperatures": [-0.1]})"),
                       "temperatures[0]: -0.1 is out of range [0, 5]"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"temperatures": [0.5, 0.5]})"),
                       "temperatures[1]: duplicate temperature 0.5"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"n_samples": 0})"), "n_samples: 0 is out of range [1, 65536]"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"n_samples": "8"})"),
                       "n_samples: expected an integer, got a string"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"k_values": 4})"), "k_values: expected an array of integers"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"k_values": []})"), "k_values: at least one k is needed"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"n_samples": 8, "k_values": [1, 16]})"),
                       "k_values[1]: k = 16 is larger than n_samples = 8"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"k_values": [4, 2]})"),
                       "k_values[1]: k values must be strictly increasing"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"k_values": [0]})"), "k_values[0]: 0 is out of range"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"top_k": 0})"), "top_k: 0 is not allowed"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"top_k": -2})"), "top_k: -2 is out of range"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"top_p": 0})"), "top_p: 0 is out of range (0, 1]"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"top_p": 1.5})"), "top_p: 1.5 is out of range (0, 1]"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"max_new_tokens": 0})"), "max_new_tokens: 0 is out of range"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"seed": -1})"), "seed: must be >= 0"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"grader": "math-verify"})"),
                       "grader: 'math-verify' is not one of 'sal' or 'strict'"));
}

TEST(GridErrorsTest, RewardModelAndUnits) {
  EXPECT_TRUE(HasError(ErrorsWith(R"({"reward_model": "/p"})"),
                       "reward_model: expected an object {path, ...}"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"reward_model": {}})"),
                       "reward_model.path: required field is missing"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"reward_model": {"path": "/p", "aggregation": "max"}})"),
               "reward_model.aggregation: 'max' is not one of 'last', 'min', 'prod' or 'mean'"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"reward_model": {"path": "/p", "name": "a b"}})"),
                       "reward_model.name: 'a b'"));
  EXPECT_TRUE(
      HasError(ErrorsWith(R"({"reward_model": {"path": "/p", "chat_template": "llama3.1"}})"),
               "reward_model.chat_template: 'llama3.1' is not one of"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"units": 5})"), "units: expected an object"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"units": {"max_samples_per_unit": 0}})"),
                       "units.max_samples_per_unit: 0 is out of range [1, 65536]"));
  EXPECT_TRUE(HasError(ErrorsWith(R"({"units": {"target_seconds_per_unit": 0}})"),
                       "units.target_seconds_per_unit: 0 is out of range (0, 86400]"));
  json doc = Minimal();
  doc["reward_model"] = {{"path", "/nonexistent/prm"}};
  EXPECT_TRUE(HasError(Errors(doc, true), "reward_model.path: /nonexistent/prm does not exist"));
}

TEST(GridErrorsTest, AllErrorsAreReportedAtOnce) {
  json doc = json::parse(
      R"({"dataset": "math5000", "models": [{"name": "m"}], "top_p": 2, "temprature": 1})");
  auto errors = Errors(doc);
  EXPECT_EQ(errors.size(), 5u);
  EXPECT_TRUE(HasError(errors, "name: required field is missing"));
  EXPECT_TRUE(HasError(errors, "dataset.name: 'math5000'"));
  EXPECT_TRUE(HasError(errors, "models[0].path: required field is missing"));
  EXPECT_TRUE(HasError(errors, "top_p: 2 is out of range"));
  EXPECT_TRUE(HasError(errors, "temprature: unknown field"));
  GridParseOptions options;
  options.check_files = false;
  auto result = ParseGridSpec(doc, options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find(
                "5 problems in the grid spec:\n  name: required field is missing"),
            std::string::npos)
      << result.status().message();
}

TEST(GridTextTest, SyntaxErrorsNameFileLineAndColumn) {
  auto spec = ParseGridSpecText("{\n  \"name\": \"g\",\n  \"models\": [,]\n}", "grids/bad.json");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("grids/bad.json:3:14: invalid JSON"), std::string::npos)
      << spec.status().message();
  spec = ParseGridSpecText("", "empty.json");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("empty.json:"), std::string::npos);
  // Validation errors carry the file name too.
  GridParseOptions options;
  options.check_files = false;
  spec = ParseGridSpecText(R"({"name": "g"})", "g.json", options);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("g.json: "), std::string::npos);
}

TEST(GridFileTest, LoadResolvesPathsAgainstTheGridFolder) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "grids");
  std::filesystem::create_directories(dir / "models" / "m");
  std::ofstream(dir / "models" / "m" / "config.json") << "{}";
  std::ofstream(dir / "grids" / "g.json")
      << R"({"name": "g", "dataset": "gsm8k", "models": [{"name": "m", "path": "../models/m"}]})";
  auto spec = LoadGridSpec(dir / "grids" / "g.json");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->models[0].path, (dir / "models" / "m").string());
  auto missing = LoadGridSpec(dir / "nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.json"), std::string::npos);
}

TEST(GridRoundTripTest, ToJsonAndBack) {
  GridParseOptions options;
  options.check_files = false;
  options.base_dir = "/base";
  const char* docs[] = {
      R"({"name": "a", "dataset": "math500", "models": [{"name": "m", "path": "/m"}]})",
      R"({"name": "b", "description": "d", "dataset": {"name": "jsonl", "path": "x.jsonl", "task": "gsm8k",
          "fields": {"question": "q", "answer": "a", "id": "i"}, "limit": 3, "ids": ["1", "2"]},
          "data_dir": "data", "prompt": {"template": "custom", "text": "T {question}", "system": "S",
          "chat_template": "none", "date": "02 Feb 2025"},
          "models": [{"name": "m", "path": "m", "dtype": "f32", "rope": "plain", "backend": "cpu", "max_batch": 4},
                     {"name": "s", "path": "/s", "state_dtype": "bf16"},
                     {"name": "n", "path": "/n"}],
          "temperatures": [0, 0.25, 1.5], "n_samples": 10, "k_values": [1, 3, 10], "top_k": 50, "top_p": 0.95,
          "max_new_tokens": 77, "seed": 18446744073709551615,
          "reward_model": {"name": "r", "path": "/r", "aggregation": "min", "dtype": "f16", "backend": "cpu",
                           "chat_template": "tokenizer-config"},
          "grader": "strict", "units": {"max_samples_per_unit": 5, "target_seconds_per_unit": 2.5}})",
      R"({"name": "c", "dataset": {"name": "synthetic", "count": 9, "seed": 3, "min_level": 2, "max_level": 5},
          "prompt": {"template": "math", "form": "meta"}, "models": [{"name": "m", "path": "/m"}]})",
  };
  for (const char* text : docs) {
    auto spec = ParseGridSpec(json::parse(text), options);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    const json dumped = GridSpecToJson(*spec);
    auto again = ParseGridSpec(json::parse(dumped.dump()), options);
    ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << dumped.dump(2);
    EXPECT_TRUE(*again == *spec) << dumped.dump(2);
    EXPECT_EQ(GridSpecToJson(*again), dumped);
  }
}

TEST(ExampleGridsTest, AllParseAndRoundTrip) {
  for (const char* name : {"math500.json", "gsm8k.json", "cpu-small.json"}) {
    const auto file = testing::SourceDir() / "experiments" / "grids" / name;
    GridParseOptions options;
    options.check_files = false;  // the paper grids name checkpoints users download themselves
    auto spec = LoadGridSpec(file, options);
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status().ToString();
    auto again = ParseGridSpec(GridSpecToJson(*spec), options);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(*again == *spec) << name;
  }
  GridParseOptions no_files;
  no_files.check_files = false;
  auto math =
      LoadGridSpec(testing::SourceDir() / "experiments" / "grids" / "math500.json", no_files);
  EXPECT_EQ(math->dataset.kind, DatasetKind::kMath500);
  EXPECT_EQ(math->models.size(), 6u);
  EXPECT_EQ(math->n_samples, 256);
  EXPECT_EQ(math->k_values.back(), 256);
  ASSERT_TRUE(math->reward_model.has_value());
  EXPECT_EQ(math->reward_model->aggregation, "last");
}

TEST(EditDistanceTest, Basics) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("abc", ""), 3);
  EXPECT_EQ(ClosestMatch("temprature", {"temperatures", "top_p"}), "temperatures");
  EXPECT_EQ(ClosestMatch("xyz", {"temperatures", "top_p"}), std::nullopt);
}

}  // namespace
}  // namespace ttc::experiments
