// End to end: an experiment written through the store (leases, fenced samples, PRM step scores, bench rows),
// then `ttc report` as a user runs it: the table, CSV, JSON, SVG (well-formed XML) and the HTML page rendered by
// headless Chromium into a screenshot that is not blank. Empty and partial experiments are reported as such.
#include <gtest/gtest.h>
#include <png.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "reports/report.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace ttc::reports {
namespace {

using ttc::testing::RunCommand;
using ttc::testing::RunTtc;
using ttc::testing::TempDir;

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A strict-enough XML well-formedness check for the SVG we write: balanced tags, quoted attributes, known
// entities, one root element.
bool WellFormedXml(const std::string& s, std::string* why) {
  std::vector<std::string> stack;
  size_t i = 0, roots = 0;
  auto fail = [&](const std::string& m) {
    *why = m + " at byte " + std::to_string(i);
    return false;
  };
  while (i < s.size()) {
    if (s[i] == '<') {
      size_t end = s.find('>', i);
      if (end == std::string::npos) return fail("unterminated tag");
      std::string tag = s.substr(i + 1, end - i - 1);
      if (tag.rfind("?", 0) == 0 || tag.rfind("!", 0) == 0) {
        i = end + 1;
        continue;
      }
      if (tag.empty()) return fail("empty tag");
      if (tag[0] == '/') {
        if (stack.empty() || stack.back() != tag.substr(1)) return fail("mismatched </" + tag.substr(1) + ">");
        stack.pop_back();
      } else {
        bool self = tag.back() == '/';
        std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
        // Attributes: name="value" pairs, values without '<'.
        size_t q = 0;
        for (char c : tag) q += c == '"';
        if (q % 2) return fail("unbalanced quotes in <" + name + ">");
        if (stack.empty()) ++roots;
        if (!self) stack.push_back(name);
      }
      i = end + 1;
    } else if (s[i] == '&') {
      size_t end = s.find(';', i);
      if (end == std::string::npos) return fail("bare &");
      std::string ent = s.substr(i + 1, end - i - 1);
      if (ent != "amp" && ent != "lt" && ent != "gt" && ent != "quot" && ent != "apos" && ent.rfind("#", 0) != 0) {
        return fail("unknown entity &" + ent + ";");
      }
      i = end + 1;
    } else {
      ++i;
    }
  }
  if (!stack.empty()) return fail("unclosed <" + stack.back() + ">");
  if (roots != 1) return fail("expected one root element");
  return true;
}

struct Fixture {
  store::Id experiment = 0;
};

// Two models x one temperature x 3 problems x 8 samples, graded, with PRM scores and a bench table for one
// model. With `leave_pending`, one unit stays unclaimed (a partial experiment).
Fixture MakeExperiment(const std::string& db_path, bool leave_pending, bool no_samples = false) {
  auto db = store::Store::Open(db_path);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  store::NewExperiment ne;
  ne.experiment.name = "report-test";
  ne.experiment.grid_spec_json =
      R"({"name": "report-test", "dataset": {"kind": "gsm8k"}, "models": [{"name": "teacher", "path": "/m/t"},
         {"name": "student", "path": "/m/s"}], "temperatures": [0.8], "n_samples": 8,
         "reward_model": {"path": "/m/prm"}, "grader": "sal"})";
  ne.experiment.dataset_fingerprint = "sha256:test";
  ne.models = {{.name = "teacher", .path = "/m/t"}, {.name = "student", .path = "/m/s"}};
  for (int p = 0; p < 3; ++p) {
    ne.problems.push_back({.index = p, .external_id = "p" + std::to_string(p), .question = "q",
                           .gold_answer = std::to_string(10 + p)});
  }
  for (const char* m : {"teacher", "student"}) {
    store::Unit u;
    u.model_name = m;
    u.temperature = 0.8;
    u.problem_indices = {0, 1, 2};
    u.sample_begin = 0;
    u.sample_end = 8;
    ne.units.push_back(u);
  }
  auto created = (*db)->CreateExperiment(ne);
  EXPECT_TRUE(created.ok()) << created.status().ToString();
  Fixture fx{created->unit_ids.empty() ? 0 : 0};
  auto exps = (*db)->ListExperiments();
  fx.experiment = exps->back().id;
  if (no_samples) return fx;
  const int units_to_run = leave_pending ? 1 : 2;
  for (int u = 0; u < units_to_run; ++u) {
    store::ClaimOptions co;
    co.worker_id = "w1";
    co.now = store::UnixSeconds();
    co.kinds = {store::UnitKind::kGenerate};
    auto unit = (*db)->ClaimUnit(co);
    EXPECT_TRUE(unit.ok() && unit->has_value());
    const store::Unit& un = **unit;
    std::vector<store::Sample> samples;
    for (int p = 0; p < 3; ++p) {
      for (int s = 0; s < 8; ++s) {
        store::Sample x;
        x.unit_id = un.id;
        x.problem_index = p;
        x.sample_index = s;
        x.attempt = un.attempt;
        // Teacher: right on even samples; student: right on every third sample.
        const bool right = un.model_name == "teacher" ? s % 2 == 0 : s % 3 == 0;
        x.extracted_answer = right ? std::to_string(10 + p) : std::to_string(100 + s % 2);
        x.correct = right;
        x.num_tokens = 20 + s;
        x.finish_reason = "stop";
        x.prefill_s = 0.01;
        x.decode_s = 0.002 * x.num_tokens;
        x.steps = x.num_tokens;
        x.extra_json = R"({"prompt_tokens": 40, "device": "cpu"})";
        samples.push_back(x);
      }
    }
    auto ins = (*db)->InsertSamples(samples);
    EXPECT_TRUE(ins.ok()) << ins.status().ToString();
    EXPECT_TRUE((*db)->CompleteUnit(un.id, "w1", un.attempt).ok());
  }
  // PRM scores for the teacher's samples: high on the correct ones.
  store::Unit su;
  su.kind = store::UnitKind::kScore;
  su.model_name = "teacher";  // scored with the PRM; the store needs a model of the experiment
  su.target_model_name = "teacher";
  su.temperature = 0.8;
  su.problem_indices = {0, 1, 2};
  su.sample_begin = 0;
  su.sample_end = 8;
  auto added = (*db)->AddUnits(fx.experiment, {su});
  EXPECT_TRUE(added.ok()) << added.status().ToString();
  store::ClaimOptions co;
  co.worker_id = "w2";
  co.now = store::UnixSeconds();
  co.kinds = {store::UnitKind::kScore};
  auto unit = (*db)->ClaimUnit(co);
  EXPECT_TRUE(unit.ok() && unit->has_value());
  auto missing = (*db)->SamplesMissingScores((*unit)->id);
  EXPECT_TRUE(missing.ok());
  std::vector<store::SampleStepScores> scores;
  for (store::Id id : *missing) {
    auto s = (*db)->GetSample(id, false);
    scores.push_back({id, {0.5, s->correct.value_or(false) ? 0.9 : 0.2}});
  }
  EXPECT_TRUE((*db)->InsertStepScores((*unit)->id, (*unit)->attempt, scores).ok());
  EXPECT_TRUE((*db)->CompleteUnit((*unit)->id, "w2", (*unit)->attempt).ok());
  // A paper-protocol bench table for the teacher.
  std::vector<store::BenchRow> rows;
  for (int b : {1, 2, 4, 8}) {
    rows.push_back({.table = "paper", .model = "teacher", .device = "cpu", .batch = b, .prompt_len = 40,
                    .context_len = 552, .gen_len = 512, .step_s = 0.001 * (1 + b / 4.0),
                    .total_s = 0.512 * (1 + b / 4.0)});
  }
  EXPECT_TRUE((*db)->InsertBenchRows(rows).ok());
  return fx;
}

