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

SampleGrade GradeCompletion(const experiments::GridSpec& grid, experiments::Task task,
                            const std::string& completion, const std::string& gold) {
  SampleGrade g;
  g.extracted_answer = experiments::ExtractAnswer(completion, task);
  if (gold.empty()) return g;  // nothing to compare with: left ungraded
  auto mode = experiments::ParseGraderMode(grid.grader);
  g.correct = !g.extracted_answer.empty() &&
              experiments::AnswersEquivalent(gold, g.extracted_answer, task,
                                             mode.ok() ? *mode : experiments::GraderMode::kSal);
  return g;
}

}  // namespace ttc::coordinator
