// `ttc dataset synthetic`: JSONL output with the documented fields, determinism, --out, usage
// errors exit 2.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace ttc {
namespace {

using testing::RunTtc;

std::vector<nlohmann::json> ParseLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

TEST(DatasetCli, WritesJsonlToStdout) {
  auto r = RunTtc("dataset synthetic --count 5 --seed 9 --min-level 2 --max-level 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto rows = ParseLines(r.output);
  ASSERT_EQ(rows.size(), 5u) << r.output;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& j = rows[i];
    EXPECT_EQ(j.at("id").get<std::string>(), "synthetic/9/" + std::to_string(i));
    EXPECT_EQ(j.at("level").get<int>(), 2);
    const std::string solution = j.at("solution").get<std::string>();
    const std::string tail = "The final answer is " + j.at("answer").get<std::string>();
    EXPECT_EQ(solution.substr(solution.size() - tail.size()), tail);
    EXPECT_FALSE(j.at("question").get<std::string>().empty());
  }
  auto again = RunTtc("dataset synthetic --count 5 --seed 9 --min-level 2 --max-level 2");
  EXPECT_EQ(again.output, r.output);
}

TEST(DatasetCli, WritesOutFile) {
  testing::TempDir dir;
  const auto path = dir / "p.jsonl";
  auto r = RunTtc("dataset synthetic --count 3 --seed 1 --out " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ParseLines(ss.str()).size(), 3u);
}

TEST(DatasetCli, BadLevelsAreUsageErrors) {
  auto r = RunTtc("dataset synthetic --count 3 --min-level 4 --max-level 2");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("min_level"), std::string::npos) << r.output;
  r = RunTtc("dataset synthetic --count 3 --max-level 9");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("max_level"), std::string::npos) << r.output;
}

TEST(DatasetCli, UnwritableOutFails) {
  auto r = RunTtc("dataset synthetic --count 1 --out /nonexistent-dir/x.jsonl");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent-dir/x.jsonl"), std::string::npos) << r.output;
}

TEST(DatasetCli, MissingDatasetNameIsUsageError) {
  auto r = RunTtc("dataset");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace ttc
