#include "reports/report.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <set>
#include <unordered_map>

#include "common/version.h"
#include "experiments/grade.h"
#include "experiments/grid.h"
#include "reports/svg.h"

namespace ttc::reports {
namespace {

constexpr Metric kMetrics[] = {Metric::kCoverage, Metric::kMajority, Metric::kBestOfN,
                               Metric::kWeightedBestOfN};

// The estimator plotted and tabled for each metric: coverage uses the unbiased estimator over all
// samples, selection metrics the mean over random subsets (smoother than the first-k prefix, which
// is also in the CSV).
Estimator PlotEstimator(Metric m) {
  return m == Metric::kCoverage ? Estimator::kUnbiased : Estimator::kRandomSubsets;
}

double SolutionScore(const std::vector<double>& scores, const std::string& how) {
  if (scores.empty()) return std::numeric_limits<double>::quiet_NaN();
  if (how == "min") return *std::min_element(scores.begin(), scores.end());
  if (how == "prod") {
    double p = 1;
    for (double s : scores) p *= s;
    return p;
  }
  if (how == "mean") {
    double s = 0;
    for (double v : scores) s += v;
    return s / scores.size();
  }
  return scores.back();  // "last", SAL's choice for every curve metric
}

std::string TemperatureLabel(double t) { return fmt::format("T={:g}", t); }

const char* kDashes[] = {"", "6 4", "2 3", "8 3 2 3"};

}  // namespace

Result<ReportData> BuildReport(store::Store& db, store::Id experiment_id,
                               const ReportOptions& options) {
  ReportData r;
  TTC_ASSIGN_OR_RETURN(r.experiment, db.GetExperiment(experiment_id));
  TTC_ASSIGN_OR_RETURN(r.status, db.GetExperimentStatus(experiment_id));
  r.time_model = TimeModelName(options.time_model);
  r.partial = r.status.units_pending + r.status.units_leased > 0 ||
              r.status.samples < r.status.samples_expected;
  if (r.status.units_failed > 0) {
    r.notes.push_back(
        fmt::format("{} unit(s) failed: their samples are missing", r.status.units_failed));
  }

  // Task, grader, k values and PRM aggregation come from the grid as submitted.
  experiments::Task task = experiments::Task::kMath;
  experiments::GraderMode mode = experiments::GraderMode::kSal;
  std::vector<int> k_values;
  std::string aggregation = "last";
  experiments::GridParseOptions gopts;
  gopts.check_files = false;
  auto grid = experiments::ParseGridSpecText(r.experiment.grid_spec_json, "grid spec", gopts);
  if (grid.ok()) {
    task = grid->dataset.EffectiveTask();
    if (auto m = experiments::ParseGraderMode(grid->grader); m.ok()) mode = *m;
    k_values = grid->k_values;
    if (grid->reward_model) aggregation = grid->reward_model->aggregation;
  } else {
    r.notes.push_back("the stored grid spec did not parse (" + grid.status().message() +
                      "): using MATH task, sal grader, powers of two for k");
  }
  r.task = experiments::TaskName(task);
  r.grader = experiments::GraderModeName(mode);

  TTC_ASSIGN_OR_RETURN(std::vector<store::Model> models, db.ListModels(experiment_id));
  std::unordered_map<store::Id, int> model_index;
  for (size_t i = 0; i < models.size(); ++i) model_index[models[i].id] = static_cast<int>(i);

  // PRM step scores per sample.
  std::unordered_map<store::Id, std::vector<double>> step_scores;
  TTC_RETURN_IF_ERROR(db.ForEachStepScore(experiment_id, [&](const store::StepScore& s) {
    step_scores[s.sample_id].push_back(s.score);
    return Status::Ok();
  }));

  // Samples arrive ordered by model, temperature, problem, sample index: build runs as they stream.
  struct RunKey {
    store::Id model;
    double temperature;
  };
  std::vector<RunKey> keys;
  std::vector<std::vector<ProblemRun>> runs_by_key;
  std::set<std::string> devices;
  std::vector<std::vector<std::vector<std::string>>> answers;
  store::SampleQuery q;
  q.experiment_id = experiment_id;
  q.include_text = false;
  q.include_extra = true;
  TTC_RETURN_IF_ERROR(db.ForEachSample(q, [&](const store::Sample& s) {
    if (keys.empty() || keys.back().model != s.model_id ||
        keys.back().temperature != s.temperature) {
      keys.push_back({s.model_id, s.temperature});
      runs_by_key.emplace_back();
      answers.emplace_back();
    }
    auto& runs = runs_by_key.back();
    if (runs.empty() || runs.back().problem_index != s.problem_index) {
      runs.emplace_back();
      runs.back().problem_index = s.problem_index;
      answers.back().emplace_back();
      // Prompt length and device are per problem: parse one sample's extra, not every one.
      auto extra =
          nlohmann::json::parse(s.extra_json.empty() ? "{}" : s.extra_json, nullptr, false);
      if (extra.is_object()) {
        if (auto it = extra.find("prompt_tokens"); it != extra.end() && it->is_number_integer()) {
          runs.back().prompt_tokens = it->get<int>();
        }
        if (auto it = extra.find("device"); it != extra.end() && it->is_string()) {
          devices.insert(it->get<std::string>());
        }
      }
    }
    ProblemRun& run = runs.back();
    run.sample_index.push_back(s.sample_index);
    run.correct.push_back(s.correct.value_or(false) ? 1 : 0);
    auto sc = step_scores.find(s.id);
    run.score.push_back(sc == step_scores.end() ? std::numeric_limits<double>::quiet_NaN()
                                                : SolutionScore(sc->second, aggregation));
    run.num_tokens.push_back(s.num_tokens);
    run.prefill_s.push_back(s.prefill_s);
    run.decode_s.push_back(s.decode_s);
    answers.back().back().push_back(s.extracted_answer);
    return Status::Ok();
  }));
  r.devices.assign(devices.begin(), devices.end());
  r.empty = keys.empty();
  if (r.empty) {
    r.notes.push_back("no samples yet: nothing to measure");
    return r;
  }

  // Speed tables per model: bench rows named after the model or its folder; the device with most
  // rows wins.
  TTC_ASSIGN_OR_RETURN(std::vector<store::BenchRow> bench, db.ListBenchRows({}));
  std::vector<SpeedTable> tables(models.size());
  std::vector<bool> has_table(models.size(), false);
  // Models that produced samples (a grid's reward model only scores, so it needs no speed table).
  std::set<store::Id> sampling_models;
  for (const auto& key : keys) sampling_models.insert(key.model);
  for (size_t i = 0; i < models.size(); ++i) {
    const std::string base = std::filesystem::path(models[i].path).filename().string();
    std::map<std::string, std::vector<store::BenchRow>> by_device;
    for (const auto& row : bench) {
      if (row.model == models[i].name || row.model == models[i].path ||
          (!base.empty() && row.model == base)) {
        by_device[row.device].push_back(row);
      }
    }
    const std::vector<store::BenchRow>* best = nullptr;
    for (const auto& [device, rows] : by_device) {
      if (best == nullptr || rows.size() > best->size()) best = &rows;
    }
    if (best != nullptr) {
      tables[i] = SpeedTable(*best);
      has_table[i] = tables[i].has_paper() || tables[i].has_step();
      for (const auto& row : tables[i].paper_rows()) {
        store::BenchRow named = row;
        named.model = models[i].name;
        r.speed.push_back(named);
      }
    }
    if (!has_table[i] && sampling_models.count(models[i].id)) {
      r.notes.push_back(
          fmt::format("model {}: no engine benchmark table in the store (run `ttc bench --db`); "
                      "its times come from the "
                      "samples' own measured timings",
                      models[i].name));
    }
  }

  MetricOptions mopts{options.random_subsets, options.seed};
  std::map<double, int> temp_index;
  for (const auto& key : keys) temp_index.emplace(key.temperature, 0);
  int ti = 0;
  for (auto& [t, idx] : temp_index) idx = ti++;

  for (size_t ki = 0; ki < keys.size(); ++ki) {
    auto& runs = runs_by_key[ki];
    for (size_t p = 0; p < runs.size(); ++p)
      runs[p].group = experiments::GroupEquivalent(answers[ki][p], task, mode);
    Curve c;
    const int mi = model_index.count(keys[ki].model) ? model_index[keys[ki].model] : 0;
    c.model = models.empty() ? "?" : models[mi].name;
    c.model_index = mi;
    c.temperature = keys[ki].temperature;
    c.temperature_index = temp_index[c.temperature];
    c.problems = static_cast<int>(runs.size());
    int max_n = 0;
    for (const auto& run : runs) {
      c.samples += run.size();
      max_n = std::max(max_n, run.size());
    }
    c.k = k_values.empty() ? experiments::DefaultKValues(std::max(1, max_n)) : k_values;
    c.k.erase(std::remove_if(c.k.begin(), c.k.end(), [&](int k) { return k > max_n; }), c.k.end());
    const SpeedTable* table = has_table[mi] ? &tables[mi] : nullptr;
    c.time_source = table ? TimeModelSource::kBenchTable : TimeModelSource::kMeasuredSamples;
    for (int k : c.k) {
      double tsum = 0;
      int tn = 0;
      for (const auto& run : runs) {
        if (run.size() < k) continue;
        tsum += TimeForK(run, k, options.time_model, table);
        ++tn;
      }
      c.time_s.push_back(tn ? tsum / tn : 0);
      for (Metric m : kMetrics) {
        for (Estimator e : EstimatorsFor(m)) {
          std::vector<double> vals;
          vals.reserve(runs.size());
          for (const auto& run : runs) {
            if (auto v = ProblemValue(run, m, e, k, mopts)) vals.push_back(*v);
          }
          if (vals.empty() && m != Metric::kCoverage && m != Metric::kMajority) continue;
          Aggregate a = MeanOverProblems(vals);
          auto& cv = c.values[MetricName(m)][EstimatorName(e)];
          cv.mean.push_back(a.mean);
          cv.se.push_back(a.se);
          cv.problems.push_back(a.problems);
        }
      }
    }
    // Drop PRM metrics that no k could compute.
    for (Metric m : {Metric::kBestOfN, Metric::kWeightedBestOfN}) {
      auto it = c.values.find(MetricName(m));
      if (it != c.values.end() && it->second.begin()->second.mean.size() != c.k.size())
        c.values.erase(it);
    }
    r.curves.push_back(std::move(c));
  }
  std::stable_sort(r.curves.begin(), r.curves.end(), [](const Curve& a, const Curve& b) {
    return a.model_index != b.model_index ? a.model_index < b.model_index
                                          : a.temperature < b.temperature;
  });

  // Pareto fronts over every (model, temperature, k) point.
  for (Metric m : kMetrics) {
    std::vector<double> t, v;
    std::vector<ParetoPoint> pts;
    for (const auto& c : r.curves) {
      auto it = c.values.find(MetricName(m));
      if (it == c.values.end()) continue;
      const auto& cv = it->second.at(EstimatorName(PlotEstimator(m)));
      for (size_t i = 0; i < c.k.size(); ++i) {
        pts.push_back({c.model, c.temperature, c.k[i], c.time_s[i], cv.mean[i]});
        t.push_back(c.time_s[i]);
        v.push_back(cv.mean[i]);
      }
    }
    if (pts.empty()) continue;
    auto& front = r.pareto[MetricName(m)];
    for (int i : ParetoFront(t, v)) front.push_back(pts[i]);
  }
  if (r.partial)
    r.notes.insert(r.notes.begin(), "partial experiment: units are still pending or running");
  return r;
}

nlohmann::json ReportToJson(const ReportData& r) {
  nlohmann::json j;
  auto grid = nlohmann::json::parse(r.experiment.grid_spec_json, nullptr, false);
  j["experiment"] = {
      {"id", r.experiment.id},
      {"name", r.experiment.name},
      {"state", store::Name(r.experiment.state)},
      {"seed", r.experiment.seed},
      {"dataset_fingerprint", r.experiment.dataset_fingerprint},
      {"grid_spec", grid.is_discarded() ? nlohmann::json(r.experiment.grid_spec_json) : grid}};
  j["partial"] = r.partial;
  j["empty"] = r.empty;
  j["status"] = {{"units_done", r.status.units_done},
                 {"units_pending", r.status.units_pending},
                 {"units_leased", r.status.units_leased},
                 {"units_failed", r.status.units_failed},
                 {"samples", r.status.samples},
                 {"samples_expected", r.status.samples_expected},
                 {"tokens", r.status.tokens}};
  j["ttc"] = {{"version", kVersion}, {"git_commit", kGitCommit}};
  j["devices"] = r.devices;
  j["task"] = r.task;
  j["grader"] = r.grader;
  j["time_model"] = r.time_model;
  j["notes"] = r.notes;
  j["curves"] = nlohmann::json::array();
  for (const auto& c : r.curves) {
    nlohmann::json cj = {{"model", c.model},
                         {"temperature", c.temperature},
                         {"k", c.k},
                         {"time_s", c.time_s},
                         {"time_source", TimeModelSourceName(c.time_source)},
                         {"problems", c.problems},
                         {"samples", c.samples}};
    for (const auto& [metric, by_est] : c.values) {
      for (const auto& [est, v] : by_est) {
        cj["metrics"][metric][est] = {{"mean", v.mean}, {"se", v.se}, {"problems", v.problems}};
      }
    }
    j["curves"].push_back(cj);
  }
  for (const auto& [metric, front] : r.pareto) {
    auto& arr = j["pareto"][metric];
    arr = nlohmann::json::array();
    for (const auto& p : front) {
      arr.push_back({{"model", p.model},
                     {"temperature", p.temperature},
                     {"k", p.k},
                     {"time_s", p.time_s},
                     {"value", p.value}});
    }
  }
  j["speed"] = nlohmann::json::array();
  for (const auto& s : r.speed) {
    j["speed"].push_back({{"model", s.model},
                          {"device", s.device},
                          {"batch", s.batch},
                          {"prompt_len", s.prompt_len},
                          {"gen_len", s.gen_len},
                          {"total_s", s.total_s},
                          {"tokens_per_s", s.total_s > 0 ? s.batch * s.gen_len / s.total_s : 0.0}});
  }
  return j;
}

std::string ReportToCsv(const ReportData& r) {
  std::string out =
      "model,temperature,k,metric,estimator,mean,se,problems,time_s,time_model,time_source\n";
  for (const auto& c : r.curves) {
    for (const auto& [metric, by_est] : c.values) {
      for (const auto& [est, v] : by_est) {
        for (size_t i = 0; i < c.k.size(); ++i) {
          out += fmt::format("\"{}\",{:g},{},{},{},{:.6f},{:.6f},{},{:.6g},{},{}\n", c.model,
                             c.temperature, c.k[i], metric, est, v.mean[i], v.se[i], v.problems[i],
                             c.time_s[i], r.time_model, TimeModelSourceName(c.time_source));
        }
      }
    }
  }
  return out;
}

std::string ReportToTable(const ReportData& r) {
  std::string out = fmt::format("Experiment {} \"{}\" ({}{}), task {}, grader {}, time model {}\n",
                                r.experiment.id, r.experiment.name, store::Name(r.experiment.state),
                                r.partial ? ", PARTIAL" : "", r.task, r.grader, r.time_model);
  out += fmt::format("units: {} done, {} pending, {} running, {} failed; samples {}/{}\n",
                     r.status.units_done, r.status.units_pending, r.status.units_leased,
                     r.status.units_failed, r.status.samples, r.status.samples_expected);
  for (const auto& n : r.notes) out += "note: " + n + "\n";
  if (r.empty) return out;
  for (const auto& c : r.curves) {
    out += fmt::format("\n{} {}  ({} problems, {} samples{})\n", c.model,
                       TemperatureLabel(c.temperature), c.problems, c.samples,
                       c.temperature == 0 ? ", greedy" : "");
    out += fmt::format("  {:>5}  {:>10}  {:>9}  {:>9}  {:>12}  {:>10}\n", "k", "coverage",
                       "majority", "bon", "weighted_bon", "time_s");
    auto cell = [&](const char* metric, size_t i) -> std::string {
      auto it = c.values.find(metric);
      if (it == c.values.end()) return "-";
      Metric m = std::string(metric) == "coverage" ? Metric::kCoverage : Metric::kMajority;
      const auto& cv = it->second.at(EstimatorName(PlotEstimator(m)));
      return fmt::format("{:.1f}%", 100 * cv.mean[i]);
    };
    for (size_t i = 0; i < c.k.size(); ++i) {
      out += fmt::format("  {:>5}  {:>10}  {:>9}  {:>9}  {:>12}  {:>10.3g}\n", c.k[i],
                         cell("coverage", i), cell("majority", i), cell("bon", i),
                         cell("weighted_bon", i), c.time_s[i]);
    }
  }
  if (auto it = r.pareto.find("coverage"); it != r.pareto.end()) {
    out += "\nPareto front (coverage vs time):";
    for (const auto& p : it->second) {
      out += fmt::format(" {} {} k={} ({:.3g} s, {:.1f}%);", p.model,
                         TemperatureLabel(p.temperature), p.k, p.time_s, 100 * p.value);
    }
    out += "\n";
  }
  return out;
}

std::map<std::string, std::string> ReportToSvgs(const ReportData& r) {
  std::map<std::string, std::string> svgs;
  if (r.empty) return svgs;
  const std::string time_label =
      fmt::format("Generation time per problem, seconds ({} time model, log scale)", r.time_model);
  for (Metric m : kMetrics) {
    const std::string name = MetricName(m);
    const Estimator est = PlotEstimator(m);
    PlotSpec vs_k, vs_t;
    vs_k.title = fmt::format("{} vs samples k ({})", MetricTitle(m), EstimatorName(est));
    vs_k.x_label = "Samples per problem k (log2 scale)";
    vs_k.y_label = MetricTitle(m);
    vs_k.log_x = true;
    vs_k.log_base = 2;
    vs_k.y_unit_interval = true;
    vs_t = vs_k;
    vs_t.title = fmt::format("{} vs generation time", MetricTitle(m));
    vs_t.x_label = time_label;
    vs_t.log_base = 10;
    for (const auto& c : r.curves) {
      auto it = c.values.find(name);
      if (it == c.values.end()) continue;
      const auto& cv = it->second.at(EstimatorName(est));
      PlotSeries s;
      s.label = c.model + " " + TemperatureLabel(c.temperature);
      s.color = PaletteColor(c.model_index);
      s.dash = kDashes[c.temperature_index % 4];
      for (size_t i = 0; i < c.k.size(); ++i) {
        s.x.push_back(c.k[i]);
        s.y.push_back(cv.mean[i]);
        s.lo.push_back(std::max(0.0, cv.mean[i] - cv.se[i]));
        s.hi.push_back(std::min(1.0, cv.mean[i] + cv.se[i]));
      }
      vs_k.series.push_back(s);
      PlotSeries st = s;
      st.x.assign(c.time_s.begin(), c.time_s.end());
      vs_t.series.push_back(st);
    }
    if (vs_k.series.empty()) continue;
    if (auto it = r.pareto.find(name); it != r.pareto.end()) {
      for (const auto& p : it->second) {
        vs_t.front_x.push_back(p.time_s);
        vs_t.front_y.push_back(p.value);
      }
    }
    svgs[name + "_vs_k.svg"] = RenderLinePlot(vs_k);
    svgs[name + "_vs_time.svg"] = RenderLinePlot(vs_t);
  }
  if (!r.speed.empty()) {
    PlotSpec sp;
    sp.title = "Engine speed: time to generate a batch (paper protocol)";
    sp.x_label = "Batch size (log2 scale)";
    sp.y_label = "Seconds per batch (log scale)";
    sp.log_x = true;
    sp.log_base = 2;
    sp.log_y = true;
    std::map<std::string, PlotSeries> by_model;
    std::map<std::string, int> color;
    for (const auto& c : r.curves) color[c.model] = c.model_index;
    for (const auto& row : r.speed) {
      auto& s = by_model[row.model + " @ " + row.device];
      s.label = fmt::format("{} ({}, gen {})", row.model, row.device, row.gen_len);
      s.color = PaletteColor(color.count(row.model) ? color[row.model] : 0);
      s.x.push_back(row.batch);
      s.y.push_back(row.total_s);
    }
    for (auto& [k, s] : by_model) sp.series.push_back(std::move(s));
    svgs["speed_vs_batch.svg"] = RenderLinePlot(sp);
  }
  return svgs;
}

std::string ReportToHtml(const ReportData& r, const std::map<std::string, std::string>& svgs) {
  std::string h = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ttc report</title>
<style>
body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1500px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:13px} .banner{background:#fff3cd;border:1px solid #e0c36c;padding:8px 12px;margin:12px 0}
.grid{display:flex;flex-wrap:wrap;gap:12px} .grid figure{margin:0;border:1px solid #eee}
figcaption{font-size:12px;color:#555;padding:4px 8px;max-width:700px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f5f5f5} td.l,th.l{text-align:left} pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto}
@media print{.grid figure{break-inside:avoid}}
</style></head><body>
)";
  h += fmt::format("<h1>ttc report: {}</h1>\n", XmlEscape(r.experiment.name));
  h += fmt::format(
      "<div class=\"meta\">experiment {} &middot; state {} &middot; task {} &middot; grader {} "
      "&middot; time model "
      "<b>{}</b> &middot; dataset fingerprint <code>{}</code> &middot; ttc {} ({})</div>\n",
      r.experiment.id, store::Name(r.experiment.state), XmlEscape(r.task), XmlEscape(r.grader),
      r.time_model, XmlEscape(r.experiment.dataset_fingerprint), kVersion, kGitCommit);
  if (!r.devices.empty()) {
    std::string d;
    for (const auto& x : r.devices) d += (d.empty() ? "" : ", ") + XmlEscape(x);
    h += "<div class=\"meta\">devices: " + d + "</div>\n";
  }
  if (r.partial)
    h += "<div class=\"banner\"><b>Partial experiment</b>: units are still pending or "
         "running.</div>\n";
  if (r.empty) h += "<div class=\"banner\"><b>No samples yet</b>: nothing to measure.</div>\n";
  if (!r.notes.empty()) {
    h += "<ul class=\"meta\">";
    for (const auto& n : r.notes) h += "<li>" + XmlEscape(n) + "</li>";
    h += "</ul>\n";
  }
  auto figure = [&](const std::string& name, const std::string& caption) {
    auto it = svgs.find(name);
    if (it == svgs.end()) return;
    h += "<figure>" + it->second + "<figcaption>" + XmlEscape(caption) + "</figcaption></figure>\n";
  };
  h += "<h2>Against samples k</h2><div class=\"grid\">\n";
  figure("coverage_vs_k.svg",
         "Coverage: unbiased pass@k (Chen et al. 2021) over all samples; band = ±1 standard "
         "error over problems.");
  figure("majority_vs_k.svg",
         "Majority vote: mean over random subsets of size k; band = ±1 SE over problems.");
  figure("weighted_bon_vs_k.svg", "Weighted Best-of-N: PRM scores summed per equivalent answer.");
  figure(
      "bon_vs_k.svg",
      "Best-of-N: the answer of the single highest PRM score. It can fall as k grows: each added "
      "sample is another chance for the PRM to rank a confidently wrong solution first; weighted "
      "Best-of-N, which sums the scores of equivalent answers, is less sensitive to it.");
  h += "</div><h2>Against generation time</h2><div class=\"grid\">\n";
  figure("coverage_vs_time.svg",
         "Circled points form the Pareto front across all models and temperatures.");
  figure("majority_vs_time.svg", "Circled points form the Pareto front.");
  figure("weighted_bon_vs_time.svg", "Circled points form the Pareto front.");
  figure("bon_vs_time.svg", "Circled points form the Pareto front.");
  h += "</div>\n";
  if (svgs.count("speed_vs_batch.svg")) {
    h += "<h2>Engine speed</h2><div class=\"grid\">\n";
    figure("speed_vs_batch.svg",
           "Time to generate one batch at the benchmark's fixed lengths (prefill excluded).");
    h += "</div>\n";
  }
  h += "<h2>Tables</h2>\n";
  for (const auto& c : r.curves) {
    h += fmt::format("<h3>{} {}{}</h3>\n<table><tr><th>k</th><th>time (s)</th>", XmlEscape(c.model),
                     TemperatureLabel(c.temperature), c.temperature == 0 ? " (greedy)" : "");
    std::vector<std::pair<std::string, std::string>> cols;
    for (const auto& [metric, by_est] : c.values) {
      for (const auto& [est, v] : by_est) {
        cols.emplace_back(metric, est);
        h += "<th>" + metric + "<br>" + est + "</th>";
      }
    }
    h += "</tr>\n";
    for (size_t i = 0; i < c.k.size(); ++i) {
      h += fmt::format("<tr><td>{}</td><td>{:.3g}</td>", c.k[i], c.time_s[i]);
      for (const auto& [metric, est] : cols) {
        const auto& v = c.values.at(metric).at(est);
        h += fmt::format("<td>{:.1f}% ± {:.1f}</td>", 100 * v.mean[i], 100 * v.se[i]);
      }
      h += "</tr>\n";
    }
    h += "</table>\n";
  }
  h += "<h2>Grid spec (as submitted)</h2><pre>" + XmlEscape(r.experiment.grid_spec_json) +
       "</pre>\n";
  h += "</body></html>\n";
  return h;
}

Status WriteReport(const ReportOptions& options) {
  store::OpenOptions oo;
  oo.create_if_missing = false;
  oo.read_only = true;
  TTC_ASSIGN_OR_RETURN(auto db, store::Store::Open(options.db_path, oo));
  TTC_ASSIGN_OR_RETURN(ReportData r, BuildReport(*db, options.experiment_id, options));
  std::ostream& term = options.terminal ? *options.terminal : std::cout;
  if (options.formats.count("table")) term << ReportToTable(r);
  if (options.out_dir.empty()) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) return IoError("cannot create {}: {}", options.out_dir.string(), ec.message());
  auto write = [&](const std::string& name, const std::string& text) -> Status {
    const auto path = options.out_dir / name;
    const auto tmp = options.out_dir / (name + ".tmp");
    {
      std::ofstream f(tmp, std::ios::binary);
      f << text;
      if (!f) return IoError("cannot write {}", tmp.string());
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) return IoError("cannot write {}: {}", path.string(), ec.message());
    return Status::Ok();
  };
  if (options.formats.count("csv")) TTC_RETURN_IF_ERROR(write("metrics.csv", ReportToCsv(r)));
  if (options.formats.count("json"))
    TTC_RETURN_IF_ERROR(write("report.json", ReportToJson(r).dump(1)));
  auto svgs = ReportToSvgs(r);
  if (options.formats.count("svg")) {
    for (const auto& [name, text] : svgs) TTC_RETURN_IF_ERROR(write(name, text));
  }
  if (options.formats.count("html"))
    TTC_RETURN_IF_ERROR(write("index.html", ReportToHtml(r, svgs)));
  spdlog::info("report written to {}", options.out_dir.string());
  return Status::Ok();
}

}  // namespace ttc::reports
