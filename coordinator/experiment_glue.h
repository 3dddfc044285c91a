// What the coordinator needs from experiments/ about a grid: its problems (dataset loading and
// fingerprint), the chat messages of a problem's prompt, and the grade of a finished sample (answer
// extraction + equivalence with the gold answer under the grid's grader mode). Kept apart so the
// server code does not depend on their details. Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "experiments/grid.h"
#include "experiments/problem.h"
#include "protocol/messages.h"

namespace ttc::coordinator {

struct LoadedProblems {
  std::vector<experiments::Problem> problems;
  std::string fingerprint;
};

// Loads the grid's dataset (built-in, synthetic or user JSONL, limited and filtered as the grid
// says).
Result<LoadedProblems> LoadGridProblems(const experiments::GridSpec& grid);

// The chat messages the model sees for `problem` under the grid's prompt settings.
Result<std::vector<protocol::ChatMessage>> BuildMessages(const experiments::GridSpec& grid,
                                                         const experiments::Problem& problem);

struct SampleGrade {
  std::string extracted_answer;
  std::optional<bool> correct;  // nullopt: not gradable (no gold answer)
};

// The answer extracted from a completion (empty when none), and whether it is equivalent to `gold`
// (nullopt when there is no gold answer). GradeCompletion = both.
std::string ExtractCompletionAnswer(experiments::Task task, const std::string& completion);
std::optional<bool> AnswerCorrect(const experiments::GridSpec& grid, experiments::Task task,
                                  const std::string& answer, const std::string& gold);

// Extracts the answer of `completion` and compares it with `gold` (grid.grader: sal | strict).
SampleGrade GradeCompletion(const experiments::GridSpec& grid, experiments::Task task,
                            const std::string& completion, const std::string& gold);

}  // namespace ttc::coordinator
