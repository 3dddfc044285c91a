#include "store/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "store/migrations.h"
#include "store/sqlite.h"

namespace ttc::store {

using internal::Connection;
using internal::Stmt;
using internal::WriteTxn;

int LatestSchemaVersion() { return internal::Migrations().back().version; }

namespace {

// Seeds are uint64 but SQLite integers are int64: store the bits unchanged.
int64_t SeedToDb(uint64_t seed) { return static_cast<int64_t>(seed); }
uint64_t SeedFromDb(int64_t v) { return static_cast<uint64_t>(v); }

std::string IntListJson(const std::vector<int>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(v[i]);
  }
  out += ']';
  return out;
}

std::string StringListJson(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }

Result<std::vector<int>> ParseIntList(std::string_view text, std::string_view what) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return Corrupt("{} is not a JSON array: {}", what, text);
  std::vector<int> out;
  out.reserve(j.size());
  for (const auto& e : j) {
    if (!e.is_number_integer()) return Corrupt("{} holds a non-integer: {}", what, text);
    out.push_back(e.get<int>());
  }
  return out;
}

Result<std::vector<std::string>> ParseStringList(std::string_view text, std::string_view what) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return Corrupt("{} is not a JSON array: {}", what, text);
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string()) return Corrupt("{} holds a non-string: {}", what, text);
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::string KindsJson(const std::vector<UnitKind>& kinds) {
  std::vector<std::string> names;
  for (UnitKind k : kinds) names.push_back(Name(k));
  return StringListJson(names);
}

// The columns of a unit row, in the order ReadUnit() expects.
#define TTC_UNIT_SELECT                                                                        \
  "SELECT u.id, u.experiment_id, u.kind, u.model_id, m.name, COALESCE(u.target_model_id, 0), " \
  "COALESCE(tm.name, ''), u.temperature, u.problems, u.sample_begin, u.sample_end, u.seed, "   \
  "u.order_key, u.max_attempts, u.state, u.worker_id, u.attempt, u.lease_expires_at, "         \
  "u.attempts_used, u.last_error, u.progress_tokens, u.progress_samples, u.progress_at, "      \
  "u.samples_stored, u.tokens_stored "                                                         \
  "FROM units u JOIN models m ON m.id = u.model_id LEFT JOIN models tm ON tm.id = "            \
  "u.target_model_id "

Result<Unit> ReadUnit(const Stmt& s) {
  Unit u;
  u.id = s.Int(0);
  u.experiment_id = s.Int(1);
  auto kind = ParseUnitKind(s.TextView(2));
  if (!kind) return Corrupt("unit {}: unknown kind '{}'", u.id, s.TextView(2));
  u.kind = *kind;
  u.model_id = s.Int(3);
  u.model_name = s.Text(4);
  u.target_model_id = s.Int(5);
  u.target_model_name = s.Text(6);
  u.temperature = s.Double(7);
  TTC_ASSIGN_OR_RETURN(u.problem_indices,
                       ParseIntList(s.TextView(8), fmt::format("unit {} problems", u.id)));
  u.sample_begin = static_cast<int>(s.Int(9));
  u.sample_end = static_cast<int>(s.Int(10));
  u.seed = SeedFromDb(s.Int(11));
  u.order_key = s.Int(12);
  u.max_attempts = static_cast<int>(s.Int(13));
  auto state = ParseUnitState(s.TextView(14));
  if (!state) return Corrupt("unit {}: unknown state '{}'", u.id, s.TextView(14));
  u.state = *state;
  u.worker_id = s.Text(15);
  u.attempt = static_cast<int>(s.Int(16));
  u.lease_expires_at = s.Double(17);
  u.attempts_used = static_cast<int>(s.Int(18));
  u.last_error = s.Text(19);
  u.progress_tokens = s.Int(20);
  u.progress_samples = static_cast<int>(s.Int(21));
  u.progress_at = s.Double(22);
  u.samples_stored = s.Int(23);
  u.tokens_stored = s.Int(24);
  return u;
}

// Sample reads: the numeric columns from `samples`, text and extra from `sample_texts` only when
// asked for (?8 and ?9 choose extra and text), so bulk reads of the numeric columns never touch the
// large rows.
#define TTC_SAMPLE_NUMERIC                                                               \
  "SELECT s.id, s.experiment_id, s.unit_id, s.model_id, s.temperature, s.problem_idx, "  \
  "s.sample_idx, s.attempt, s.num_tokens, s.steps, s.prefill_s, s.decode_s, s.correct, " \
  "s.finish_reason, s.extracted_answer, "
#define TTC_SAMPLE_WITH_TEXT                      \
  TTC_SAMPLE_NUMERIC                              \
  "COALESCE(CASE WHEN ?8 THEN t.extra END, ''), " \
  "COALESCE(CASE WHEN ?9 THEN t.text END, '') "   \
  "FROM samples s LEFT JOIN sample_texts t ON t.sample_id = s.id "
#define TTC_SAMPLE_NO_TEXT TTC_SAMPLE_NUMERIC "'', '' FROM samples s "

void ReadSample(const Stmt& s, Sample* x) {
  x->id = s.Int(0);
  x->experiment_id = s.Int(1);
  x->unit_id = s.Int(2);
  x->model_id = s.Int(3);
  x->temperature = s.Double(4);
  x->problem_index = static_cast<int>(s.Int(5));
  x->sample_index = static_cast<int>(s.Int(6));
  x->attempt = static_cast<int>(s.Int(7));
  x->num_tokens = static_cast<int>(s.Int(8));
  x->steps = static_cast<int>(s.Int(9));
  x->prefill_s = s.Double(10);
  x->decode_s = s.Double(11);
  x->correct = s.OptionalBool(12);
  x->finish_reason.assign(s.TextView(13));
  x->extracted_answer.assign(s.TextView(14));
  x->extra_json.assign(s.TextView(15));
  x->text.assign(s.TextView(16));
}

Result<Experiment> ReadExperiment(const Stmt& s) {
  Experiment e;
  e.id = s.Int(0);
  e.name = s.Text(1);
  e.grid_spec_json = s.Text(2);
  e.dataset_fingerprint = s.Text(3);
  e.seed = SeedFromDb(s.Int(4));
  auto state = ParseExperimentState(s.TextView(5));
  if (!state) return Corrupt("experiment {}: unknown state '{}'", e.id, s.TextView(5));
  e.state = *state;
  e.created_at = s.Double(6);
  return e;
}

Result<Worker> ReadWorker(const Stmt& s) {
  Worker w;
  w.id = s.Text(0);
  w.host = s.Text(1);
  w.device = s.Text(2);
  w.memory_bytes = s.Int(3);
  TTC_ASSIGN_OR_RETURN(w.models_held,
                       ParseStringList(s.TextView(4), fmt::format("worker {} models_held", w.id)));
  auto state = ParseWorkerState(s.TextView(5));
  if (!state) return Corrupt("worker {}: unknown state '{}'", w.id, s.TextView(5));
  w.state = *state;
  w.current_unit = s.Int(6);
  w.tokens_per_s = s.Double(7);
  w.last_heartbeat = s.Double(8);
  w.protocol_version = static_cast<int>(s.Int(9));
  w.first_seen = s.Double(10);
  return w;
}

// What fencing needs to know about a unit.
struct LeaseRow {
  UnitKind kind = UnitKind::kGenerate;
  UnitState state = UnitState::kPending;
  std::string worker_id;
  int attempt = 0;
  int attempts_used = 0;
  int max_attempts = 0;
};

}  // namespace

class Store::Impl {
 public:
  std::unique_ptr<Connection> conn;
  std::string path;
  int schema_version = 0;

  Status Changes(const char* what, Id id) {
    if (sqlite3_changes64(conn->db()) == 0)
      return NotFound("{}: {} {} does not exist", path, what, id);
    return Status::Ok();
  }

  Result<int> ReadSchemaVersion() {
    TTC_ASSIGN_OR_RETURN(
        Stmt t, conn->Prepare("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND "
                              "name = 'schema_version'"));
    TTC_ASSIGN_OR_RETURN(bool row, t.Step());
    if (!row || t.Int(0) == 0) return 0;
    TTC_ASSIGN_OR_RETURN(Stmt s, conn->Prepare("SELECT MAX(version) FROM schema_version"));
    TTC_ASSIGN_OR_RETURN(row, s.Step());
    if (!row || s.IsNull(0)) return Corrupt("{}: the schema_version table is empty", path);
    return static_cast<int>(s.Int(0));
  }

