// End-to-end test of a network partition (issue 7): each CPU worker runs in its own network
// namespace, joined to the host by a veth pair, and talks to a real `ttc coordinator` over TCP with
// CURVE (the coordinator listens on the host-side veth addresses, which are beyond loopback). While
// worker A is in the middle of a unit its link is cut (`ip link set ... down` on the host side) for
// longer than the lease. The coordinator must expire A's lease, worker B must re-run the unit, the
// experiment must finish with every sample exactly once; when the link comes back A reconnects, the
// results it computed for the fenced-off attempt are dropped as stale, and `ttc status` tells the
// truth throughout. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2; skipped otherwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "store/store.h"
#include "tests/orchestration/orch_util.h"

namespace ttc::testing {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Why this machine cannot build network namespaces, or "" when it can. Cheap checks only: the real
// proof is `ip netns add` in SetUp.
std::string NetnsUnavailable() {
  if (RunCommand("command -v ip").exit_code != 0) return "`ip` (iproute2) is not installed";
  // Effective capabilities from /proc: links need CAP_NET_ADMIN (12), `ip netns add/exec` mount
  // namespaces and bind mounts, which need CAP_SYS_ADMIN (21).
  std::ifstream in("/proc/self/status");
  std::string line;
  uint64_t caps = 0;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) caps = std::stoull(line.substr(7), nullptr, 16);
  }
  std::string missing;
  if (!(caps & (1ull << 12))) missing += " CAP_NET_ADMIN";
  if (!(caps & (1ull << 21))) missing += " CAP_SYS_ADMIN";
  if (!missing.empty()) {
    return fmt::format("uid {} lacks{} (run as root, outside a restricted container)", ::geteuid(),
                       missing);
  }
  return "";
}

// Deletes namespaces and links that earlier runs left behind when they died before their TearDown
// (a timeout kill): names carry the pid of the run, so those of a pid that is gone are stale.
void RemoveLeftovers() {
  static const std::regex kName(R"(\bttclc(\d+)(-?)[ab]\b)");
  const std::string listing = RunCommand("ip netns list; ip -o link show").output;
  std::set<std::string> done;
  for (std::sregex_iterator it(listing.begin(), listing.end(), kName), end; it != end; ++it) {
    const std::string name = (*it)[0];
    if (std::filesystem::exists("/proc/" + (*it)[1].str()) || !done.insert(name).second) continue;
    RunCommand(((*it)[2].length() > 0 ? "ip netns del " : "ip link del ") + name);
  }
}

// The worker entry of `ttc status --json` whose id ends with "/NAME" (an empty object if none, so
// that value() falls back to its default).
nlohmann::json FindWorker(const nlohmann::json& st, const std::string& name) {
  if (!st.is_object() || !st.contains("workers")) return nlohmann::json::object();
  for (const auto& w : st["workers"]) {
    if (w.value("id", "").ends_with("/" + name)) return w;
  }
  return nlohmann::json::object();
}

int64_t Counter(const nlohmann::json& st, const std::string& name) {
  if (!st.is_object() || !st.contains("coordinator")) return -1;
  return st["coordinator"]["counters"].value(name, int64_t{-1});
}

class LinkCut : public ::testing::Test {
 protected:
  // One worker's network: namespace `ns`, veth `host_if` (host side, `host_ip`/24) <-> `ns_if`
  // (inside `ns`, `ns_ip`/24).
  struct Net {
    std::string ns, host_if, ns_if, host_ip, ns_ip;
  };

