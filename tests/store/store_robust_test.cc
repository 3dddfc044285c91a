// Store file-format robustness: a non-SQLite file, a truncated or damaged SQLite file, another
// application's SQLite file and a file from a newer ttc each give a clear error (never a crash); an
// old-version (v1) file is upgraded on open with its data intact. Runs under ASan/UBSan too (label
// "robust").
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <random>

#include "tests/store/store_fixture.h"

namespace ttc::store::testing {
namespace {

using ttc::testing::TempDir;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs SQL on a file directly with the SQLite C API, as another program (or an older ttc) would.
void RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in: " << sql;
  sqlite3_free(err);
  sqlite3_close(db);
}

// A store file with an experiment and some samples, closed (so its WAL is checkpointed into the
// main file).
void MakeStoreWithData(const std::string& path) {
  auto s = Store::Open(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto c = (*s)->CreateExperiment(SmallExperiment());
  ASSERT_TRUE(c.ok());
  auto u = (*s)->ClaimUnit({.worker_id = "w", .now = 0});
  ASSERT_TRUE(u.ok() && u->has_value());
  std::vector<Sample> batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back(MakeSample(**u, 0, i, 1));
    batch.back().text = std::string(3000, 'a' + i);  // spread over several pages
  }
  ASSERT_TRUE((*s)->InsertSamples(batch).ok());
}

void ExpectError(const Result<std::unique_ptr<Store>>& r, StatusCode code,
                 const std::string& needle) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

TEST(StoreRobust, NonSqliteFileIsRejected) {
  TempDir dir;
  std::string path = (dir / "notes.txt").string();
  WriteFile(path, "this is a text file, not a database\n" + std::string(2000, 'x'));
  auto r = Store::Open(path);
  ExpectError(r, StatusCode::kCorrupt, "not an SQLite database");
  EXPECT_NE(r.status().message().find(path), std::string::npos);  // names the file
  // The file was not touched.
  EXPECT_EQ(ReadFile(path).substr(0, 9), "this is a");

  WriteFile(path, "short");
  ExpectError(Store::Open(path), StatusCode::kCorrupt, "not an SQLite database");
}

TEST(StoreRobust, TruncatedFileIsRejected) {
  TempDir dir;
  std::string good = (dir / "good.db").string();
  MakeStoreWithData(good);
  std::string bytes = ReadFile(good);
  ASSERT_GT(bytes.size(), 8192u);
  std::string path = (dir / "cut.db").string();
  WriteFile(path, bytes.substr(0, 100));
  ExpectError(Store::Open(path), StatusCode::kCorrupt, "truncated");
  // Cut in the middle of the file: the header promises pages that are not there.
  WriteFile(path, bytes.substr(0, bytes.size() / 2));
  auto r = Store::Open(path);
  if (r.ok()) {
    // SQLite may open it (page 1 is intact); the damage must then show as errors, not a crash.
    auto check = (*r)->Check();
    bool damaged = !check.ok() || !check->ok();
    auto rows = (*r)->ListSamples({.experiment_id = 1, .include_text = true});
    damaged = damaged || !rows.ok();
    EXPECT_TRUE(damaged);
  } else {
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << r.status().ToString();
  }
}

TEST(StoreRobust, DamagedSchemaPageIsCorrupt) {
  TempDir dir;
  std::string path = (dir / "ttc.db").string();
  MakeStoreWithData(path);
  std::string bytes = ReadFile(path);
  // Keep the 100-byte file header, scramble the rest of page 1 (the schema table's root).
  std::mt19937 rng(7);
  for (size_t i = 100; i < 4096 && i < bytes.size(); ++i) bytes[i] = static_cast<char>(rng());
  WriteFile(path, bytes);
  auto r = Store::Open(path);
  ExpectError(r, StatusCode::kCorrupt, "damaged");
  EXPECT_NE(r.status().message().find(path), std::string::npos);
}

TEST(StoreRobust, DamagedDataPagesGiveErrorsNotCrashes) {
  TempDir dir;
  std::string path = (dir / "ttc.db").string();
  MakeStoreWithData(path);
  std::string bytes = ReadFile(path);
  std::mt19937 rng(11);
  for (size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>(rng());
  WriteFile(path, bytes);
  auto r = Store::Open(path);
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << r.status().ToString();
    return;
  }
  // Every call returns (an error or some value); the integrity check names the damage.
  auto check = (*r)->Check();
  ASSERT_TRUE(!check.ok() || !check->ok());
  if (!check.ok()) {
    EXPECT_EQ(check.status().code(), StatusCode::kCorrupt) << check.status().ToString();
  }
  (void)(*r)->ListExperiments();
  (void)(*r)->ListUnits({});
  (void)(*r)->ListSamples({.experiment_id = 1, .include_text = true});
  (void)(*r)->ClaimUnit({.worker_id = "w", .now = 0});
  (void)(*r)->ListWorkers();
}

TEST(StoreRobust, RandomBytesBehindAValidHeaderAreRejected) {
  TempDir dir;
  std::string path = (dir / "noise.db").string();
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    std::mt19937 rng(seed);
    std::string bytes(16384, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::memcpy(bytes.data(), "SQLite format 3", 16);
    WriteFile(path, bytes);
    auto r = Store::Open(path);
    EXPECT_FALSE(r.ok()) << "seed " << seed;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << r.status().ToString();
    }
  }
}