  Status Migrate(int target) {
    TTC_ASSIGN_OR_RETURN(auto txn, WriteTxn::Begin(conn.get()));
    // Re-read inside the write lock: another process may have migrated since we looked.
    TTC_ASSIGN_OR_RETURN(int version, ReadSchemaVersion());
    for (const auto& m : internal::Migrations()) {
      if (m.version <= version || m.version > target) continue;
      Status st = conn->Exec(m.sql);
      if (!st.ok()) return st.WithContext(fmt::format("migration to schema version {}", m.version));
      TTC_ASSIGN_OR_RETURN(
          Stmt s, conn->Prepare("INSERT INTO schema_version (version, applied_at, description) "
                                "VALUES (?1, ?2, ?3)"));
      TTC_RETURN_IF_ERROR(s.Bind(1, m.version).Bind(2, UnixSeconds()).Bind(3, m.description).Run());
    }
    if (version == 0) {
      TTC_RETURN_IF_ERROR(
          conn->Exec(fmt::format("PRAGMA application_id = {}", internal::kApplicationId).c_str()));
    }
    TTC_RETURN_IF_ERROR(txn->Commit());
    TTC_ASSIGN_OR_RETURN(schema_version, ReadSchemaVersion());
    return Status::Ok();
  }

  Result<std::string> PragmaText(const char* sql) {
    TTC_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(sql));
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::string();
    return s.Text(0);
  }

  Result<LeaseRow> LoadLease(Id unit_id) {
    TTC_ASSIGN_OR_RETURN(Stmt s,
                         conn->Prepare("SELECT kind, state, worker_id, attempt, attempts_used, "
                                       "max_attempts FROM units WHERE id = ?1"));
    s.Bind(1, unit_id);
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("{}: unit {} does not exist", path, unit_id);
    LeaseRow r;
    auto kind = ParseUnitKind(s.TextView(0));
    auto state = ParseUnitState(s.TextView(1));
    if (!kind || !state) return Corrupt("{}: unit {} has an unknown kind or state", path, unit_id);
    r.kind = *kind;
    r.state = *state;
    r.worker_id = s.Text(2);
    r.attempt = static_cast<int>(s.Int(3));
    r.attempts_used = static_cast<int>(s.Int(4));
    r.max_attempts = static_cast<int>(s.Int(5));
    return r;
  }

  // The fencing rule: only the current lease holder at the current attempt may act on a leased
  // unit.
  Status CheckFence(Id unit_id, const LeaseRow& r, const std::string& worker_id, int attempt) {
    if (r.state == UnitState::kLeased && r.worker_id == worker_id && r.attempt == attempt)
      return Status::Ok();
    return FailedPrecondition(
        "unit {} is not leased by worker '{}' at attempt {} (it is {}, worker '{}', attempt {})",
        unit_id, worker_id, attempt, Name(r.state), r.worker_id, r.attempt);
  }

  Result<std::vector<Unit>> QueryUnits(Stmt& s) {
    std::vector<Unit> out;
    while (true) {
      TTC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      TTC_ASSIGN_OR_RETURN(Unit u, ReadUnit(s));
      out.push_back(std::move(u));
    }
    return out;
  }

  Result<Unit> GetUnit(Id id) {
    TTC_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(TTC_UNIT_SELECT "WHERE u.id = ?1"));
    s.Bind(1, id);
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("{}: unit {} does not exist", path, id);
    return ReadUnit(s);
  }

  Result<ExperimentState> LoadExperimentState(Id id) {
    TTC_ASSIGN_OR_RETURN(Stmt s, conn->Prepare("SELECT state FROM experiments WHERE id = ?1"));
    s.Bind(1, id);
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("{}: experiment {} does not exist", path, id);
    auto state = ParseExperimentState(s.TextView(0));
    if (!state) return Corrupt("{}: experiment {} has unknown state '{}'", path, id, s.TextView(0));
    return *state;
  }

  // Validates and inserts units of one experiment; `models` maps model name to id, `num_problems`
  // bounds the problem indices. Must run inside a transaction.
  Result<std::vector<Id>> InsertUnits(Id experiment_id, const std::vector<Unit>& units,
                                      const std::unordered_map<std::string, Id>& models,
                                      int64_t num_problems) {
    std::vector<Id> ids;
    ids.reserve(units.size());
    for (size_t i = 0; i < units.size(); ++i) {
      const Unit& u = units[i];
      auto where = [&] { return fmt::format("experiment {}: unit #{}", experiment_id, i); };
      auto model = models.find(u.model_name);
      if (model == models.end())
        return InvalidArgument("{}: unknown model '{}'", where(), u.model_name);
      Id target = 0;
      if (u.kind == UnitKind::kScore) {
        auto t = models.find(u.target_model_name);
        if (t == models.end()) {
          return InvalidArgument("{}: score unit with unknown target model '{}'", where(),
                                 u.target_model_name);
        }
        target = t->second;
      } else if (!u.target_model_name.empty()) {
        return InvalidArgument("{}: a generate unit has no target model", where());
      }
      if (u.problem_indices.empty()) return InvalidArgument("{}: no problem indices", where());
      for (int p : u.problem_indices) {
        if (p < 0 || p >= num_problems) {
          return InvalidArgument("{}: problem index {} outside [0, {})", where(), p, num_problems);
        }
      }
      if (std::set<int>(u.problem_indices.begin(), u.problem_indices.end()).size() !=
          u.problem_indices.size()) {
        return InvalidArgument("{}: repeated problem index", where());
      }
      if (u.sample_begin < 0 || u.sample_end < u.sample_begin) {
        return InvalidArgument("{}: bad sample range [{}, {})", where(), u.sample_begin,
                               u.sample_end);
      }
      if (u.max_attempts < 1) return InvalidArgument("{}: max_attempts must be >= 1", where());
      if (!(u.temperature >= 0)) return InvalidArgument("{}: temperature must be >= 0", where());
      TTC_ASSIGN_OR_RETURN(
          Stmt s,
          conn->Prepare("INSERT INTO units (experiment_id, kind, model_id, target_model_id, "
                        "temperature, problems, "
                        "sample_begin, sample_end, seed, order_key, max_attempts, state) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending')"));
      s.Bind(1, experiment_id).Bind(2, Name(u.kind)).Bind(3, model->second);
      if (target != 0) {
        s.Bind(4, target);
      } else {
        s.BindNull(4);
      }
      s.Bind(5, u.temperature)
          .Bind(6, IntListJson(u.problem_indices))
          .Bind(7, u.sample_begin)
          .Bind(8, u.sample_end)
          .Bind(9, SeedToDb(u.seed))
          .Bind(10, u.order_key)
          .Bind(11, u.max_attempts);
      TTC_RETURN_IF_ERROR(s.Run());
      ids.push_back(sqlite3_last_insert_rowid(conn->db()));
    }
    return ids;
  }

  template <typename F>
  auto InWrite(F&& f) -> decltype(f()) {
    auto txn = WriteTxn::Begin(conn.get());
    if (!txn.ok()) return txn.status();
    auto result = f();
    if (!result.ok()) return result;
    Status st = (*txn)->Commit();
    if (!st.ok()) return st;
    return result;
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::path() const { return impl_->path; }

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const OpenOptions& options) {
  namespace fs = std::filesystem;
  const int latest = LatestSchemaVersion();
  const int target = options.target_schema_version == 0 ? latest : options.target_schema_version;
  if (target < 1 || target > latest) {
    return InvalidArgument("{}: target schema version {} outside [1, {}]", path, target, latest);
  }
  std::error_code ec;
  bool exists = fs::exists(path, ec);
  if (!exists && (!options.create_if_missing || options.read_only)) {
    return NotFound("{}: no such database file", path);
  }
  if (exists) {
    if (!fs::is_regular_file(path, ec)) return InvalidArgument("{}: not a regular file", path);
    // Check the 16-byte SQLite header ourselves: SQLite would only say "file is not a database" on
    // first use.
    auto size = fs::file_size(path, ec);
    if (ec) return IoError("{}: cannot stat: {}", path, ec.message());
    if (size > 0) {
      std::ifstream in(path, std::ios::binary);
      if (!in) return IoError("{}: cannot read", path);
      char header[16] = {};
      in.read(header, sizeof header);
      static constexpr char kMagic[16] = "SQLite format 3";  // with its terminating NUL: 16 bytes
      if (in.gcount() < 16 || std::memcmp(header, kMagic, 16) != 0) {
        return Corrupt(
            "{}: not an SQLite database (the file does not start with the SQLite header)", path);
      }
      if (size < 512) return Corrupt("{}: truncated SQLite database ({} bytes)", path, size);
    }
  }

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  int flags =
      options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  TTC_ASSIGN_OR_RETURN(impl->conn, Connection::Open(path, flags));
  Connection* c = impl->conn.get();
  // busy_timeout first: switching to WAL below needs a lock another process may hold.
  sqlite3_busy_timeout(c->db(), options.busy_timeout_ms);

  // What is in the file: our schema, nothing, or someone else's tables. This is the first read, so
  // a damaged file shows here: say so in words rather than with the SQL that failed.
  std::vector<std::string> tables;
  Status listed = [&]() -> Status {
    TTC_ASSIGN_OR_RETURN(
        Stmt s, c->Prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND "
                           "name NOT LIKE 'sqlite_%' ORDER BY name"));
    while (true) {
      TTC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::Ok();
      tables.push_back(s.Text(0));
    }
  }();
  if (!listed.ok()) {
    if (listed.code() != StatusCode::kCorrupt) return listed;
    return Corrupt("{}: damaged SQLite database: its table list cannot be read ({})", path,
                   sqlite3_errmsg(c->db()));
  }
  int64_t app_id = 0;
  {
    TTC_ASSIGN_OR_RETURN(Stmt s, c->Prepare("PRAGMA application_id"));
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) app_id = s.Int(0);
  }
  bool has_version_table =
      std::find(tables.begin(), tables.end(), "schema_version") != tables.end();
  if ((app_id != 0 && app_id != internal::kApplicationId) ||
      (!tables.empty() && !has_version_table)) {
    std::string list;
    for (size_t i = 0; i < tables.size() && i < 8; ++i) list += (i ? ", " : "") + tables[i];
    if (tables.size() > 8) list += ", ...";
    return Corrupt(
        "{}: an SQLite database of another application (application_id {}, tables: {}), not a ttc "
        "store",
        path, app_id, list.empty() ? "none" : list);
  }
  int version = 0;
  if (has_version_table) {
    TTC_ASSIGN_OR_RETURN(version, impl->ReadSchemaVersion());
  }
  if (version > latest) {
    return FailedPrecondition(
        "{}: schema version {} is newer than this ttc understands (up to {}); use a newer ttc",
        path, version, latest);
  }

  if (!options.read_only) {
    // Switching a fresh file to WAL needs an exclusive lock, and SQLite can answer SQLITE_BUSY here
    // at once, without its busy handler, while another process is creating the same file (seen in
    // StoreProcesses.ConcurrentFirstOpensCreateTheSchemaOnce): retry within the busy timeout.
    auto wal = impl->PragmaText("PRAGMA journal_mode = WAL");
    for (auto start = std::chrono::steady_clock::now();
         !wal.ok() && wal.status().code() == StatusCode::kUnavailable &&
         std::chrono::steady_clock::now() - start <
             std::chrono::milliseconds(options.busy_timeout_ms);) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      wal = impl->PragmaText("PRAGMA journal_mode = WAL");
    }
    TTC_ASSIGN_OR_RETURN(std::string mode, std::move(wal));
    if (mode != "wal")
      return IoError("{}: cannot switch to WAL journal mode (got '{}')", path, mode);
    TTC_RETURN_IF_ERROR(c->Exec("PRAGMA synchronous = NORMAL"));
  } else {
    TTC_RETURN_IF_ERROR(c->Exec("PRAGMA query_only = ON"));
  }
  TTC_RETURN_IF_ERROR(c->Exec("PRAGMA foreign_keys = ON"));
  // A 64 MiB page cache (allocated only as used) keeps the indexes of a large experiment in memory.
  TTC_RETURN_IF_ERROR(c->Exec("PRAGMA cache_size = -65536"));

  impl->schema_version = version;
  if (version < target && !(options.allow_old_schema && version > 0)) {
    if (options.read_only || !options.migrate) {
      if (version == 0) return FailedPrecondition("{}: empty database, not a ttc store yet", path);
      return FailedPrecondition(
          "{}: schema version {} is older than {}; run `ttc db migrate --db {}`", path, version,
          target, path);
    }
    TTC_RETURN_IF_ERROR(impl->Migrate(target));
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<int> Store::SchemaVersion() { return impl_->ReadSchemaVersion(); }

Result<CheckReport> Store::Check() {
  CheckReport r;
  r.latest_schema_version = LatestSchemaVersion();
  TTC_ASSIGN_OR_RETURN(r.schema_version, impl_->ReadSchemaVersion());
  TTC_ASSIGN_OR_RETURN(r.journal_mode, impl_->PragmaText("PRAGMA journal_mode"));
  {
    TTC_ASSIGN_OR_RETURN(Stmt s, impl_->conn->Prepare("PRAGMA integrity_check"));
    std::string lines;
    while (true) {
      TTC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      if (!lines.empty()) lines += '\n';
      lines += s.Text(0);
    }
    r.integrity = lines;
  }
  if (r.schema_version >= 1) {
    auto count = [&](const char* sql) -> Result<int64_t> {
      TTC_ASSIGN_OR_RETURN(Stmt s, impl_->conn->Prepare(sql));
      TTC_ASSIGN_OR_RETURN(bool row, s.Step());
      return row ? s.Int(0) : 0;
    };
    TTC_ASSIGN_OR_RETURN(r.experiments, count("SELECT COUNT(*) FROM experiments"));
    TTC_ASSIGN_OR_RETURN(r.units, count("SELECT COUNT(*) FROM units"));
    TTC_ASSIGN_OR_RETURN(r.samples, count("SELECT COUNT(*) FROM samples"));
    TTC_ASSIGN_OR_RETURN(r.workers, count("SELECT COUNT(*) FROM workers"));
  }
  return r;
}

Status Store::RunInTransaction(const std::function<Status()>& fn) {
  TTC_ASSIGN_OR_RETURN(auto txn, WriteTxn::Begin(impl_->conn.get()));
  TTC_RETURN_IF_ERROR(fn());
  return txn->Commit();
}

// ---- Experiments, models, problems
// ------------------------------------------------------------------------------

Result<CreatedExperiment> Store::CreateExperiment(const NewExperiment& spec) {
  const Experiment& e = spec.experiment;
  if (!e.grid_spec_json.empty() && !nlohmann::json::accept(e.grid_spec_json)) {
    return InvalidArgument("experiment '{}': the grid spec is not valid JSON", e.name);
  }
  std::set<std::string> names;
  for (size_t i = 0; i < spec.models.size(); ++i) {
    const std::string& n = spec.models[i].name;
    if (n.empty()) return InvalidArgument("experiment '{}': model #{} has no name", e.name, i);
    if (!names.insert(n).second)
      return InvalidArgument("experiment '{}': model '{}' listed twice", e.name, n);
  }
  for (size_t i = 0; i < spec.problems.size(); ++i) {
    if (spec.problems[i].index != static_cast<int>(i)) {
      return InvalidArgument(
          "experiment '{}': problem #{} has index {} (indices must be 0..n-1 in order)", e.name, i,
          spec.problems[i].index);
    }
  }
  return impl_->InWrite([&]() -> Result<CreatedExperiment> {
    Connection* c = impl_->conn.get();
    CreatedExperiment out;
    {
      TTC_ASSIGN_OR_RETURN(
          Stmt s, c->Prepare("INSERT INTO experiments (name, grid_spec, dataset_fingerprint, seed, "
                             "state, created_at) VALUES (?1, ?2, ?3, ?4, 'active', ?5)"));
      TTC_RETURN_IF_ERROR(s.Bind(1, e.name)
                              .Bind(2, e.grid_spec_json)
                              .Bind(3, e.dataset_fingerprint)
                              .Bind(4, SeedToDb(e.seed))
                              .Bind(5, e.created_at != 0 ? e.created_at : UnixSeconds())
                              .Run());
      out.experiment_id = sqlite3_last_insert_rowid(c->db());
    }
    std::unordered_map<std::string, Id> model_ids;
    for (const Model& m : spec.models) {
      TTC_ASSIGN_OR_RETURN(
          Stmt s, c->Prepare("INSERT INTO models (experiment_id, name, path, options) VALUES "
                             "(?1, ?2, ?3, ?4)"));
      TTC_RETURN_IF_ERROR(s.Bind(1, out.experiment_id)
                              .Bind(2, m.name)
                              .Bind(3, m.path)
                              .Bind(4, m.options_json)
                              .Run());
      Id id = sqlite3_last_insert_rowid(c->db());
      out.model_ids.push_back(id);
      model_ids[m.name] = id;
    }
    for (const Problem& p : spec.problems) {
      TTC_ASSIGN_OR_RETURN(
          Stmt s, c->Prepare("INSERT INTO problems (experiment_id, idx, external_id, question, "
                             "gold_answer, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
      TTC_RETURN_IF_ERROR(s.Bind(1, out.experiment_id)
                              .Bind(2, p.index)
                              .Bind(3, p.external_id)
                              .Bind(4, p.question)
                              .Bind(5, p.gold_answer)
                              .Bind(6, p.extra_json)
                              .Run());
    }
    TTC_ASSIGN_OR_RETURN(out.unit_ids,
                         impl_->InsertUnits(out.experiment_id, spec.units, model_ids,
                                            static_cast<int64_t>(spec.problems.size())));
    return out;
  });
}

Result<Experiment> Store::GetExperiment(Id id) {
  TTC_ASSIGN_OR_RETURN(
      Stmt s, impl_->conn->Prepare("SELECT id, name, grid_spec, dataset_fingerprint, seed, state, "
                                   "created_at FROM experiments WHERE id = ?1"));
  s.Bind(1, id);
  TTC_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("{}: experiment {} does not exist", impl_->path, id);
  return ReadExperiment(s);
}

Result<std::vector<Experiment>> Store::ListExperiments() {
  TTC_ASSIGN_OR_RETURN(
      Stmt s, impl_->conn->Prepare("SELECT id, name, grid_spec, dataset_fingerprint, seed, state, "
                                   "created_at FROM experiments ORDER BY id"));
  std::vector<Experiment> out;
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    TTC_ASSIGN_OR_RETURN(Experiment e, ReadExperiment(s));
    out.push_back(std::move(e));
  }
  return out;
}

Status Store::SetExperimentState(Id id, ExperimentState state) {
  TTC_ASSIGN_OR_RETURN(Stmt s,
                       impl_->conn->Prepare("UPDATE experiments SET state = ?2 WHERE id = ?1"));
  TTC_RETURN_IF_ERROR(s.Bind(1, id).Bind(2, Name(state)).Run());
  return impl_->Changes("experiment", id);
}

Result<int64_t> Store::CancelExperiment(Id id) {
  return impl_->InWrite([&]() -> Result<int64_t> {
    TTC_ASSIGN_OR_RETURN(ExperimentState state, impl_->LoadExperimentState(id));
    if (state == ExperimentState::kCancelled) return int64_t{0};
    if (state == ExperimentState::kDone) {
      return FailedPrecondition("{}: experiment {} is already done; nothing to cancel", impl_->path,
                                id);
    }
    {
      TTC_ASSIGN_OR_RETURN(
          Stmt s, impl_->conn->Prepare("UPDATE experiments SET state = 'cancelled' WHERE id = ?1"));
      TTC_RETURN_IF_ERROR(s.Bind(1, id).Run());
    }
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("UPDATE units SET state = 'cancelled' WHERE experiment_id = "
                                     "?1 AND state IN ('pending', 'leased')"));
    TTC_RETURN_IF_ERROR(s.Bind(1, id).Run());
    return static_cast<int64_t>(sqlite3_changes64(impl_->conn->db()));
  });
}

Result<bool> Store::FinishExperimentIfComplete(Id id) {
  return impl_->InWrite([&]() -> Result<bool> {
    TTC_ASSIGN_OR_RETURN(ExperimentState state, impl_->LoadExperimentState(id));
    if (state != ExperimentState::kActive) return false;
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("SELECT COUNT(*) FROM units WHERE experiment_id = ?1 AND "
                                     "state IN ('pending', 'leased')"));
    s.Bind(1, id);
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row && s.Int(0) > 0) return false;
    TTC_ASSIGN_OR_RETURN(
        Stmt u, impl_->conn->Prepare("UPDATE experiments SET state = 'done' WHERE id = ?1"));
    TTC_RETURN_IF_ERROR(u.Bind(1, id).Run());
    return true;
  });
}

