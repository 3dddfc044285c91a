// Datasets: loading the problems of an experiment. MATH-500 (math500.jsonl, 500 problems) and the
// GSM8K test split (gsm8k_test.jsonl, 1319 problems) with the gold-answer rules of
// reference/evaluation.md §1, user JSONL files with a field mapping, and the synthetic task
// (experiments/synthetic.h); then the grid's `ids` and `limit` filters. ttc never downloads: a
// missing file is an error that names every place searched and where to get it.
//
// A dataset fingerprint is recorded with every experiment: the SHA-256 (hex) of a canonical
// serialisation of the problems (see DatasetFingerprint), so two runs can be compared only when
// they saw the same problems and golds.
//
// Pure functions; safe to call from any number of threads.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "experiments/grid.h"
#include "experiments/problem.h"

namespace ttc::experiments {

inline constexpr const char* kMath500FileName = "math500.jsonl";
inline constexpr const char* kGsm8kFileName = "gsm8k_test.jsonl";

// Where the official files come from, for error messages and docs.
inline constexpr const char* kDataHelp =
    "math500.jsonl is openai/prm800k prm800k/math_splits/test.jsonl (also the "
    "HuggingFaceH4/MATH-500 test "
    "split); gsm8k_test.jsonl is openai/grade-school-math grade_school_math/data/test.jsonl. Put "
    "them in one "
    "folder and set the grid's data_dir or $TTC_DATA_DIR to it (see docs/grid-spec.md)";

// The folders searched for a built-in dataset file, in order: `data_dir` alone when not empty;
// otherwise $TTC_DATA_DIR (when set), ./data, ../shared/data (relative to the current directory)
// and the shared/data folder this build was configured with.
std::vector<std::filesystem::path> DataDirCandidates(const std::string& data_dir);

// The first candidate folder holding `file_name`; kNotFound naming every folder searched and
// kDataHelp.
Result<std::filesystem::path> FindDataFile(std::string_view file_name, const std::string& data_dir);

// MATH gold rule (§1.1): the content of the last `\boxed{...}` of the solution, braces matched;
// nullopt when the solution has no complete box.
std::optional<std::string> LastBoxedContent(std::string_view solution);

// GSM8K gold rule (§1.2): the text after the last "####", stripped, with thousands commas removed.
std::string Gsm8kGold(std::string_view answer);

// MATH-500 file: {"problem","solution","answer","subject","level","unique_id"} per line. Ids are
// "math500/<unique_id>", gold = `answer` (checked against the last \boxed{} of the solution), task
// kMath.
Result<std::vector<Problem>> LoadMath500(const std::filesystem::path& file);

// GSM8K test file: {"question","answer"} per line. Ids are "gsm8k/<line>" (0-based), gold =
// Gsm8kGold(answer), solution = the worked answer, task kGsm8k.
Result<std::vector<Problem>> LoadGsm8k(const std::filesystem::path& file);

// A user JSONL file: one object per line (blank lines skipped) with the question, the gold answer
// (string or number) and optionally an id under the given field names. Ids are "<id field value>"
// or, without an id field, "<file stem>/<line>" (0-based over non-blank lines); they must be
// unique.
struct JsonlFields {
  std::string question = "question";
  std::string answer = "answer";
  std::string id;  // empty: line numbers
  Task task = Task::kMath;
};
Result<std::vector<Problem>> LoadUserJsonl(const std::filesystem::path& file,
                                           const JsonlFields& fields);

// Every problem a grid's dataset names: the source (built-in file found through data_dir, user
// file, or the synthetic generator), then `ids` (each must exist: an unknown id is an error naming
// it), then `limit`.
Result<std::vector<Problem>> LoadDataset(const DatasetSpec& spec, const std::string& data_dir);

// SHA-256 of bytes, lowercase hex (FIPS 180-4; implemented here because no crypto library is
// linked).
std::string Sha256Hex(std::string_view data);

// The dataset fingerprint: Sha256Hex over, for each problem in order, the fields id, question,
// gold_answer and task name, each written as its byte length in decimal, ':', the bytes, then '\n'.
// Order-sensitive; solution, subject, level and extra do not count (they do not change what is
// asked or what is graded).
std::string DatasetFingerprint(const std::vector<Problem>& problems);

}  // namespace ttc::experiments
