// store_bench: how fast the SQLite store ingests, leases and reads back, on a real file.
//
//   build/bench/store_bench [--samples N] [--batch B] [--text-bytes T] [--repeats R] [--dir DIR]
//
// Measures, each as the median of R repeats on a fresh database file in DIR (default: the system
// temp dir):
//   ingest      InsertSamples in batches of B (one transaction per batch): the coordinator's path.
//   Target: >= 20,000
//               samples/s (issue 7).
//   ingest_one  baseline in the same run: one transaction per sample (InsertSample), what a naive
//   caller gets. claim       ClaimUnit + InsertSamples(unit's samples) + CompleteUnit cycles with
//   affinity: units/s. read        ForEachSample over all samples without text (the reporter's bulk
//   read): samples/s. status      GetExperimentStatus over all samples: milliseconds per call.
// Prints one line per measurement and a JSON summary line at the end.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "store/store.h"

namespace {

using ttc::store::Store;
using namespace ttc::store;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU seconds of this process.
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Timer {
  double wall0 = Now();
  double cpu0 = CpuNow();
};

// Rates of one measurement over the repeats: per wall second and per CPU-second.
struct Series {
  std::vector<double> wall, cpu;
  void Add(int64_t n, const Timer& t) {
    wall.push_back(static_cast<double>(n) / (Now() - t.wall0));
    cpu.push_back(static_cast<double>(n) / (CpuNow() - t.cpu0));
  }
  static std::string Fmt(double w, double c) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f / %.0f", w, c);
    return buf;
  }
  std::string Last() const { return Fmt(wall.back(), cpu.back()); }
  std::string Med() const { return Fmt(Median(wall), Median(cpu)); }
};

[[noreturn]] void Die(const ttc::Status& st, const char* what) {
  std::fprintf(stderr, "store_bench: %s: %s\n", what, st.ToString().c_str());
  std::exit(1);
}

struct Args {
  int samples = 200000;
  int batch = 256;
  int text_bytes = 1500;  // a chain-of-thought answer of ~400 tokens
  int repeats = 5;
  std::string dir = std::filesystem::temp_directory_path().string();
};

// One experiment: 2 models x problems x units of `per_unit` samples each, `total` samples in all.
NewExperiment MakeSpec(int total, int per_unit) {
  NewExperiment spec;
  spec.experiment.name = "bench";
  spec.experiment.grid_spec_json = "{}";
  spec.models = {{0, 0, "a", "/a", ""}, {0, 0, "b", "/b", ""}};
  int units = (total + per_unit - 1) / per_unit;
  int problems = (units + 1) / 2;
  for (int p = 0; p < problems; ++p) {
    spec.problems.push_back({0, p, "p" + std::to_string(p), "question", "42", ""});
  }
  for (int i = 0; i < units; ++i) {
    Unit u;
    u.model_name = i % 2 ? "b" : "a";
    u.temperature = 0.8;
    u.problem_indices = {i / 2};
    u.sample_begin = 0;
    u.sample_end = per_unit;
    u.order_key = i;
    spec.units.push_back(u);
  }
  return spec;
}

Sample MakeSample(const Unit& u, int index, const std::string& text) {
  Sample s;
  s.unit_id = u.id;
  s.problem_index = u.problem_indices[0];
  s.sample_index = index;
  s.attempt = u.attempt;
  s.text = text;
  s.num_tokens = 400;
  s.finish_reason = "stop";
  s.extracted_answer = std::to_string(index % 7);
  s.correct = index % 3 == 0;
  s.prefill_s = 0.01;
  s.decode_s = 4.0;
  s.steps = 400;
  return s;
}

std::unique_ptr<Store> Fresh(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  auto s = Store::Open(path);
  if (!s.ok()) Die(s.status(), "open");
  return std::move(s).value();
}

