// `ttc report [EXP]`: metrics, time models, Pareto fronts and plots of one experiment
// (reports/report.h); without EXP, the store's only experiment.
#include "reports/report.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>

#include "tools/cli/command.h"

namespace ttc::cli {
namespace {

struct ReportArgs {
  int64_t experiment = 0;
  std::string db = "ttc.db";
  std::string out;
  std::string time_model = "length";
  std::string formats = "table,csv,json,svg,html";
  int subsets = 100;
  uint64_t seed = 0;
  bool json = false;
};

// The experiment to report: the one named, or else the store's only one (several: an error that
// lists them).
Result<int64_t> ResolveExperiment(const ReportArgs& a) {
  if (a.experiment != 0) return a.experiment;
  auto db = OpenStoreToRead(a.db);
  if (!db.ok()) return db.status();
  TTC_ASSIGN_OR_RETURN(auto list, (*db)->ListExperiments());
  if (list.size() == 1) return list[0].id;
  if (list.empty()) return NotFound("{} holds no experiment", a.db);
  std::string names;
  for (const auto& e : list)
    names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", e.id, e.name);
  return InvalidArgument("{} holds {} experiments: {}; name one (ttc report ID --db {})", a.db,
                         list.size(), names, a.db);
}

int RunReport(ReportArgs a) {
  auto id = ResolveExperiment(a);
  if (!id.ok()) {
    if (id.status().code() == StatusCode::kInvalidArgument)
      return UsageError(id.status().message());
    spdlog::error("{}", id.status().message());
    return kExitFailure;
  }
  a.experiment = *id;
  reports::ReportOptions o;
  o.db_path = a.db;
  o.experiment_id = a.experiment;
  o.out_dir = a.out.empty() ? std::filesystem::path(fmt::format("report-{}", a.experiment))
                            : std::filesystem::path(a.out);
  o.time_model =
      a.time_model == "paper" ? reports::TimeModelKind::kPaper : reports::TimeModelKind::kLength;
  o.random_subsets = a.subsets;
  o.seed = a.seed;
  o.formats.clear();
  std::stringstream ss(a.formats);
  for (std::string f; std::getline(ss, f, ',');) {
    if (f.empty()) continue;
    if (f != "table" && f != "csv" && f != "json" && f != "svg" && f != "html") {
      return UsageError("--format: unknown format '" + f + "' (table, csv, json, svg, html)");
    }
    o.formats.insert(f);
  }
  if (a.json) {  // the report's JSON on stdout instead of the table
    o.formats.erase("table");
    auto db = OpenStoreToRead(a.db);
    if (!db.ok()) {
      spdlog::error("{}", db.status().ToString());
      return kExitFailure;
    }
    auto r = reports::BuildReport(**db, a.experiment, o);
    if (!r.ok()) {
      spdlog::error("{}", r.status().ToString());
      return kExitFailure;
    }
    std::cout << reports::ReportToJson(*r).dump(1) << "\n";
  }
  Status st = reports::WriteReport(o);
  if (!st.ok()) {
    spdlog::error("report: {}", st.ToString());
    return kExitFailure;
  }
  return kExitOk;
}

void RegisterReport(CLI::App& app, CommandTable& table) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* sub =
      AddCommand(app, table, "report",
                 "Coverage, majority vote and weighted Best-of-N vs k and vs time, with plots",
                 [a] { return RunReport(*a); });
  sub->add_option(
         "experiment", a->experiment,
         "Experiment id (default: the store's only experiment; `ttc list --db FILE` lists them)")
      ->check(PositiveId());
  sub->add_option("--db", a->db, "SQLite database")->capture_default_str();
  sub->add_option("--out", a->out, "Output folder (default: report-EXP)");
  sub->add_option("--time-model", a->time_model,
                  "paper: batch time at fixed lengths; length: real lengths")
      ->check(CLI::IsMember({"paper", "length"}))
      ->capture_default_str();
  sub->add_option("--format", a->formats, "Comma-separated: table,csv,json,svg,html")
      ->capture_default_str();
  sub->add_option("--subsets", a->subsets, "Random subsets per problem and k")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "Seed of the random subsets")->capture_default_str();
  sub->add_flag("--json", a->json, "Print report.json to stdout instead of the table");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderReport, RegisterReport);

}  // namespace ttc::cli
