// `ttc grade`: single pairs, JSONL in order with "equivalent" and "extracted" added, usage errors
// exit 2.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/test_util.h"

namespace ttc {
namespace {

using testing::RunTtc;

TEST(GradeCli, SinglePair) {
  auto r = RunTtc("grade --task math --gold '\\frac{1}{2}' --pred 0.5");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("equivalent"), std::string::npos) << r.output;
  auto n = RunTtc("grade --task math --mode sal --gold 3 --pred 4 --json");
  EXPECT_EQ(n.exit_code, 0) << n.output;
  EXPECT_NE(n.output.find("\"equivalent\":false"), std::string::npos) << n.output;
}

TEST(GradeCli, JsonlKeepsOrderAndAddsFields) {
  testing::TempDir dir;
  std::ofstream(dir / "in.jsonl") << R"({"gold": "2", "pred": "\\boxed{2}", "id": 7})"
                                  << "\n"
                                  << R"({"gold": "18", "pred": "The final answer is 17"})"
                                  << "\n";
  auto r = RunTtc("grade --task gsm8k --jsonl " + (dir / "in.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  size_t first = r.output.find("\"equivalent\":true");
  size_t second = r.output.find("\"equivalent\":false");
  EXPECT_NE(first, std::string::npos) << r.output;
  EXPECT_NE(second, std::string::npos) << r.output;
  EXPECT_LT(first, second);
  EXPECT_NE(r.output.find("\"id\":7"), std::string::npos) << r.output;
}

TEST(GradeCli, BadInputIsAnError) {
  EXPECT_EQ(RunTtc("grade --task math --gold 1").exit_code, 2);
  EXPECT_EQ(RunTtc("grade --task chess --gold 1 --pred 1").exit_code, 2);
  EXPECT_EQ(RunTtc("grade --task math --mode lenient --gold 1 --pred 1").exit_code, 2);
  testing::TempDir dir;
  std::ofstream(dir / "bad.jsonl") << "{\"gold\": \"1\"}\nnot json\n";
  auto r = RunTtc("grade --task math --jsonl " + (dir / "bad.jsonl").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("line 1"), std::string::npos) << r.output;
  EXPECT_EQ(RunTtc("grade --task math --jsonl /nonexistent/x.jsonl").exit_code, 1);
}

}  // namespace
}  // namespace ttc
