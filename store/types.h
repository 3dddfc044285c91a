// Plain value types of the SQLite store: the rows of every entity (experiments, models, problems,
// units, samples, PRM step scores, workers, engine benchmark rows) and the enums of their states,
// with their text names as stored in the database. No SQL and no behaviour here beyond name
// conversions; see store/store.h for the operations. Thread-safety: value types; a const object is
// safe to read from many threads.
//
// Conventions: ids are SQLite integer row ids (> 0; 0 means "not yet stored"). Times are seconds
// since the Unix epoch as double (UnixSeconds), chosen by the caller for lease operations so tests
// can move time. Seeds are uint64 stored bit-for-bit in SQLite's signed 64-bit integers. JSON
// fields are kept as the text given (so a grid spec is stored exactly as submitted); empty JSON
// text means "none".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ttc::store {

using Id = int64_t;

// Current wall-clock time in seconds since the Unix epoch.
double UnixSeconds();

enum class ExperimentState { kActive, kCancelled, kDone };
enum class UnitKind { kGenerate, kScore };
enum class UnitState { kPending, kLeased, kDone, kFailed, kCancelled };
enum class WorkerState { kIdle, kLoading, kBusy, kDraining, kOffline };

// Names as stored in the database ("active", "generate", "leased", "busy", ...).
const char* Name(ExperimentState s);
const char* Name(UnitKind k);
const char* Name(UnitState s);
const char* Name(WorkerState s);
// Inverse of Name(); nullopt for an unknown name.
std::optional<ExperimentState> ParseExperimentState(std::string_view name);
std::optional<UnitKind> ParseUnitKind(std::string_view name);
std::optional<UnitState> ParseUnitState(std::string_view name);
std::optional<WorkerState> ParseWorkerState(std::string_view name);

struct Experiment {
  Id id = 0;
  std::string name{};
  std::string grid_spec_json{};  // the grid as submitted, byte for byte
  std::string dataset_fingerprint{};
  uint64_t seed = 0;
  ExperimentState state = ExperimentState::kActive;
  double created_at = 0;  // 0 on create: the store fills in UnixSeconds()
};

// A model of one experiment. `name` is unique within the experiment and is what units, worker
// affinity (ClaimOptions) and reports refer to; `path` is where a worker loads it from.
struct Model {
  Id id = 0;
  Id experiment_id = 0;
  std::string name{};
  std::string path{};
  std::string options_json{};  // engine/sampling options as given in the grid (may be empty)
};

// A problem of one experiment, addressed by its index (0-based position in the experiment's problem
// list).
struct Problem {
  Id experiment_id = 0;
  int index = 0;
  std::string external_id{};  // e.g. "math500/test/algebra/1.json"
  std::string question{};
  std::string gold_answer{};
  std::string extra_json{};  // optional (may be empty)
};

// A unit of work: generate samples [sample_begin, sample_end) for each of `problem_indices` with
// `model_name` at `temperature`, or (kind kScore) score with reward model `model_name` the samples
// of `target_model_name` at `temperature` for those problems and sample range.
//
// Lease fields: `attempt` is the fencing token, incremented by every claim and never decreased;
// results carry it and are accepted only while the unit is leased at that attempt. `attempts_used`
// counts attempts that failed (FailUnit) or whose lease expired (ExpireLeases); when it reaches
// `max_attempts` the unit is failed with `last_error`. Handing a unit back (ReleaseUnit) does not
// count.
struct Unit {
  Id id = 0;
  Id experiment_id = 0;
  UnitKind kind = UnitKind::kGenerate;
  Id model_id = 0;           // filled by the store from model_name
  std::string model_name{};  // input on create; always filled on read
  Id target_model_id = 0;    // score units only (0 otherwise)
  std::string target_model_name{};
  double temperature = 0;
  std::vector<int> problem_indices{};  // one or several; each must exist in the experiment
  int sample_begin = 0;                // sample index range [sample_begin, sample_end)
  int sample_end = 0;
  uint64_t seed = 0;
  int64_t order_key = 0;  // claims take the lowest order key first (after model affinity)
  int max_attempts = 3;
  // State, written by the store's lease operations (ignored on create).
  UnitState state = UnitState::kPending;
  std::string worker_id{};  // the current or last lease holder ("" if never leased)
  int attempt = 0;
  double lease_expires_at = 0;
  int attempts_used = 0;
  std::string last_error{};
  // Progress of the current attempt, from RecordProgress (reset by each claim).
  int64_t progress_tokens = 0;
  int progress_samples = 0;
  double progress_at = 0;
  // Stored results of this unit over all attempts (kept by InsertSamples).
  int64_t samples_stored = 0;
  int64_t tokens_stored = 0;

