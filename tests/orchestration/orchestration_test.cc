// End-to-end orchestration tests with real processes: the `ttc` binary as coordinator, workers and
// clients, ZeroMQ on loopback, SQLite files. Intervals are shortened by flags so failures are
// detected within a second.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <zmq.hpp>

#include "protocol/messages.h"
#include "protocol/wire.h"
#include "store/store.h"
#include "tests/orchestration/orch_util.h"
#include "worker/runner.h"

namespace ttc::testing {
namespace {

class Orchestration : public ::testing::Test {
 protected:
  void SetUp() override { MakeTinyModel(dir_ / "model"); }

  // Starts a coordinator on a free loopback port (or `listen`) with short intervals.
  std::unique_ptr<Child> StartCoordinator(const std::vector<std::string>& extra = {},
                                          const std::string& listen = "tcp://127.0.0.1:*") {
    std::filesystem::remove(dir_ / "endpoint");
    std::vector<std::string> args = {"coordinator",
                                     "--db",
                                     (dir_ / "t.db").string(),
                                     "--listen",
                                     listen,
                                     "--endpoint-file",
                                     (dir_ / "endpoint").string(),
                                     "--heartbeat-ms",
                                     "200",
                                     "--liveness",
                                     "10",
                                     "--lease-s",
                                     "30",
                                     "--stall-s",
                                     "30"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto c = std::make_unique<Child>(args, dir_ / "coordinator.log");
    endpoint_ = WaitEndpoint(dir_ / "endpoint", *c);
    EXPECT_FALSE(endpoint_.empty()) << c->Log();
    return c;
  }

  std::unique_ptr<Child> StartWorker(const std::string& name,
                                     const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"worker",           "--coordinator",
                                     endpoint_,          "--cpu",
                                     "--threads",        "1",
                                     "--name",           name,
                                     "--heartbeat-ms",   "200",
                                     "--backoff-max-ms", "500"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Child>(args, dir_ / ("worker-" + name + ".log"));
  }

  int64_t Submit(const nlohmann::json& grid) {
    auto path = dir_ / "grid.json";
    WriteFile(path, grid.dump());
    auto r = RunTtc("submit " + path.string() + " --coordinator " + endpoint_);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.exit_code == 0 ? std::stoll(r.output) : 0;
  }

  // Every (model, temperature, problem, sample) of the experiment exactly once, all graded.
  void ExpectExactlyOnce(int64_t experiment_id, int64_t expected) {
    auto st = store::Store::Open((dir_ / "t.db").string());
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    auto samples = (*st)->ListSamples({.experiment_id = experiment_id});
    ASSERT_TRUE(samples.ok()) << samples.status().ToString();
    std::set<std::tuple<int64_t, double, int, int>> keys;
    for (const auto& s : *samples) {
      EXPECT_TRUE(keys.insert({s.model_id, s.temperature, s.problem_index, s.sample_index}).second)
          << "duplicate sample " << s.problem_index << "/" << s.sample_index;
      EXPECT_TRUE(s.correct.has_value()) << "sample " << s.id << " not graded";
      EXPECT_GT(s.num_tokens, 0);
    }
    EXPECT_EQ(static_cast<int64_t>(samples->size()), expected);
  }

  bool Done(const nlohmann::json& st) { return ExperimentState(st) == "done"; }

  TempDir dir_;
  std::string endpoint_;
};

TEST_F(Orchestration, ThreeWorkersFinishASmallGrid) {
  auto coord = StartCoordinator();
  int64_t exp = Submit(TinyGrid("three", dir_ / "model", 6, 4, 24, 4, 2));
  ASSERT_GT(exp, 0);
  auto w0 = StartWorker("a");
  auto w1 = StartWorker("b");
  auto w2 = StartWorker("c");
  auto st = WaitStatus(endpoint_, 60, [&](const auto& s) { return Done(s); });
  ASSERT_EQ(ExperimentState(st), "done") << st.dump() << coord->Log();
  EXPECT_EQ(FirstExperiment(st)["units"]["failed"], 0);
  EXPECT_EQ(FirstExperiment(st)["samples"], 48);
  EXPECT_EQ(st["workers"].size(), 3u);
  ExpectExactlyOnce(exp, 48);
  // SIGTERM drains idle workers: exit 0.
  for (auto* w : {w0.get(), w1.get(), w2.get()}) w->Signal(SIGTERM);
  for (auto* w : {w0.get(), w1.get(), w2.get()}) EXPECT_EQ(w->Wait(10), 0) << w->Log();
  // Submitting the same grid again returns the same experiment (resume, not a new one).
  EXPECT_EQ(Submit(TinyGrid("three", dir_ / "model", 6, 4, 24, 4, 2)), exp);
}

// A grid's `backend` decides which workers claim a model's units: a CPU worker runs the model left
// on "auto" and leaves the "cuda" one and the one with a bf16 state (CUDA only) pending, without
// failing them.
TEST_F(Orchestration, UnitsGoOnlyToWorkersOfTheirBackend) {
  auto coord = StartCoordinator();
  auto grid = TinyGrid("backends", dir_ / "model", 3, 2, 16, 2, 3);
  grid["models"][1]["backend"] = "cuda";
  grid["models"][2]["state_dtype"] = "bf16";
  int64_t exp = Submit(grid);
  ASSERT_GT(exp, 0);
  auto w = StartWorker("a");
  auto samples = [](const nlohmann::json& s) {
    return FirstExperiment(s).value("samples", int64_t{-1});
  };
  auto st = WaitStatus(endpoint_, 60, [&](const auto& s) { return samples(s) == 6; });
  ASSERT_EQ(samples(st), 6) << st.dump() << coord->Log();
  // The worker keeps asking for work; the other models' units stay pending.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  st = WaitStatus(endpoint_, 10, [](const auto&) { return true; });
  EXPECT_EQ(samples(st), 6) << st.dump();
  EXPECT_EQ(FirstExperiment(st)["units"]["failed"], 0) << st.dump();
  EXPECT_GT(FirstExperiment(st)["units"]["pending"].get<int64_t>(), 0) << st.dump();
  EXPECT_NE(ExperimentState(st), "done");
  auto db = store::Store::Open((dir_ / "t.db").string());
  ASSERT_TRUE(db.ok());
  auto models = (*db)->ListModels(exp);
  ASSERT_TRUE(models.ok());
  auto rows = (*db)->ListSamples({.experiment_id = exp});
  ASSERT_TRUE(rows.ok());
  for (const auto& r : *rows) {
    for (const auto& m : *models) {
      if (m.id == r.model_id) {
        EXPECT_EQ(m.name, "m0");
      }
    }
  }
  w->Signal(SIGTERM);
  EXPECT_EQ(w->Wait(10), 0) << w->Log();
}

TEST_F(Orchestration, PrmScoreUnitsScoreEveryStepOfEverySample) {
  auto coord = StartCoordinator();
  nlohmann::json grid = TinyGrid("prm", dir_ / "model", 2, 2, 48, 4);
  // The tiny Llama doubles as a (random) process reward model: what is checked is the pipeline, not
  // the scores.
  grid["reward_model"] = {{"name", "prm"}, {"path", (dir_ / "model").string()}};
  int64_t exp = Submit(grid);
  auto w = StartWorker("a");
  auto st = WaitStatus(endpoint_, 60, [&](const auto& s) { return Done(s); });
  ASSERT_EQ(ExperimentState(st), "done") << st.dump() << coord->Log();
  ExpectExactlyOnce(exp, 4);
  auto db = store::Store::Open((dir_ / "t.db").string());
  ASSERT_TRUE(db.ok());
  auto samples = (*db)->ListSamples({.experiment_id = exp, .include_text = true});
  auto scores = (*db)->ListStepScores(exp);
  ASSERT_TRUE(samples.ok() && scores.ok());
  std::map<int64_t, int> steps;
  for (const auto& sc : *scores) {
    EXPECT_GE(sc.score, 0.0);
    EXPECT_LE(sc.score, 1.0);
    ++steps[sc.sample_id];
  }
  for (const auto& s : *samples) {
    EXPECT_EQ(steps[s.id], static_cast<int>(worker::SplitSteps(s.text).size()))
        << "sample " << s.id;
  }
  auto units = (*db)->ListUnits({.experiment_id = exp, .kind = store::UnitKind::kScore});
  ASSERT_TRUE(units.ok());
  EXPECT_EQ(units->size(), 1u);  // one generate unit (2 problems x 2 samples) -> one score unit
}

TEST_F(Orchestration, KilledWorkerMidUnitEverySampleExactlyOnce) {
  auto coord = StartCoordinator();
  int64_t exp = Submit(TinyGrid("kill", dir_ / "model", 3, 4, 96, 4));
  auto victim = StartWorker("victim");
  // Kill it while it holds a unit.
  auto st = WaitStatus(endpoint_, 30, [](const auto& s) {
    for (const auto& w : s["workers"]) {
      if (w.value("unit", 0) != 0) return true;
    }
    return false;
  });
  victim->Signal(SIGKILL);
  victim->Wait(5);
  auto survivor = StartWorker("survivor");
  st = WaitStatus(endpoint_, 60, [&](const auto& s) { return Done(s); });
  ASSERT_EQ(ExperimentState(st), "done") << st.dump();
  EXPECT_GE(st["coordinator"]["counters"]["workers_lost"].template get<int>(), 1);
  ExpectExactlyOnce(exp, 12);
}

TEST_F(Orchestration, CoordinatorKilledAndRestartedMidRun) {
  auto coord = StartCoordinator();
  int64_t exp = Submit(TinyGrid("restart", dir_ / "model", 4, 4, 64, 4));
  std::string fixed = endpoint_;  // restart on the same port so workers find it again
  auto w0 = StartWorker("a");
  auto w1 = StartWorker("b");
  auto st = WaitStatus(endpoint_, 30,
                       [](const auto& s) { return FirstExperiment(s).value("samples", 0) > 0; });
  coord->Signal(SIGKILL);
  coord->Wait(5);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto coord2 = StartCoordinator({}, fixed);
  st = WaitStatus(endpoint_, 90, [&](const auto& s) { return Done(s); });
  ASSERT_EQ(ExperimentState(st), "done") << st.dump() << coord2->Log();
  ExpectExactlyOnce(exp, 16);
  EXPECT_TRUE(w0->running());
  EXPECT_TRUE(w1->running());
}

TEST_F(Orchestration, StalledWorkerLosesItsLeaseAndLateResultsAreIgnored) {
  auto coord = StartCoordinator();
  int64_t exp = Submit(TinyGrid("stall", dir_ / "model", 2, 8, 200, 8));
  auto slow = StartWorker("stopped");
  auto st = WaitStatus(endpoint_, 30, [](const auto& s) {
    for (const auto& w : s["workers"]) {
      if (w.value("unit", 0) != 0 && w.value("state", "") == "busy") return true;
    }
    return false;
  });
  slow->Signal(SIGSTOP);
  // Silent for heartbeat x liveness (0.6 s): its unit goes back and another worker finishes the
  // grid.
  auto other = StartWorker("other");
  st = WaitStatus(endpoint_, 60, [&](const auto& s) { return Done(s); });
  ASSERT_EQ(ExperimentState(st), "done") << st.dump();
  EXPECT_GE(st["coordinator"]["counters"]["workers_lost"].template get<int>(), 1);
  slow->Signal(SIGCONT);
  // After SIGCONT its results carry a fenced-off attempt: dropped as stale by the coordinator, or
  // discarded by the worker itself once told its lease is gone. Either way nothing changes in the
  // database.
  bool ignored = false;
  for (int i = 0; i < 200 && !ignored; ++i) {
    auto s = CoordinatorStatus(endpoint_);
    ignored = (s.is_object() && s["coordinator"]["counters"]["samples_stale"].get<int>() > 0) ||
              slow->Log().find("cancelled by the coordinator") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(ignored) << slow->Log();
  ExpectExactlyOnce(exp, 16);
  EXPECT_TRUE(slow->running()) << slow->Log();
}

TEST_F(Orchestration, CancelStopsAnExperiment) {
  auto coord = StartCoordinator();
  int64_t exp = Submit(TinyGrid("cancel", dir_ / "model", 8, 8, 128, 4));
  auto w = StartWorker("a");
  WaitStatus(endpoint_, 30,
             [](const auto& s) { return FirstExperiment(s).value("samples", 0) > 0; });
  auto r = RunTtc(fmt::format("cancel {} --coordinator {}", exp, endpoint_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto st = CoordinatorStatus(endpoint_);
  EXPECT_EQ(ExperimentState(st), "cancelled");
  EXPECT_GT(FirstExperiment(st)["units"]["cancelled"].get<int>(), 0);
  int64_t samples = FirstExperiment(st)["samples"];
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  st = CoordinatorStatus(endpoint_);
  EXPECT_EQ(FirstExperiment(st)["samples"].get<int64_t>(), samples)
      << "samples landed after cancel";
  EXPECT_LT(samples, 64);
  // Cancelling an unknown experiment is a clear error.
  r = RunTtc("cancel 999 --coordinator " + endpoint_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("999"), std::string::npos) << r.output;
}

// Raw DEALER peer for protocol-level tests.
struct RawPeer {
  explicit RawPeer(const std::string& endpoint, const std::string& id = "")
      : socket(ctx, zmq::socket_type::dealer) {
    socket.set(zmq::sockopt::linger, 3000);  // deliver what was sent before closing
    if (!id.empty()) socket.set(zmq::sockopt::routing_id, id);
    socket.connect(endpoint);
  }
  void SendRaw(const std::string& bytes) { socket.send(zmq::buffer(bytes), zmq::send_flags::none); }
  std::optional<protocol::Envelope> Receive(int timeout_ms) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(timeout_ms));
    if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
    zmq::message_t m;
    if (!socket.recv(m)) return std::nullopt;
    auto env = protocol::Decode(m.to_string_view());
    if (!env.ok()) return std::nullopt;
    return *env;
  }
  zmq::context_t ctx{1};
  zmq::socket_t socket;
};

TEST_F(Orchestration, ProtocolVersionMismatchIsRefusedWithAClearMessage) {
  auto coord = StartCoordinator();
  RawPeer peer(endpoint_, "old-worker");
  protocol::Hello h;
  h.worker_id = "old-worker";
  h.host = "h";
  h.device = "cpu";
  nlohmann::json body = h.ToJson();
  body["v"] = 99;
  body["type"] = "hello";
  auto bytes = nlohmann::json::to_msgpack(body);
  peer.SendRaw(std::string(bytes.begin(), bytes.end()));
  auto reply = peer.Receive(5000);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, "refused");
  std::string reason = reply->body.value("reason", "");
  EXPECT_NE(reason.find("protocol version 99"), std::string::npos) << reason;
  EXPECT_NE(reason.find("version 1"), std::string::npos) << reason;
  auto st = CoordinatorStatus(endpoint_);
  EXPECT_EQ(st["coordinator"]["counters"]["version_mismatch"], 1);
}

TEST_F(Orchestration, FuzzedAndOversizedMessagesLeaveTheCoordinatorRunning) {
  auto coord = StartCoordinator();
  {
    RawPeer peer(endpoint_);
    std::mt19937_64 rng(42);
    for (int i = 0; i < 300; ++i) {
      std::string junk(rng() % 200, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      peer.SendRaw(junk);
    }
    auto send_json = [&](const nlohmann::json& j) {
      auto b = nlohmann::json::to_msgpack(j);
      peer.SendRaw(std::string(b.begin(), b.end()));
    };
    send_json(nlohmann::json::array({1, 2, 3}));                             // not a map
    send_json({{"type", "hello"}});                                          // no version
    send_json({{"v", 1}, {"type", "no_such_message"}});                      // unknown type
    send_json({{"v", 1}, {"type", "hello"}, {"worker_id", 5}});              // mistyped field
    send_json({{"v", 1}, {"type", "sample"}, {"unit", {{"unit_id", -3}}}});  // invalid sample
    send_json({{"v", 1}, {"type", "submit"}, {"grid", "not a grid"}});       // bad client request
    send_json({{"v", 1}, {"type", "cancel"}, {"experiment_id", "x"}});
    // Two frames in one message.
    peer.socket.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
    peer.socket.send(zmq::str_buffer("b"), zmq::send_flags::none);
  }
  {
    // Over ZMQ_MAXMSGSIZE: libzmq drops this connection; the coordinator never sees the bytes.
    RawPeer big(endpoint_);
    big.SendRaw(std::string(protocol::kMaxMessageBytes + 1024, 'x'));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ASSERT_TRUE(coord->running()) << coord->Log();
  auto st = CoordinatorStatus(endpoint_);
  ASSERT_TRUE(st.is_object()) << coord->Log();
  const auto& c = st["coordinator"]["counters"];
  EXPECT_GE(c["malformed"].get<int>(), 250);
  EXPECT_GE(c["unknown_type"].get<int>(), 1);
  EXPECT_GE(c["invalid"].get<int>(), 3);
  // Still fully working: a grid completes.
  int64_t exp = Submit(TinyGrid("after-fuzz", dir_ / "model", 2, 2, 16, 4));
  auto w = StartWorker("a");
  st = WaitStatus(endpoint_, 30, [&](const auto& s) { return Done(s); });
  EXPECT_EQ(ExperimentState(st), "done");
  ExpectExactlyOnce(exp, 4);
}

TEST_F(Orchestration, CurveRefusesClientsWithoutAnAuthorizedKey) {
  ASSERT_EQ(RunTtc("keygen --out " + (dir_ / "server").string()).exit_code, 0);
  ASSERT_EQ(RunTtc("keygen --out " + (dir_ / "client").string()).exit_code, 0);
  ASSERT_EQ(RunTtc("keygen --out " + (dir_ / "intruder").string()).exit_code, 0);
  // Beyond loopback without CURVE: refused at start with a usage error.
  auto r = RunTtc("coordinator --db " + (dir_ / "x.db").string() + " --listen tcp://0.0.0.0:0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("CURVE"), std::string::npos) << r.output;

  auto coord = StartCoordinator({"--curve-keys", (dir_ / "server.key").string(),
                                 "--authorized-keys", (dir_ / "client.pub").string()});
  std::string server = " --server-key " + (dir_ / "server.pub").string();
  // No key at all: the handshake never completes.
  r = RunTtc("list --timeout-ms 500 --coordinator " + endpoint_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no answer"), std::string::npos) << r.output;
  // A valid key pair that is not authorized: the ZAP handler refuses it.
  r = RunTtc("list --timeout-ms 500 --coordinator " + endpoint_ + server + " --curve-keys " +
             (dir_ / "intruder.key").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  // The authorized client gets in.
  r = RunTtc("list --coordinator " + endpoint_ + server + " --curve-keys " +
             (dir_ / "client.key").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto st = RunTtc("status --json --coordinator " + endpoint_ + server + " --curve-keys " +
                   (dir_ / "client.key").string());
  ASSERT_EQ(st.exit_code, 0) << st.output;
  auto j = nlohmann::json::parse(st.output.substr(st.output.find('{')));
  EXPECT_GE(j["coordinator"]["counters"]["zap_denied"].get<int>(), 1);
}

// `ttc run` without GPUs refuses a grid whose model needs CUDA workers (it would never finish),
// before it starts anything.
TEST_F(Orchestration, RunCommandRefusesCudaOnlyModelsWithoutGpus) {
  auto grid = dir_ / "cuda-grid.json";
  auto g = TinyGrid("cuda-only", dir_ / "model", 2, 2, 8, 2, 2);
  g["models"][1]["state_dtype"] = "bf16";
  WriteFile(grid, g.dump());
  const std::string db = (dir_ / "cuda.db").string();
  auto r = RunTtc("run " + grid.string() + " --db " + db + " --cpu");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("model 'm1'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("needs CUDA workers"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST_F(Orchestration, RunCommandFinishesAndResumes) {
  auto grid = dir_ / "run-grid.json";
  WriteFile(grid, TinyGrid("run", dir_ / "model", 3, 4, 24, 4, 2).dump());
  std::string db = (dir_ / "run.db").string();
  auto r = RunTtc("run " + grid.string() + " --db " + db +
                  " --cpu --workers 2 --threads 1 --heartbeat-ms 200");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("started experiment 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("experiment 1 done"), std::string::npos) << r.output;
  // The report (reports/ module) or, without it, the summary table.
  EXPECT_TRUE(r.output.find("report written") != std::string::npos ||
              r.output.find("COVERAGE") != std::string::npos)
      << r.output;
  r = RunTtc("run " + grid.string() + " --db " + db +
             " --cpu --workers 1 --threads 1 --heartbeat-ms 200");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming experiment 1"), std::string::npos) << r.output;
}

// After `ttc run` has ended no coordinator is left: list, status and report read the store file
// itself (--db). Report without an id takes the store's only experiment and, with two, says which
// there are; a file that is missing or not a store is an error naming it.
TEST_F(Orchestration, ListStatusAndReportReadTheStoreWithoutACoordinator) {
  const std::string db = (dir_ / "offline.db").string();
  const auto run = [&](const std::string& name) {
    auto grid = dir_ / (name + ".json");
    WriteFile(grid, TinyGrid(name, dir_ / "model", 2, 2, 16, 2).dump());
    auto r = RunTtc("run " + grid.string() + " --db " + db +
                    " --cpu --workers 1 --threads 1 --heartbeat-ms 200");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  };
  run("first");
  auto r = RunTtc("report --db " + db + " --format json --out " + (dir_ / "only").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "only" / "report.json")) << r.output;
  run("second");

  r = RunTtc("list --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("first"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("second"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("4/4"), std::string::npos) << r.output;  // samples of each

  r = RunTtc("status --db " + db + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto st = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  ASSERT_EQ(st["experiments"].size(), 2u) << r.output;
  for (const auto& e : st["experiments"]) {
    EXPECT_EQ(e["state"], "done");
    EXPECT_EQ(e["samples"], 4);
  }
  EXPECT_FALSE(st.contains("coordinator"));
  ASSERT_FALSE(st["workers"].empty()) << r.output;
  EXPECT_EQ(st["workers"][0]["alive"], false);
  r = RunTtc("status --db " + db + " --experiment 2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("'second' done"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("'first'"), std::string::npos) << r.output;
  r = RunTtc("status --db " + db + " --experiment 9");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no experiment 9"), std::string::npos) << r.output;

  r = RunTtc("report --db " + db);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("1 (first), 2 (second)"), std::string::npos) << r.output;
  r = RunTtc("report 2 --db " + db + " --format json --out " + (dir_ / "two").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = RunTtc("report x --db " + db);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'x' is not an id"), std::string::npos) << r.output;

  for (const std::string cmd : {"list", "status", "report"}) {
    r = RunTtc(cmd + " --db " + (dir_ / "missing.db").string());
    EXPECT_EQ(r.exit_code, 1) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("missing.db"), std::string::npos) << cmd << ": " << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "missing.db"));  // read-only: nothing created
  r = RunTtc("list --db " + db + " --coordinator tcp://127.0.0.1:1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace ttc::testing
