// `ttc grid check`: exit codes 0/1/2, every error with its field path, the summary and the JSON
// output.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"

namespace ttc {
namespace {

using testing::RunTtc;

TEST(GridCliTest, ValidGridPrintsSummaryAndJson) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "model");
  std::ofstream(dir / "model" / "config.json") << "{}";
  std::ofstream(dir / "g.json")
      << R"({"name": "tiny", "dataset": {"name": "synthetic", "count": 6, "seed": 2},
      "models": [{"name": "m", "path": "model"}], "temperatures": [0.5, 1.0], "n_samples": 4})";
  auto r = RunTtc("grid check " + (dir / "g.json").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("valid grid 'tiny'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("6 problems"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("48 samples"), std::string::npos)
      << r.output;  // 6 problems x 2 temps x 4

  r = RunTtc("grid check --json " + (dir / "g.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_TRUE(j["valid"].get<bool>());
  EXPECT_EQ(j["problems"], 6);
  EXPECT_EQ(j["samples"], 48);
  EXPECT_EQ(j["fingerprint"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["spec"]["models"][0]["path"], (dir / "model").string());
  EXPECT_EQ(j["spec"]["k_values"], nlohmann::json::parse("[1, 2, 4]"));
}

TEST(GridCliTest, InvalidGridListsEveryErrorAndExitsOne) {
  testing::TempDir dir;
  std::ofstream(dir / "bad.json") << R"({"name": "bad", "dataset": "math5000",
      "models": [{"name": "m", "path": "nowhere"}], "top_p": 2, "temprature": 1})";
  auto r = RunTtc("grid check " + (dir / "bad.json").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("did you mean 'math500'?"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("models[0].path: " + (dir / "nowhere").string() + " does not exist"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("top_p: 2 is out of range"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'temperatures'?"), std::string::npos) << r.output;

  std::ofstream(dir / "syntax.json") << "{\"name\": }";
  r = RunTtc("grid check " + (dir / "syntax.json").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("syntax.json:1:10: invalid JSON"), std::string::npos) << r.output;

  r = RunTtc("grid check --json " + (dir / "bad.json").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(nlohmann::json::parse(r.output)["valid"].get<bool>());
}

TEST(GridCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunTtc("grid check").exit_code, 2);
  EXPECT_EQ(RunTtc("grid").exit_code, 2);
}

TEST(GridCliTest, ExampleGridsPassTheDocumentCheck) {
  for (const char* name : {"math500.json", "gsm8k.json", "cpu-small.json"}) {
    auto r = RunTtc("grid check --no-files " +
                    (testing::SourceDir() / "experiments" / "grids" / name).string());
    EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.output;
  }
}

}  // namespace
}  // namespace ttc
