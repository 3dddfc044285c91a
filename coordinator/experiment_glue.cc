#include "coordinator/experiment_glue.h"

#include "experiments/dataset.h"
#include "experiments/extract.h"
#include "experiments/grade.h"
#include "experiments/prompt.h"

namespace ttc::coordinator {

Result<LoadedProblems> LoadGridProblems(const experiments::GridSpec& grid) {
  LoadedProblems out;
  TTC_ASSIGN_OR_RETURN(out.problems, experiments::LoadDataset(grid.dataset, grid.data_dir));
  out.fingerprint = experiments::DatasetFingerprint(out.problems);
  return out;
}

Result<std::vector<protocol::ChatMessage>> BuildMessages(const experiments::GridSpec& grid,
                                                         const experiments::Problem& problem) {
  TTC_ASSIGN_OR_RETURN(auto prompt, experiments::BuildPrompt(problem, grid.prompt));
  std::vector<protocol::ChatMessage> out;
  out.reserve(prompt.size());
  for (auto& m : prompt) out.push_back({std::move(m.role), std::move(m.content)});
  return out;
}

std::string ExtractCompletionAnswer(experiments::Task task, const std::string& completion) {
  return experiments::ExtractAnswer(completion, task);
}

std::optional<bool> AnswerCorrect(const experiments::GridSpec& grid, experiments::Task task,
                                  const std::string& answer, const std::string& gold) {
  if (gold.empty()) return std::nullopt;  // nothing to compare with: left ungraded
  if (answer.empty()) return false;
  auto mode = experiments::ParseGraderMode(grid.grader);
  return experiments::AnswersEquivalent(gold, answer, task,
                                        mode.ok() ? *mode : experiments::GraderMode::kSal);
}

SampleGrade GradeCompletion(const experiments::GridSpec& grid, experiments::Task task,
                            const std::string& completion, const std::string& gold) {
  SampleGrade g;
  g.extracted_answer = ExtractCompletionAnswer(task, completion);
  g.correct = AnswerCorrect(grid, task, g.extracted_answer, gold);
  return g;
}

}  // namespace ttc::coordinator