TEST(Report, BuildsEveryMetricFromTheStore) {
  TempDir dir;
  const std::string db_path = (dir / "t.db").string();
  Fixture fx = MakeExperiment(db_path, false);
  auto db = store::Store::Open(db_path);
  ASSERT_TRUE(db.ok());
  ReportOptions o;
  o.random_subsets = 50;
  auto r = BuildReport(**db, fx.experiment, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->partial);
  EXPECT_FALSE(r->empty);
  ASSERT_EQ(r->curves.size(), 2u);
  const Curve& teacher = r->curves[0];
  EXPECT_EQ(teacher.model, "teacher");
  EXPECT_EQ(teacher.k, (std::vector<int>{1, 2, 4, 8}));
  // Teacher: 4 of 8 right on each problem: pass@1 = 0.5, pass@2 = 1 - C(4,2)/C(8,2) = 1 - 6/28.
  const auto& cov = teacher.values.at("coverage").at("unbiased");
  EXPECT_NEAR(cov.mean[0], 0.5, 1e-12);
  EXPECT_NEAR(cov.mean[1], 1 - 6.0 / 28, 1e-12);
  EXPECT_NEAR(cov.se[0], 0.0, 1e-12);
  // First-k majority at k=2: tie between the right answer (sample 0) and "101": the earliest wins -> right.
  EXPECT_NEAR(teacher.values.at("majority").at("first_k").mean[1], 1.0, 1e-12);
  // Weighted BoN uses the PRM: correct samples score 0.9 -> always right.
  EXPECT_NEAR(teacher.values.at("weighted_bon").at("first_k").mean[3], 1.0, 1e-12);
  EXPECT_EQ(teacher.time_source, TimeModelSource::kBenchTable);
  // The student has no PRM scores and no bench table.
  const Curve& student = r->curves[1];
  EXPECT_EQ(student.values.count("weighted_bon"), 0u);
  EXPECT_EQ(student.time_source, TimeModelSource::kMeasuredSamples);
  EXPECT_FALSE(r->pareto.at("coverage").empty());
}

