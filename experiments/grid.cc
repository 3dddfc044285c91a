// Grid spec parsing and validation (see grid.h). A small reader walks the document with the current
// field path, records every problem instead of stopping at the first, and rejects fields it was not
// told about.
#include "experiments/grid.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "experiments/dataset.h"
#include "experiments/synthetic.h"

namespace ttc::experiments {

using nlohmann::json;

const char* DatasetKindName(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::kMath500:
      return "math500";
    case DatasetKind::kGsm8k:
      return "gsm8k";
    case DatasetKind::kSynthetic:
      return "synthetic";
    case DatasetKind::kJsonl:
      return "jsonl";
  }
  return "?";
}

const char* PromptTemplateName(PromptTemplate t) {
  switch (t) {
    case PromptTemplate::kMath:
      return "math";
    case PromptTemplate::kGsm8k:
      return "gsm8k";
    case PromptTemplate::kCustom:
      return "custom";
  }
  return "?";
}

Task DatasetSpec::EffectiveTask() const {
  switch (kind) {
    case DatasetKind::kMath500:
      return Task::kMath;
    case DatasetKind::kGsm8k:
      return Task::kGsm8k;
    case DatasetKind::kSynthetic:
      return Task::kGsm8k;  // "The final answer is N" word problems
    case DatasetKind::kJsonl:
      return task;
  }
  return Task::kMath;
}

std::vector<int> DefaultKValues(int n_samples) {
  std::vector<int> ks;
  for (int64_t k = 1; k <= n_samples; k *= 2) ks.push_back(static_cast<int>(k));
  if (n_samples >= 1 && ks.back() != n_samples) ks.push_back(n_samples);
  return ks;
}

int EditDistance(std::string_view a, std::string_view b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates) {
  // Close enough to be a typo: at most 2 edits, or a third of the word for long names.
  const int limit = std::max<int>(2, static_cast<int>(word.size()) / 3);
  std::optional<std::string> best;
  int best_distance = limit + 1;
  for (const std::string& c : candidates) {
    const int d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  if (best || word.size() < 3) return best;
  // A shortened name ("max_samples" for "max_samples_per_unit") is far in edits but an obvious
  // intent.
  for (const std::string& c : candidates) {
    if (c.starts_with(word)) return c;
  }
  return std::nullopt;
}

namespace {

const std::vector<std::string> kDatasetNames = {"math500", "gsm8k", "synthetic", "jsonl"};
const std::vector<std::string> kTaskNames = {"math", "gsm8k"};
const std::vector<std::string> kTemplateNames = {"math", "gsm8k", "custom"};
const std::vector<std::string> kFormNames = {"sal", "meta"};
const std::vector<std::string> kChatTemplates = {"sal", "llama3-stock", "tokenizer-config", "none"};
const std::vector<std::string> kDtypes = {"bf16", "f16", "f32"};
const std::vector<std::string> kRopes = {"auto", "llama3", "plain"};
const std::vector<std::string> kBackends = {"auto", "cuda", "cpu"};
const std::vector<std::string> kStateDtypes = {"f32", "bf16", "f16"};
const std::vector<std::string> kAggregations = {"last", "min", "prod", "mean"};
const std::vector<std::string> kPrmTemplates = {"auto", "tokenizer-config", "llama3-stock"};
const std::vector<std::string> kGraders = {"sal", "strict"};

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += "'" + names[i] + "'";
  }
  return out;
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  auto m = ClosestMatch(word, candidates);
  return m ? fmt::format("; did you mean '{}'?", *m) : std::string();
}

bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// "%d %b %Y" as strftime writes it in the C locale: "26 Jul 2024".
bool ValidDate(std::string_view s) {
  static const std::vector<std::string> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 11 || s[2] != ' ' || s[6] != ' ') return false;
  auto digit = [&](size_t i) { return s[i] >= '0' && s[i] <= '9'; };
  if (!digit(0) || !digit(1) || !digit(7) || !digit(8) || !digit(9) || !digit(10)) return false;
  const int day = (s[0] - '0') * 10 + (s[1] - '0');
  if (day < 1 || day > 31) return false;
  return std::find(kMonths.begin(), kMonths.end(), std::string(s.substr(3, 3))) != kMonths.end();
}

