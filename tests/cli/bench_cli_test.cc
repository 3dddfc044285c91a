// `ttc bench` on the CPU backend (the CUDA rows are measured on the device, docs/perf/cuda.md): the
// table, its JSON and the store rows from a real run of the golden llama checkpoint, the two
// rooflines' relation, and bad input refused with the option named, before any measurement, with
// an existing JSON file left as it was.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "store/store.h"
#include "tests/test_util.h"

namespace ttc {
namespace {

using testing::RunTtc;

std::string Golden(const std::string& name) {
  return (testing::SharedDir() / "golden" / "models" / name).string();
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(BenchCli, CpuRunWritesTableJsonAndStoreRows) {
  testing::TempDir dir;
  const auto json = dir / "bench.json", db = dir / "bench.db";
  auto r = RunTtc("bench --model " + Golden("llama") +
                  " --backend cpu --threads 1 --batch 1,3 --prompt-len 8 --gen-len 4 --json " +
                  json.string() + " --db " + db.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("of shared"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stored 4 bench rows"), std::string::npos) << r.output;

  const auto rows = nlohmann::json::parse(ReadFile(json));
  ASSERT_EQ(rows.size(), 2u) << rows.dump(2);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(row["batch"].get<int>(), i == 0 ? 1 : 3);
    EXPECT_EQ(row["model"], "llama");
    EXPECT_EQ(row["prompt_len"].get<int>(), 8);
    EXPECT_EQ(row["gen_len"].get<int>(), 4);
    EXPECT_EQ(row["state_dtype"], "f32");
    const double seconds = row["seconds"].get<double>();
    EXPECT_GT(seconds, 0.0);
    EXPECT_NEAR(row["step_s"].get<double>(), seconds / 4, 1e-12);
    EXPECT_NEAR(row["tokens_per_s"].get<double>(), row["batch"].get<int>() * 4 / seconds, 1e-6);
    const double roof = row["roofline_s"].get<double>();
    const double shared = row["roofline_shared_s"].get<double>();
    EXPECT_GT(shared, 0.0);
    EXPECT_NEAR(row["fraction_of_roofline"].get<double>(), roof / seconds, 1e-12);
    EXPECT_NEAR(row["fraction_of_shared_roofline"].get<double>(), shared / seconds, 1e-12);
    if (i == 0) {
      EXPECT_DOUBLE_EQ(shared, roof);  // one row: nothing to share
    } else {
      EXPECT_LT(shared, roof);  // three rows read the prompt's KV once instead of three times
    }
  }

  auto st = store::Store::Open(db.string());
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  auto stored = (*st)->ListBenchRows({});
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_EQ(stored->size(), 4u);
  int paper = 0, step = 0;
  for (const auto& b : *stored) {
    EXPECT_EQ(b.model, "llama");
    EXPECT_GT(b.step_s, 0.0);
    EXPECT_TRUE(b.batch == 1 || b.batch == 3) << b.batch;
    paper += b.table == "paper";
    step += b.table == "step";
  }
  EXPECT_EQ(paper, 2);
  EXPECT_EQ(step, 2);
}

TEST(BenchCli, BadInputIsRefusedAndTheOldJsonKept) {
  testing::TempDir dir;
  const auto json = dir / "old.json";
  { std::ofstream(json) << "[\"an earlier run\"]\n"; }
  const std::string model =
      " --model " + Golden("llama") + " --backend cpu --json " + json.string();
  struct Case {
    std::string args, needle;
    int exit_code;
  };
  const Case cases[] = {
      {"bench" + model + " --batch 0", "--batch '0'", 2},
      {"bench" + model + " --batch 1,,2", "--batch '1,,2'", 2},
      {"bench" + model + " --batch 99999999999", "integers from 1 to", 2},
      {"bench" + model + " --batch 4x", "--batch '4x'", 2},
      {"bench" + model + " --gen-len 0", "--gen-len", 2},
      {"bench" + model + " --pipeline sometimes", "--pipeline", 2},
      {"bench" + model + " --backend tpu", "--backend", 2},
      {"bench" + model + " --state-dtype fp8", "unknown state dtype 'fp8'", 2},
      {"bench" + model + " --state-dtype bf16", "keeps the recurrent state in f32", 1},
      {"bench" + model + " --state-dtype f16", "state dtype f16 needs the CUDA backend", 1},
      {"bench" + model + " --config llama-3.2-1b", "exactly one of --model and --config", 2},
      {"bench --config llama-9b --backend cpu", "unknown --config 'llama-9b'", 2},
      {"bench --model " + (dir / "missing").string() + " --backend cpu --json " + json.string(),
       "missing", 1},
      {"bench --model " + Golden("llama") + " --backend cpu --json " +
           (dir / "no" / "such" / "dir.json").string(),
       "cannot open for writing", 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto r = RunTtc(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << r.output;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("batch   seconds"), std::string::npos) << "measured anyway";
  }
  EXPECT_EQ(ReadFile(json), "[\"an earlier run\"]\n");
}

}  // namespace
}  // namespace ttc
