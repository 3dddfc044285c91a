#include "store/migrations.h"

namespace ttc::store::internal {

namespace {

// v1: the base schema. Column order in `samples` is deliberate: the large `extra` and `text`
// columns come last, so bulk reads of the small columns never walk a row's overflow pages.
constexpr const char* kV1 = R"sql(
CREATE TABLE schema_version (
  version INTEGER PRIMARY KEY,
  applied_at REAL NOT NULL,
  description TEXT NOT NULL
);
CREATE TABLE experiments (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  grid_spec TEXT NOT NULL,
  dataset_fingerprint TEXT NOT NULL,
  seed INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'cancelled', 'done')),
  created_at REAL NOT NULL
);
CREATE TABLE models (
  id INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  options TEXT NOT NULL,
  UNIQUE (experiment_id, name)
);
CREATE TABLE problems (
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  idx INTEGER NOT NULL CHECK (idx >= 0),
  external_id TEXT NOT NULL,
  question TEXT NOT NULL,
  gold_answer TEXT NOT NULL,
  extra TEXT NOT NULL,
  PRIMARY KEY (experiment_id, idx)
) WITHOUT ROWID;
CREATE TABLE units (
  id INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  kind TEXT NOT NULL CHECK (kind IN ('generate', 'score')),
  model_id INTEGER NOT NULL REFERENCES models(id),
  target_model_id INTEGER REFERENCES models(id),
  temperature REAL NOT NULL,
  problems TEXT NOT NULL,
  sample_begin INTEGER NOT NULL CHECK (sample_begin >= 0),
  sample_end INTEGER NOT NULL CHECK (sample_end >= sample_begin),
  seed INTEGER NOT NULL,
  order_key INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  state TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'done', 'failed', 'cancelled')),
  worker_id TEXT NOT NULL DEFAULT '',
  attempt INTEGER NOT NULL DEFAULT 0,
  lease_expires_at REAL NOT NULL DEFAULT 0,
  attempts_used INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX units_by_experiment ON units (experiment_id, order_key);
CREATE TABLE samples (
  id INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  unit_id INTEGER NOT NULL REFERENCES units(id),
  model_id INTEGER NOT NULL REFERENCES models(id),
  temperature REAL NOT NULL,
  problem_idx INTEGER NOT NULL,
  sample_idx INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  num_tokens INTEGER NOT NULL,
  steps INTEGER NOT NULL,
  prefill_s REAL NOT NULL,
  decode_s REAL NOT NULL,
  correct INTEGER,
  finish_reason TEXT NOT NULL,
  extracted_answer TEXT NOT NULL,
  extra TEXT NOT NULL,
  text TEXT NOT NULL,
  UNIQUE (unit_id, problem_idx, sample_idx)
);
CREATE INDEX samples_by_experiment ON samples (experiment_id, model_id, temperature, problem_idx, sample_idx);
CREATE TABLE step_scores (
  sample_id INTEGER NOT NULL REFERENCES samples(id),
  step INTEGER NOT NULL CHECK (step >= 0),
  score REAL NOT NULL,
  PRIMARY KEY (sample_id, step)
) WITHOUT ROWID;
CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  device TEXT NOT NULL,
  memory_bytes INTEGER NOT NULL,
  models_held TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('idle', 'loading', 'busy', 'draining', 'offline')),
  current_unit INTEGER,
  tokens_per_s REAL NOT NULL,
  last_heartbeat REAL NOT NULL,
  protocol_version INTEGER NOT NULL,
  first_seen REAL NOT NULL
);
CREATE TABLE bench (
  id INTEGER PRIMARY KEY,
  tbl TEXT NOT NULL,
  model TEXT NOT NULL,
  device TEXT NOT NULL,
  batch INTEGER NOT NULL,
  prompt_len INTEGER NOT NULL,
  context_len INTEGER NOT NULL,
  gen_len INTEGER NOT NULL,
  step_s REAL NOT NULL,
  total_s REAL NOT NULL,
  extra TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE INDEX bench_by_model ON bench (tbl, model, device, batch, context_len);
)sql";

// v2: per-attempt progress on units (RecordProgress: tokens and samples produced, so `status` shows
// in-flight work and liveness is judged by progress), and the indexes the lease queue needs: claim
// scans pending units by model then order key (affinity) or by order key alone, and ExpireLeases
// finds leased units by expiry, all without a table scan.
constexpr const char* kV2 = R"sql(
ALTER TABLE units ADD COLUMN progress_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE units ADD COLUMN progress_samples INTEGER NOT NULL DEFAULT 0;
ALTER TABLE units ADD COLUMN progress_at REAL NOT NULL DEFAULT 0;
CREATE INDEX units_claim_by_model ON units (state, model_id, order_key, id);
CREATE INDEX units_claim ON units (state, order_key, id);
CREATE INDEX units_by_lease ON units (state, lease_expires_at);
)sql";

// v3: sample texts (and their extra JSON) move to their own table, so `samples` rows are ~100 bytes
// and bulk reads of the numeric columns (reports: 1.5 M samples) and status scans touch dense pages
// instead of one page per couple of samples. Units gain per-unit counters of what has been stored
// and graded, maintained by InsertSamples and UpdateGrades, so experiment status is a sum over
// units instead of a scan over samples. Existing rows are carried over and the counters
// back-filled.
constexpr const char* kV3 = R"sql(
CREATE TABLE sample_texts (
  sample_id INTEGER PRIMARY KEY REFERENCES samples(id),
  extra TEXT NOT NULL,
  text TEXT NOT NULL
);
INSERT INTO sample_texts (sample_id, extra, text) SELECT id, extra, text FROM samples;
ALTER TABLE samples DROP COLUMN extra;
ALTER TABLE samples DROP COLUMN text;
ALTER TABLE units ADD COLUMN samples_stored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE units ADD COLUMN tokens_stored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE units ADD COLUMN decode_s_stored REAL NOT NULL DEFAULT 0;
ALTER TABLE units ADD COLUMN samples_graded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE units ADD COLUMN samples_correct INTEGER NOT NULL DEFAULT 0;
UPDATE units SET (samples_stored, tokens_stored, decode_s_stored, samples_graded, samples_correct) =
  (SELECT COUNT(*), COALESCE(SUM(num_tokens), 0), COALESCE(SUM(decode_s), 0), COUNT(correct),
          COALESCE(SUM(correct), 0)
   FROM samples s WHERE s.unit_id = units.id);
)sql";

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "base schema", kV1},
      {2, "unit progress columns and lease-queue indexes", kV2},
      {3, "sample texts in their own table; per-unit sample counters", kV3},
  };
  return kMigrations;
}

}  // namespace ttc::store::internal