// Reads one JSON object at `path`: typed getters record errors against "path.key", and Finish()
// reports every key that no getter asked about.
class ObjectReader {
 public:
  ObjectReader(const json& obj, std::string path, std::vector<std::string> allowed,
               std::vector<GridError>* errors)
      : obj_(obj), path_(std::move(path)), allowed_(std::move(allowed)), errors_(errors) {}

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  void Error(std::string_view key, std::string message) {
    errors_->push_back({Path(key), std::move(message)});
  }

  const json* Find(std::string_view key) const {
    auto it = obj_.find(std::string(key));
    return it == obj_.end() ? nullptr : &*it;
  }
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Each getter leaves *out unchanged (the default) when the key is absent or wrong; returns
  // whether a valid value was read.
  bool String(std::string_view key, std::string* out, bool required = false) {
    const json* v = Find(key);
    if (v == nullptr) {
      if (required) Error(key, "required field is missing");
      return false;
    }
    if (!v->is_string()) {
      Error(key, fmt::format("expected a string, got {}", TypeName(*v)));
      return false;
    }
    *out = v->get<std::string>();
    if (required && out->empty()) {
      Error(key, "must not be empty");
      return false;
    }
    return true;
  }

  bool Enum(std::string_view key, std::string* out, const std::vector<std::string>& allowed,
            bool required = false) {
    std::string value;
    if (!String(key, &value, required)) return false;
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      Error(key, fmt::format("'{}' is not one of {}{}", value, JoinNames(allowed),
                             DidYouMean(value, allowed)));
      return false;
    }
    *out = value;
    return true;
  }

  bool Int(std::string_view key, int64_t* out, int64_t lo, int64_t hi, bool required = false) {
    const json* v = Find(key);
    if (v == nullptr) {
      if (required) Error(key, "required field is missing");
      return false;
    }
    return ReadInt(*v, Path(key), out, lo, hi, errors_);
  }

  bool Int(std::string_view key, int* out, int64_t lo, int64_t hi, bool required = false) {
    int64_t v = *out;
    if (!Int(key, &v, lo, hi, required)) return false;
    *out = static_cast<int>(v);
    return true;
  }

  bool Uint64(std::string_view key, uint64_t* out) {
    const json* v = Find(key);
    if (v == nullptr) return false;
    if (v->is_number_unsigned()) {
      *out = v->get<uint64_t>();
      return true;
    }
    if (v->is_number_integer() && v->get<int64_t>() >= 0) {
      *out = static_cast<uint64_t>(v->get<int64_t>());
      return true;
    }
    Error(key, v->is_number_integer()
                   ? "must be >= 0"
                   : fmt::format("expected a non-negative integer, got {}", TypeName(*v)));
    return false;
  }

  bool Number(std::string_view key, double* out, double lo, double hi, bool lo_open,
              bool required = false) {
    const json* v = Find(key);
    if (v == nullptr) {
      if (required) Error(key, "required field is missing");
      return false;
    }
    return ReadNumber(*v, Path(key), out, lo, hi, lo_open, errors_);
  }

  // Unknown keys, each with a suggestion from the allowed ones.
  void Finish() {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (std::find(allowed_.begin(), allowed_.end(), it.key()) == allowed_.end()) {
        Error(it.key(), fmt::format("unknown field{}", DidYouMean(it.key(), allowed_)));
      }
    }
  }

  static std::string TypeName(const json& v) {
    if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
    if (v.is_number_float()) return fmt::format("the number {}", v.dump());
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_null()) return "null";
    if (v.is_array()) return "an array";
    return "an object";
  }

  static bool ReadInt(const json& v, const std::string& path, int64_t* out, int64_t lo, int64_t hi,
                      std::vector<GridError>* errors) {
    int64_t value;
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      value = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      value = v.get<int64_t>();
    } else {
      errors->push_back({path, fmt::format("expected an integer, got {}", TypeName(v))});
      return false;
    }
    if (value < lo || value > hi) {
      errors->push_back({path, fmt::format("{} is out of range [{}, {}]", value, lo, hi)});
      return false;
    }
    *out = value;
    return true;
  }

  static bool ReadNumber(const json& v, const std::string& path, double* out, double lo, double hi,
                         bool lo_open, std::vector<GridError>* errors) {
    if (!v.is_number()) {
      errors->push_back({path, fmt::format("expected a number, got {}", TypeName(v))});
      return false;
    }
    const double x = v.get<double>();
    if (!std::isfinite(x) || (lo_open ? x <= lo : x < lo) || x > hi) {
      errors->push_back({path, fmt::format("{} is out of range {}{}, {}]", v.dump(),
                                           lo_open ? "(" : "[", lo, hi)});
      return false;
    }
    *out = x;
    return true;
  }

 private:
  const json& obj_;
  std::string path_;
  std::vector<std::string> allowed_;
  std::vector<GridError>* errors_;
};