Result<std::vector<Model>> Store::ListModels(Id experiment_id) {
  TTC_ASSIGN_OR_RETURN(
      Stmt s, impl_->conn->Prepare("SELECT id, experiment_id, name, path, options FROM models "
                                   "WHERE experiment_id = ?1 ORDER BY id"));
  s.Bind(1, experiment_id);
  std::vector<Model> out;
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(Model{s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4)});
  }
  return out;
}

Result<std::vector<Problem>> Store::ListProblems(Id experiment_id) {
  TTC_ASSIGN_OR_RETURN(
      Stmt s, impl_->conn->Prepare("SELECT experiment_id, idx, external_id, question, gold_answer, "
                                   "extra FROM problems WHERE experiment_id = ?1 ORDER BY idx"));
  s.Bind(1, experiment_id);
  std::vector<Problem> out;
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(
        Problem{s.Int(0), static_cast<int>(s.Int(1)), s.Text(2), s.Text(3), s.Text(4), s.Text(5)});
  }
  return out;
}

Result<Problem> Store::GetProblem(Id experiment_id, int index) {
  TTC_ASSIGN_OR_RETURN(
      Stmt s, impl_->conn->Prepare("SELECT experiment_id, idx, external_id, question, gold_answer, "
                                   "extra FROM problems WHERE experiment_id = ?1 AND idx = ?2"));
  s.Bind(1, experiment_id).Bind(2, index);
  TTC_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row)
    return NotFound("{}: experiment {} has no problem {}", impl_->path, experiment_id, index);
  return Problem{s.Int(0), static_cast<int>(s.Int(1)), s.Text(2), s.Text(3), s.Text(4), s.Text(5)};
}

