// `ttc report`: reads one experiment from the store, computes coverage, majority vote and (weighted) Best-of-N
// against k and against generation time (reports/metrics.h, reports/time_model.h), the Pareto front across all
// models and temperatures, and writes a terminal summary table, metrics.csv, report.json, SVG plots and one
// self-contained index.html. Works on partial experiments (marked partial) and says so for an empty one.
// Thread-safety: functions are reentrant; each call opens its own store connection.
#pragma once

#include <filesystem>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "reports/metrics.h"
#include "reports/time_model.h"
#include "store/store.h"

namespace ttc::reports {

struct ReportOptions {
  std::string db_path;
  store::Id experiment_id = 0;
  std::filesystem::path out_dir;  // where files go; empty: terminal only
  TimeModelKind time_model = TimeModelKind::kLength;
  // Any of "table", "csv", "json", "svg", "html".
  std::set<std::string> formats = {"table", "csv", "json", "svg", "html"};
  int random_subsets = 100;
  uint64_t seed = 0;
  std::ostream* terminal = nullptr;  // where the table goes (nullptr: std::cout)
};

// One (model, temperature) curve: values per k for every metric and estimator, and the time for k.
struct CurveValues {
  std::vector<double> mean, se;
  std::vector<int> problems;
};
struct Curve {
  std::string model;
  int model_index = 0;  // fixes the colour across plots
  double temperature = 0;
  int temperature_index = 0;
  std::vector<int> k;
  std::vector<double> time_s;
  TimeModelSource time_source = TimeModelSource::kMeasuredSamples;
  // metric name -> estimator name -> values
  std::map<std::string, std::map<std::string, CurveValues>> values;
  int problems = 0;  // problems with at least one sample
  int64_t samples = 0;
};

struct ParetoPoint {
  std::string model;
  double temperature = 0;
  int k = 0;
  double time_s = 0;
  double value = 0;
};

struct ReportData {
  store::Experiment experiment;
  store::ExperimentStatus status;
  bool partial = false;
  bool empty = false;
  std::string task;
  std::string grader;
  std::string time_model;
  std::vector<std::string> devices;
  std::vector<Curve> curves;
  std::map<std::string, std::vector<ParetoPoint>> pareto;  // metric name -> front, by time
  std::vector<store::BenchRow> speed;                      // "paper" rows of the experiment's models
  std::vector<std::string> notes;                          // caveats worth showing (fallbacks, ...)
};

// Computes everything from an open store.
Result<ReportData> BuildReport(store::Store& db, store::Id experiment_id, const ReportOptions& options);

// The machine-readable form of a report (also what report.json holds).
nlohmann::json ReportToJson(const ReportData& report);
std::string ReportToCsv(const ReportData& report);
std::string ReportToTable(const ReportData& report);
// SVG files by name ("coverage_vs_k.svg", ...).
std::map<std::string, std::string> ReportToSvgs(const ReportData& report);
std::string ReportToHtml(const ReportData& report, const std::map<std::string, std::string>& svgs);

// Opens the database, builds the report and writes the requested formats.
Status WriteReport(const ReportOptions& options);

}  // namespace ttc::reports
