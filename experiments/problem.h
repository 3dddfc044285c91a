// A math problem as every module sees it: what datasets load, what the synthetic generator makes, what the
// coordinator stores and what graders compare against. Plain value type; safe to share read-only across threads.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ttc::experiments {

// Which prompt, extractor and grader family a problem belongs to.
enum class Task { kMath, kGsm8k };

struct Problem {
  std::string id;           // stable id: "math500/<unique_id>", "gsm8k/<line>", "synthetic/<seed>/<n>", user id
  std::string question;     // the problem text shown to the model
  std::string gold_answer;  // the gold final answer, after the dataset's gold rules (evaluation.md §1)
  std::string solution;     // reference solution when the dataset has one (may be empty)
  Task task = Task::kMath;
  std::string subject;      // MATH subject, "synthetic", ... (may be empty)
  int level = 0;            // MATH level or synthetic difficulty (0 = unknown)
  nlohmann::json extra;     // anything else the source carried
};

inline const char* TaskName(Task task) { return task == Task::kMath ? "math" : "gsm8k"; }

}  // namespace ttc::experiments
