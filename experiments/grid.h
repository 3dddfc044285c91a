// The grid spec: what an experiment is. A JSON document names the problems (a dataset), the prompt,
// the models and their engine options, the sampling settings (temperatures, N samples, top-k/top-p,
// max new tokens, seed), the k values to report, an optional process reward model, the grader mode
// and hints for cutting the grid into units. The coordinator parses it on `ttc submit`, stores
// GridSpecToJson(spec) with the experiment, and plans from it.
//
// Parsing collects ALL problems at once, each with its JSON field path ("models[1].path: no
// config.json in /x/y"); unknown fields are rejected with a did-you-mean suggestion.
// docs/grid-spec.md is the user documentation.
//
// Fields and defaults (absent field -> default). Paths resolve against the grid file's folder.
// clang-format off
//   field                         type      default            notes
//   name                          string    (required)         [A-Za-z0-9._-]{1,64}
//   description                   string    ""
//   dataset  (or "dataset": "math500" shorthand)
//   dataset.name                  string    (required)         math500 | gsm8k | synthetic | jsonl
//   dataset.limit                 int       0 (all)            keep the first `limit` (after ids)
//   dataset.ids                   [string]  [] (all)           keep only these ids, file order
//   dataset.path                  string    -                  jsonl: the file (required)
//   dataset.task                  string    "math"             jsonl: math | gsm8k
//   dataset.fields.question       string    "question"         jsonl: field with the question
//   dataset.fields.answer         string    "answer"           jsonl: field with the gold answer
//   dataset.fields.id             string    "" (line number)   jsonl: field with a unique id
//   dataset.count                 int       100                synthetic: 1..1000000
//   dataset.seed                  uint64    0                  synthetic
//   dataset.min_level, max_level  int       1, 3               synthetic: 1 <= min <= max <= 5
//   data_dir                      string    "" (search)        math500.jsonl, gsm8k_test.jsonl;
//                                                              "": $TTC_DATA_DIR, ../shared/data
//   prompt.template               string    by dataset task    math | gsm8k | custom
//   prompt.form                   string    "sal"              math: sal (system + user turn) |
//                                                              meta (user "INSTR\n\nProblem: Q")
//   prompt.text                   string    -                  custom (required): has {question}
//   prompt.system                 string    ""                 custom: optional system message
//   prompt.chat_template          string    "sal"              sal | llama3-stock |
//                                                              tokenizer-config | none (raw text)
//   prompt.date                   string    "26 Jul 2024"      "Today Date:" line, "%d %b %Y"
//   models                        [object]  (required)         at least one
//   models[i].name                string    (required)         unique, [A-Za-z0-9._-]{1,64}
//   models[i].path                string    (required)         folder with config.json
//   models[i].dtype               string    "bf16"             bf16 | f16 | f32: weight matrices
//                                                              (engine::WeightDType; f16 and f32
//                                                              need the cpu backend)
//   models[i].rope                string    "auto"             auto | llama3 | plain
//   models[i].backend             string    "auto"             auto | cuda | cpu
//   models[i].max_batch           int       0 (engine)         0..65536
//   models[i].state_dtype         string    "f32"              f32 | bf16 | f16 (SSM state; the
//                                                              16-bit ones CUDA only)
//   temperatures                  [number]  [0.8]              each in [0, 5], no duplicates
//   n_samples                     int       16                 1..65536 per (model, temp, problem)
//   k_values                      [int]     1,2,4..,n          in 1..n_samples, increasing
//   top_k                         int       -1 (all)           -1 or 1..1000000
//   top_p                         number    1.0                (0, 1]
//   max_new_tokens                int       2048               1..131072
//   seed                          uint64    0                  experiment seed
//   reward_model                  object    absent (no PRM)
//   reward_model.name             string    "prm"              [A-Za-z0-9._-]{1,64}
//   reward_model.path             string    (required)         folder with config.json
//   reward_model.aggregation      string    "last"             last | min | prod | mean
//   reward_model.dtype            string    "bf16"             as models[i].dtype
//   reward_model.backend          string    "auto"             auto | cuda | cpu
//   reward_model.chat_template    string    "auto"             auto (read tokenizer_config.json) |
//                                                              tokenizer-config | llama3-stock
//   grader                        string    "sal"              sal | strict
//   units.max_samples_per_unit    int       64                 1..65536
//   units.target_seconds_per_unit number    120                (0, 86400]
// clang-format on
//
// Value types; no shared state. Safe to use from several threads as long as each object has one
// writer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "experiments/problem.h"

namespace ttc::experiments {

enum class DatasetKind { kMath500, kGsm8k, kSynthetic, kJsonl };
const char* DatasetKindName(DatasetKind kind);  // "math500", "gsm8k", "synthetic", "jsonl"

struct DatasetSpec {
  DatasetKind kind = DatasetKind::kMath500;
  int limit = 0;  // 0: all problems
  std::vector<std::string>
      ids;  // empty: all; else only these (full ids such as "math500/test/algebra/1.json"
            // or the source's own id such as "test/algebra/1.json")
  // jsonl
  std::string path;
  Task task = Task::kMath;
  std::string question_field = "question";
  std::string answer_field = "answer";
  std::string id_field;  // empty: ids are "<file stem>/<line number>"
  // synthetic
  int count = 100;
  uint64_t seed = 0;
  int min_level = 1;
  int max_level = 3;

  // The task of the problems this dataset yields (prompt and extractor family).
  Task EffectiveTask() const;

