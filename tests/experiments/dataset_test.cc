// Dataset loaders on the real files (counts, gold rules of evaluation.md §1, the 14 GSM8K comma
// golds), user JSONL files, the ids/limit filters, data-folder search and the SHA-256 fingerprint.
#include "experiments/dataset.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "../test_util.h"

namespace ttc::experiments {
namespace {

std::filesystem::path SharedData() { return testing::SharedDir() / "data"; }

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Problem MakeProblem(const std::string& id, const std::string& question, const std::string& gold) {
  Problem p;
  p.id = id;
  p.question = question;
  p.gold_answer = gold;
  return p;
}

JsonlFields Fields(const std::string& question, const std::string& answer, const std::string& id) {
  JsonlFields f;
  f.question = question;
  f.answer = answer;
  f.id = id;
  return f;
}

void WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

TEST(Sha256Test, StandardVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Lengths around the padding boundary (55, 56 and 64 bytes); values from Python's hashlib.
  EXPECT_EQ(Sha256Hex(std::string(55, 'x')),
            "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
  EXPECT_EQ(Sha256Hex(std::string(56, 'x')),
            "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
  EXPECT_EQ(Sha256Hex(std::string(64, 'x')),
            "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
}

TEST(DataFilesTest, ShippedFilesAreTheOfficialBytes) {
  EXPECT_EQ(Sha256Hex(ReadFile(SharedData() / kMath500FileName)),
            "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132");
  EXPECT_EQ(Sha256Hex(ReadFile(SharedData() / kGsm8kFileName)),
            "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14");
}

TEST(Math500Test, LoadsAllProblemsWithGoldRules) {
  auto problems = LoadMath500(SharedData() / kMath500FileName);
  ASSERT_TRUE(problems.ok()) << problems.status().ToString();
  ASSERT_EQ(problems->size(), 500u);
  std::map<int, int> levels;
  std::map<std::string, int> subjects;
  std::set<std::string> ids;
  int several_boxes = 0;
  for (const Problem& p : *problems) {
    EXPECT_EQ(p.task, Task::kMath);
    EXPECT_TRUE(p.id.starts_with("math500/test/")) << p.id;
    ids.insert(p.id);
    ++levels[p.level];
    ++subjects[p.subject];
    EXPECT_FALSE(p.question.empty());
    // §1.1: the answer field is the last \boxed{} of the solution, for all 500 rows.
    EXPECT_EQ(LastBoxedContent(p.solution), p.gold_answer) << p.id;
    EXPECT_TRUE(p.extra["answer_is_last_boxed"].get<bool>());
    size_t count = 0;
    for (size_t pos = p.solution.find("\\boxed"); pos != std::string::npos;
         pos = p.solution.find("\\boxed", pos + 1)) {
      ++count;
    }
    several_boxes += count > 1;
  }
  EXPECT_EQ(ids.size(), 500u);
  EXPECT_EQ(levels, (std::map<int, int>{{1, 43}, {2, 90}, {3, 105}, {4, 128}, {5, 134}}));
  EXPECT_EQ(subjects["Algebra"], 124);
  EXPECT_EQ(subjects["Intermediate Algebra"], 97);
  EXPECT_EQ(subjects["Prealgebra"], 82);
  EXPECT_EQ(subjects["Number Theory"], 62);
  EXPECT_EQ(subjects["Precalculus"], 56);
  EXPECT_EQ(subjects["Geometry"], 41);
  EXPECT_EQ(subjects["Counting & Probability"], 38);
  EXPECT_EQ(several_boxes, 8);
  EXPECT_EQ((*problems)[0].id, "math500/test/precalculus/807.json");
}

TEST(Gsm8kTest, LoadsAllProblemsWithCommaFreeGolds) {
  auto problems = LoadGsm8k(SharedData() / kGsm8kFileName);
  ASSERT_TRUE(problems.ok()) << problems.status().ToString();
  ASSERT_EQ(problems->size(), 1319u);
  const std::set<std::string> comma_golds = {"2,125",  "114,200",   "276,000", "5,600",  "1,600",
                                             "65,960", "1,450,000", "43,500",  "10,800", "6,250",
                                             "14,000", "6,600",     "1,875",   "40,000"};
  std::set<std::string> seen_comma;
  int negatives = 0;
  for (size_t i = 0; i < problems->size(); ++i) {
    const Problem& p = (*problems)[i];
    EXPECT_EQ(p.id, "gsm8k/" + std::to_string(i));
    EXPECT_EQ(p.task, Task::kGsm8k);
    EXPECT_EQ(p.gold_answer.find(','), std::string::npos) << p.id;
    // Every gold is an integer (§1.2: no decimals in the test split).
    std::string digits = p.gold_answer[0] == '-' ? p.gold_answer.substr(1) : p.gold_answer;
    EXPECT_TRUE(!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos)
        << p.gold_answer;
    negatives += p.gold_answer[0] == '-';
    const std::string raw = p.solution.substr(p.solution.rfind("####") + 4);
    for (const std::string& c : comma_golds) {
      if (raw.find(c) != std::string::npos && raw.find(c) <= 1) {
        seen_comma.insert(c);
        std::string no_commas;
        for (char ch : c) {
          if (ch != ',') no_commas += ch;
        }
        EXPECT_EQ(p.gold_answer, no_commas);
      }
    }
  }
  EXPECT_EQ(seen_comma, comma_golds);
  EXPECT_EQ(negatives, 2);
  EXPECT_EQ((*problems)[0].gold_answer, "18");
}

TEST(GoldRulesTest, Gsm8kGold) {
  EXPECT_EQ(Gsm8kGold("She has 3.\n#### 1,450,000"), "1450000");
  EXPECT_EQ(Gsm8kGold("a #### b\n#### -3 \n"), "-3");
  EXPECT_EQ(Gsm8kGold("no marker 12"), "no marker 12");
}

TEST(GoldRulesTest, LastBoxedContent) {
  EXPECT_EQ(LastBoxedContent("\\boxed{1} then \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
  EXPECT_EQ(LastBoxedContent("no box"), std::nullopt);
  EXPECT_EQ(LastBoxedContent("\\boxed{unbalanced"), std::nullopt);
}

TEST(DataDirTest, MissingFileErrorNamesWhereAndHow) {
  testing::TempDir dir;
  auto found = FindDataFile(kMath500FileName, dir.path().string());
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
  EXPECT_NE(found.status().message().find(dir.path().string()), std::string::npos)
      << found.status().message();
  EXPECT_NE(found.status().message().find("never downloads"), std::string::npos);
  EXPECT_NE(found.status().message().find("openai/prm800k"), std::string::npos);
  DatasetSpec spec;
  spec.kind = DatasetKind::kGsm8k;
  auto loaded = LoadDataset(spec, dir.path().string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find(kGsm8kFileName), std::string::npos);
}

TEST(DataDirTest, EnvironmentVariableIsSearchedFirst) {
  testing::TempDir dir;
  WriteFile(dir / kGsm8kFileName, "{\"question\": \"1+1?\", \"answer\": \"1+1=2\\n#### 2\"}\n");
  ::setenv("TTC_DATA_DIR", dir.path().c_str(), 1);
  auto found = FindDataFile(kGsm8kFileName, "");
  ::unsetenv("TTC_DATA_DIR");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, dir / kGsm8kFileName);
  // Without it, the configured shared/data folder is found.
  auto fallback = FindDataFile(kGsm8kFileName, "");
  ASSERT_TRUE(fallback.ok()) << fallback.status().ToString();
}

TEST(LoadDatasetTest, IdsThenLimit) {
  DatasetSpec spec;
  spec.kind = DatasetKind::kMath500;
  spec.ids = {"test/algebra/2584.json", "math500/test/precalculus/807.json"};
  auto problems = LoadDataset(spec, SharedData().string());
  ASSERT_TRUE(problems.ok()) << problems.status().ToString();
  ASSERT_EQ(problems->size(), 2u);
  EXPECT_EQ((*problems)[0].id, "math500/test/precalculus/807.json");  // file order, not ids order
  spec.limit = 1;
  problems = LoadDataset(spec, SharedData().string());
  ASSERT_EQ(problems->size(), 1u);
  spec.ids = {"test/algebra/999999.json"};
  problems = LoadDataset(spec, SharedData().string());
  ASSERT_FALSE(problems.ok());
  EXPECT_NE(problems.status().message().find("test/algebra/999999.json"), std::string::npos);
  DatasetSpec gsm;
  gsm.kind = DatasetKind::kGsm8k;
  gsm.limit = 10;
  problems = LoadDataset(gsm, SharedData().string());
  ASSERT_TRUE(problems.ok());
  EXPECT_EQ(problems->size(), 10u);
}

TEST(LoadDatasetTest, Synthetic) {
  DatasetSpec spec;
  spec.kind = DatasetKind::kSynthetic;
  spec.count = 20;
  spec.seed = 5;
  auto a = LoadDataset(spec, "");
  auto b = LoadDataset(spec, "");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_EQ(a->size(), 20u);
  EXPECT_EQ(DatasetFingerprint(*a), DatasetFingerprint(*b));
  EXPECT_EQ((*a)[0].task, Task::kGsm8k);
  spec.seed = 6;
  EXPECT_NE(DatasetFingerprint(*LoadDataset(spec, "")), DatasetFingerprint(*a));
}

TEST(UserJsonlTest, FieldMappingAndErrors) {
  testing::TempDir dir;
  const auto file = dir / "mine.jsonl";
  WriteFile(file,
            "{\"q\": \"What is 2+2?\", \"a\": 4, \"key\": \"p1\", \"topic\": \"arith\"}\n\n"
            "{\"q\": \"Name it\", \"a\": \"\\\\frac{1}{2}\", \"key\": 7}\n");
  JsonlFields fields = Fields("q", "a", "key");
  auto problems = LoadUserJsonl(file, fields);
  ASSERT_TRUE(problems.ok()) << problems.status().ToString();
  ASSERT_EQ(problems->size(), 2u);
  EXPECT_EQ((*problems)[0].id, "p1");
  EXPECT_EQ((*problems)[0].gold_answer, "4");
  EXPECT_EQ((*problems)[0].extra["topic"], "arith");
  EXPECT_EQ((*problems)[1].id, "7");
  EXPECT_EQ((*problems)[1].gold_answer, "\\frac{1}{2}");

  JsonlFields by_line = Fields("q", "a", "");
  problems = LoadUserJsonl(file, by_line);
  ASSERT_TRUE(problems.ok());
  EXPECT_EQ((*problems)[1].id, "mine/1");

  JsonlFields wrong = Fields("question", "a", "");
  problems = LoadUserJsonl(file, wrong);
  ASSERT_FALSE(problems.ok());
  EXPECT_NE(problems.status().message().find("mine.jsonl:1: field 'question' is missing"),
            std::string::npos)
      << problems.status().message();

  WriteFile(file,
            "{\"q\": \"x\", \"a\": 1, \"key\": \"d\"}\n{\"q\": \"y\", \"a\": 2, \"key\": \"d\"}\n");
  problems = LoadUserJsonl(file, fields);
  ASSERT_FALSE(problems.ok());
  EXPECT_NE(problems.status().message().find("duplicate id 'd' (first on line 1)"),
            std::string::npos);

  WriteFile(file, "{\"q\": \"x\", \"a\": 1}\n{not json}\n");
  problems = LoadUserJsonl(file, by_line);
  ASSERT_FALSE(problems.ok());
  EXPECT_EQ(problems.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(problems.status().message().find("mine.jsonl:2: invalid JSON"), std::string::npos);

  WriteFile(file, "[1, 2]\n");
  EXPECT_FALSE(LoadUserJsonl(file, by_line).ok());
  WriteFile(file, "{\"q\": \"x\", \"a\": null}\n");
  EXPECT_FALSE(LoadUserJsonl(file, by_line).ok());
  EXPECT_EQ(LoadUserJsonl(dir / "absent.jsonl", by_line).status().code(), StatusCode::kNotFound);
}

TEST(FingerprintTest, CoversWhatIsAskedAndGraded) {
  Problem a = MakeProblem("x/0", "1+1?", "2");
  Problem b = MakeProblem("x/1", "2+2?", "4");
  const std::string base = DatasetFingerprint({a, b});
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base, DatasetFingerprint({a, b}));
  EXPECT_NE(base, DatasetFingerprint({b, a}));
  Problem changed = b;
  changed.gold_answer = "5";
  EXPECT_NE(base, DatasetFingerprint({a, changed}));
  changed = b;
  changed.task = Task::kGsm8k;
  EXPECT_NE(base, DatasetFingerprint({a, changed}));
  changed = b;
  changed.solution = "worked";
  changed.level = 3;
  EXPECT_EQ(base, DatasetFingerprint({a, changed}));
  // Length prefixes keep field boundaries unambiguous.
  Problem c = MakeProblem("x", "ab", "c");
  Problem d = MakeProblem("x", "a", "bc");
  EXPECT_NE(DatasetFingerprint({c}), DatasetFingerprint({d}));
}

TEST(FingerprintTest, RealDatasetsArePinned) {
  // Pinned so a silent change in a loader or gold rule shows up here (recompute deliberately if the
  // rules change).
  auto math = LoadMath500(SharedData() / kMath500FileName);
  auto gsm = LoadGsm8k(SharedData() / kGsm8kFileName);
  ASSERT_TRUE(math.ok() && gsm.ok());
  // Values checked against an independent Python computation of the same serialisation
  // (hashlib.sha256 over "len:bytes\n" of id, question, gold and task name per problem).
  EXPECT_EQ(DatasetFingerprint(*math),
            "1c45406395297a305a19b6100e8c195dbb4f388b68ced0775849ef2942ba7d97");
  EXPECT_EQ(DatasetFingerprint(*gsm),
            "cfeaba575cff1519254832aafd8b52c63d6114280c08779e31b8e57406b59ee7");
}

}  // namespace
}  // namespace ttc::experiments
