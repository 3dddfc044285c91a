// `ttc grade`: is a predicted answer the gold answer? One pair from flags, or a JSONL file of
// {"gold", "pred"} objects graded in order, each echoed back with "equivalent" and "extracted"
// added.
#include "experiments/grade.h"

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "experiments/extract.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

struct GradeArgs {
  std::string task = "math";
  std::string mode = "sal";
  std::string gold;
  std::string pred;
  std::string jsonl;
  bool extract = false;
  bool json = false;
};

int RunGrade(const GradeArgs& a, bool have_gold, bool have_pred) {
  experiments::Task task = a.task == "gsm8k" ? experiments::Task::kGsm8k : experiments::Task::kMath;
  auto mode = experiments::ParseGraderMode(a.mode);
  if (!mode.ok()) return UsageError("--mode: " + mode.status().message());
  auto extracted_of = [&](const std::string& pred) {
    return a.extract ? experiments::ExtractAnswer(pred, task) : pred;
  };
  if (a.jsonl.empty()) {
    if (!have_gold || !have_pred) return UsageError("give --gold and --pred, or --jsonl FILE");
    std::string extracted = extracted_of(a.pred);
    auto r = experiments::Grade(a.gold, extracted, task, *mode);
    if (a.json) {
      nlohmann::json j = {{"gold", a.gold},
                          {"pred", a.pred},
                          {"extracted", extracted},
                          {"equivalent", r.equivalent},
                          {"gold_normalized", r.gold_normalized},
                          {"pred_normalized", r.pred_normalized}};
      std::cout << j.dump() << "\n";
    } else {
      std::cout << (r.equivalent ? "equivalent" : "not equivalent") << " ("
                << experiments::GraderModeName(*mode) << "): gold '" << r.gold_normalized
                << "' vs pred '" << r.pred_normalized << "'\n";
    }
    return kExitOk;
  }
  if (have_gold || have_pred) return UsageError("--jsonl excludes --gold and --pred");
  std::ifstream in(a.jsonl);
  if (!in) {
    std::cerr << "ttc grade: cannot open " << a.jsonl << "\n";
    return kExitFailure;
  }
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      std::cerr << "ttc grade: " << a.jsonl << " line " << line_no << ": not JSON: " << e.what()
                << "\n";
      return kExitFailure;
    }
    if (!row.is_object() || !row.contains("gold") || !row["gold"].is_string() ||
        !row.contains("pred") || !row["pred"].is_string()) {
      std::cerr << "ttc grade: " << a.jsonl << " line " << line_no
                << ": expected an object with string fields \"gold\" and \"pred\"\n";
      return kExitFailure;
    }
    std::string extracted = extracted_of(row["pred"].get<std::string>());
    row["extracted"] = extracted;
    row["equivalent"] =
        experiments::AnswersEquivalent(row["gold"].get<std::string>(), extracted, task, *mode);
    std::cout << row.dump() << "\n";
  }
  return kExitOk;
}

void RegisterGrade(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<GradeArgs>();
  auto holder = std::make_shared<CLI::App*>(nullptr);
  CLI::App* sub =
      AddCommand(app, table, "grade",
                 "Check whether predicted answers are equivalent to gold answers", [args, holder] {
                   CLI::App* s = *holder;
                   return RunGrade(*args, s->count("--gold") > 0, s->count("--pred") > 0);
                 });
  *holder = sub;
  sub->add_option("--task", args->task, "math or gsm8k")
      ->required()
      ->check(CLI::IsMember({"math", "gsm8k"}));
  sub->add_option("--mode", args->mode, "sal (reference-compatible, default) or strict");
  sub->add_option("--gold", args->gold, "The gold answer");
  sub->add_option("--pred", args->pred, "The predicted answer (or completion, with --extract)");
  sub->add_option("--jsonl", args->jsonl, "A JSONL file of {\"gold\": ..., \"pred\": ...} lines");
  sub->add_flag("--extract", args->extract, "Run the task's answer extractor on pred first");
  sub->add_flag("--json", args->json, "Print JSON (single pair)");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderGrade, RegisterGrade);

}  // namespace ttc::cli