std::string ResolvePath(const std::string& p, const std::filesystem::path& base_dir) {
  if (p.empty()) return p;
  std::filesystem::path path(p);
  if (path.is_absolute()) return path.lexically_normal().string();
  std::filesystem::path base = base_dir.empty() ? std::filesystem::current_path() : base_dir;
  if (base.is_relative()) base = std::filesystem::absolute(base);
  return (base / path).lexically_normal().string();
}

// A Hugging Face checkpoint folder: it must hold config.json.
void CheckCheckpointDir(const std::string& path, const std::string& field,
                        std::vector<GridError>* errors) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    errors->push_back({field, fmt::format("{} does not exist", path)});
  } else if (!std::filesystem::is_directory(path, ec)) {
    errors->push_back(
        {field, fmt::format("{} is not a folder (expected a checkpoint folder)", path)});
  } else if (!std::filesystem::is_regular_file(std::filesystem::path(path) / "config.json", ec)) {
    errors->push_back({field, fmt::format("no config.json in {}", path)});
  }
}

void ParseDataset(const json& doc, const GridParseOptions& options, GridSpec* spec,
                  std::vector<GridError>* errors) {
  const json* d = doc.contains("dataset") ? &doc["dataset"] : nullptr;
  if (d == nullptr) {
    errors->push_back(
        {"dataset", "required field is missing (math500, gsm8k, synthetic or jsonl)"});
    return;
  }
  DatasetSpec& ds = spec->dataset;
  json shorthand;
  if (d->is_string()) {  // "dataset": "math500"
    shorthand = json{{"name", *d}};
    d = &shorthand;
  }
  if (!d->is_object()) {
    errors->push_back({"dataset", fmt::format("expected an object or a dataset name, got {}",
                                              ObjectReader::TypeName(*d))});
    return;
  }
  ObjectReader r(
      *d, "dataset",
      {"name", "limit", "ids", "path", "task", "fields", "count", "seed", "min_level", "max_level"},
      errors);
  std::string name;
  if (!r.Enum("name", &name, kDatasetNames, /*required=*/true)) {
    r.Finish();
    return;
  }
  ds.kind = name == "math500"     ? DatasetKind::kMath500
            : name == "gsm8k"     ? DatasetKind::kGsm8k
            : name == "synthetic" ? DatasetKind::kSynthetic
                                  : DatasetKind::kJsonl;
  r.Int("limit", &ds.limit, 0, 100000000);
  if (const json* ids = r.Find("ids")) {
    if (!ids->is_array()) {
      r.Error("ids", fmt::format("expected an array of problem ids, got {}",
                                 ObjectReader::TypeName(*ids)));
    } else {
      std::set<std::string> seen;
      for (size_t i = 0; i < ids->size(); ++i) {
        const json& id = (*ids)[i];
        const std::string p = fmt::format("dataset.ids[{}]", i);
        if (!id.is_string() || id.get<std::string>().empty()) {
          errors->push_back({p, "expected a non-empty string"});
        } else if (!seen.insert(id.get<std::string>()).second) {
          errors->push_back({p, fmt::format("duplicate id '{}'", id.get<std::string>())});
        } else {
          ds.ids.push_back(id.get<std::string>());
        }
      }
    }
  }
  const bool jsonl = ds.kind == DatasetKind::kJsonl;
  const bool synthetic = ds.kind == DatasetKind::kSynthetic;
  for (const char* key : {"path", "task", "fields"}) {
    if (!jsonl && r.Has(key))
      r.Error(key, fmt::format("only used with dataset.name 'jsonl', not '{}'", name));
  }
  for (const char* key : {"count", "seed", "min_level", "max_level"}) {
    if (!synthetic && r.Has(key)) {
      r.Error(key, fmt::format("only used with dataset.name 'synthetic', not '{}'", name));
    }
  }
  if (jsonl) {
    if (r.String("path", &ds.path, /*required=*/true)) {
      ds.path = ResolvePath(ds.path, options.base_dir);
      std::error_code ec;
      if (options.check_files && !std::filesystem::is_regular_file(ds.path, ec)) {
        r.Error("path", fmt::format("no such file: {}", ds.path));
      }
    }
    std::string task;
    if (r.Enum("task", &task, kTaskNames)) ds.task = task == "math" ? Task::kMath : Task::kGsm8k;
    if (const json* f = r.Find("fields")) {
      if (!f->is_object()) {
        r.Error("fields", fmt::format("expected an object {{question, answer, id}}, got {}",
                                      ObjectReader::TypeName(*f)));
      } else {
        ObjectReader fr(*f, "dataset.fields", {"question", "answer", "id"}, errors);
        fr.String("question", &ds.question_field);
        fr.String("answer", &ds.answer_field);
        fr.String("id", &ds.id_field);
        if (ds.question_field.empty()) fr.Error("question", "must not be empty");
        if (ds.answer_field.empty()) fr.Error("answer", "must not be empty");
        fr.Finish();
      }
    }
  }
  if (synthetic) {
    r.Int("count", &ds.count, 1, 1000000);
    r.Uint64("seed", &ds.seed);
    const bool min_ok = r.Int("min_level", &ds.min_level, kSyntheticMinLevel, kSyntheticMaxLevel);
    const bool max_ok = r.Int("max_level", &ds.max_level, kSyntheticMinLevel, kSyntheticMaxLevel);
    if (min_ok && max_ok && ds.min_level > ds.max_level) {
      r.Error("min_level",
              fmt::format("min_level {} is greater than max_level {}", ds.min_level, ds.max_level));
    } else if (!r.Has("min_level") && max_ok && ds.max_level < ds.min_level) {
      r.Error("max_level", fmt::format("max_level {} is below the default min_level {}",
                                       ds.max_level, ds.min_level));
    } else if (!r.Has("max_level") && min_ok && ds.min_level > ds.max_level) {
      r.Error("min_level",
              fmt::format("min_level {} is above the default max_level {}; set max_level too",
                          ds.min_level, ds.max_level));
    }
  }
  r.Finish();
}

