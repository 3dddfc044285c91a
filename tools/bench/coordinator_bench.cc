// Coordinator throughput: an in-process coordinator (real ROUTER socket on loopback TCP, real
// SQLite file, grading on) fed by many synthetic load workers (DEALER sockets in threads) that
// fabricate samples instead of running a model. Measures samples ingested per second (committed,
// graded and acknowledged) and scheduling latency (request_work -> assign). Baseline in the same
// run: the store alone inserting the same samples in batches.
//
//   build/bench/coordinator_bench [--workers 16] [--problems 2000] [--samples 64] [--text-bytes
//   600] [--repeats 3]
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "coordinator/client.h"
#include "coordinator/coordinator.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace ttc;

struct Args {
  int workers = 16;
  int problems = 2000;
  int samples = 64;
  int text_bytes = 600;
  int repeats = 3;
};

std::string FakeCompletion(int bytes, int answer) {
  std::string s = "Let's think step by step. ";
  while (static_cast<int>(s.size()) < bytes - 40) s += "We add the numbers and carry the tens. ";
  return s + "The final answer is " + std::to_string(answer) + ".";
}

// One fabricating worker: hello, then request_work / stream every sample / unit_done until no work
// is left.
void LoadWorker(const std::string& endpoint, int index, int text_bytes, std::atomic<bool>& stop,
                std::vector<double>& latencies_ms, std::atomic<int64_t>& acked) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  std::string id = "load/" + std::to_string(index);
  s.set(zmq::sockopt::routing_id, id);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 0);
  s.connect(endpoint);
  protocol::Hello h;
  h.worker_id = id;
  h.host = "bench";
  h.device = "fake";
  auto send = [&](const char* type, const nlohmann::json& body) {
    std::string f = protocol::Encode(type, body);
    s.send(zmq::buffer(f), zmq::send_flags::none);
  };
  send(protocol::kHelloType, h.ToJson());
  std::string text = FakeCompletion(text_bytes, 42);
  int64_t seq = 0;
  Clock::time_point asked;
  bool waiting = false;
  int idle_rounds = 0;
  while (!stop.load()) {
    zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(50));
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    zmq::message_t m;
    while (s.recv(m, zmq::recv_flags::dontwait)) {
      auto env = protocol::Decode(m.to_string_view());
      if (!env.ok()) continue;
      if (env->type == protocol::kWelcomeType || env->type == protocol::kNoWorkType) {
        if (env->type == protocol::kNoWorkType) {
          waiting = false;
          if (++idle_rounds > 40) return;  // the experiment is finished
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        send(protocol::kRequestWorkType, nlohmann::json::object());
        asked = Clock::now();
        waiting = true;
      } else if (env->type == protocol::kAckType) {
        acked.fetch_add(static_cast<int64_t>(env->body["seqs"].size()));
      } else if (env->type == protocol::kAssignType) {
        if (waiting)
          latencies_ms.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - asked).count());
        idle_rounds = 0;
        auto a = protocol::Assign::Parse(env->body);
        if (!a.ok()) continue;
        for (const auto& item : a->items) {
          for (int64_t si : item.sample_indices) {
            protocol::SampleResult r;
            r.unit = a->unit;
            r.seq = ++seq;
            r.problem_index = item.problem_index;
            r.sample_index = si;
            r.text = text;
            r.num_tokens = text_bytes / 4;
            r.finish_reason = "stop";
            r.decode_s = 0.01;
            r.steps = r.num_tokens;
            send(protocol::kSampleType, r.ToJson());
          }
        }
        send(protocol::kUnitDoneType, protocol::UnitDone{a->unit, 0, 0}.ToJson());
        send(protocol::kRequestWorkType, nlohmann::json::object());
        asked = Clock::now();
        waiting = true;
      }
    }
  }
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

struct Figures {
  double samples_per_s = 0;
  double store_only_per_s = 0;
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  int64_t samples = 0;
  // Samples per CPU-second of the coordinator's own thread (decode, grade, SQLite; not its ZeroMQ
  // I/O thread): its capacity when it has a core to itself, which on a small machine the 16 load
  // workers (each with its own ZeroMQ I/O thread) do not leave it.
  double samples_per_coord_cpu_s = 0;
};

