// Unit tests of the wire protocol (round trips, validation, hostile input), of planning (every
// sample exactly once, unit bounds, order keys covering every model early) and of the status ETA.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "coordinator/client.h"
#include "coordinator/coordinator.h"
#include "coordinator/planner.h"
#include "protocol/messages.h"
#include "protocol/transport.h"
#include "protocol/wire.h"
#include "worker/runner.h"

namespace ttc {
namespace {

TEST(Wire, RoundTripsAnAssignment) {
  protocol::Assign a;
  a.unit = {7, 2};
  a.kind = "generate";
  a.lease_ms = 1000;
  a.model_name = "m";
  a.model_path = "/models/m";
  a.temperature = 0.8;
  a.max_new_tokens = 64;
  a.items.push_back(
      {3, {{"system", "s"}, {"user", "What is 1+1?"}}, 0xfedcba9876543210ull, {0, 1, 5}});
  auto env = protocol::Decode(protocol::Encode(protocol::kAssignType, a.ToJson()));
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->version, protocol::kProtocolVersion);
  EXPECT_EQ(env->type, "assign");
  auto b = protocol::Assign::Parse(env->body);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->unit.unit_id, 7);
  EXPECT_EQ(b->items[0].seed, 0xfedcba9876543210ull);
  EXPECT_EQ(b->items[0].sample_indices, (std::vector<int64_t>{0, 1, 5}));
  EXPECT_EQ(b->items[0].messages[1].content, "What is 1+1?");
}

TEST(Wire, ValidationNamesTheField) {
  protocol::SampleResult s;
  s.unit = {1, 1};
  s.text = "x";
  s.finish_reason = "stop";
  nlohmann::json j = s.ToJson();
  j["sample_index"] = "three";
  auto r = protocol::SampleResult::Parse(j);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sample.sample_index"), std::string::npos)
      << r.status().message();
  j = s.ToJson();
  j["unit"]["attempt"] = 0;
  r = protocol::SampleResult::Parse(j);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sample.unit.attempt"), std::string::npos)
      << r.status().message();
  j = s.ToJson();
  j.erase("text");
  EXPECT_NE(protocol::SampleResult::Parse(j).status().message().find("text: missing"),
            std::string::npos);
}

TEST(Wire, HostileBytesNeverCrash) {
  std::mt19937_64 rng(1);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    auto env = protocol::Decode(junk);
    if (!env.ok()) continue;
    ++decoded;
    // Whatever decodes must still be validated field by field without throwing.
    (void)protocol::Hello::Parse(env->body);
    (void)protocol::Assign::Parse(env->body);
    (void)protocol::SampleResult::Parse(env->body);
  }
  // Mutations of a valid message exercise the field checks.
  protocol::Hello h{"w", "host", "cpu", 1, 1, 1, {"m"}, "", protocol::UnitRef{1, 1}, false};
  std::string good = protocol::Encode(protocol::kHelloType, h.ToJson());
  for (int i = 0; i < 20000; ++i) {
    std::string m = good;
    for (int k = 0; k < 3; ++k) m[rng() % m.size()] = static_cast<char>(rng());
    auto env = protocol::Decode(m);
    if (env.ok()) (void)protocol::Hello::Parse(env->body);
  }
  EXPECT_FALSE(protocol::Decode("").ok());
  EXPECT_FALSE(protocol::Decode(std::string(protocol::kMaxMessageBytes + 1, 'a')).ok());
  (void)decoded;
}

TEST(Transport, LoopbackEndpoints) {
  EXPECT_TRUE(protocol::IsLoopbackEndpoint("tcp://127.0.0.1:5555"));
  EXPECT_TRUE(protocol::IsLoopbackEndpoint("tcp://localhost:*"));
  EXPECT_TRUE(protocol::IsLoopbackEndpoint("tcp://[::1]:80"));
  EXPECT_TRUE(protocol::IsLoopbackEndpoint("ipc:///tmp/x"));
  EXPECT_FALSE(protocol::IsLoopbackEndpoint("tcp://0.0.0.0:5555"));
  EXPECT_FALSE(protocol::IsLoopbackEndpoint("tcp://*:5555"));
  EXPECT_FALSE(protocol::IsLoopbackEndpoint("tcp://10.1.2.3:5555"));
  EXPECT_FALSE(protocol::IsLoopbackEndpoint("tcp://eth0:5555"));
}