void ParsePrompt(const json& doc, GridSpec* spec, std::vector<GridError>* errors) {
  PromptSpec& p = spec->prompt;
  const Task task = spec->dataset.EffectiveTask();
  p.template_kind = task == Task::kMath ? PromptTemplate::kMath : PromptTemplate::kGsm8k;
  auto it = doc.find("prompt");
  if (it == doc.end()) return;
  if (!it->is_object()) {
    errors->push_back(
        {"prompt", fmt::format("expected an object, got {}", ObjectReader::TypeName(*it))});
    return;
  }
  ObjectReader r(*it, "prompt", {"template", "form", "text", "system", "chat_template", "date"},
                 errors);
  std::string name;
  if (r.Enum("template", &name, kTemplateNames)) {
    p.template_kind = name == "math"    ? PromptTemplate::kMath
                      : name == "gsm8k" ? PromptTemplate::kGsm8k
                                        : PromptTemplate::kCustom;
  }
  const std::string used = PromptTemplateName(p.template_kind);
  if (r.Has("form")) {
    if (p.template_kind != PromptTemplate::kMath) {
      r.Error("form", fmt::format("only used with prompt.template 'math', not '{}'", used));
    } else {
      r.Enum("form", &p.form, kFormNames);
    }
  }
  if (p.template_kind == PromptTemplate::kCustom) {
    if (r.String("text", &p.text, /*required=*/true) &&
        p.text.find("{question}") == std::string::npos) {
      r.Error("text", "a custom prompt must contain {question}, where the problem text goes");
    }
    r.String("system", &p.system);
  } else {
    for (const char* key : {"text", "system"}) {
      if (r.Has(key))
        r.Error(key, fmt::format("only used with prompt.template 'custom', not '{}'", used));
    }
  }
  r.Enum("chat_template", &p.chat_template, kChatTemplates);
  std::string date;
  if (r.String("date", &date)) {
    if (!ValidDate(date)) {
      r.Error("date",
              fmt::format("'{}' is not a date like '26 Jul 2024' (strftime \"%d %b %Y\")", date));
    } else {
      p.date = date;
    }
  }
  r.Finish();
}