// ---- Units and leases
// -------------------------------------------------------------------------------------------

Result<std::vector<Id>> Store::AddUnits(Id experiment_id, const std::vector<Unit>& units) {
  return impl_->InWrite([&]() -> Result<std::vector<Id>> {
    TTC_ASSIGN_OR_RETURN(ExperimentState state, impl_->LoadExperimentState(experiment_id));
    if (state != ExperimentState::kActive) {
      return FailedPrecondition("{}: experiment {} is {}; cannot add units", impl_->path,
                                experiment_id, Name(state));
    }
    TTC_ASSIGN_OR_RETURN(std::vector<Model> models, ListModels(experiment_id));
    std::unordered_map<std::string, Id> ids;
    for (const Model& m : models) ids[m.name] = m.id;
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("SELECT COUNT(*) FROM problems WHERE experiment_id = ?1"));
    s.Bind(1, experiment_id);
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    int64_t num_problems = row ? s.Int(0) : 0;
    return impl_->InsertUnits(experiment_id, units, ids, num_problems);
  });
}

Result<Unit> Store::GetUnit(Id id) { return impl_->GetUnit(id); }

Result<std::vector<Unit>> Store::ListUnits(const UnitQuery& query) {
  TTC_ASSIGN_OR_RETURN(
      Stmt s, impl_->conn->Prepare(TTC_UNIT_SELECT
                                   "WHERE (?1 = 0 OR u.experiment_id = ?1) AND (?2 IS NULL OR "
                                   "u.state = ?2) AND (?3 IS NULL OR u.kind = ?3) "
                                   "ORDER BY u.order_key, u.id"));
  s.Bind(1, query.experiment_id);
  if (query.state) {
    s.Bind(2, Name(*query.state));
  } else {
    s.BindNull(2);
  }
  if (query.kind) {
    s.Bind(3, Name(*query.kind));
  } else {
    s.BindNull(3);
  }
  return impl_->QueryUnits(s);
}

