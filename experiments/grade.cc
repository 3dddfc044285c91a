// Grader front door: mode dispatch, GSM8K handling and equivalence-class grouping. See grade.h.
#include "experiments/grade.h"

#include <cctype>
#include <unordered_map>

#include "experiments/latex/answer.h"
#include "experiments/sal_math.h"

namespace ttc::experiments {

namespace {

struct Prepared {
  std::string normalized;
  latex::Answer parsed;  // strict mode only
};

Prepared Prepare(std::string_view answer, GraderMode mode) {
  Prepared p;
  if (mode == GraderMode::kSal) {
    p.normalized = SalNormalizeAnswer(answer);
  } else {
    p.normalized = latex::NormalizeAnswer(answer);
    p.parsed = latex::ParseAnswer(p.normalized);
  }
  return p;
}

bool HasWord(std::string_view s) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    bool starts =
        std::isalpha(static_cast<unsigned char>(s[i])) &&
        std::isalpha(static_cast<unsigned char>(s[i + 1])) &&
        (i == 0 || (!std::isalpha(static_cast<unsigned char>(s[i - 1])) && s[i - 1] != '\\'));
    if (starts) return true;
  }
  return false;
}

bool Equivalent(const Prepared& gold, const Prepared& pred, Task task, GraderMode mode) {
  if (mode == GraderMode::kSal) return SalMathEqual(pred.normalized, gold.normalized);
  if (pred.normalized.empty() || gold.normalized.empty()) return false;
  if (latex::AnswersMatch(gold.parsed, pred.parsed, latex::CompareOptions{})) return true;
  // GSM8K answers are numbers: "18 eggs" or "18 dollars per week" means 18.
  if (task == Task::kGsm8k && HasWord(pred.normalized)) {
    if (auto n = latex::LastNumberInText(pred.normalized)) {
      latex::Answer number = latex::ParseAnswer(*n);
      return latex::AnswersMatch(gold.parsed, number, latex::CompareOptions{});
    }
  }
  return false;
}

}  // namespace

const char* GraderModeName(GraderMode mode) { return mode == GraderMode::kSal ? "sal" : "strict"; }

Result<GraderMode> ParseGraderMode(std::string_view name) {
  if (name == "sal") return GraderMode::kSal;
  if (name == "strict") return GraderMode::kStrict;
  return InvalidArgument("unknown grader mode '{}' (expected sal or strict)", name);
}

GradeResult Grade(std::string_view gold, std::string_view pred, Task task, GraderMode mode) {
  (void)task;  // GSM8K and MATH share the machinery; GSM8K golds are plain numbers, possibly with
               // commas.
  GradeResult r;
  try {
    Prepared g = Prepare(gold, mode);
    Prepared p = Prepare(pred, mode);
    r.equivalent = Equivalent(g, p, task, mode);
    r.gold_normalized = std::move(g.normalized);
    r.pred_normalized = std::move(p.normalized);
  } catch (const std::exception&) {
    // A library exception (allocation, big-number parsing) on hostile input: not equivalent.
    r.equivalent = false;
  }
  return r;
}

bool AnswersEquivalent(std::string_view gold, std::string_view pred, Task task, GraderMode mode) {
  return Grade(gold, pred, task, mode).equivalent;
}

std::vector<int> GroupEquivalent(const std::vector<std::string>& answers, Task task,
                                 GraderMode mode) {
  (void)task;
  std::vector<int> ids(answers.size(), -1);
  std::vector<Prepared> reps;
  std::unordered_map<std::string, int> by_normal;
  for (size_t i = 0; i < answers.size(); ++i) {
    Prepared p;
    try {
      p = Prepare(answers[i], mode);
    } catch (const std::exception&) {
      p.normalized = answers[i];  // unparseable: it can only join an identical answer
    }
    auto it = by_normal.find(p.normalized);
    if (it != by_normal.end()) {
      ids[i] = it->second;
      continue;
    }
    int id = -1;
    for (size_t g = 0; g < reps.size() && id < 0; ++g) {
      bool eq = false;
      try {
        eq = Equivalent(reps[g], p, task, mode);
      } catch (const std::exception&) {
      }
      if (eq) id = static_cast<int>(g);
    }
    if (id < 0) {
      id = static_cast<int>(reps.size());
      reps.push_back(p);
    }
    by_normal.emplace(p.normalized, id);
    ids[i] = id;
  }
  return ids;
}

}  // namespace ttc::experiments