  void SetUp() override {
    std::string why = NetnsUnavailable();
    if (!why.empty()) GTEST_SKIP() << "network namespaces unavailable: " << why;
    RemoveLeftovers();
    // Names and subnets carry the pid so that concurrent runs do not collide: 10.7x.y.0/24 per
    // worker, x and y from the pid.
    const int pid = static_cast<int>(::getpid());
    const std::string tag = "ttclc" + std::to_string(pid);
    for (int i = 0; i < 2; ++i) {
      const std::string name(1, static_cast<char>('a' + i));
      const std::string subnet = fmt::format("10.{}.{}.", 70 + pid % 10, (pid / 10) % 125 * 2 + i);
      nets_.push_back({tag + "-" + name, tag + name, tag + name + "n", subnet + "1", subnet + "2"});
    }
    // The first namespace doubles as the capability probe: a restricted container refuses here.
    auto probe = RunCommand("ip netns add " + nets_[0].ns);
    if (probe.exit_code != 0) {
      nets_.clear();
      GTEST_SKIP() << "cannot create a network namespace (`ip netns add`): " << probe.output;
    }
    made_ns_.push_back(nets_[0].ns);
    for (size_t i = 0; i < nets_.size(); ++i) {
      const Net& n = nets_[i];
      std::vector<std::string> steps;
      if (i > 0) steps.push_back("ip netns add " + n.ns);
      steps.push_back("ip link add " + n.host_if + " type veth peer name " + n.ns_if);
      steps.push_back("ip link set " + n.ns_if + " netns " + n.ns);
      steps.push_back("ip addr add " + n.host_ip + "/24 dev " + n.host_if);
      steps.push_back("ip link set " + n.host_if + " up");
      steps.push_back("ip -n " + n.ns + " addr add " + n.ns_ip + "/24 dev " + n.ns_if);
      steps.push_back("ip -n " + n.ns + " link set " + n.ns_if + " up");
      steps.push_back("ip -n " + n.ns + " link set lo up");
      for (const auto& cmd : steps) {
        auto r = RunCommand(cmd);
        if (r.exit_code != 0) GTEST_SKIP() << "network setup failed: `" << cmd << "`: " << r.output;
        if (cmd.rfind("ip netns add", 0) == 0) made_ns_.push_back(n.ns);
        if (cmd.rfind("ip link add", 0) == 0) made_if_.push_back(n.host_if);
      }
      // `ip netns exec` must work too (it needs a private mount namespace).
      auto r = RunCommand("ip netns exec " + n.ns + " true");
      if (r.exit_code != 0) GTEST_SKIP() << "`ip netns exec` is not allowed here: " << r.output;
    }
    MakeTinyModel(dir_ / "model");
  }

  // Always runs, also after a failed assertion or a skip half-way through the setup: nothing may
  // outlive the test. Deleting a namespace destroys its veth end and with it the host end; the
  // explicit `ip link del` covers a pair that never made it into its namespace.
  void TearDown() override {
    workers_.clear();  // kill the workers before their namespaces go
    coordinator_.reset();
    for (const auto& i : made_if_) RunCommand("ip link del " + i);
    for (const auto& ns : made_ns_) RunCommand("ip netns del " + ns);
  }