// Leases every unit of a fresh experiment to one worker and returns them.
std::vector<Unit> LeaseAll(Store& store, int total, int per_unit) {
  auto c = store.CreateExperiment(MakeSpec(total, per_unit));
  if (!c.ok()) Die(c.status(), "create experiment");
  std::vector<Unit> units;
  while (true) {
    ClaimOptions opt;
    opt.worker_id = "w";
    opt.now = 0;
    opt.lease_seconds = 1e9;
    auto u = store.ClaimUnit(opt);
    if (!u.ok()) Die(u.status(), "claim");
    if (!u->has_value()) break;
    units.push_back(**u);
  }
  return units;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--samples")
      a.samples = std::atoi(argv[i + 1]);
    else if (k == "--batch")
      a.batch = std::atoi(argv[i + 1]);
    else if (k == "--text-bytes")
      a.text_bytes = std::atoi(argv[i + 1]);
    else if (k == "--repeats")
      a.repeats = std::atoi(argv[i + 1]);
    else if (k == "--dir")
      a.dir = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: store_bench [--samples N] [--batch B] [--text-bytes T] [--repeats R] "
                   "[--dir D]\n");
      return 2;
    }
  }
  if (a.samples < a.batch || a.batch < 1 || a.repeats < 1 || a.text_bytes < 0) {
    std::fprintf(stderr, "store_bench: need samples >= batch >= 1, repeats >= 1\n");
    return 2;
  }
  const std::string path = a.dir + "/store_bench_" + std::to_string(::getpid()) + ".db";
  const std::string text(a.text_bytes, 'x');
  std::printf("store_bench: %d samples, batch %d, %d-byte texts, %d repeats, file %s\n", a.samples,
              a.batch, a.text_bytes, a.repeats, path.c_str());
  // Each metric in two forms: per wall-clock second, and per CPU-second of this process (the
  // machine is shared, so wall time also measures the neighbours; CPU time is what the store itself
  // costs).
  Series ingest, ingest_one, claim, read;
  std::vector<double> status_ms;
  const int one_samples = std::min(a.samples, 5000);  // the baseline is slow; fewer samples suffice
  for (int r = 0; r < a.repeats; ++r) {
    // Batched ingest: units of `batch` samples, one InsertSamples per unit.
    {
      auto store = Fresh(path);
      std::vector<Unit> units = LeaseAll(*store, a.samples, a.batch);
      Timer t;
      int64_t n = 0;
      for (const Unit& u : units) {
        std::vector<Sample> batch;
        batch.reserve(a.batch);
        for (int i = u.sample_begin; i < u.sample_end; ++i) batch.push_back(MakeSample(u, i, text));
        auto res = store->InsertSamples(batch);
        if (!res.ok()) Die(res.status(), "insert");
        n += static_cast<int64_t>(res->size());
      }
      ingest.Add(n, t);

      // Bulk read (the reporter's) and status on the same file.
      Timer tr;
      int64_t seen = 0, tokens = 0;
      SampleQuery q;
      q.experiment_id = units[0].experiment_id;
      ttc::Status st = store->ForEachSample(q, [&](const Sample& s) {
        ++seen;
        tokens += s.num_tokens;
        return ttc::Status::Ok();
      });
      if (!st.ok()) Die(st, "read");
      read.Add(seen, tr);
      Timer ts;
      auto es = store->GetExperimentStatus(units[0].experiment_id);
      if (!es.ok()) Die(es.status(), "status");
      status_ms.push_back((Now() - ts.wall0) * 1e3);
      if (es->samples != n || seen != n || es->tokens != tokens) {
        std::fprintf(stderr, "store_bench: count mismatch: inserted %lld, read %lld, status %lld\n",
                     static_cast<long long>(n), static_cast<long long>(seen),
                     static_cast<long long>(es->samples));
        return 1;
      }
    }
    // Baseline: one transaction per sample.
    {
      auto store = Fresh(path);
      std::vector<Unit> units = LeaseAll(*store, one_samples, a.batch);
      Timer t;
      int64_t n = 0;
      for (const Unit& u : units) {
        for (int i = u.sample_begin; i < u.sample_end; ++i) {
          auto res = store->InsertSample(MakeSample(u, i, text));
          if (!res.ok()) Die(res.status(), "insert one");
          ++n;
        }
      }
      ingest_one.Add(n, t);
    }
    // Queue cycle: claim (with affinity), deliver the unit's samples, complete.
    {
      auto store = Fresh(path);
      const int per_unit = 16;
      const int units_total = 2000;
      auto c = store->CreateExperiment(MakeSpec(units_total * per_unit, per_unit));
      if (!c.ok()) Die(c.status(), "create experiment");
      Timer t;
      int done = 0;
      while (true) {
        ClaimOptions opt;
        opt.worker_id = "w";
        opt.now = 0;
        opt.preferred_models = {"b"};
        auto u = store->ClaimUnit(opt);
        if (!u.ok()) Die(u.status(), "claim");
        if (!u->has_value()) break;
        std::vector<Sample> batch;
        for (int i = 0; i < per_unit; ++i) batch.push_back(MakeSample(**u, i, text));
        auto res = store->InsertSamples(batch);
        if (!res.ok()) Die(res.status(), "insert");
        ttc::Status st = store->CompleteUnit((*u)->id, "w", (*u)->attempt);
        if (!st.ok()) Die(st, "complete");
        ++done;
      }
      claim.Add(done, t);
    }
    std::printf(
        "repeat %d: ingest %s samples/s, ingest_one %s samples/s, claim cycle %s units/s, read %s "
        "samples/s, status %.1f ms\n",
        r + 1, ingest.Last().c_str(), ingest_one.Last().c_str(), claim.Last().c_str(),
        read.Last().c_str(), status_ms.back());
    std::fflush(stdout);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  std::printf(
      "median of %d (wall / per CPU-s): ingest %s samples/s (batch %d); ingest_one %s samples/s "
      "(baseline); claim cycle %s units/s (16 samples each); read %s samples/s; status %.1f ms "
      "over %d samples\n",
      a.repeats, ingest.Med().c_str(), a.batch, ingest_one.Med().c_str(), claim.Med().c_str(),
      read.Med().c_str(), Median(status_ms), a.samples);
  std::printf(
      "{\"bench\":\"store\",\"samples\":%d,\"batch\":%d,\"text_bytes\":%d,\"repeats\":%d,"
      "\"ingest_samples_per_s\":%.0f,\"ingest_samples_per_cpu_s\":%.0f,"
      "\"ingest_one_samples_per_s\":%.0f,\"ingest_one_samples_per_cpu_s\":%.0f,"
      "\"claim_units_per_s\":%.0f,\"claim_units_per_cpu_s\":%.0f,"
      "\"read_samples_per_s\":%.0f,\"read_samples_per_cpu_s\":%.0f,\"status_ms\":%.2f}\n",
      a.samples, a.batch, a.text_bytes, a.repeats, Median(ingest.wall), Median(ingest.cpu),
      Median(ingest_one.wall), Median(ingest_one.cpu), Median(claim.wall), Median(claim.cpu),
      Median(read.wall), Median(read.cpu), Median(status_ms));
  return 0;
}