  bool operator==(const DatasetSpec&) const = default;
};

enum class PromptTemplate { kMath, kGsm8k, kCustom };
const char* PromptTemplateName(PromptTemplate t);  // "math", "gsm8k", "custom"

struct PromptSpec {
  PromptTemplate template_kind = PromptTemplate::kMath;  // default: by the dataset's task
  std::string form = "sal";                              // math: "sal" | "meta"
  std::string text;                                      // custom: user turn with {question}
  std::string system;                                    // custom: optional system message
  std::string chat_template =
      "sal";  // engine/chat.h names: sal | llama3-stock | tokenizer-config; or none
  std::string date = "26 Jul 2024";

  bool operator==(const PromptSpec&) const = default;
};

struct ModelSpec {
  std::string name;
  std::string path;
  std::string dtype = "bf16";    // bf16 | f16 | f32
  std::string rope = "auto";     // auto | llama3 | plain
  std::string backend = "auto";  // auto | cuda | cpu
  int max_batch = 0;             // 0: the engine decides
  // The SSM layers' recurrent state between decode steps (engine::StateDType): f32 | bf16.
  std::string state_dtype = "f32";

  bool operator==(const ModelSpec&) const = default;
};

struct RewardModelSpec {
  std::string name = "prm";
  std::string path;
  std::string aggregation = "last";  // last | min | prod | mean
  std::string dtype = "bf16";
  std::string backend = "auto";
  std::string chat_template = "auto";  // auto | tokenizer-config (Llama 3.0) | llama3-stock (3.1)

  bool operator==(const RewardModelSpec&) const = default;
};

struct UnitSizing {
  int max_samples_per_unit = 64;
  double target_seconds_per_unit = 120.0;

  bool operator==(const UnitSizing&) const = default;
};

struct GridSpec {
  std::string name;
  std::string description;
  DatasetSpec dataset;
  std::string data_dir;  // empty: search ($TTC_DATA_DIR, ../shared/data)
  PromptSpec prompt;
  std::vector<ModelSpec> models;
  std::vector<double> temperatures = {0.8};
  int n_samples = 16;
  std::vector<int> k_values;  // filled with the default by parsing when absent
  int top_k = -1;
  double top_p = 1.0;
  int max_new_tokens = 2048;
  uint64_t seed = 0;
  std::optional<RewardModelSpec> reward_model;
  std::string grader = "sal";  // "sal" | "strict"
  UnitSizing units;

  bool operator==(const GridSpec&) const = default;
};

// One problem in a grid document.
struct GridError {
  std::string path;     // JSON field path: "models[1].path", "" for the document itself
  std::string message;  // what is wrong and, where possible, how to fix it
  std::string ToString() const { return path.empty() ? message : path + ": " + message; }
};

struct GridParseOptions {
  // Check the file system: models[i].path and reward_model.path hold config.json, dataset.path and
  // the built-in dataset files exist. Off for specs already accepted elsewhere (the coordinator
  // re-reading a stored spec).
  bool check_files = true;
  // Relative paths in the document (models, reward model, dataset.path, data_dir) resolve against
  // this folder and are stored absolute. Empty: the current directory.
  std::filesystem::path base_dir;
};

// Every problem of a document, in document order. Empty when the document is a valid grid; *spec
// (when not null) receives the parsed spec with defaults filled in (meaningful only when there are
// no errors).
std::vector<GridError> CheckGridSpec(const nlohmann::json& doc, const GridParseOptions& options,
                                     GridSpec* spec);

// CheckGridSpec as a Result: the Status (kInvalidArgument) lists every error, one "path: message"
// per line.
Result<GridSpec> ParseGridSpec(const nlohmann::json& doc, const GridParseOptions& options = {});

// Parses JSON text; a syntax error names `source` (a file name) with line, column and byte offset.
Result<GridSpec> ParseGridSpecText(std::string_view text, std::string_view source,
                                   const GridParseOptions& options = {});

// Reads and parses a grid file; relative paths resolve against the file's folder unless
// options.base_dir is set.
Result<GridSpec> LoadGridSpec(const std::filesystem::path& file, GridParseOptions options = {});

// The spec as a complete JSON document (every field, defaults included).
// ParseGridSpec(GridSpecToJson(s)) == s.
nlohmann::json GridSpecToJson(const GridSpec& spec);

// Which workers may run a model's units: a "cuda" backend or a bf16 recurrent state (only the CUDA
// backend keeps one) needs GPU workers, a "cpu" backend or f16 / f32 weights (the CUDA backend
// multiplies bf16 only) CPU workers, otherwise any worker. The coordinator claims by it; `ttc run`
// starts workers by it.
enum class WorkerKind { kAny, kGpu, kCpu };
WorkerKind ModelWorkers(const ModelSpec& model);
WorkerKind ModelWorkers(const RewardModelSpec& model);
// Every model of the grid (the reward model too): name and WorkerKind.
std::vector<std::pair<std::string, WorkerKind>> GridWorkers(const GridSpec& spec);

// The default k values: 1, 2, 4, ... up to n_samples, plus n_samples itself when it is not a power
// of two.
std::vector<int> DefaultKValues(int n_samples);

// Levenshtein distance; the closest candidate within a small distance, else the first candidate
// that starts with `word` (for "did you mean ...?").
int EditDistance(std::string_view a, std::string_view b);
std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates);

}  // namespace ttc::experiments
