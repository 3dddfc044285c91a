// Answer extraction: reading the final answer out of a model's completion (reference/evaluation.md
// §3).
//
// ExtractMathAnswerSal is the search-and-learn / HF-fork `extract_answer(pred, "math")` followed by
// Qwen's `strip_string`, reproduced bit-exactly including its quirks (the plain substring "boxed"
// matches, an unbalanced
// `\boxed{` keeps everything to the end, `\boxed 5$` reads up to the next `$`, the unit-word
// regexes eat single letters, every "and" substring is removed, ...): this is what produced the
// public reference numbers, so it is the default. The fallbacks (ExtractOptions) only ever change
// an answer the reference would leave empty. ExtractGsm8kAnswer is the recommended GSM8K extractor
// of §3.2 (anchor "final answer is", then the last \boxed{}, then the last number), returning a
// normalised decimal string.
//
// Text is UTF-8; invalid UTF-8 bytes are read as U+FFFD, as Python's decode(errors="replace")
// would. Pure functions over immutable tables compiled once: safe to call from any number of
// threads at once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "experiments/problem.h"

namespace ttc::experiments {

struct ExtractOptions {
  // MATH: when the SAL extractor returns "", try the last `\boxed{...}`/`\fbox{...}` with brace
  // matching, then the content of the last LaTeX math environment ($...$, \(...\), \[...\],
  // $$...$$), both passed through SalStripString. Off by default: the reference-compatible
  // behaviour.
  bool math_fallbacks = false;
  // GSM8K: when no "final answer is N" anchor is found, fall back to the last \boxed{} content and
  // then to the last number in the text (§3.2 steps 2-3). On by default: this is the recommended
  // extractor.
  bool gsm8k_fallbacks = true;
};

// SAL `extract_answer(completion, "math")` (qwen_math_parser.py, §3.1 steps 1-8), bit-exact.
std::string ExtractMathAnswerSal(std::string_view completion);

// Qwen2.5-Math / SAL `strip_string(s, skip_unit=False)` (§4.3 steps 1-24), bit-exact, including
// word2number's `word_to_num` for step 8. Exposed for the graders, which apply it to gold answers
// too.
std::string SalStripString(std::string_view s);

// ExtractMathAnswerSal, plus the fallbacks when options.math_fallbacks is set and SAL found
// nothing.
std::string ExtractMathAnswer(std::string_view completion, const ExtractOptions& options = {});

// The recommended GSM8K extractor (§3.2): the number after the last case-insensitive "final answer
// is" (skipping
// ':', spaces, '$', '\(' and '\boxed{'), else (with fallbacks) the last \boxed{} content, else the
// last number. The result has ',' and '$' removed and no trailing '.', e.g. "The final answer is
// $1,450,000." -> "1450000". nullopt when nothing number-like is found.
std::optional<std::string> ExtractGsm8kAnswer(std::string_view completion,
                                              const ExtractOptions& options = {});

// lm-eval's "strict" Llama GSM8K filter (gsm8k-cot-llama.yaml): the last match of
// `The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+))`, then ',', '$' and a trailing '.' removed.
// For reporting.
std::optional<std::string> ExtractGsm8kAnswerLlamaStrict(std::string_view completion);

// The extractor a task uses by default: MATH -> ExtractMathAnswer, GSM8K -> ExtractGsm8kAnswer (""
// when none).
std::string ExtractAnswer(std::string_view completion, Task task,
                          const ExtractOptions& options = {});

// Replaces invalid UTF-8 sequences with U+FFFD (EF BF BD), like Python's bytes.decode("utf-8",
// "replace").
std::string SanitizeUtf8(std::string_view text);

}  // namespace ttc::experiments