Figures RunOnce(const Args& args, const std::filesystem::path& dir) {
  Figures f;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "model");
  std::ofstream(dir / "model/config.json") << "{}";
  coordinator::CoordinatorOptions o;
  o.db_path = (dir / "bench.db").string();
  o.listen = {"tcp://127.0.0.1:*"};
  o.heartbeat_ms = 1000;
  o.lease_s = 600;
  o.stall_s = 600;
  auto c = coordinator::Coordinator::Create(o);
  if (!c.ok()) {
    std::fprintf(stderr, "coordinator: %s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  std::string endpoint = (*c)->bound_endpoints()[0];
  std::atomic<bool> stop_coord{false};
  double coord_cpu_s = 0.0;
  std::thread server([&] {
    (void)(*c)->Run(stop_coord);
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    coord_cpu_s = static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  });

  nlohmann::json grid = {
      {"name", "bench"},
      {"dataset", {{"name", "synthetic"}, {"count", args.problems}, {"seed", 1}}},
      {"models", {{{"name", "fake"}, {"path", (dir / "model").string()}}}},
      {"temperatures", {0.8}},
      {"n_samples", args.samples},
      {"max_new_tokens", 256},
      {"units", {{"max_samples_per_unit", 64}}}};
  coordinator::ClientOptions co;
  co.endpoint = endpoint;
  co.timeout_ms = 120000;
  protocol::ClientRequest req;
  req.type = protocol::kSubmitType;
  req.grid = grid;
  auto sub = coordinator::Call(co, req);
  if (!sub.ok()) {
    std::fprintf(stderr, "submit: %s\n", sub.status().ToString().c_str());
    std::exit(1);
  }
  const int64_t expected = static_cast<int64_t>(args.problems) * args.samples;

  std::atomic<bool> stop{false};
  std::atomic<int64_t> acked{0};
  std::vector<std::vector<double>> lat(args.workers);
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < args.workers; ++i) {
    threads.emplace_back(LoadWorker, endpoint, i, args.text_bytes, std::ref(stop), std::ref(lat[i]),
                         std::ref(acked));
  }
  while (acked.load() < expected &&
         std::chrono::duration<double>(Clock::now() - t0).count() < 600) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  for (auto& t : threads) t.join();
  stop_coord = true;
  server.join();
  f.samples = acked.load();
  f.samples_per_s = f.samples / secs;
  f.samples_per_coord_cpu_s = coord_cpu_s > 0 ? f.samples / coord_cpu_s : 0;
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  f.latency_p50_ms = Percentile(all, 0.5);
  f.latency_p99_ms = Percentile(all, 0.99);

  // Baseline: the store alone, same samples, batches of 1000 (no sockets, no grading).
  {
    auto st = store::Store::Open(o.db_path);
    auto exp = (*st)->ListExperiments();
    auto units = (*st)->ListUnits({.experiment_id = (*exp)[0].id});
    store::NewExperiment ne;
    ne.experiment.name = "baseline";
    ne.models.push_back({0, 0, "fake", "/x", ""});
    for (int p = 0; p < args.problems; ++p)
      ne.problems.push_back({0, p, "id" + std::to_string(p), "q", "42", ""});
    for (const auto& u : *units) {
      store::Unit nu = u;
      nu.model_name = "fake";
      ne.units.push_back(nu);
    }
    auto created = (*st)->CreateExperiment(ne);
    std::vector<store::Unit> claimed;
    while (true) {
      auto u = (*st)->ClaimUnit({.worker_id = "b",
                                 .now = store::UnixSeconds(),
                                 .lease_seconds = 600,
                                 .experiment_id = created->experiment_id});
      if (!u.ok() || !*u) break;
      claimed.push_back(**u);
    }
    std::string text = FakeCompletion(args.text_bytes, 42);
    std::vector<store::Sample> batch;
    auto b0 = Clock::now();
    int64_t n = 0;
    for (const auto& u : claimed) {
      for (int p : u.problem_indices) {
        for (int s = u.sample_begin; s < u.sample_end; ++s) {
          store::Sample x;
          x.unit_id = u.id;
          x.attempt = u.attempt;
          x.problem_index = p;
          x.sample_index = s;
          x.text = text;
          x.num_tokens = args.text_bytes / 4;
          x.finish_reason = "stop";
          batch.push_back(std::move(x));
          if (batch.size() == 1000) {
            n += batch.size();
            (void)(*st)->InsertSamples(batch);
            batch.clear();
          }
        }
      }
    }
    n += batch.size();
    (void)(*st)->InsertSamples(batch);
    f.store_only_per_s = n / std::chrono::duration<double>(Clock::now() - b0).count();
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (k == "--workers") args.workers = v;
    if (k == "--problems") args.problems = v;
    if (k == "--samples") args.samples = v;
    if (k == "--text-bytes") args.text_bytes = v;
    if (k == "--repeats") args.repeats = v;
  }
  spdlog::set_level(spdlog::level::warn);
  auto dir =
      std::filesystem::temp_directory_path() / ("ttc-coord-bench-" + std::to_string(::getpid()));
  std::vector<Figures> runs;
  for (int r = 0; r < args.repeats; ++r) {
    runs.push_back(RunOnce(args, dir));
    const auto& f = runs.back();
    std::printf(
        "run %d: %lld samples, %.0f samples/s through the coordinator (store alone: %.0f/s), "
        "scheduling "
        "latency p50 %.2f ms p99 %.2f ms; %.0f samples per coordinator-thread CPU second\n",
        r, static_cast<long long>(f.samples), f.samples_per_s, f.store_only_per_s, f.latency_p50_ms,
        f.latency_p99_ms, f.samples_per_coord_cpu_s);
  }
  auto med = [&](auto get) {
    std::vector<double> v;
    for (const auto& f : runs) v.push_back(get(f));
    return Percentile(v, 0.5);
  };
  std::printf(
      "median of %d: %.0f samples/s via coordinator, %.0f samples/s store alone, latency p50 %.2f "
      "ms, p99 "
      "%.2f ms, %.0f samples per coordinator-thread CPU second (workers %d, problems %d x %d "
      "samples, %d-byte texts)\n",
      args.repeats, med([](const Figures& f) { return f.samples_per_s; }),
      med([](const Figures& f) { return f.store_only_per_s; }),
      med([](const Figures& f) { return f.latency_p50_ms; }),
      med([](const Figures& f) { return f.latency_p99_ms; }),
      med([](const Figures& f) { return f.samples_per_coord_cpu_s; }), args.workers, args.problems,
      args.samples, args.text_bytes);
  std::filesystem::remove_all(dir);
  return 0;
}