TEST(Report, CommandWritesAllFormats) {
  TempDir dir;
  const std::string db_path = (dir / "t.db").string();
  Fixture fx = MakeExperiment(db_path, false);
  const auto out = dir / "report";
  auto res = RunTtc("report " + std::to_string(fx.experiment) + " --db " + db_path + " --out " + out.string() +
                    " --time-model paper --subsets 20");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  EXPECT_NE(res.output.find("teacher"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("time model paper"), std::string::npos) << res.output;
  for (const char* f : {"metrics.csv", "report.json", "index.html", "coverage_vs_k.svg", "coverage_vs_time.svg",
                        "majority_vs_k.svg", "weighted_bon_vs_k.svg", "speed_vs_batch.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(out / f)) << f;
  }
  for (const auto& e : std::filesystem::directory_iterator(out)) {
    if (e.path().extension() != ".svg") continue;
    std::string why;
    EXPECT_TRUE(WellFormedXml(ReadFile(e.path()), &why)) << e.path() << ": " << why;
  }
  auto j = nlohmann::json::parse(ReadFile(out / "report.json"));
  EXPECT_EQ(j["time_model"], "paper");
  EXPECT_EQ(j["experiment"]["dataset_fingerprint"], "sha256:test");
  EXPECT_EQ(j["curves"].size(), 2u);
  EXPECT_TRUE(j["experiment"]["grid_spec"].is_object());
  std::string csv = ReadFile(out / "metrics.csv");
  EXPECT_NE(csv.find("\"teacher\",0.8,1,coverage,unbiased,0.500000"), std::string::npos) << csv.substr(0, 400);
}

// Counts pixels that are clearly not white in a PNG.
int64_t NonWhitePixels(const std::string& png_path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, png_path.c_str())) return -1;
  image.format = PNG_FORMAT_RGB;
  std::vector<unsigned char> buf(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, buf.data(), 0, nullptr)) return -1;
  int64_t n = 0;
  for (size_t i = 0; i + 2 < buf.size(); i += 3) n += (buf[i] < 200 || buf[i + 1] < 200 || buf[i + 2] < 200);
  return n;
}

TEST(Report, HtmlRendersInHeadlessChromium) {
  const char* browser = nullptr;
  for (const char* b : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (std::filesystem::exists(b)) browser = b;
  }
  if (browser == nullptr) GTEST_SKIP() << "chromium is not installed (tools/install-deps.sh installs it)";
  TempDir dir;
  const std::string db_path = (dir / "t.db").string();
  Fixture fx = MakeExperiment(db_path, false);
  const auto out = dir / "report";
  auto res = RunTtc("report " + std::to_string(fx.experiment) + " --db " + db_path + " --out " + out.string());
  ASSERT_EQ(res.exit_code, 0) << res.output;
  const auto png = dir / "shot.png";
  auto shot = RunCommand(std::string(browser) +
                         " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars "
                         "--user-data-dir=" + (dir / "profile").string() +
                         " --window-size=1500,1200 --screenshot=" + png.string() + " file://" +
                         (out / "index.html").string());
  ASSERT_TRUE(std::filesystem::exists(png)) << shot.output;
  const int64_t ink = NonWhitePixels(png.string());
  // A blank page has none; the plots' lines, text and bands cover tens of thousands of pixels.
  EXPECT_GT(ink, 20000) << "screenshot looks blank";
}

TEST(Report, EmptyExperimentSaysSo) {
  TempDir dir;
  const std::string db_path = (dir / "t.db").string();
  Fixture fx = MakeExperiment(db_path, true, /*no_samples=*/true);
  auto res = RunTtc("report " + std::to_string(fx.experiment) + " --db " + db_path + " --out " +
                    (dir / "r").string());
  EXPECT_EQ(res.exit_code, 0) << res.output;
  EXPECT_NE(res.output.find("no samples yet"), std::string::npos) << res.output;
  EXPECT_NE(ReadFile(dir / "r" / "index.html").find("No samples yet"), std::string::npos);
}

TEST(Report, PartialExperimentIsMarked) {
  TempDir dir;
  const std::string db_path = (dir / "t.db").string();
  Fixture fx = MakeExperiment(db_path, true);
  auto res = RunTtc("report " + std::to_string(fx.experiment) + " --db " + db_path + " --format table");
  EXPECT_EQ(res.exit_code, 0) << res.output;
  EXPECT_NE(res.output.find("PARTIAL"), std::string::npos) << res.output;
}

TEST(Report, BadInputGivesClearErrors) {
  TempDir dir;
  auto missing = RunTtc("report 1 --db " + (dir / "none.db").string());
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("none.db"), std::string::npos) << missing.output;
  const std::string db_path = (dir / "t.db").string();
  MakeExperiment(db_path, false);
  auto unknown = RunTtc("report 999 --db " + db_path);
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("999"), std::string::npos) << unknown.output;
  auto usage = RunTtc("report 1 --db " + db_path + " --time-model wallclock");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  auto fmt = RunTtc("report 1 --db " + db_path + " --format pdf");
  EXPECT_EQ(fmt.exit_code, 2) << fmt.output;
}

}  // namespace
}  // namespace ttc::reports