Result<std::optional<Unit>> Store::ClaimUnit(const ClaimOptions& options) {
  if (options.worker_id.empty()) return InvalidArgument("ClaimUnit: empty worker id");
  if (options.kinds.empty()) return InvalidArgument("ClaimUnit: no unit kinds");
  const std::string kinds = KindsJson(options.kinds);
  const std::string allowed = StringListJson(options.allowed_models);
  return impl_->InWrite([&]() -> Result<std::optional<Unit>> {
    Connection* c = impl_->conn.get();
    Id chosen = 0;
    // Affinity first: a unit of a model the worker already holds, in its order of preference.
    for (const std::string& model : options.preferred_models) {
      if (!options.allowed_models.empty() &&
          std::find(options.allowed_models.begin(), options.allowed_models.end(), model) ==
              options.allowed_models.end()) {
        continue;
      }
      TTC_ASSIGN_OR_RETURN(
          Stmt s,
          c->Prepare("SELECT u.id FROM models m JOIN experiments e ON e.id = m.experiment_id "
                     "JOIN units u ON u.model_id = m.id AND u.state = 'pending' "
                     "WHERE m.name = ?1 AND e.state = 'active' AND (?2 = 0 OR e.id = ?2) "
                     "AND u.kind IN (SELECT value FROM json_each(?3)) "
                     "ORDER BY u.order_key, u.id LIMIT 1"));
      s.Bind(1, model).Bind(2, options.experiment_id).Bind(3, kinds);
      TTC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) {
        chosen = s.Int(0);
        break;
      }
    }
    if (chosen == 0) {
      TTC_ASSIGN_OR_RETURN(
          Stmt s, c->Prepare("SELECT u.id FROM units u JOIN models m ON m.id = u.model_id "
                             "JOIN experiments e ON e.id = u.experiment_id "
                             "WHERE u.state = 'pending' AND e.state = 'active' AND (?1 = 0 OR "
                             "u.experiment_id = ?1) "
                             "AND u.kind IN (SELECT value FROM json_each(?2)) "
                             "AND (?3 = '[]' OR m.name IN (SELECT value FROM json_each(?3))) "
                             "ORDER BY u.order_key, u.id LIMIT 1"));
      s.Bind(1, options.experiment_id).Bind(2, kinds).Bind(3, allowed);
      TTC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) chosen = s.Int(0);
    }
    if (chosen == 0) return std::optional<Unit>();
    {
      TTC_ASSIGN_OR_RETURN(
          Stmt s,
          c->Prepare("UPDATE units SET state = 'leased', worker_id = ?2, attempt = attempt "
                     "+ 1, lease_expires_at = ?3, progress_tokens = 0, progress_samples = 0, "
                     "progress_at = ?4 WHERE id = ?1 AND state = 'pending'"));
      TTC_RETURN_IF_ERROR(s.Bind(1, chosen)
                              .Bind(2, options.worker_id)
                              .Bind(3, options.now + options.lease_seconds)
                              .Bind(4, options.now)
                              .Run());
    }
    TTC_ASSIGN_OR_RETURN(Unit u, impl_->GetUnit(chosen));
    return std::optional<Unit>(std::move(u));
  });
}

Status Store::RenewLease(Id unit_id, const std::string& worker_id, int attempt,
                         double lease_expires_at) {
  return impl_->InWrite([&]() -> Status {
    TTC_ASSIGN_OR_RETURN(LeaseRow r, impl_->LoadLease(unit_id));
    TTC_RETURN_IF_ERROR(impl_->CheckFence(unit_id, r, worker_id, attempt));
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("UPDATE units SET lease_expires_at = ?2 WHERE id = ?1"));
    return s.Bind(1, unit_id).Bind(2, lease_expires_at).Run();
  });
}

Status Store::RecordProgress(Id unit_id, const std::string& worker_id, int attempt, int64_t tokens,
                             int samples, double at, std::optional<double> lease_expires_at) {
  return impl_->InWrite([&]() -> Status {
    TTC_ASSIGN_OR_RETURN(LeaseRow r, impl_->LoadLease(unit_id));
    TTC_RETURN_IF_ERROR(impl_->CheckFence(unit_id, r, worker_id, attempt));
    TTC_ASSIGN_OR_RETURN(
        Stmt s,
        impl_->conn->Prepare("UPDATE units SET progress_tokens = ?2, progress_samples = ?3, "
                             "progress_at = ?4, lease_expires_at = COALESCE(?5, "
                             "lease_expires_at) WHERE id = ?1"));
    s.Bind(1, unit_id).Bind(2, tokens).Bind(3, samples).Bind(4, at);
    if (lease_expires_at) {
      s.Bind(5, *lease_expires_at);
    } else {
      s.BindNull(5);
    }
    return s.Run();
  });
}

Status Store::CompleteUnit(Id unit_id, const std::string& worker_id, int attempt) {
  return impl_->InWrite([&]() -> Status {
    TTC_ASSIGN_OR_RETURN(LeaseRow r, impl_->LoadLease(unit_id));
    TTC_RETURN_IF_ERROR(impl_->CheckFence(unit_id, r, worker_id, attempt));
    if (r.kind == UnitKind::kGenerate) {
      TTC_ASSIGN_OR_RETURN(std::vector<SampleKey> missing, MissingSamples(unit_id));
      if (!missing.empty()) {
        return FailedPrecondition(
            "unit {} cannot complete: {} samples are missing (first: problem {} sample {})",
            unit_id, missing.size(), missing[0].problem_index, missing[0].sample_index);
      }
    } else {
      TTC_ASSIGN_OR_RETURN(std::vector<Id> missing, SamplesMissingScores(unit_id));
      if (!missing.empty()) {
        return FailedPrecondition(
            "score unit {} cannot complete: {} samples have no step scores (first: sample {})",
            unit_id, missing.size(), missing[0]);
      }
    }
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("UPDATE units SET state = 'done', lease_expires_at = 0 "
                                     "WHERE id = ?1"));
    return s.Bind(1, unit_id).Run();
  });
}

Result<UnitState> Store::FailUnit(Id unit_id, const std::string& worker_id, int attempt,
                                  const std::string& error) {
  return impl_->InWrite([&]() -> Result<UnitState> {
    TTC_ASSIGN_OR_RETURN(LeaseRow r, impl_->LoadLease(unit_id));
    TTC_RETURN_IF_ERROR(impl_->CheckFence(unit_id, r, worker_id, attempt));
    UnitState next =
        r.attempts_used + 1 >= r.max_attempts ? UnitState::kFailed : UnitState::kPending;
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("UPDATE units SET state = ?2, attempts_used = attempts_used + "
                                     "1, last_error = ?3, lease_expires_at = 0 WHERE id = ?1"));
    TTC_RETURN_IF_ERROR(s.Bind(1, unit_id).Bind(2, Name(next)).Bind(3, error).Run());
    return next;
  });
}

Status Store::ReleaseUnit(Id unit_id, const std::string& worker_id, int attempt) {
  return impl_->InWrite([&]() -> Status {
    TTC_ASSIGN_OR_RETURN(LeaseRow r, impl_->LoadLease(unit_id));
    TTC_RETURN_IF_ERROR(impl_->CheckFence(unit_id, r, worker_id, attempt));
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("UPDATE units SET state = 'pending', lease_expires_at = 0 "
                                     "WHERE id = ?1"));
    return s.Bind(1, unit_id).Run();
  });
}

Result<std::vector<ExpiredLease>> Store::ExpireLeases(double now) {
  return impl_->InWrite([&]() -> Result<std::vector<ExpiredLease>> {
    std::vector<ExpiredLease> out;
    std::vector<std::pair<int, int>> counts;  // attempts_used, max_attempts
    std::vector<double> expiries;
    {
      TTC_ASSIGN_OR_RETURN(
          Stmt s,
          impl_->conn->Prepare("SELECT id, worker_id, attempt, attempts_used, max_attempts, "
                               "lease_expires_at FROM units WHERE state = 'leased' AND "
                               "lease_expires_at <= ?1 ORDER BY id"));
      s.Bind(1, now);
      while (true) {
        TTC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        out.push_back(
            ExpiredLease{s.Int(0), s.Text(1), static_cast<int>(s.Int(2)), UnitState::kPending});
        counts.emplace_back(static_cast<int>(s.Int(3)), static_cast<int>(s.Int(4)));
        expiries.push_back(s.Double(5));
      }
    }
    for (size_t i = 0; i < out.size(); ++i) {
      ExpiredLease& e = out[i];
      e.new_state =
          counts[i].first + 1 >= counts[i].second ? UnitState::kFailed : UnitState::kPending;
      std::string error = fmt::format("lease of worker '{}' (attempt {}) expired at {:.3f}",
                                      e.worker_id, e.attempt, expiries[i]);
      TTC_ASSIGN_OR_RETURN(
          Stmt s, impl_->conn->Prepare("UPDATE units SET state = ?2, attempts_used = attempts_used "
                                       "+ 1, last_error = ?3, lease_expires_at = 0 WHERE id = ?1"));
      TTC_RETURN_IF_ERROR(s.Bind(1, e.unit_id).Bind(2, Name(e.new_state)).Bind(3, error).Run());
    }
    return out;
  });
}