// The CUDA backend multiplies bf16 weight matrices only (engine::WeightDType): f16 and f32 weights
// run on the CPU backend.
bool CpuOnlyDtype(const std::string& dtype) { return dtype != "bf16"; }

// A model pinned to cuda with CPU-only weights could never run.
void CheckCudaDtype(ObjectReader& r, const std::string& dtype, const std::string& backend) {
  if (backend == "cuda" && CpuOnlyDtype(dtype)) {
    r.Error("dtype",
            fmt::format("'{}' needs the cpu backend (or auto): the cuda backend multiplies "
                        "bf16 weights",
                        dtype));
  }
}

void ParseModels(const json& doc, const GridParseOptions& options, GridSpec* spec,
                 std::vector<GridError>* errors) {
  auto it = doc.find("models");
  if (it == doc.end()) {
    errors->push_back({"models", "required field is missing (a list of {name, path})"});
    return;
  }
  if (!it->is_array()) {
    errors->push_back({"models", fmt::format("expected an array of models, got {}",
                                             ObjectReader::TypeName(*it))});
    return;
  }
  if (it->empty()) {
    errors->push_back({"models", "at least one model is needed"});
    return;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string path = fmt::format("models[{}]", i);
    if (!m.is_object()) {
      errors->push_back({path, fmt::format("expected an object {{name, path, ...}}, got {}",
                                           ObjectReader::TypeName(m))});
      continue;
    }
    ObjectReader r(
        m, path, {"name", "path", "dtype", "rope", "backend", "max_batch", "state_dtype"}, errors);
    ModelSpec model;
    if (r.String("name", &model.name, /*required=*/true)) {
      if (!ValidName(model.name)) {
        r.Error("name",
                fmt::format("'{}' must be 1-64 characters from A-Z a-z 0-9 . _ -", model.name));
      } else if (!names.insert(model.name).second) {
        r.Error("name", fmt::format("duplicate model name '{}'", model.name));
      }
    }
    if (r.String("path", &model.path, /*required=*/true)) {
      model.path = ResolvePath(model.path, options.base_dir);
      if (options.check_files) CheckCheckpointDir(model.path, r.Path("path"), errors);
    }
    r.Enum("dtype", &model.dtype, kDtypes);
    r.Enum("rope", &model.rope, kRopes);
    if (r.Enum("backend", &model.backend, kBackends)) CheckCudaDtype(r, model.dtype, model.backend);
    r.Int("max_batch", &model.max_batch, 0, 65536);
    if (r.Enum("state_dtype", &model.state_dtype, kStateDtypes) && model.state_dtype != "f32") {
      if (model.backend == "cpu") {
        r.Error("state_dtype",
                fmt::format("{} needs the cuda backend (backend is 'cpu')", model.state_dtype));
      } else if (CpuOnlyDtype(model.dtype)) {
        r.Error("state_dtype", fmt::format("{} needs the cuda backend, which multiplies bf16 "
                                           "weights (dtype is '{}')",
                                           model.state_dtype, model.dtype));
      }
    }
    r.Finish();
    spec->models.push_back(std::move(model));
  }
}

