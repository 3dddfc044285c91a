// `ttc db check|migrate`: reports on good, old, damaged and foreign files with the documented exit
// codes.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/store/store_fixture.h"

namespace ttc::store::testing {
namespace {

using ttc::testing::RunTtc;
using ttc::testing::TempDir;

TEST(DbCli, CheckReportsAGoodFile) {
  TempDir dir;
  std::string path = (dir / "ttc.db").string();
  {
    auto s = Store::Open(path);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->CreateExperiment(SmallExperiment()).ok());
  }
  auto r = RunTtc("db check --db " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("integrity ok"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("7 units"), std::string::npos) << r.output;
  auto j = RunTtc("db check --json --db " + path);
  ASSERT_EQ(j.exit_code, 0) << j.output;
  auto parsed = nlohmann::json::parse(j.output, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << j.output;
  EXPECT_EQ(parsed["schema_version"], LatestSchemaVersion());
  EXPECT_EQ(parsed["ok"], true);
  EXPECT_EQ(parsed["journal_mode"], "wal");
  EXPECT_EQ(parsed["experiments"], 1);
}

TEST(DbCli, MigrateUpgradesAnOldFile) {
  TempDir dir;
  std::string path = (dir / "old.db").string();
  {
    OpenOptions o;
    o.target_schema_version = 1;
    ASSERT_TRUE(Store::Open(path, o).ok());
  }
  auto c = RunTtc("db check --db " + path);
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("schema version 1"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("ttc db migrate"), std::string::npos) << c.output;
  auto m = RunTtc("db migrate --db " + path);
  EXPECT_EQ(m.exit_code, 0) << m.output;
  EXPECT_NE(m.output.find("1 -> " + std::to_string(LatestSchemaVersion())), std::string::npos)
      << m.output;
  m = RunTtc("db migrate --db " + path);
  EXPECT_EQ(m.exit_code, 0) << m.output;
  EXPECT_NE(m.output.find("already"), std::string::npos) << m.output;
}

TEST(DbCli, BadFilesFailWithAClearMessage) {
  TempDir dir;
  std::string text = (dir / "notes.txt").string();
  std::ofstream(text) << "hello, not a database\n";
  auto r = RunTtc("db check --db " + text);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("not an SQLite database"), std::string::npos) << r.output;
  r = RunTtc("db migrate --db " + text);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = RunTtc("db check --db " + (dir / "absent.db").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no such database file"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "absent.db"));  // check never creates a file
}

TEST(DbCli, UsageErrorsExit2) {
  auto r = RunTtc("db");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = RunTtc("db check");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--db"), std::string::npos) << r.output;
  r = RunTtc("db frobnicate --db x");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace ttc::store::testing
