// Answer-equivalence graders: is a predicted final answer the gold answer? Two modes:
//  - kSal: search-and-learn / Qwen2.5-Math strip_string + math_equal with a numeric evaluator in
//  place of sympy;
//    what reproduces public reference numbers (reference/evaluation.md §4.3).
//  - kStrict: a LaTeX parser and exact/numeric evaluator that aims higher than Math-Verify (§4.4,
//  §4.5):
//    rationals and big integers, surds, pi, e, i, trig and logs, tuples, intervals, sets, matrices,
//    equations, inequalities, percent, units, base-n numerals, randomized identity testing for free
//    variables.
// GSM8K answers go through the same machinery (numbers with thousands separators, currency, units).
// Every call is deterministic and bounded in time and memory: garbage, deep nesting and huge
// numbers grade as "not equivalent", never hang or crash. Thread-safety: all functions are pure;
// call them from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "experiments/problem.h"

namespace ttc::experiments {

enum class GraderMode { kSal, kStrict };

const char* GraderModeName(GraderMode mode);
Result<GraderMode> ParseGraderMode(std::string_view name);

struct GradeResult {
  bool equivalent = false;
  std::string gold_normalized;  // the gold as the grader saw it after normalization
  std::string pred_normalized;  // the prediction after normalization
};

// Grades `pred` against `gold`. Both are final answers (a bare answer, "\boxed{..}" or a short
// "$..$" sentence in strict mode); run an extractor first on whole completions.
GradeResult Grade(std::string_view gold, std::string_view pred, Task task, GraderMode mode);

bool AnswersEquivalent(std::string_view gold, std::string_view pred, Task task, GraderMode mode);

// Groups many answers of one problem into equivalence classes: returns a class id per answer,
// numbered in order of first appearance (answer i joins the first earlier class whose first member
// it is equivalent to, as the first member being the gold). Each answer is normalized and parsed
// once, identical normal forms are grouped without comparison, so n answers in g classes cost
// O(n·g) cheap comparisons.
std::vector<int> GroupEquivalent(const std::vector<std::string>& answers, Task task,
                                 GraderMode mode);

}  // namespace ttc::experiments
