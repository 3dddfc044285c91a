// Report benchmark (issue 8): synthesizes an experiment of P problems x M models x T temperatures x N samples
// into a fresh store (default 500 x 6 x 2 x 256 = 1.5 M samples, with PRM scores for every sample) and times
// BuildReport plus rendering every output format. Usage: report_bench [--problems P] [--models M]
// [--samples N] [--subsets R] [--db FILE] (reuses FILE if it already holds the experiment).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "reports/report.h"
#include "store/store.h"

using namespace ttc;

int main(int argc, char** argv) {
  int problems = 500, models = 6, temps = 2, samples = 256, subsets = 100;
  std::string db_path = "/tmp/ttc-report-bench.db";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--problems")) problems = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--models")) models = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--samples")) samples = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--subsets")) subsets = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--db")) db_path = argv[i + 1];
  }
  using Clock = std::chrono::steady_clock;
  const bool reuse = std::filesystem::exists(db_path);
  auto db = store::Store::Open(db_path);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  store::Id exp_id = 1;
  if (!reuse) {
    auto t0 = Clock::now();
    store::NewExperiment ne;
    ne.experiment.name = "report-bench";
    ne.experiment.grid_spec_json = R"({"name":"report-bench","dataset":{"kind":"math500"},"models":[{"name":"m","path":"/x"}],"grader":"sal"})";
    for (int m = 0; m < models; ++m) ne.models.push_back({.name = "model-" + std::to_string(m), .path = "/x"});
    for (int p = 0; p < problems; ++p) {
      ne.problems.push_back({.index = p, .external_id = std::to_string(p), .question = "q", .gold_answer = "42"});
    }
    for (int m = 0; m < models; ++m) {
      for (int t = 0; t < temps; ++t) {
        store::Unit u;
        u.model_name = "model-" + std::to_string(m);
        u.temperature = 0.4 + 0.4 * t;
        for (int p = 0; p < problems; ++p) u.problem_indices.push_back(p);
        u.sample_begin = 0;
        u.sample_end = samples;
        ne.units.push_back(u);
      }
    }
    auto created = (*db)->CreateExperiment(ne);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    exp_id = (*db)->ListExperiments()->back().id;
    uint64_t rng = 12345;
    auto next = [&]() {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      return rng;
    };
    for (size_t ui = 0; ui < created->unit_ids.size(); ++ui) {
      store::ClaimOptions co;
      co.worker_id = "bench";
      co.now = store::UnixSeconds();
      co.kinds = {store::UnitKind::kGenerate};
      auto unit = (*db)->ClaimUnit(co);
      const store::Unit& un = **unit;
      std::vector<store::Sample> batch;
      for (int p = 0; p < problems; ++p) {
        const int skill = static_cast<int>(next() % 100);  // per-problem difficulty
        for (int s = 0; s < samples; ++s) {
          store::Sample x;
          x.unit_id = un.id;
          x.problem_index = p;
          x.sample_index = s;
          x.attempt = un.attempt;
          const bool right = static_cast<int>(next() % 100) < skill;
          x.extracted_answer = right ? "42" : std::to_string(next() % 6);
          x.correct = right;
          x.num_tokens = 100 + static_cast<int>(next() % 400);
          x.prefill_s = 0.01;
          x.decode_s = 0.001 * x.num_tokens;
          batch.push_back(std::move(x));
        }
        if (batch.size() >= 8192 || p == problems - 1) {
          auto ins = (*db)->InsertSamples(batch);
          if (!ins.ok()) {
            std::fprintf(stderr, "%s\n", ins.status().ToString().c_str());
            return 1;
          }
          batch.clear();
        }
      }
    }
    std::printf("synthesized %lld samples in %.1f s\n", static_cast<long long>(problems) * models * temps * samples,
                std::chrono::duration<double>(Clock::now() - t0).count());
  }
  reports::ReportOptions o;
  o.random_subsets = subsets;
  auto t1 = Clock::now();
  auto r = reports::BuildReport(**db, exp_id, o);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  auto t2 = Clock::now();
  auto svgs = reports::ReportToSvgs(*r);
  std::string html = reports::ReportToHtml(*r, svgs);
  std::string csv = reports::ReportToCsv(*r);
  std::string json = reports::ReportToJson(*r).dump();
  auto t3 = Clock::now();
  std::printf("report over %lld samples (%zu curves, %d random subsets): build %.2f s, render %.2f s, total %.2f s\n",
              static_cast<long long>(r->status.samples), r->curves.size(), subsets,
              std::chrono::duration<double>(t2 - t1).count(), std::chrono::duration<double>(t3 - t2).count(),
              std::chrono::duration<double>(t3 - t1).count());
  return 0;
}