TEST(StoreRobust, ForeignSqliteFileIsRejected) {
  TempDir dir;
  std::string path = (dir / "other.db").string();
  RawSql(path,
         "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, "
         "'ann');");
  ExpectError(Store::Open(path), StatusCode::kCorrupt, "another application");
  ExpectError(Store::Open(path), StatusCode::kCorrupt, "users");
  // It was left alone: still the other application's data, no tables of ours.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_schema", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 1);
  sqlite3_finalize(st);
  sqlite3_close(db);

  // Another application that happens to have a schema_version table, but its own application_id.
  std::string path2 = (dir / "other2.db").string();
  RawSql(path2,
         "PRAGMA application_id = 1234; CREATE TABLE schema_version (version INTEGER);"
         "INSERT INTO schema_version VALUES (1);");
  ExpectError(Store::Open(path2), StatusCode::kCorrupt, "another application");
}

TEST(StoreRobust, NewerSchemaVersionIsRefused) {
  TempDir dir;
  std::string path = (dir / "future.db").string();
  MakeStoreWithData(path);
  RawSql(path, "INSERT INTO schema_version VALUES (99, 0, 'from the future')");
  auto r = Store::Open(path);
  ExpectError(r, StatusCode::kFailedPrecondition, "newer");
  EXPECT_NE(r.status().message().find("99"), std::string::npos);
  ExpectError(Store::Open(path, {.read_only = true}), StatusCode::kFailedPrecondition, "newer");
}

TEST(StoreRobust, MissingFileAndDirectory) {
  TempDir dir;
  std::string path = (dir / "absent.db").string();
  ExpectError(Store::Open(path, {.create_if_missing = false}), StatusCode::kNotFound, "absent.db");
  ExpectError(Store::Open(path, {.read_only = true}), StatusCode::kNotFound, "absent.db");
  ExpectError(Store::Open(dir.path().string()), StatusCode::kInvalidArgument, "not a regular file");
  ExpectError(Store::Open(path, {.target_schema_version = 99}), StatusCode::kInvalidArgument, "99");
}

TEST(StoreRobust, EmptyFileBecomesAStore) {
  TempDir dir;
  std::string path = (dir / "empty.db").string();
  WriteFile(path, "");
  ExpectError(Store::Open(path, {.migrate = false}), StatusCode::kFailedPrecondition, "empty");
  auto r = Store::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto v = (*r)->SchemaVersion();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, LatestSchemaVersion());
}

TEST(StoreRobust, MigratesVersion1FileWithItsData) {
  TempDir dir;
  std::string path = (dir / "v1.db").string();
  {
    auto old = Store::Open(path, {.target_schema_version = 1});
    ASSERT_TRUE(old.ok()) << old.status().ToString();
    auto v = (*old)->SchemaVersion();
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, 1);
  }
  // Data written the way ttc's version-1 code wrote it (the v1 schema has no progress columns).
  RawSql(path, R"sql(
    INSERT INTO experiments VALUES (1, 'old', '{"k":[1]}', 'fp', -2, 'active', 1700000000.5);
    INSERT INTO models VALUES (1, 1, 'm', '/m', '');
    INSERT INTO problems VALUES (1, 0, 'ext0', 'q0', 'a0', '');
    INSERT INTO units (id, experiment_id, kind, model_id, temperature, problems, sample_begin, sample_end, seed,
                       order_key, max_attempts, state, worker_id, attempt, lease_expires_at)
      VALUES (1, 1, 'generate', 1, 0.6, '[0]', 0, 3, 5, 0, 3, 'leased', 'old-worker', 1, 50.0);
    INSERT INTO samples (experiment_id, unit_id, model_id, temperature, problem_idx, sample_idx, attempt,
                         num_tokens, steps, prefill_s, decode_s, correct, finish_reason, extracted_answer, extra, text)
      VALUES (1, 1, 1, 0.6, 0, 0, 1, 7, 7, 0.1, 0.2, 1, 'stop', 'a0', '', 'old text');
  )sql");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "SELECT progress_tokens FROM units", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  // Without permission to migrate, the old file is refused with the command that fixes it.
  ExpectError(Store::Open(path, {.migrate = false}), StatusCode::kFailedPrecondition,
              "ttc db migrate");
  ExpectError(Store::Open(path, {.read_only = true}), StatusCode::kFailedPrecondition, "older");

  auto r = Store::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Store& s = **r;
  auto v = s.SchemaVersion();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, LatestSchemaVersion());
  auto e = s.GetExperiment(1);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->name, "old");
  EXPECT_EQ(e->grid_spec_json, R"({"k":[1]})");
  EXPECT_EQ(e->seed, ~uint64_t{1});  // -2 as uint64
  auto u = s.GetUnit(1);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->state, UnitState::kLeased);
  EXPECT_EQ(u->worker_id, "old-worker");
  EXPECT_EQ(u->progress_tokens, 0);  // the new column got its default
  EXPECT_EQ(u->samples_stored, 1);   // counters back-filled from the old samples
  EXPECT_EQ(u->tokens_stored, 7);
  auto status = s.GetExperimentStatus(1);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->samples, 1);
  EXPECT_EQ(status->samples_correct, 1);
  EXPECT_EQ(status->samples_expected, 3);
  auto samples = s.ListSamples({.experiment_id = 1, .include_text = true});
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ((*samples)[0].text, "old text");
  EXPECT_EQ((*samples)[0].correct, std::optional<bool>(true));
  // The upgraded file works as a queue: the old lease expires, the unit is claimed again and
  // finished.
  auto expired = s.ExpireLeases(100);
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 1u);
  auto claim = s.ClaimUnit({.worker_id = "new", .now = 101});
  ASSERT_TRUE(claim.ok() && claim->has_value());
  EXPECT_EQ((*claim)->attempt, 2);
  auto missing = s.MissingSamples(1);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->size(), 2u);
  ASSERT_TRUE(s.RecordProgress(1, "new", 2, 10, 1, 102).ok());
  auto check = s.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << check->integrity;
  EXPECT_EQ(check->schema_version, LatestSchemaVersion());
}

}  // namespace
}  // namespace ttc::store::testing
