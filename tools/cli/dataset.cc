// `ttc dataset synthetic`: writes the deterministic synthetic task (experiments/synthetic.h) as
// JSONL, one problem a line: {"id", "question", "answer", "solution", "level"}. Used to make
// training data for the default experiment's models (tools/train/) and to look at the task.
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "experiments/synthetic.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

struct DatasetSyntheticArgs {
  int count = 100;
  uint64_t seed = 0;
  uint64_t first_index = 0;
  int min_level = 1;
  int max_level = 3;
  std::string out;
};

int RunDatasetSynthetic(const DatasetSyntheticArgs& args) {
  experiments::SyntheticOptions options;
  options.count = args.count;
  options.seed = args.seed;
  options.first_index = args.first_index;
  options.min_level = args.min_level;
  options.max_level = args.max_level;
  auto problems = experiments::GenerateSynthetic(options);
  if (!problems.ok()) {
    // Every GenerateSynthetic error is about the caller's flags.
    return UsageError(problems.status().message());
  }
  std::ofstream file;
  std::ostream* os = &std::cout;
  if (!args.out.empty() && args.out != "-") {
    file.open(args.out, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "error: cannot open --out file " << args.out << " for writing\n";
      return kExitFailure;
    }
    os = &file;
  }
  for (const auto& p : *problems) {
    nlohmann::json j = {{"id", p.id},
                        {"question", p.question},
                        {"answer", p.gold_answer},
                        {"solution", p.solution},
                        {"level", p.level}};
    *os << j.dump() << "\n";
  }
  os->flush();
  if (!*os) {
    std::cerr << "error: writing " << (args.out.empty() ? "stdout" : args.out) << " failed\n";
    return kExitFailure;
  }
  return kExitOk;
}

void RegisterDataset(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<DatasetSyntheticArgs>();
  auto synthetic_selected = std::make_shared<CLI::App*>(nullptr);
  CLI::App* sub =
      AddCommand(app, table, "dataset", "Generate or export problem sets as JSONL",
                 [args, synthetic_selected]() -> int {
                   if (*synthetic_selected != nullptr && (*synthetic_selected)->parsed()) {
                     return RunDatasetSynthetic(*args);
                   }
                   return UsageError("dataset: name a dataset (synthetic)");
                 });
  sub->require_subcommand(1);
  CLI::App* syn = sub->add_subcommand(
      "synthetic",
      "Deterministic multi-step arithmetic word problems (the default experiment's task)");
  *synthetic_selected = syn;
  syn->add_option("--count", args->count, "Number of problems")->capture_default_str();
  syn->add_option("--seed", args->seed, "Seed of the problem sequence")->capture_default_str();
  syn->add_option("--first", args->first_index, "Index of the first problem in the seed's sequence")
      ->capture_default_str();
  syn->add_option("--min-level", args->min_level, "Lowest difficulty (number of steps), 1..5")
      ->capture_default_str();
  syn->add_option("--max-level", args->max_level, "Highest difficulty (number of steps), 1..5")
      ->capture_default_str();
  syn->add_option("--out", args->out, "Output JSONL file (default: stdout)");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderDataset, RegisterDataset);

}  // namespace ttc::cli