Result<int64_t> Store::ReleaseAllLeases() {
  return impl_->InWrite([&]() -> Result<int64_t> {
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("UPDATE units SET state = 'pending', lease_expires_at = 0 "
                                     "WHERE state = 'leased'"));
    TTC_RETURN_IF_ERROR(s.Run());
    return static_cast<int64_t>(sqlite3_changes64(impl_->conn->db()));
  });
}

Result<std::vector<SampleKey>> Store::MissingSamples(Id unit_id) {
  TTC_ASSIGN_OR_RETURN(Unit u, impl_->GetUnit(unit_id));
  std::set<std::pair<int, int>> have;
  {
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("SELECT problem_idx, sample_idx FROM samples WHERE unit_id = "
                                     "?1"));
    s.Bind(1, unit_id);
    while (true) {
      TTC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      have.emplace(static_cast<int>(s.Int(0)), static_cast<int>(s.Int(1)));
    }
  }
  std::vector<SampleKey> missing;
  for (int p : u.problem_indices) {
    for (int i = u.sample_begin; i < u.sample_end; ++i) {
      if (!have.count({p, i})) missing.push_back(SampleKey{p, i});
    }
  }
  return missing;
}

// ---- Samples and step scores
// ------------------------------------------------------------------------------------

namespace {

// What InsertSamples needs of a unit, loaded once per batch.
struct UnitForInsert {
  Unit unit;
  std::set<int> problems;
  // What this batch adds to the unit's counters.
  int64_t stored = 0;
  int64_t tokens = 0;
  double decode_s = 0;
  int64_t graded = 0;
  int64_t correct = 0;
};

}  // namespace

Result<std::vector<SampleInsertResult>> Store::InsertSamples(const std::vector<Sample>& samples) {
  return impl_->InWrite([&]() -> Result<std::vector<SampleInsertResult>> {
    Connection* c = impl_->conn.get();
    std::unordered_map<Id, UnitForInsert> units;
    std::vector<SampleInsertResult> out;
    out.reserve(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      const Sample& x = samples[i];
      auto it = units.find(x.unit_id);
      if (it == units.end()) {
        auto u = impl_->GetUnit(x.unit_id);
        if (!u.ok()) {
          if (u.status().code() == StatusCode::kNotFound) {
            return InvalidArgument("{}: sample #{} names unit {}, which does not exist",
                                   impl_->path, i, x.unit_id);
          }
          return u.status();
        }
        UnitForInsert entry;
        entry.problems.insert(u->problem_indices.begin(), u->problem_indices.end());
        entry.unit = std::move(u).value();
        it = units.emplace(x.unit_id, std::move(entry)).first;
      }
      UnitForInsert& entry = it->second;
      const Unit& u = entry.unit;
      if (u.kind != UnitKind::kGenerate) {
        return InvalidArgument("sample #{}: unit {} is a score unit, it produces no samples", i,
                               u.id);
      }
      if (!entry.problems.count(x.problem_index)) {
        return InvalidArgument("sample #{}: problem {} is not one of unit {}'s problems", i,
                               x.problem_index, u.id);
      }
      if (x.sample_index < u.sample_begin || x.sample_index >= u.sample_end) {
        return InvalidArgument("sample #{}: sample index {} outside unit {}'s range [{}, {})", i,
                               x.sample_index, u.id, u.sample_begin, u.sample_end);
      }
      if (u.state != UnitState::kLeased || u.attempt != x.attempt) {
        out.push_back(SampleInsertResult{InsertOutcome::kStale, 0});
        continue;
      }
      {
        TTC_ASSIGN_OR_RETURN(
            Stmt s,
            c->Prepare(
                "INSERT INTO samples (experiment_id, unit_id, model_id, temperature, problem_idx, "
                "sample_idx, attempt, num_tokens, steps, prefill_s, decode_s, correct, "
                "finish_reason, "
                "extracted_answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                "?14) ON CONFLICT (unit_id, problem_idx, sample_idx) DO NOTHING RETURNING id"));
        s.Bind(1, u.experiment_id)
            .Bind(2, u.id)
            .Bind(3, u.model_id)
            .Bind(4, u.temperature)
            .Bind(5, x.problem_index)
            .Bind(6, x.sample_index)
            .Bind(7, x.attempt)
            .Bind(8, x.num_tokens)
            .Bind(9, x.steps)
            .Bind(10, x.prefill_s)
            .Bind(11, x.decode_s)
            .Bind(12, x.correct)
            .Bind(13, x.finish_reason)
            .Bind(14, x.extracted_answer);
        TTC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (row) {
          Id id = s.Int(0);
          s.Reset();
          TTC_ASSIGN_OR_RETURN(
              Stmt t,
              c->Prepare("INSERT INTO sample_texts (sample_id, extra, text) VALUES (?1, ?2, "
                         "?3)"));
          TTC_RETURN_IF_ERROR(t.Bind(1, id).Bind(2, x.extra_json).Bind(3, x.text).Run());
          out.push_back(SampleInsertResult{InsertOutcome::kInserted, id});
          entry.stored += 1;
          entry.tokens += x.num_tokens;
          entry.decode_s += x.decode_s;
          entry.graded += x.correct.has_value();
          entry.correct += x.correct.value_or(false);
          continue;
        }
      }
      TTC_ASSIGN_OR_RETURN(
          Stmt q, c->Prepare("SELECT id FROM samples WHERE unit_id = ?1 AND problem_idx = ?2 AND "
                             "sample_idx = ?3"));
      q.Bind(1, u.id).Bind(2, x.problem_index).Bind(3, x.sample_index);
      TTC_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return Internal("sample conflict without a stored row (unit {})", u.id);
      out.push_back(SampleInsertResult{InsertOutcome::kDuplicate, q.Int(0)});
    }
    for (const auto& [id, entry] : units) {
      if (entry.stored == 0) continue;
      TTC_ASSIGN_OR_RETURN(
          Stmt s,
          c->Prepare("UPDATE units SET samples_stored = samples_stored + ?2, tokens_stored = "
                     "tokens_stored + ?3, decode_s_stored = decode_s_stored + ?4, "
                     "samples_graded = samples_graded + ?5, samples_correct = "
                     "samples_correct + ?6 WHERE id = ?1"));
      TTC_RETURN_IF_ERROR(s.Bind(1, id)
                              .Bind(2, entry.stored)
                              .Bind(3, entry.tokens)
                              .Bind(4, entry.decode_s)
                              .Bind(5, entry.graded)
                              .Bind(6, entry.correct)
                              .Run());
    }
    return out;
  });
}

Result<SampleInsertResult> Store::InsertSample(const Sample& sample) {
  TTC_ASSIGN_OR_RETURN(std::vector<SampleInsertResult> r, InsertSamples({sample}));
  return r.at(0);
}

Status Store::UpdateGrades(const std::vector<SampleGrade>& grades) {
  return impl_->InWrite([&]() -> Status {
    Connection* c = impl_->conn.get();
    std::unordered_map<Id, std::pair<int64_t, int64_t>> delta;  // unit -> (graded, correct) changes
    for (const SampleGrade& g : grades) {
      Id unit = 0;
      std::optional<bool> old;
      {
        TTC_ASSIGN_OR_RETURN(Stmt q,
                             c->Prepare("SELECT unit_id, correct FROM samples WHERE id = ?1"));
        q.Bind(1, g.sample_id);
        TTC_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) return NotFound("{}: sample {} does not exist", impl_->path, g.sample_id);
        unit = q.Int(0);
        old = q.OptionalBool(1);
      }
      TTC_ASSIGN_OR_RETURN(
          Stmt s,
          c->Prepare("UPDATE samples SET extracted_answer = ?2, correct = ?3 WHERE id = ?1"));
      TTC_RETURN_IF_ERROR(
          s.Bind(1, g.sample_id).Bind(2, g.extracted_answer).Bind(3, g.correct).Run());
      auto& d = delta[unit];
      d.first +=
          static_cast<int64_t>(g.correct.has_value()) - static_cast<int64_t>(old.has_value());
      d.second += static_cast<int64_t>(g.correct.value_or(false)) -
                  static_cast<int64_t>(old.value_or(false));
    }
    for (const auto& [unit, d] : delta) {
      if (d.first == 0 && d.second == 0) continue;
      TTC_ASSIGN_OR_RETURN(Stmt s,
                           c->Prepare("UPDATE units SET samples_graded = samples_graded + ?2, "
                                      "samples_correct = samples_correct + ?3 WHERE id = ?1"));
      TTC_RETURN_IF_ERROR(s.Bind(1, unit).Bind(2, d.first).Bind(3, d.second).Run());
    }
    return Status::Ok();
  });
}