  void StartCoordinator() {
    auto keys = dir_ / "keys";
    auto authorized = dir_ / "authorized";
    std::filesystem::create_directories(keys);
    std::filesystem::create_directories(authorized);
    for (const char* name : {"server", "worker", "client"}) {
      auto r = RunTtc("keygen --out " + (keys / name).string());
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    // Only public keys in the authorized folder, as an operator would lay it out.
    for (const char* name : {"worker", "client"}) {
      std::filesystem::copy_file(keys / (std::string(name) + ".pub"),
                                 authorized / (std::string(name) + ".pub"));
    }
    server_pub_ = (keys / "server.pub").string();
    worker_key_ = (keys / "worker.key").string();
    client_args_ =
        " --server-key " + server_pub_ + " --curve-keys " + (keys / "client.key").string();
    // The coordinator's one ROUTER socket serves every endpoint it binds, so B's address goes in
    // --client-listen (there is a single --listen); the loopback endpoint is for this test's
    // clients, which must not depend on A's link. The lease (3 s, renewed by every 200 ms
    // heartbeat) runs out well before a silent worker is declared lost (200 ms x 30 = 6 s): the
    // cut must be caught by lease expiry, the path under test.
    std::vector<std::string> args = {"coordinator",
                                     "--db",
                                     (dir_ / "t.db").string(),
                                     "--listen",
                                     "tcp://" + nets_[0].host_ip + ":*",
                                     "--client-listen",
                                     "tcp://" + nets_[1].host_ip + ":*",
                                     "--client-listen",
                                     "tcp://127.0.0.1:*",
                                     "--endpoint-file",
                                     (dir_ / "endpoint").string(),
                                     "--heartbeat-ms",
                                     "200",
                                     "--liveness",
                                     "30",
                                     "--lease-s",
                                     "3",
                                     "--stall-s",
                                     "30",
                                     "--max-attempts",
                                     "5",
                                     "--curve-keys",
                                     (keys / "server.key").string(),
                                     "--authorized-keys",
                                     authorized.string()};
    coordinator_ = std::make_unique<Child>(args, dir_ / "coordinator.log");
    ASSERT_FALSE(WaitEndpoint(dir_ / "endpoint", *coordinator_).empty()) << coordinator_->Log();
    // The file is renamed into place complete: one bound endpoint per line, in bind order.
    std::ifstream in(dir_ / "endpoint");
    for (std::string line; std::getline(in, line);) endpoints_.push_back(line);
    ASSERT_EQ(endpoints_.size(), 3u);
    client_endpoint_ = endpoints_[2];
  }

  // Worker `name` (a, b) inside its namespace, connecting to its host-side address.
  Child* StartWorker(int index) {
    const std::string name(1, static_cast<char>('a' + index));
    std::vector<std::string> args = {"worker",           "--coordinator",
                                     endpoints_[index],  "--cpu",
                                     "--threads",        "1",
                                     "--name",           name,
                                     "--heartbeat-ms",   "200",
                                     "--backoff-max-ms", "500",
                                     "--curve-keys",     worker_key_,
                                     "--server-key",     server_pub_};
    workers_.push_back(
        std::make_unique<Child>(args, dir_ / ("worker-" + name + ".log"),
                                std::vector<std::string>{"ip", "netns", "exec", nets_[index].ns}));
    return workers_.back().get();
  }

  nlohmann::json Status() { return CoordinatorStatus(client_endpoint_, client_args_); }

  // WaitStatus with this test's CURVE client keys: polls until pred(status) or timeout and returns
  // the last status.
  template <typename Pred>
  nlohmann::json Wait(double seconds, Pred pred) {
    nlohmann::json last;
    const auto until = Clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    while (Clock::now() < until) {
      last = Status();
      if (!last.is_null() && pred(last)) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return last;
  }

  // Everything a failure message needs to explain itself.
  std::string Logs() {
    std::string out = "\n--- coordinator ---\n" + (coordinator_ ? coordinator_->Log() : "");
    for (size_t i = 0; i < workers_.size(); ++i) {
      out += fmt::format("\n--- worker {} ---\n", static_cast<char>('a' + i)) + workers_[i]->Log();
    }
    return out;
  }

  TempDir dir_;
  std::vector<Net> nets_;
  std::vector<std::string> made_ns_, made_if_;
  std::unique_ptr<Child> coordinator_;
  std::vector<std::unique_ptr<Child>> workers_;
  std::vector<std::string> endpoints_;  // A's address, B's address, loopback
  std::string client_endpoint_, client_args_, server_pub_, worker_key_;
};

TEST_F(LinkCut, WorkerCutOffMidUnitLosesItsLeaseAndEverySampleLandsOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_TRUE(Status().is_object()) << Logs();

  // 4 units of 8 samples, decoded one sequence at a time (max_batch 1) so that samples land one
  // by one and "mid-unit" is a wide window.
  constexpr int kPerUnit = 8;
  constexpr int kTotal = 32;
  nlohmann::json grid = TinyGrid("linkcut", dir_ / "model", 4, 8, 512, kPerUnit);
  grid["models"][0]["max_batch"] = 1;
  WriteFile(dir_ / "grid.json", grid.dump());
  auto sub = RunTtc("submit " + (dir_ / "grid.json").string() + " --coordinator " +
                    client_endpoint_ + client_args_);
  ASSERT_EQ(sub.exit_code, 0) << sub.output << Logs();
  const int64_t exp = std::stoll(sub.output);

  // A first, so that it certainly holds a unit; then B.
  Child* a = StartWorker(0);
  auto st = Wait(60, [](const auto& s) { return FindWorker(s, "a").value("unit", 0) != 0; });
  ASSERT_NE(FindWorker(st, "a").value("unit", 0), 0) << st.dump() << Logs();
  Child* b = StartWorker(1);

  // Mid-unit: some of A's samples are stored and several are still to come. A heartbeat counting
  // n samples follows the messages of at least the first n - 1 on the same connection (the last
  // may be counted just before it is sent), and the coordinator commits samples before it handles
  // the heartbeat after them: n >= 2 means at least one landed.
  st = Wait(60, [](const auto& s) {
    auto w = FindWorker(s, "a");
    int n = w.value("samples", 0);
    return w.value("unit", 0) != 0 && n >= 2 && n <= kPerUnit - 3;
  });
  nlohmann::json wa = FindWorker(st, "a");
  ASSERT_NE(wa.value("unit", 0), 0) << st.dump() << Logs();
  const int64_t cut_unit = wa["unit"];
  const int64_t cut_attempt = wa["attempt"];
  const int64_t landed_before_cut = wa["samples"];

  // Cut A's link on the host side: both directions go dark, the TCP connection stays half-open and
  // neither end gets an error, as with a pulled cable.
  auto cut = RunCommand("ip link set " + nets_[0].host_if + " down");
  ASSERT_EQ(cut.exit_code, 0) << cut.output;
  const auto cut_at = Clock::now();

  // The lease (3 s) runs out before A would be declared lost (6 s): the unit goes back by expiry
  // and the coordinator stops claiming that A holds it.
  st = Wait(30, [](const auto& s) { return Counter(s, "leases_expired") >= 1; });
  ASSERT_GE(Counter(st, "leases_expired"), 1) << st.dump() << Logs();
  EXPECT_EQ(Counter(st, "workers_lost"), 0) << "A was declared lost before its lease expired";
  wa = FindWorker(st, "a");
  EXPECT_EQ(wa.value("unit", -1), 0) << st.dump();
  EXPECT_EQ(wa.value("state", ""), "idle") << st.dump();
  EXPECT_GE(SecondsSince(cut_at), 2.0) << "lease expired before it could have run out";

  // B re-runs the unit (only its missing samples) and the experiment finishes with A still cut off.
  st = Wait(90, [](const auto& s) { return ExperimentState(s) == "done"; });
  ASSERT_EQ(ExperimentState(st), "done") << st.dump() << Logs();
  // A's silence outlasts the liveness limit too: status shows it offline, not holding anything.
  st = Wait(30, [](const auto& s) { return FindWorker(s, "a").value("alive", true) == false; });
  wa = FindWorker(st, "a");
  EXPECT_FALSE(wa.value("alive", true)) << st.dump() << Logs();
  EXPECT_EQ(wa.value("state", ""), "offline") << st.dump();
  EXPECT_GE(Counter(st, "workers_lost"), 1);
  auto text = RunTtc("status --coordinator " + client_endpoint_ + client_args_);
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("offline"), std::string::npos) << text.output;
  EXPECT_TRUE(a->running()) << a->Log();

  // The database: every sample exactly once and graded; the cut unit was finished by B on a later
  // attempt, and it keeps the samples A delivered before the cut.
  auto check_store = [&] {
    auto db = store::Store::Open((dir_ / "t.db").string());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto samples = (*db)->ListSamples({.experiment_id = exp});
    ASSERT_TRUE(samples.ok()) << samples.status().ToString();
    std::set<std::tuple<int64_t, double, int, int>> keys;
    std::map<int, int> cut_unit_by_attempt;
    for (const auto& s : *samples) {
      EXPECT_TRUE(keys.insert({s.model_id, s.temperature, s.problem_index, s.sample_index}).second)
          << "duplicate sample " << s.problem_index << "/" << s.sample_index;
      EXPECT_TRUE(s.correct.has_value()) << "sample " << s.id << " not graded";
      if (s.unit_id == cut_unit) ++cut_unit_by_attempt[s.attempt];
    }
    EXPECT_EQ(static_cast<int64_t>(samples->size()), kTotal);
    auto unit = (*db)->GetUnit(cut_unit);
    ASSERT_TRUE(unit.ok()) << unit.status().ToString();
    EXPECT_EQ(unit->state, store::UnitState::kDone);
    EXPECT_GT(unit->attempt, cut_attempt);
    EXPECT_TRUE(unit->worker_id.ends_with("/b")) << unit->worker_id;
    EXPECT_GE(cut_unit_by_attempt[static_cast<int>(cut_attempt)], landed_before_cut - 1);
    EXPECT_GE(cut_unit_by_attempt[unit->attempt], 1) << "B did not re-run the cut unit";
  };
  check_store();

  // Restore the link: A reconnects, and what it computed for its fenced-off attempt during the cut
  // is dropped as stale (it resends unacknowledged results after the welcome).
  auto restore = RunCommand("ip link set " + nets_[0].host_if + " up");
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  st = Wait(60, [](const auto& s) {
    return FindWorker(s, "a").value("alive", false) && Counter(s, "samples_stale") >= 1;
  });
  wa = FindWorker(st, "a");
  ASSERT_TRUE(wa.value("alive", false)) << st.dump() << Logs();
  EXPECT_GE(Counter(st, "samples_stale"), 1) << st.dump() << Logs();
  // Status after the partition heals: both workers connected and idle, nothing leased, every
  // sample counted once (inserted == expected: no retry stored a sample twice).
  st = Wait(10, [](const auto& s) { return FindWorker(s, "a").value("state", "") == "idle"; });
  wa = FindWorker(st, "a");
  EXPECT_EQ(wa.value("state", ""), "idle") << st.dump();
  EXPECT_EQ(wa.value("unit", -1), 0) << st.dump();
  EXPECT_TRUE(FindWorker(st, "b").value("alive", false)) << st.dump();
  const auto& e = FirstExperiment(st);
  EXPECT_EQ(e.value("state", ""), "done");
  EXPECT_EQ(e.value("samples", 0), kTotal);
  EXPECT_EQ(e.value("samples_expected", 0), kTotal);
  EXPECT_EQ(e["units"].value("done", 0), kTotal / kPerUnit);
  EXPECT_EQ(e["units"].value("failed", -1), 0);
  EXPECT_EQ(e["units"].value("leased", -1), 0);
  EXPECT_EQ(Counter(st, "samples_inserted"), kTotal);
  check_store();

  // Both workers are healthy: SIGTERM drains them, exit 0.
  a->Signal(SIGTERM);
  b->Signal(SIGTERM);
  EXPECT_EQ(a->Wait(15), 0) << a->Log();
  EXPECT_EQ(b->Wait(15), 0) << b->Log();
  RecordProperty("cut_seconds", std::to_string(SecondsSince(cut_at)));
}

}  // namespace
}  // namespace ttc::testing