  // Number of (problem, sample) pairs this unit produces.
  int64_t ExpectedSamples() const {
    return static_cast<int64_t>(problem_indices.size()) * (sample_end - sample_begin);
  }
};

// One generated sample. On insert, experiment_id, model_id and temperature are taken from the unit
// (the caller's values are ignored); unit_id, problem_index, sample_index and attempt identify and
// fence it.
struct Sample {
  Id id = 0;
  Id experiment_id = 0;
  Id unit_id = 0;
  Id model_id = 0;
  double temperature = 0;
  int problem_index = 0;
  int sample_index = 0;
  std::string text{};  // empty when read without text (SampleQuery::include_text = false)
  int num_tokens = 0;
  std::string finish_reason{};  // "stop", "length", ...
  std::string extracted_answer{};
  std::optional<bool> correct{};  // nullopt until graded
  double prefill_s = 0;
  double decode_s = 0;
  int steps = 0;
  std::string extra_json{};  // empty when read without extra (SampleQuery::include_extra = false)
  int attempt = 0;           // the unit attempt that produced it (the fencing token)
};

// Identifies one expected sample of a unit.
struct SampleKey {
  int problem_index = 0;
  int sample_index = 0;
  bool operator==(const SampleKey&) const = default;
};

// What happened to one submitted result (sample or step scores).
enum class InsertOutcome {
  kInserted,   // stored now
  kDuplicate,  // already stored (by this or an earlier delivery): nothing changed
  kStale,  // the unit is not leased at the given attempt (late, fenced-off or cancelled): nothing
           // changed
};
const char* Name(InsertOutcome o);

struct SampleInsertResult {
  InsertOutcome outcome = InsertOutcome::kStale;
  Id sample_id = 0;  // the new or existing sample's id; 0 when stale
};

// Grading fields of a stored sample (the coordinator grades as samples land).
struct SampleGrade {
  Id sample_id = 0;
  std::string extracted_answer{};
  std::optional<bool> correct{};
};

// PRM scores of one sample's steps, in step order (step index = position).
struct SampleStepScores {
  Id sample_id = 0;
  std::vector<double> scores{};
};

struct StepScore {
  Id sample_id = 0;
  int step_index = 0;
  double score = 0;
};

struct Worker {
  std::string id{};  // stable identity, e.g. "host/gpu-uuid"
  std::string host{};
  std::string device{};  // e.g. "NVIDIA H100 80GB HBM3 (GPU-…)" or "cpu"
  int64_t memory_bytes = 0;
  std::vector<std::string> models_held{};
  WorkerState state = WorkerState::kIdle;
  Id current_unit = 0;  // 0 = none
  double tokens_per_s = 0;
  double last_heartbeat = 0;
  int protocol_version = 0;
  double first_seen = 0;  // set by the store on the first upsert
};

// What a worker's heartbeat updates.
struct WorkerHeartbeat {
  WorkerState state = WorkerState::kIdle;
  Id current_unit = 0;
  double tokens_per_s = 0;
  double at = 0;                                          // heartbeat time (UnixSeconds)
  std::optional<std::vector<std::string>> models_held{};  // replaces the list when given
};

// One row of an engine benchmark table. `table` names the protocol: "paper" (fixed prompt/gen
// lengths, total time of a batch) or "step" (time of one decode step at (batch, context)); other
// names are allowed.
struct BenchRow {
  Id id = 0;
  std::string table{};
  std::string model{};
  std::string device{};
  int batch = 0;
  int prompt_len = 0;
  int context_len =
      0;  // context length at the measured step ("step"); prompt_len + gen_len otherwise
  int gen_len = 0;
  double step_s = 0;   // seconds per decode step
  double total_s = 0;  // seconds for the whole measurement (0 if not applicable)
  std::string extra_json{};
  double created_at = 0;  // 0 on insert: the store fills in UnixSeconds()
};

// Counts of one experiment for `ttc status`.
struct ExperimentStatus {
  Id experiment_id = 0;
  ExperimentState state = ExperimentState::kActive;
  int64_t units_pending = 0;
  int64_t units_leased = 0;
  int64_t units_done = 0;
  int64_t units_failed = 0;
  int64_t units_cancelled = 0;
  int64_t samples_expected = 0;  // over generate units
  int64_t samples = 0;           // stored samples
  int64_t samples_graded = 0;    // samples with `correct` set
  int64_t samples_correct = 0;
  int64_t tokens = 0;            // sum of num_tokens over stored samples
  double decode_s = 0;           // sum of decode_s over stored samples
  int64_t in_flight_tokens = 0;  // progress_tokens of leased units (not yet stored as samples)
  int64_t units_total() const {
    return units_pending + units_leased + units_done + units_failed + units_cancelled;
  }
};

}  // namespace ttc::store
