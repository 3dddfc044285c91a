// The SQLite store: the only code in ttc that writes SQL. It holds experiments (grid spec as
// submitted), their models, problems and units (a durable work queue with leases and attempt-number
// fencing), the samples and PRM step scores that workers produce, the worker registry and the
// engine benchmark tables, behind a typed API. Files are versioned by forward-only migrations
// (table schema_version); opening an older file upgrades it. Connections run in WAL mode with
// busy_timeout, foreign_keys=ON and synchronous=NORMAL; every write is one BEGIN IMMEDIATE
// transaction (so many processes on one host may open the same file: readers never block the
// writer, writers queue on the busy timeout and get kUnavailable when it runs out). Statements are
// prepared once per connection and cached.
//
// Thread-safety: a Store object is one SQLite connection and is NOT thread-safe: use one Store per
// thread (or guard one with a mutex). Any number of Store objects, in this or other processes on
// the same host, may open the same file at once. WAL does not work over network file systems: keep
// the file on a local disk.
//
// Errors: expected failures are Status values: kCorrupt for a damaged file, a non-SQLite file or
// another application's SQLite file; kFailedPrecondition for a schema newer than this build knows,
// a fenced-off lease operation (wrong worker/attempt, unit not leased) or a state that forbids the
// call; kNotFound for a missing row; kInvalidArgument for bad input (unknown model name, sample
// outside its unit); kUnavailable when the database stayed busy past the timeout. Each message
// names the file or row it is about.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/types.h"

struct sqlite3;

