// `ttc grid check GRID`: validates a grid spec the way `ttc submit` will (every problem reported
// with its field path), loads its problems, and prints what the experiment would be: problems,
// dataset fingerprint, models, temperatures and the number of samples. Nothing is started and
// nothing is written.
#include "experiments/grid.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "experiments/dataset.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

struct GridCheckArgs {
  std::string file;
  bool json = false;
  bool no_files = false;
};

int RunGridCheck(const GridCheckArgs& args) {
  experiments::GridParseOptions options;
  options.check_files = !args.no_files;
  auto spec = experiments::LoadGridSpec(args.file, options);
  if (!spec.ok()) {
    if (args.json) {
      std::cout << nlohmann::json{{"valid", false}, {"error", spec.status().message()}}.dump()
                << "\n";
    } else {
      std::cerr << "error: " << spec.status().message() << "\n";
    }
    return kExitFailure;
  }
  // The problems too: ids must exist and files must parse before anything is submitted.
  std::vector<experiments::Problem> problems;
  std::string fingerprint;
  if (!args.no_files) {
    auto loaded = experiments::LoadDataset(spec->dataset, spec->data_dir);
    if (!loaded.ok()) {
      if (args.json) {
        std::cout << nlohmann::json{{"valid", false}, {"error", loaded.status().message()}}.dump()
                  << "\n";
      } else {
        std::cerr << "error: " << args.file << ": " << loaded.status().message() << "\n";
      }
      return kExitFailure;
    }
    problems = std::move(loaded).value();
    fingerprint = experiments::DatasetFingerprint(problems);
  }
  const uint64_t per_problem = static_cast<uint64_t>(spec->models.size()) *
                               spec->temperatures.size() * static_cast<uint64_t>(spec->n_samples);
  if (args.json) {
    nlohmann::json out = {{"valid", true}, {"spec", experiments::GridSpecToJson(*spec)}};
    if (!args.no_files) {
      out["problems"] = problems.size();
      out["fingerprint"] = fingerprint;
      out["samples"] = per_problem * problems.size();
    }
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  std::cout << fmt::format("{}: valid grid '{}'\n", args.file, spec->name);
  std::cout << fmt::format("  dataset      {}", experiments::DatasetKindName(spec->dataset.kind));
  if (!args.no_files) {
    std::cout << fmt::format(", {} problems, fingerprint {}", problems.size(),
                             fingerprint.substr(0, 16));
  }
  std::cout << "\n";
  std::cout << fmt::format("  prompt       {} (chat template {}, date {})\n",
                           experiments::PromptTemplateName(spec->prompt.template_kind),
                           spec->prompt.chat_template, spec->prompt.date);
  for (const auto& m : spec->models) {
    std::cout << fmt::format("  model        {} ({}, {}, backend {})\n", m.name, m.path, m.dtype,
                             m.backend);
  }
  std::cout << fmt::format("  temperatures {}\n", fmt::join(spec->temperatures, ", "));
  std::cout << fmt::format(
      "  samples      n = {}, k = {}, top_k {}, top_p {}, max_new_tokens {}, seed {}\n",
      spec->n_samples, fmt::join(spec->k_values, ","), spec->top_k, spec->top_p,
      spec->max_new_tokens, spec->seed);
  if (spec->reward_model) {
    std::cout << fmt::format("  reward model {} ({}, aggregation {})\n", spec->reward_model->name,
                             spec->reward_model->path, spec->reward_model->aggregation);
  }
  std::cout << fmt::format("  grader       {}\n", spec->grader);
  if (!args.no_files) {
    std::cout << fmt::format("  total        {} samples ({} per problem)\n",
                             per_problem * problems.size(), per_problem);
  }
  return kExitOk;
}

void RegisterGrid(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<GridCheckArgs>();
  auto check = std::make_shared<CLI::App*>(nullptr);
  CLI::App* sub =
      AddCommand(app, table, "grid", "Validate and describe grid specs", [args, check]() -> int {
        if (*check != nullptr && (*check)->parsed()) return RunGridCheck(*args);
        return UsageError("grid: name a subcommand (check)");
      });
  sub->require_subcommand(1);
  CLI::App* c = sub->add_subcommand(
      "check",
      "Validate a grid spec (all errors, with field paths), load its problems, print a summary");
  *check = c;
  c->add_option("GRID", args->file, "Grid spec JSON file")->required();
  c->add_flag("--json", args->json,
              "Print JSON: {valid, spec (with defaults), problems, fingerprint, samples}");
  c->add_flag("--no-files", args->no_files,
              "Check the document only: no model folders, data files or problem loading");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderSubmit + 1, RegisterGrid);

}  // namespace ttc::cli
