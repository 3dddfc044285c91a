// Time models: how long generating k samples of one problem takes for a model on a device, so metrics can be
// plotted against generation time (DESIGN.md §6, evaluation.md §5.6). Two models, always named in outputs:
//  - paper: the measured time to generate a batch of k at the benchmark's fixed prompt/generation lengths
//    (engine bench table "paper"), interpolated in log2(batch) between measured batch sizes;
//  - length: prefill plus the sum over decode steps of the measured step time at the live batch size and
//    context (bench table "step", bilinear in log2(batch) and context), using each sample's real length.
// When a model has no bench table, both fall back to the samples' own measured timings and say so
// (TimeModelSource::kMeasuredSamples). Pure value types and functions; thread-safe.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "reports/metrics.h"
#include "store/types.h"

namespace ttc::reports {

enum class TimeModelKind { kPaper, kLength };
const char* TimeModelName(TimeModelKind kind);  // "paper", "length"

// Where a model's times come from.
enum class TimeModelSource { kBenchTable, kMeasuredSamples };
const char* TimeModelSourceName(TimeModelSource s);  // "bench_table", "measured_samples"

// The benchmark rows of one model on one device.
class SpeedTable {
 public:
  SpeedTable() = default;
  // `rows` may mix tables; only "paper" and "step" rows are used.
  explicit SpeedTable(std::span<const store::BenchRow> rows);

  bool has_paper() const { return !paper_.empty(); }
  bool has_step() const { return !step_.empty(); }
  // Seconds for a batch of `batch` at the paper protocol (interpolated; extrapolated linearly in log2(batch)
  // from the nearest segment beyond the measured range).
  double PaperSeconds(int batch) const;
  // Seconds of one decode step at (batch, context). Uses "step" rows when present, else paper rows as
  // total_s / gen_len (context-independent).
  double StepSeconds(int batch, int context) const;
  const std::vector<store::BenchRow>& paper_rows() const { return paper_; }

 private:
  std::vector<store::BenchRow> paper_;  // sorted by batch
  std::vector<store::BenchRow> step_;   // sorted by batch, context
  // Interpolation grids precomputed once (the length model calls StepSeconds for every decode step).
  std::vector<double> paper_x_, paper_total_, paper_step_;  // over log2(batch)
  std::vector<double> step_x_;                              // log2(batch) of each measured batch
  std::vector<std::vector<double>> step_ctx_, step_s_;      // per measured batch: context -> step seconds
};

// Seconds to generate the first k samples of `run` under `kind`. With a table lacking what the kind needs, or
// no table, the measured fallback: paper -> the slowest of the first k samples' (prefill + decode) times;
// length -> prefill + sum of per-step times at the samples' measured mean step time.
double TimeForK(const ProblemRun& run, int k, TimeModelKind kind, const SpeedTable* table,
                TimeModelSource* source_out = nullptr);

// The points of the Pareto front of (time, value): no other point is at most as slow and at least as good with
// one of the two strictly better. Returns indices into the inputs, sorted by time.
std::vector<int> ParetoFront(std::span<const double> time, std::span<const double> value);

}  // namespace ttc::reports