void ParseRewardModel(const json& doc, const GridParseOptions& options, GridSpec* spec,
                      std::vector<GridError>* errors) {
  auto it = doc.find("reward_model");
  if (it == doc.end() || it->is_null()) return;
  if (!it->is_object()) {
    errors->push_back({"reward_model", fmt::format("expected an object {{path, ...}}, got {}",
                                                   ObjectReader::TypeName(*it))});
    return;
  }
  ObjectReader r(*it, "reward_model",
                 {"name", "path", "aggregation", "dtype", "backend", "chat_template"}, errors);
  RewardModelSpec rm;
  if (r.String("name", &rm.name) && !ValidName(rm.name)) {
    r.Error("name", fmt::format("'{}' must be 1-64 characters from A-Z a-z 0-9 . _ -", rm.name));
  }
  if (r.String("path", &rm.path, /*required=*/true)) {
    rm.path = ResolvePath(rm.path, options.base_dir);
    if (options.check_files) CheckCheckpointDir(rm.path, r.Path("path"), errors);
  }
  r.Enum("aggregation", &rm.aggregation, kAggregations);
  r.Enum("dtype", &rm.dtype, kDtypes);
  if (r.Enum("backend", &rm.backend, kBackends)) CheckCudaDtype(r, rm.dtype, rm.backend);
  r.Enum("chat_template", &rm.chat_template, kPrmTemplates);
  r.Finish();
  spec->reward_model = std::move(rm);
}

void ParseSampling(ObjectReader& r, const json& doc, GridSpec* spec,
                   std::vector<GridError>* errors) {
  if (auto it = doc.find("temperatures"); it != doc.end()) {
    if (!it->is_array()) {
      r.Error("temperatures",
              fmt::format("expected an array of numbers, got {}", ObjectReader::TypeName(*it)));
    } else if (it->empty()) {
      r.Error("temperatures", "at least one temperature is needed");
    } else {
      spec->temperatures.clear();
      for (size_t i = 0; i < it->size(); ++i) {
        double t;
        const std::string path = fmt::format("temperatures[{}]", i);
        if (!ObjectReader::ReadNumber((*it)[i], path, &t, 0.0, 5.0, /*lo_open=*/false, errors))
          continue;
        if (std::find(spec->temperatures.begin(), spec->temperatures.end(), t) !=
            spec->temperatures.end()) {
          errors->push_back({path, fmt::format("duplicate temperature {}", t)});
          continue;
        }
        spec->temperatures.push_back(t);
      }
    }
  }
  const bool n_ok = r.Int("n_samples", &spec->n_samples, 1, 65536) || !r.Has("n_samples");
  if (auto it = doc.find("k_values"); it != doc.end()) {
    if (!it->is_array()) {
      r.Error("k_values",
              fmt::format("expected an array of integers, got {}", ObjectReader::TypeName(*it)));
    } else if (it->empty()) {
      r.Error("k_values",
              "at least one k is needed (or leave the field out for 1, 2, 4, ..., n_samples)");
    } else {
      for (size_t i = 0; i < it->size(); ++i) {
        int64_t k;
        const std::string path = fmt::format("k_values[{}]", i);
        if (!ObjectReader::ReadInt((*it)[i], path, &k, 1, 65536, errors)) continue;
        if (n_ok && k > spec->n_samples) {
          errors->push_back(
              {path, fmt::format("k = {} is larger than n_samples = {}", k, spec->n_samples)});
          continue;
        }
        if (!spec->k_values.empty() && k <= spec->k_values.back()) {
          errors->push_back({path, fmt::format("k values must be strictly increasing ({} after {})",
                                               k, spec->k_values.back())});
          continue;
        }
        spec->k_values.push_back(static_cast<int>(k));
      }
    }
  } else {
    spec->k_values = DefaultKValues(spec->n_samples);
  }
  if (const json* v = r.Find("top_k")) {
    int64_t k;
    if (ObjectReader::ReadInt(*v, "top_k", &k, -1, 1000000, errors)) {
      if (k == 0) {
        r.Error("top_k", "0 is not allowed: use -1 for no top-k cut, or a positive k");
      } else {
        spec->top_k = static_cast<int>(k);
      }
    }
  }
  r.Number("top_p", &spec->top_p, 0.0, 1.0, /*lo_open=*/true);
  r.Int("max_new_tokens", &spec->max_new_tokens, 1, 131072);
  r.Uint64("seed", &spec->seed);
}

