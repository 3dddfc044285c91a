// libFuzzer target for the LaTeX answer parser and the graders: any bytes, split into a gold and a
// prediction, must normalize, parse, evaluate and compare without crashing, hanging or leaking, in
// both modes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "experiments/grade.h"
#include "experiments/latex/answer.h"
#include "experiments/latex/expr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t split = in.find('\x01');
  std::string_view gold = split == std::string_view::npos ? in : in.substr(0, split);
  std::string_view pred = split == std::string_view::npos ? in : in.substr(split + 1);
  if (auto e = ttc::experiments::latex::ParseExpr(gold)) {
    (void)ttc::experiments::latex::EvalExact(*e);
    std::vector<double> vars(e->vars.size(), 1.5);
    (void)ttc::experiments::latex::EvalNumeric(*e, vars, 0);
  }
  using ttc::experiments::GraderMode;
  using ttc::experiments::Task;
  (void)ttc::experiments::AnswersEquivalent(gold, pred, Task::kMath, GraderMode::kStrict);
  (void)ttc::experiments::AnswersEquivalent(gold, pred, Task::kMath, GraderMode::kSal);
  (void)ttc::experiments::AnswersEquivalent(pred, gold, Task::kGsm8k, GraderMode::kStrict);
  return 0;
}
