#include "reports/time_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ttc::reports {
namespace {

// Linear interpolation of y over x (sorted ascending, distinct), extrapolating with the end segments.
double Interpolate(const std::vector<double>& xs, const std::vector<double>& ys, double x) {
  if (xs.empty()) return 0;
  if (xs.size() == 1) return ys[0];
  size_t hi = std::upper_bound(xs.begin(), xs.end(), x) - xs.begin();
  hi = std::clamp<size_t>(hi, 1, xs.size() - 1);
  size_t lo = hi - 1;
  double t = (x - xs[lo]) / (xs[hi] - xs[lo]);
  return std::max(0.0, ys[lo] + t * (ys[hi] - ys[lo]));
}

double MeanStepSeconds(const ProblemRun& run, int k) {
  double decode = 0;
  int64_t steps = 0;
  for (int i = 0; i < k; ++i) {
    decode += run.decode_s[i];
    steps += run.num_tokens[i];
  }
  return steps > 0 ? decode / steps : 0.0;
}

}  // namespace

const char* TimeModelName(TimeModelKind kind) { return kind == TimeModelKind::kPaper ? "paper" : "length"; }

const char* TimeModelSourceName(TimeModelSource s) {
  return s == TimeModelSource::kBenchTable ? "bench_table" : "measured_samples";
}

SpeedTable::SpeedTable(std::span<const store::BenchRow> rows) {
  for (const auto& r : rows) {
    if (r.batch <= 0) continue;
    if (r.table == "paper" && r.total_s > 0) paper_.push_back(r);
    if (r.table == "step" && r.step_s > 0) step_.push_back(r);
  }
  auto by_batch = [](const store::BenchRow& a, const store::BenchRow& b) {
    return a.batch != b.batch ? a.batch < b.batch : a.context_len < b.context_len;
  };
  std::sort(paper_.begin(), paper_.end(), by_batch);
  std::sort(step_.begin(), step_.end(), by_batch);
  // Keep one paper row per batch (the newest measurement wins).
  std::vector<store::BenchRow> unique;
  for (const auto& r : paper_) {
    if (!unique.empty() && unique.back().batch == r.batch) {
      if (r.created_at >= unique.back().created_at) unique.back() = r;
    } else {
      unique.push_back(r);
    }
  }
  paper_ = std::move(unique);
  for (const auto& r : paper_) {
    paper_x_.push_back(std::log2(static_cast<double>(r.batch)));
    paper_total_.push_back(r.total_s);
    paper_step_.push_back(r.gen_len > 0 ? r.total_s / r.gen_len : r.total_s);
  }
  for (size_t i = 0; i < step_.size();) {
    size_t j = i;
    std::vector<double> cx, cy;
    while (j < step_.size() && step_[j].batch == step_[i].batch) {
      if (cx.empty() || step_[j].context_len != cx.back()) {
        cx.push_back(step_[j].context_len);
        cy.push_back(step_[j].step_s);
      }
      ++j;
    }
    step_x_.push_back(std::log2(static_cast<double>(step_[i].batch)));
    step_ctx_.push_back(std::move(cx));
    step_s_.push_back(std::move(cy));
    i = j;
  }
}

double SpeedTable::PaperSeconds(int batch) const {
  return Interpolate(paper_x_, paper_total_, std::log2(static_cast<double>(std::max(1, batch))));
}

double SpeedTable::StepSeconds(int batch, int context) const {
  const double lb = std::log2(static_cast<double>(std::max(1, batch)));
  if (step_x_.empty()) return Interpolate(paper_x_, paper_step_, lb);
  if (step_x_.size() == 1) return Interpolate(step_ctx_[0], step_s_[0], context);
  size_t hi = std::upper_bound(step_x_.begin(), step_x_.end(), lb) - step_x_.begin();
  hi = std::clamp<size_t>(hi, 1, step_x_.size() - 1);
  const size_t lo = hi - 1;
  const double y0 = Interpolate(step_ctx_[lo], step_s_[lo], context);
  const double y1 = Interpolate(step_ctx_[hi], step_s_[hi], context);
  const double t = (lb - step_x_[lo]) / (step_x_[hi] - step_x_[lo]);
  return std::max(0.0, y0 + t * (y1 - y0));
}

double TimeForK(const ProblemRun& run, int k, TimeModelKind kind, const SpeedTable* table,
                TimeModelSource* source_out) {
  k = std::min(k, run.size());
  if (k <= 0) return 0;
  double prefill = 0;
  for (int i = 0; i < k; ++i) prefill = std::max(prefill, run.prefill_s[i]);
  const bool usable = table != nullptr && (kind == TimeModelKind::kPaper ? table->has_paper()
                                                                          : table->has_step() || table->has_paper());
  if (source_out) *source_out = usable ? TimeModelSource::kBenchTable : TimeModelSource::kMeasuredSamples;
  if (kind == TimeModelKind::kPaper) {
    if (usable) return table->PaperSeconds(k);
    double slowest = 0;
    for (int i = 0; i < k; ++i) slowest = std::max(slowest, run.prefill_s[i] + run.decode_s[i]);
    return slowest;
  }
  // Length-aware: the live batch shrinks as samples finish.
  std::vector<int> lengths(run.num_tokens.begin(), run.num_tokens.begin() + k);
  std::sort(lengths.begin(), lengths.end());
  const double fallback_step = usable ? 0.0 : MeanStepSeconds(run, k);
  double total = prefill;
  int step = 0;
  for (int idx = 0; idx < k; ++idx) {
    const int live = k - idx;
    for (; step < lengths[idx]; ++step) {
      total += usable ? table->StepSeconds(live, run.prompt_tokens + step) : fallback_step;
    }
  }
  return total;
}

std::vector<int> ParetoFront(std::span<const double> time, std::span<const double> value) {
  std::vector<int> idx(time.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) {
    return time[a] != time[b] ? time[a] < time[b] : value[a] > value[b];
  });
  std::vector<int> front;
  double best = -INFINITY;
  for (int i : idx) {
    if (value[i] > best) {
      front.push_back(i);
      best = value[i];
    }
  }
  return front;
}

}  // namespace ttc::reports