Result<Sample> Store::GetSample(Id sample_id, bool include_text) {
  TTC_ASSIGN_OR_RETURN(Stmt s, impl_->conn->Prepare(TTC_SAMPLE_WITH_TEXT "WHERE s.id = ?1"));
  s.Bind(1, sample_id).Bind(8, include_text ? 1 : 0).Bind(9, include_text ? 1 : 0);
  TTC_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("{}: sample {} does not exist", impl_->path, sample_id);
  Sample x;
  ReadSample(s, &x);
  return x;
}

Status Store::ForEachSample(const SampleQuery& query,
                            const std::function<Status(const Sample&)>& fn) {
  // A query for one model seeks the (experiment, model, ...) index instead of filtering; text comes
  // from a join only when asked for.
#define TTC_SAMPLE_WHERE_ALL                                                          \
  "WHERE s.experiment_id = ?1 AND ?2 IS NULL AND (?3 IS NULL OR s.temperature = ?3) " \
  "AND (?4 IS NULL OR s.problem_idx = ?4) "                                           \
  "ORDER BY s.experiment_id, s.model_id, s.temperature, s.problem_idx, s.sample_idx"
#define TTC_SAMPLE_WHERE_MODEL                                                             \
  "WHERE s.experiment_id = ?1 AND s.model_id = ?2 AND (?3 IS NULL OR s.temperature = ?3) " \
  "AND (?4 IS NULL OR s.problem_idx = ?4) "                                                \
  "ORDER BY s.experiment_id, s.model_id, s.temperature, s.problem_idx, s.sample_idx"
  const bool with_text = query.include_text || query.include_extra;
  const char* sql = with_text ? (query.model_id ? TTC_SAMPLE_WITH_TEXT TTC_SAMPLE_WHERE_MODEL
                                                : TTC_SAMPLE_WITH_TEXT TTC_SAMPLE_WHERE_ALL)
                              : (query.model_id ? TTC_SAMPLE_NO_TEXT TTC_SAMPLE_WHERE_MODEL
                                                : TTC_SAMPLE_NO_TEXT TTC_SAMPLE_WHERE_ALL);
  TTC_ASSIGN_OR_RETURN(Stmt s, impl_->conn->Prepare(sql));
  s.Bind(1, query.experiment_id);
  if (query.model_id) {
    s.Bind(2, *query.model_id);
  } else {
    s.BindNull(2);
  }
  if (query.temperature) {
    s.Bind(3, *query.temperature);
  } else {
    s.BindNull(3);
  }
  if (query.problem_index) {
    s.Bind(4, *query.problem_index);
  } else {
    s.BindNull(4);
  }
  if (with_text) s.Bind(8, query.include_extra ? 1 : 0).Bind(9, query.include_text ? 1 : 0);
  Sample x;
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::Ok();
    ReadSample(s, &x);
    TTC_RETURN_IF_ERROR(fn(x));
  }
}

Result<std::vector<Sample>> Store::ListSamples(const SampleQuery& query) {
  std::vector<Sample> out;
  TTC_RETURN_IF_ERROR(ForEachSample(query, [&](const Sample& x) {
    out.push_back(x);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<InsertOutcome>> Store::InsertStepScores(
    Id unit_id, int attempt, const std::vector<SampleStepScores>& scores) {
  return impl_->InWrite([&]() -> Result<std::vector<InsertOutcome>> {
    Connection* c = impl_->conn.get();
    TTC_ASSIGN_OR_RETURN(Unit u, impl_->GetUnit(unit_id));
    if (u.kind != UnitKind::kScore) return InvalidArgument("unit {} is not a score unit", unit_id);
    bool stale = u.state != UnitState::kLeased || u.attempt != attempt;
    std::vector<InsertOutcome> out;
    out.reserve(scores.size());
    for (const SampleStepScores& ss : scores) {
      TTC_ASSIGN_OR_RETURN(
          Stmt q, c->Prepare("SELECT experiment_id, (SELECT COUNT(*) FROM step_scores WHERE "
                             "sample_id = ?1) FROM samples WHERE id = ?1"));
      q.Bind(1, ss.sample_id);
      TTC_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row)
        return InvalidArgument("step scores for sample {}, which does not exist", ss.sample_id);
      if (q.Int(0) != u.experiment_id) {
        return InvalidArgument("sample {} belongs to experiment {}, not to unit {}'s experiment {}",
                               ss.sample_id, q.Int(0), unit_id, u.experiment_id);
      }
      bool have = q.Int(1) > 0;
      q.Reset();
      if (stale) {
        out.push_back(InsertOutcome::kStale);
        continue;
      }
      if (have) {
        out.push_back(InsertOutcome::kDuplicate);
        continue;
      }
      for (size_t step = 0; step < ss.scores.size(); ++step) {
        TTC_ASSIGN_OR_RETURN(
            Stmt s, c->Prepare("INSERT INTO step_scores (sample_id, step, score) VALUES (?1, ?2, "
                               "?3)"));
        TTC_RETURN_IF_ERROR(s.Bind(1, ss.sample_id)
                                .Bind(2, static_cast<int64_t>(step))
                                .Bind(3, ss.scores[step])
                                .Run());
      }
      out.push_back(InsertOutcome::kInserted);
    }
    return out;
  });
}

Result<std::vector<Id>> Store::SamplesMissingScores(Id unit_id) {
  TTC_ASSIGN_OR_RETURN(Unit u, impl_->GetUnit(unit_id));
  if (u.kind != UnitKind::kScore) return InvalidArgument("unit {} is not a score unit", unit_id);
  std::set<int> problems(u.problem_indices.begin(), u.problem_indices.end());
  TTC_ASSIGN_OR_RETURN(
      Stmt s,
      impl_->conn->Prepare(
          "SELECT x.id, x.problem_idx FROM samples x WHERE x.experiment_id = ?1 AND "
          "x.model_id = ?2 AND x.temperature = ?3 AND x.sample_idx >= ?4 AND x.sample_idx < "
          "?5 AND NOT EXISTS (SELECT 1 FROM step_scores t WHERE t.sample_id = x.id) "
          "ORDER BY x.problem_idx, x.sample_idx"));
  s.Bind(1, u.experiment_id)
      .Bind(2, u.target_model_id)
      .Bind(3, u.temperature)
      .Bind(4, u.sample_begin);
  s.Bind(5, u.sample_end);
  std::vector<Id> out;
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if (problems.count(static_cast<int>(s.Int(1)))) out.push_back(s.Int(0));
  }
  return out;
}

Status Store::ForEachStepScore(Id experiment_id,
                               const std::function<Status(const StepScore&)>& fn) {
  TTC_ASSIGN_OR_RETURN(
      Stmt s, impl_->conn->Prepare("SELECT t.sample_id, t.step, t.score FROM step_scores t "
                                   "WHERE t.sample_id IN (SELECT id FROM samples WHERE "
                                   "experiment_id = ?1) ORDER BY t.sample_id, t.step"));
  s.Bind(1, experiment_id);
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::Ok();
    TTC_RETURN_IF_ERROR(fn(StepScore{s.Int(0), static_cast<int>(s.Int(1)), s.Double(2)}));
  }
}

Result<std::vector<StepScore>> Store::ListStepScores(Id experiment_id) {
  std::vector<StepScore> out;
  TTC_RETURN_IF_ERROR(ForEachStepScore(experiment_id, [&](const StepScore& x) {
    out.push_back(x);
    return Status::Ok();
  }));
  return out;
}

// ---- Status
// -----------------------------------------------------------------------------------------------------

Result<ExperimentStatus> Store::GetExperimentStatus(Id experiment_id) {
  ExperimentStatus st;
  st.experiment_id = experiment_id;
  TTC_ASSIGN_OR_RETURN(st.state, impl_->LoadExperimentState(experiment_id));
  // Sums of the per-unit counters (kept by InsertSamples and UpdateGrades): O(units), not
  // O(samples).
  TTC_ASSIGN_OR_RETURN(
      Stmt s, impl_->conn->Prepare(
                  "SELECT state, COUNT(*), SUM(CASE WHEN kind = 'generate' THEN "
                  "json_array_length(problems) * "
                  "(sample_end - sample_begin) ELSE 0 END), SUM(CASE WHEN state = 'leased' THEN "
                  "progress_tokens "
                  "ELSE 0 END), SUM(samples_stored), SUM(tokens_stored), SUM(decode_s_stored), "
                  "SUM(samples_graded), "
                  "SUM(samples_correct) FROM units WHERE experiment_id = ?1 GROUP BY state"));
  s.Bind(1, experiment_id);
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    auto state = ParseUnitState(s.TextView(0));
    if (!state) return Corrupt("{}: a unit has unknown state '{}'", impl_->path, s.TextView(0));
    int64_t n = s.Int(1);
    switch (*state) {
      case UnitState::kPending:
        st.units_pending = n;
        break;
      case UnitState::kLeased:
        st.units_leased = n;
        break;
      case UnitState::kDone:
        st.units_done = n;
        break;
      case UnitState::kFailed:
        st.units_failed = n;
        break;
      case UnitState::kCancelled:
        st.units_cancelled = n;
        break;
    }
    st.samples_expected += s.Int(2);
    st.in_flight_tokens += s.Int(3);
    st.samples += s.Int(4);
    st.tokens += s.Int(5);
    st.decode_s += s.Double(6);
    st.samples_graded += s.Int(7);
    st.samples_correct += s.Int(8);
  }
  return st;
}