TEST(Steps, SplitLikePython) {
  using worker::SplitSteps;
  EXPECT_EQ(SplitSteps("a"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(SplitSteps("a\n\nb"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(SplitSteps("a\n\n"), (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(SplitSteps("a\n\n\n\nb"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(SplitSteps("a\n\n\nb"), (std::vector<std::string>{"a", "\nb"}));
}

experiments::GridSpec Grid(int n, int per_unit, int problems_models = 2) {
  experiments::GridSpec g;
  g.name = "g";
  for (int m = 0; m < problems_models; ++m) {
    std::string name = "m";  // not "m" + to_string: GCC 12's -Wrestrict false positive in Release
    name += std::to_string(m);
    g.models.push_back({name, "/p"});
  }
  g.temperatures = {0.6, 1.0};
  g.n_samples = n;
  g.max_new_tokens = 512;
  g.units.max_samples_per_unit = per_unit;
  return g;
}

std::vector<experiments::Problem> Problems(int n) {
  std::vector<experiments::Problem> p(n);
  for (int i = 0; i < n; ++i) p[i].id = fmt::format("p{}", i);
  return p;
}

// The status line's ETA: samples at the sample rate, then the PRM score units that follow them at
// the unit rate (the demo's last ~400 score units used to show "ETA 0s" for a minute and more).
TEST(Eta, CoversTheScoreUnitsAfterTheLastSample) {
  using coordinator::EstimateEtaSeconds;
  EXPECT_EQ(EstimateEtaSeconds(0, 0.0, 0, 0.0), 0.0);              // finished
  EXPECT_EQ(EstimateEtaSeconds(100, 0.0, 10, 2.0), std::nullopt);  // no sample rate yet
  EXPECT_EQ(EstimateEtaSeconds(100, 10.0, 0, 0.0), 10.0);
  EXPECT_EQ(EstimateEtaSeconds(100, 10.0, 50, 2.0), 25.0);         // units take longer
  EXPECT_EQ(EstimateEtaSeconds(100, 10.0, 5, 2.0), 10.0);          // samples take longer
  EXPECT_EQ(EstimateEtaSeconds(0, 50.0, 400, 8.0), 50.0);          // only score units left
  EXPECT_EQ(EstimateEtaSeconds(0, 50.0, 400, 0.0), std::nullopt);  // ... at an unknown rate
  EXPECT_EQ(EstimateEtaSeconds(100, 10.0, 7, 0.0), 10.0);
}

// The status line's rate: samples per second while samples land, the units' rate once every
// sample is in and units (PRM scoring) are left, neither rate nor ETA once no unit is left or
// where none was measured.
TEST(Eta, ProgressLineShowsTheUnitRateOnceEverySampleIsIn) {
  nlohmann::json e = {
      {"id", 1},
      {"name", "demo"},
      {"state", "active"},
      {"units", {{"done", 200}, {"total", 800}, {"pending", 599}, {"leased", 1}, {"failed", 0}}},
      {"samples", 6400},
      {"samples_expected", 19200},
      {"samples_per_s", 255.2},
      {"units_per_s", 8.4},
      {"eta_s", 75.0}};
  std::string line = coordinator::FormatProgressLine(e);
  EXPECT_NE(line.find("| 255.2 samples/s | ETA 1m15s"), std::string::npos) << line;
  e["samples"] = 19200;
  e["units"]["total"] = 1200;
  line = coordinator::FormatProgressLine(e);
  EXPECT_NE(line.find("| 8.4 units/s | ETA 1m15s"), std::string::npos) << line;
  // Read from a store file (`ttc status --db`): no rate was measured, so none is shown.
  nlohmann::json unmeasured = e;
  unmeasured["samples_per_s"] = nullptr;
  unmeasured["units_per_s"] = nullptr;
  unmeasured["eta_s"] = nullptr;
  line = coordinator::FormatProgressLine(unmeasured);
  EXPECT_EQ(line.find("/s"), std::string::npos) << line;
  EXPECT_EQ(line.find("ETA"), std::string::npos) << line;
  EXPECT_NE(line.find("units 200/1200 done, 1 running"), std::string::npos) << line;
  e["units"]["done"] = 1200;
  e["units"]["pending"] = 0;
  e["units"]["leased"] = 0;
  e["state"] = "done";
  e["samples_per_s"] = 0.0;
  e["eta_s"] = 0.0;
  line = coordinator::FormatProgressLine(e);
  EXPECT_EQ(line,
            "experiment 1 'demo' done: units 1200/1200 done, 0 running, 0 failed | samples "
            "19200/19200 (100.0%) | correct -");
}

TEST(Planner, EverySampleExactlyOnceWithinBounds) {
  for (auto [n, per_unit, problems] :
       std::vector<std::tuple<int, int, int>>{{16, 64, 10}, {100, 32, 3}, {5, 4, 7}}) {
    auto grid = Grid(n, per_unit);
    auto plan = coordinator::PlanExperiment(grid, "{}", Problems(problems), "fp");
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    std::set<std::tuple<std::string, double, int, int>> seen;
    std::set<int64_t> keys;
    for (const auto& u : plan->units) {
      EXPECT_LE(u.ExpectedSamples(), per_unit);
      EXPECT_TRUE(keys.insert(u.order_key).second);
      for (int p : u.problem_indices) {
        for (int s = u.sample_begin; s < u.sample_end; ++s) {
          EXPECT_TRUE(seen.insert({u.model_name, u.temperature, p, s}).second);
        }
      }
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(2 * 2 * problems * n));
  }
}

// The models' options reach the workers through the store (Assign.model_options).
TEST(Planner, ModelOptionsCarryTheSpec) {
  auto grid = Grid(4, 4);
  grid.models[1].rope = "plain";
  grid.models[1].state_dtype = "bf16";
  auto plan = coordinator::PlanExperiment(grid, "{}", Problems(2), "fp");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->models.size(), 2u);
  const auto m0 = nlohmann::json::parse(plan->models[0].options_json);
  const auto m1 = nlohmann::json::parse(plan->models[1].options_json);
  EXPECT_EQ(m0["state_dtype"], "f32");
  EXPECT_EQ(m1["state_dtype"], "bf16");
  EXPECT_EQ(m1["rope"], "plain");
}

TEST(Planner, EarlyUnitsCoverEveryModelAndTheFirstSamples) {
  auto plan = coordinator::PlanExperiment(Grid(64, 16, 3), "{}", Problems(4), "fp");
  ASSERT_TRUE(plan.ok());
  auto units = plan->units;
  std::sort(units.begin(), units.end(),
            [](const auto& a, const auto& b) { return a.order_key < b.order_key; });
  std::set<std::string> first_models;
  for (int i = 0; i < 6; ++i) first_models.insert(units[i].model_name);
  EXPECT_EQ(first_models.size(), 3u);
  // The first wave is samples [0, 16) of every problem, model and temperature.
  for (size_t i = 0; i < 4 * 3 * 2; ++i) EXPECT_EQ(units[i].sample_begin, 0);
}

TEST(Planner, TimeBoundShrinksUnits) {
  auto grid = Grid(64, 64);
  grid.max_new_tokens = 4096;
  grid.units.target_seconds_per_unit = 10;
  coordinator::PlanOptions o;
  o.assumed_tokens_per_s = 8192;  // 80k tokens in 10 s -> 20 samples of 4096 tokens
  EXPECT_EQ(coordinator::SamplesPerUnit(grid, o), 20);
  EXPECT_NE(coordinator::ProblemSeed(1, 0), coordinator::ProblemSeed(1, 1));
  EXPECT_NE(coordinator::ProblemSeed(1, 0), coordinator::ProblemSeed(2, 0));
}

}  // namespace
}  // namespace ttc
