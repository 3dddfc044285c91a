// SAL / Qwen2.5-Math answer normalization and equivalence, reproduced without sympy:
// `strip_string`, `math_equal` and the answer post-processing of `extract_answer`
// (reference/evaluation.md §3.1, §4.3), with the sympy-backed `symbolic_equal` replaced by the
// exact/numeric LaTeX evaluator of experiments/latex (§4.5). This is the grader that reproduces
// public reference numbers, quirks included (unit words eat single letters, "and" is deleted
// everywhere, open and closed interval brackets are not told apart). Thread-safety: pure functions
// over immutable tables; safe to call from many threads.
#pragma once

#include <string>
#include <string_view>

namespace ttc::experiments {

// What SAL's extract_answer returns for "\boxed{answer}": the post-processing of §3.1 step 8 plus
// strip_string (SalStripString of experiments/extract.h, the one implementation, checked bit for
// bit against the Python reference).
std::string SalNormalizeAnswer(std::string_view answer);

// Qwen/SAL math_equal(prediction, reference) on already-normalized strings (evaluation.md §4.3).
bool SalMathEqual(std::string_view prediction, std::string_view reference);

}  // namespace ttc::experiments