void ParseUnits(const json& doc, GridSpec* spec, std::vector<GridError>* errors) {
  auto it = doc.find("units");
  if (it == doc.end()) return;
  if (!it->is_object()) {
    errors->push_back(
        {"units", fmt::format("expected an object, got {}", ObjectReader::TypeName(*it))});
    return;
  }
  ObjectReader r(*it, "units", {"max_samples_per_unit", "target_seconds_per_unit"}, errors);
  r.Int("max_samples_per_unit", &spec->units.max_samples_per_unit, 1, 65536);
  r.Number("target_seconds_per_unit", &spec->units.target_seconds_per_unit, 0.0, 86400.0,
           /*lo_open=*/true);
  r.Finish();
}

// Built-in datasets must be findable now, not when the first worker asks.
void CheckDataFiles(const GridSpec& spec, std::vector<GridError>* errors) {
  const char* file = spec.dataset.kind == DatasetKind::kMath500 ? kMath500FileName
                     : spec.dataset.kind == DatasetKind::kGsm8k ? kGsm8kFileName
                                                                : nullptr;
  if (file == nullptr) return;
  auto found = FindDataFile(file, spec.data_dir);
  if (!found.ok())
    errors->push_back(
        {spec.data_dir.empty() ? "dataset.name" : "data_dir", found.status().message()});
}

}  // namespace

std::vector<GridError> CheckGridSpec(const json& doc, const GridParseOptions& options,
                                     GridSpec* out) {
  std::vector<GridError> errors;
  GridSpec spec;
  if (!doc.is_object()) {
    errors.push_back(
        {"", fmt::format("a grid spec is a JSON object, got {}", ObjectReader::TypeName(doc))});
    return errors;
  }
  ObjectReader r(doc, "",
                 {"name", "description", "dataset", "data_dir", "prompt", "models", "temperatures",
                  "n_samples", "k_values", "top_k", "top_p", "max_new_tokens", "seed",
                  "reward_model", "grader", "units"},
                 &errors);
  if (r.String("name", &spec.name, /*required=*/true) && !ValidName(spec.name)) {
    r.Error("name", fmt::format("'{}' must be 1-64 characters from A-Z a-z 0-9 . _ -", spec.name));
  }
  r.String("description", &spec.description);
  ParseDataset(doc, options, &spec, &errors);
  if (r.String("data_dir", &spec.data_dir)) {
    spec.data_dir = ResolvePath(spec.data_dir, options.base_dir);
    std::error_code ec;
    if (options.check_files && !spec.data_dir.empty() &&
        !std::filesystem::is_directory(spec.data_dir, ec)) {
      r.Error("data_dir", fmt::format("{} is not a folder", spec.data_dir));
    }
  }
  ParsePrompt(doc, &spec, &errors);
  ParseModels(doc, options, &spec, &errors);
  ParseSampling(r, doc, &spec, &errors);
  ParseRewardModel(doc, options, &spec, &errors);
  r.Enum("grader", &spec.grader, kGraders);
  ParseUnits(doc, &spec, &errors);
  r.Finish();
  if (options.check_files && errors.empty()) CheckDataFiles(spec, &errors);
  if (out != nullptr) *out = std::move(spec);
  return errors;
}

Result<GridSpec> ParseGridSpec(const json& doc, const GridParseOptions& options) {
  GridSpec spec;
  std::vector<GridError> errors = CheckGridSpec(doc, options, &spec);
  if (errors.empty()) return spec;
  std::string message =
      fmt::format("{} problem{} in the grid spec:", errors.size(), errors.size() == 1 ? "" : "s");
  for (const GridError& e : errors) message += "\n  " + e.ToString();
  return InvalidArgument("{}", message);
}

Result<GridSpec> ParseGridSpecText(std::string_view text, std::string_view source,
                                   const GridParseOptions& options) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into line:column so editors can jump there.
    const size_t byte = e.byte == 0 ? 0 : std::min<size_t>(e.byte - 1, text.size());
    size_t line = 1, column = 1;
    for (size_t i = 0; i < byte; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    return InvalidArgument("{}:{}:{}: invalid JSON (byte {}): {}", source, line, column, e.byte,
                           what);
  }
  auto spec = ParseGridSpec(doc, options);
  if (!spec.ok()) return spec.status().WithContext(std::string(source));
  return spec;
}