// ---- Workers
// ----------------------------------------------------------------------------------------------------

Status Store::UpsertWorker(const Worker& w) {
  if (w.id.empty()) return InvalidArgument("UpsertWorker: empty worker id");
  return impl_->InWrite([&]() -> Status {
    TTC_ASSIGN_OR_RETURN(
        Stmt s,
        impl_->conn->Prepare(
            "INSERT INTO workers (id, host, device, memory_bytes, models_held, state, "
            "current_unit, "
            "tokens_per_s, last_heartbeat, protocol_version, first_seen) VALUES (?1, ?2, ?3, ?4, "
            "?5, ?6, ?7, "
            "?8, ?9, ?10, ?11) ON CONFLICT (id) DO UPDATE SET host = excluded.host, device = "
            "excluded.device, memory_bytes = excluded.memory_bytes, models_held = "
            "excluded.models_held, "
            "state = excluded.state, current_unit = excluded.current_unit, tokens_per_s = "
            "excluded.tokens_per_s, last_heartbeat = excluded.last_heartbeat, protocol_version = "
            "excluded.protocol_version"));
    double first = w.first_seen != 0 ? w.first_seen
                                     : (w.last_heartbeat != 0 ? w.last_heartbeat : UnixSeconds());
    s.Bind(1, w.id)
        .Bind(2, w.host)
        .Bind(3, w.device)
        .Bind(4, w.memory_bytes)
        .Bind(5, StringListJson(w.models_held))
        .Bind(6, Name(w.state))
        .Bind(7, w.current_unit)
        .Bind(8, w.tokens_per_s)
        .Bind(9, w.last_heartbeat)
        .Bind(10, w.protocol_version)
        .Bind(11, first);
    return s.Run();
  });
}

Status Store::Heartbeat(const std::string& worker_id, const WorkerHeartbeat& hb) {
  return impl_->InWrite([&]() -> Status {
    TTC_ASSIGN_OR_RETURN(
        Stmt s, impl_->conn->Prepare("UPDATE workers SET state = ?2, current_unit = ?3, "
                                     "tokens_per_s = ?4, last_heartbeat = ?5, models_held = "
                                     "COALESCE(?6, models_held) WHERE id = ?1"));
    s.Bind(1, worker_id)
        .Bind(2, Name(hb.state))
        .Bind(3, hb.current_unit)
        .Bind(4, hb.tokens_per_s)
        .Bind(5, hb.at);
    if (hb.models_held) {
      s.Bind(6, StringListJson(*hb.models_held));
    } else {
      s.BindNull(6);
    }
    TTC_RETURN_IF_ERROR(s.Run());
    if (sqlite3_changes64(impl_->conn->db()) == 0) {
      return NotFound("{}: worker '{}' is not registered", impl_->path, worker_id);
    }
    return Status::Ok();
  });
}

#define TTC_WORKER_SELECT                                                                  \
  "SELECT id, host, device, memory_bytes, models_held, state, COALESCE(current_unit, 0), " \
  "tokens_per_s, "                                                                         \
  "last_heartbeat, protocol_version, first_seen FROM workers "

Result<Worker> Store::GetWorker(const std::string& worker_id) {
  TTC_ASSIGN_OR_RETURN(Stmt s, impl_->conn->Prepare(TTC_WORKER_SELECT "WHERE id = ?1"));
  s.Bind(1, worker_id);
  TTC_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("{}: worker '{}' is not registered", impl_->path, worker_id);
  return ReadWorker(s);
}

Result<std::vector<Worker>> Store::ListWorkers() {
  TTC_ASSIGN_OR_RETURN(Stmt s, impl_->conn->Prepare(TTC_WORKER_SELECT "ORDER BY id"));
  std::vector<Worker> out;
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    TTC_ASSIGN_OR_RETURN(Worker w, ReadWorker(s));
    out.push_back(std::move(w));
  }
  return out;
}

// ---- Engine benchmark tables
// ------------------------------------------------------------------------------------

Result<std::vector<Id>> Store::InsertBenchRows(const std::vector<BenchRow>& rows) {
  return impl_->InWrite([&]() -> Result<std::vector<Id>> {
    std::vector<Id> ids;
    double now = UnixSeconds();
    for (size_t i = 0; i < rows.size(); ++i) {
      const BenchRow& r = rows[i];
      if (r.table.empty() || r.model.empty()) {
        return InvalidArgument("bench row #{}: table and model must be set", i);
      }
      if (r.batch < 1)
        return InvalidArgument("bench row #{}: batch must be >= 1 (got {})", i, r.batch);
      TTC_ASSIGN_OR_RETURN(
          Stmt s,
          impl_->conn->Prepare(
              "INSERT INTO bench (tbl, model, device, batch, prompt_len, context_len, "
              "gen_len, step_s, total_s, extra, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
              "?7, ?8, ?9, ?10, ?11)"));
      TTC_RETURN_IF_ERROR(s.Bind(1, r.table)
                              .Bind(2, r.model)
                              .Bind(3, r.device)
                              .Bind(4, r.batch)
                              .Bind(5, r.prompt_len)
                              .Bind(6, r.context_len)
                              .Bind(7, r.gen_len)
                              .Bind(8, r.step_s)
                              .Bind(9, r.total_s)
                              .Bind(10, r.extra_json)
                              .Bind(11, r.created_at != 0 ? r.created_at : now)
                              .Run());
      ids.push_back(sqlite3_last_insert_rowid(impl_->conn->db()));
    }
    return ids;
  });
}

Result<std::vector<BenchRow>> Store::ListBenchRows(const BenchQuery& q) {
  TTC_ASSIGN_OR_RETURN(
      Stmt s,
      impl_->conn->Prepare(
          "SELECT id, tbl, model, device, batch, prompt_len, context_len, gen_len, step_s, "
          "total_s, extra, created_at FROM bench WHERE (?1 = '' OR tbl = ?1) AND (?2 = '' OR "
          "model = ?2) AND (?3 = '' OR device = ?3) "
          "ORDER BY tbl, model, device, batch, context_len, id"));
  s.Bind(1, q.table).Bind(2, q.model).Bind(3, q.device);
  std::vector<BenchRow> out;
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    BenchRow r;
    r.id = s.Int(0);
    r.table = s.Text(1);
    r.model = s.Text(2);
    r.device = s.Text(3);
    r.batch = static_cast<int>(s.Int(4));
    r.prompt_len = static_cast<int>(s.Int(5));
    r.context_len = static_cast<int>(s.Int(6));
    r.gen_len = static_cast<int>(s.Int(7));
    r.step_s = s.Double(8);
    r.total_s = s.Double(9);
    r.extra_json = s.Text(10);
    r.created_at = s.Double(11);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ttc::store