namespace ttc::store {

// The schema version this build creates and understands.
int LatestSchemaVersion();

struct OpenOptions {
  bool create_if_missing = true;  // otherwise a missing file is kNotFound
  bool read_only = false;  // no writes, no migrations (the file must already be at a known version)
  bool migrate =
      true;  // upgrade an older schema on open; if false an older file is kFailedPrecondition
  int busy_timeout_ms = 5000;
  // Open a file below the target version without migrating it (read-only inspection, `ttc db
  // check`); only SchemaVersion() and Check() are meaningful on such a Store.
  bool allow_old_schema = false;
  // Migrate only up to this version (0 = LatestSchemaVersion()). For tests and tools that need an
  // old-format file; a Store opened below the latest version supports only SchemaVersion() and
  // Check().
  int target_schema_version = 0;
};

// Which generate unit a worker may claim.
struct ClaimOptions {
  std::string worker_id{};
  double now = 0;              // claim time (UnixSeconds)
  double lease_seconds = 120;  // lease expiry = now + lease_seconds
  // Model names the worker already holds, best first: a pending unit of one of these models is
  // taken before any other (affinity), and among them the lowest order key.
  std::vector<std::string> preferred_models{};
  // If non-empty, only units whose model name is listed may be claimed (the models this worker can
  // serve).
  std::vector<std::string> allowed_models{};
  // Unit kinds the worker runs (default both).
  std::vector<UnitKind> kinds = {UnitKind::kGenerate, UnitKind::kScore};
  Id experiment_id = 0;  // 0 = any active experiment
};

// One lease taken away by ExpireLeases.
struct ExpiredLease {
  Id unit_id = 0;
  std::string worker_id{};
  int attempt = 0;
  UnitState new_state = UnitState::kPending;  // kPending, or kFailed when attempts ran out
};

// Everything an experiment starts with; stored in one transaction by CreateExperiment.
struct NewExperiment {
  Experiment experiment;            // id, state are ignored (a new experiment is active)
  std::vector<Model> models{};      // names unique within the experiment
  std::vector<Problem> problems{};  // index must be 0..n-1 in order (experiment_id ignored)
  std::vector<Unit>
      units;  // model_name / target_model_name refer to `models`; state fields ignored
};

struct CreatedExperiment {
  Id experiment_id = 0;
  std::vector<Id> model_ids{};  // parallel to NewExperiment::models
  std::vector<Id> unit_ids{};   // parallel to NewExperiment::units
};

struct UnitQuery {
  Id experiment_id = 0;              // 0 = all experiments
  std::optional<UnitState> state{};  // nullopt = any state
  std::optional<UnitKind> kind{};    // nullopt = any kind
};

// Which samples a bulk read returns (ordered by model, temperature, problem, sample index).
struct SampleQuery {
  Id experiment_id = 0;          // required
  std::optional<Id> model_id{};  // nullopt = all models
  std::optional<double> temperature{};
  std::optional<int> problem_index{};
  bool include_text = false;  // text is the bulk of a row: leave it out for metrics
  bool include_extra = false;
};

struct BenchQuery {
  std::string table{};   // "" = any
  std::string model{};   // "" = any
  std::string device{};  // "" = any
};

// Result of Check(): the state of the file, for `ttc db check`.
struct CheckReport {
  int schema_version = 0;
  int latest_schema_version = 0;
  std::string journal_mode{};
  std::string integrity{};  // "ok" or SQLite's integrity_check messages, one per line
  int64_t experiments = 0;
  int64_t units = 0;
  int64_t samples = 0;
  int64_t workers = 0;
  bool ok() const { return integrity == "ok"; }
};

class Store {
 public:
  // Opens (creating if allowed) the database file at `path` and brings its schema to the latest
  // version.
  static Result<std::unique_ptr<Store>> Open(const std::string& path,
                                             const OpenOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const;
  Result<int> SchemaVersion();
  // integrity_check plus row counts; works on any file this build can open (also below the latest
  // version).
  Result<CheckReport> Check();

  // Runs `fn` inside one write transaction (BEGIN IMMEDIATE): the store calls it makes become
  // savepoints, and a non-ok Status from `fn` (or from COMMIT) rolls everything back. Not
  // re-entrant across Store objects.
  Status RunInTransaction(const std::function<Status()>& fn);

  // ---- Experiments, models, problems
  // -------------------------------------------------------------------------- Stores the
  // experiment with its models, problems and units in ONE transaction (all or nothing).
  Result<CreatedExperiment> CreateExperiment(const NewExperiment& spec);
  Result<Experiment> GetExperiment(Id id);
  Result<std::vector<Experiment>> ListExperiments();  // by id
  Status SetExperimentState(Id id, ExperimentState state);
  // Marks the experiment cancelled and its pending and leased units cancelled (late results become
  // stale). Returns how many units were cancelled. Cancelling a cancelled experiment is a no-op; a
  // done one is an error.
  Result<int64_t> CancelExperiment(Id id);
  // If no unit of the experiment is pending or leased, marks an active experiment done and returns
  // true.
  Result<bool> FinishExperimentIfComplete(Id id);
  Result<std::vector<Model>> ListModels(Id experiment_id);      // by id
  Result<std::vector<Problem>> ListProblems(Id experiment_id);  // by index
  Result<Problem> GetProblem(Id experiment_id, int index);

  // ---- Units and leases
  // ----------------------------------------------------------------------------------------- Adds
  // units to an existing active experiment (e.g. score units once samples exist), in one
  // transaction.
  Result<std::vector<Id>> AddUnits(Id experiment_id, const std::vector<Unit>& units);
  Result<Unit> GetUnit(Id id);
  Result<std::vector<Unit>> ListUnits(const UnitQuery& query);  // by order key, then id
  // Leases the next pending unit of an active experiment: first one of `preferred_models` (in that
  // order of preference), else any allowed one, each by lowest order key. Sets worker, attempt+1,
  // lease expiry and resets progress. nullopt when nothing is claimable.
  Result<std::optional<Unit>> ClaimUnit(const ClaimOptions& options);
  // Extends the lease of a unit held by (worker_id, attempt) to `lease_expires_at`.
  // kFailedPrecondition if the unit is not leased by that worker at that attempt.
  Status RenewLease(Id unit_id, const std::string& worker_id, int attempt, double lease_expires_at);
  // Records progress of the current attempt (fenced like RenewLease); also renews the lease when
  // `lease_expires_at` is given.
  Status RecordProgress(Id unit_id, const std::string& worker_id, int attempt, int64_t tokens,
                        int samples, double at,
                        std::optional<double> lease_expires_at = std::nullopt);
  // Marks the unit done (fenced). A generate unit must have all its samples stored (else
  // kFailedPrecondition naming how many are missing).
  Status CompleteUnit(Id unit_id, const std::string& worker_id, int attempt);
  // Records a failed attempt (fenced): back to pending while attempts_used < max_attempts, else
  // failed with `error`. Returns the new state.
  Result<UnitState> FailUnit(Id unit_id, const std::string& worker_id, int attempt,
                             const std::string& error);
  // Hands a leased unit back without counting an attempt (a draining worker): back to pending
  // (fenced).
  Status ReleaseUnit(Id unit_id, const std::string& worker_id, int attempt);
  // Takes away every lease that expired at or before `now`: each counts as a failed attempt ("lease
  // expired").
  Result<std::vector<ExpiredLease>> ExpireLeases(double now);
  // Puts every leased unit back to pending without counting an attempt (coordinator restart: no
  // lease held by the previous process is trusted). Returns how many.
  Result<int64_t> ReleaseAllLeases();
  // (problem, sample) pairs of the unit that have no stored sample yet, in problem-list then sample
  // order: what a retry must still generate.
  Result<std::vector<SampleKey>> MissingSamples(Id unit_id);

  // ---- Samples and step scores
  // -------------------------------------------------------------------------------- Inserts
  // samples idempotently in ONE transaction, keyed by (unit, problem, sample index) with the
  // sample's `attempt` as fencing token: each result says kInserted, kDuplicate (already stored:
  // unchanged) or kStale (unit not leased at that attempt: unchanged). A sample outside its unit's
  // problems or range fails the whole batch with kInvalidArgument.
  Result<std::vector<SampleInsertResult>> InsertSamples(const std::vector<Sample>& samples);
  Result<SampleInsertResult> InsertSample(const Sample& sample);
  // Sets extracted answer and correctness of stored samples (one transaction). kNotFound names a
  // missing id.
  Status UpdateGrades(const std::vector<SampleGrade>& grades);
  Result<Sample> GetSample(Id sample_id, bool include_text = true);
  // Streams the samples matching `query` to `fn`, in order; a non-ok Status from `fn` stops and is
  // returned. The Sample reference is valid only during the call. The fast bulk read for reports.
  Status ForEachSample(const SampleQuery& query, const std::function<Status(const Sample&)>& fn);
  Result<std::vector<Sample>> ListSamples(const SampleQuery& query);
  // Stores PRM step scores for samples, fenced by the score unit's (unit_id, attempt), idempotent
  // per sample: a sample that already has scores is kDuplicate. One transaction.
  Result<std::vector<InsertOutcome>> InsertStepScores(Id unit_id, int attempt,
                                                      const std::vector<SampleStepScores>& scores);
  // Samples of a score unit's target (its target model, temperature, problems, range) without step
  // scores.
  Result<std::vector<Id>> SamplesMissingScores(Id unit_id);
  // All step scores of an experiment's samples, ordered by sample id then step.
  Status ForEachStepScore(Id experiment_id, const std::function<Status(const StepScore&)>& fn);
  Result<std::vector<StepScore>> ListStepScores(Id experiment_id);

  // ---- Status
  // ---------------------------------------------------------------------------------------------------
  Result<ExperimentStatus> GetExperimentStatus(Id experiment_id);

  // ---- Workers
  // --------------------------------------------------------------------------------------------------
  // Inserts or replaces the worker's row (first_seen kept from the first upsert).
  Status UpsertWorker(const Worker& worker);
  // kNotFound for an unknown worker id.
  Status Heartbeat(const std::string& worker_id, const WorkerHeartbeat& heartbeat);
  Result<Worker> GetWorker(const std::string& worker_id);
  Result<std::vector<Worker>> ListWorkers();  // by id

  // ---- Engine benchmark tables
  // ----------------------------------------------------------------------------------
  Result<std::vector<Id>> InsertBenchRows(const std::vector<BenchRow>& rows);  // one transaction
  Result<std::vector<BenchRow>> ListBenchRows(
      const BenchQuery& query);  // by table, model, device, batch, context

 private:
  class Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ttc::store