Result<GridSpec> LoadGridSpec(const std::filesystem::path& file, GridParseOptions options) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
      return NotFound("grid file {} does not exist", file.string());
    return IoError("cannot read grid file {}", file.string());
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return IoError("reading grid file {} failed", file.string());
  if (options.base_dir.empty()) options.base_dir = std::filesystem::absolute(file).parent_path();
  return ParseGridSpecText(buffer.str(), file.string(), options);
}

namespace {
WorkerKind WorkersFor(const std::string& backend, const std::string& state_dtype,
                      const std::string& dtype) {
  if (backend == "cuda" || state_dtype != "f32") return WorkerKind::kGpu;
  return backend == "cpu" || CpuOnlyDtype(dtype) ? WorkerKind::kCpu : WorkerKind::kAny;
}
}  // namespace

WorkerKind ModelWorkers(const ModelSpec& model) {
  return WorkersFor(model.backend, model.state_dtype, model.dtype);
}
WorkerKind ModelWorkers(const RewardModelSpec& model) {
  return WorkersFor(model.backend, "f32", model.dtype);
}

std::vector<std::pair<std::string, WorkerKind>> GridWorkers(const GridSpec& spec) {
  std::vector<std::pair<std::string, WorkerKind>> out;
  for (const auto& m : spec.models) out.emplace_back(m.name, ModelWorkers(m));
  if (spec.reward_model)
    out.emplace_back(spec.reward_model->name, ModelWorkers(*spec.reward_model));
  return out;
}

json GridSpecToJson(const GridSpec& spec) {
  json doc = json::object();
  doc["name"] = spec.name;
  doc["description"] = spec.description;
  const DatasetSpec& ds = spec.dataset;
  json d = {{"name", DatasetKindName(ds.kind)}, {"limit", ds.limit}, {"ids", ds.ids}};
  if (ds.kind == DatasetKind::kJsonl) {
    d["path"] = ds.path;
    d["task"] = TaskName(ds.task);
    d["fields"] = {
        {"question", ds.question_field}, {"answer", ds.answer_field}, {"id", ds.id_field}};
  } else if (ds.kind == DatasetKind::kSynthetic) {
    d["count"] = ds.count;
    d["seed"] = ds.seed;
    d["min_level"] = ds.min_level;
    d["max_level"] = ds.max_level;
  }
  doc["dataset"] = std::move(d);
  doc["data_dir"] = spec.data_dir;
  json p = {{"template", PromptTemplateName(spec.prompt.template_kind)},
            {"chat_template", spec.prompt.chat_template},
            {"date", spec.prompt.date}};
  if (spec.prompt.template_kind == PromptTemplate::kMath) p["form"] = spec.prompt.form;
  if (spec.prompt.template_kind == PromptTemplate::kCustom) {
    p["text"] = spec.prompt.text;
    p["system"] = spec.prompt.system;
  }
  doc["prompt"] = std::move(p);
  json models = json::array();
  for (const ModelSpec& m : spec.models) {
    models.push_back({{"name", m.name},
                      {"path", m.path},
                      {"dtype", m.dtype},
                      {"rope", m.rope},
                      {"backend", m.backend},
                      {"max_batch", m.max_batch},
                      {"state_dtype", m.state_dtype}});
  }
  doc["models"] = std::move(models);
  doc["temperatures"] = spec.temperatures;
  doc["n_samples"] = spec.n_samples;
  doc["k_values"] = spec.k_values;
  doc["top_k"] = spec.top_k;
  doc["top_p"] = spec.top_p;
  doc["max_new_tokens"] = spec.max_new_tokens;
  doc["seed"] = spec.seed;
  if (spec.reward_model) {
    const RewardModelSpec& rm = *spec.reward_model;
    doc["reward_model"] = {
        {"name", rm.name},   {"path", rm.path},       {"aggregation", rm.aggregation},
        {"dtype", rm.dtype}, {"backend", rm.backend}, {"chat_template", rm.chat_template}};
  }
  doc["grader"] = spec.grader;
  doc["units"] = {{"max_samples_per_unit", spec.units.max_samples_per_unit},
                  {"target_seconds_per_unit", spec.units.target_seconds_per_unit}};
  return doc;
}

}  // namespace ttc::experiments
