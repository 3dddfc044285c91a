// The `ttc` command-line contract: help lists the commands, usage errors exit 2 with a helpful message.
#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace ttc {
namespace {

using testing::RunTtc;

TEST(Cli, HelpListsCommands) {
  auto r = RunTtc("--help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("version"), std::string::npos) << r.output;
}

TEST(Cli, VersionPrintsCommitAndCuda) {
  auto r = RunTtc("version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("commit"), std::string::npos);
  EXPECT_NE(r.output.find("CUDA"), std::string::npos);
  auto j = RunTtc("version --json");
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_NE(j.output.find("\"git_commit\""), std::string::npos) << j.output;
}

TEST(Cli, NoCommandIsUsageError) {
  auto r = RunTtc("");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Cli, UnknownCommandIsUsageError) {
  auto r = RunTtc("frobnicate");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("frobnicate"), std::string::npos) << r.output;
}

TEST(Cli, UnknownFlagIsUsageError) {
  auto r = RunTtc("version --bogus");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("bogus"), std::string::npos) << r.output;
}

TEST(Cli, BadLogLevelIsUsageError) {
  auto r = RunTtc("--log-level loud version");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace ttc
