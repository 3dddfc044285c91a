// The coordinator daemon: one ZeroMQ ROUTER socket for workers and clients (bound to --listen and,
// optionally,
// --client-listen), SQLite (store/) as the only durable state, one thread doing everything (single
// writer). It plans submitted grids into units, hands units to workers as leases (attempt = fencing
// token), ingests the samples workers stream back in batched idempotent transactions, grades each
// sample as it lands, acknowledges results only after COMMIT, retries failed or expired units a
// bounded number of times, adds PRM score units once a generate unit is done, and answers client
// requests (submit, status, cancel, list). Liveness: heartbeats both ways (Paranoid Pirate); a
// worker silent for heartbeat*liveness is lost and its unit goes back; a busy worker whose token
// count stops growing for stall_s is stalled and loses its lease. Restart: everything is re-read
// from the database; leases survive a restart and are resumed by workers that reconnect and say
// which unit they hold, or expire. Security: endpoints beyond loopback require CURVE (server key
// pair + authorized client keys, checked by a ZAP handler); every message is size-limited and
// validated; malformed or unknown messages are counted, logged (rate-limited) and dropped.
// Thread-safety: a Coordinator object is driven by one thread (Run); RequestStop may be called from
// any thread or a signal handler through the stop flag.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "coordinator/planner.h"

namespace ttc::coordinator {

struct CoordinatorOptions {
  std::string db_path;
  std::vector<std::string>
      listen;  // worker (and client) endpoints; "tcp://127.0.0.1:*" picks a port
  std::vector<std::string>
      client_listen;            // optional extra endpoints for clients (same socket, same security)
  int heartbeat_ms = 1000;      // both directions
  int liveness = 3;             // missed heartbeats before a peer is lost
  double lease_s = 120;         // lease length; renewed by every progress heartbeat
  double stall_s = 300;         // a busy worker without token progress this long loses its unit
  int max_attempts = 3;         // per unit, then failed with its last error
  std::string curve_keys_file;  // server key pair (ttc keygen); required beyond loopback
  std::string authorized_keys;  // file or folder of client/worker public keys (with CURVE)
  std::string endpoint_file;    // written (atomically) with the bound endpoints, one per line
  int ingest_batch = 4096;      // most messages handled between two commits
  PlanOptions plan;
};

// Counters of dropped or rejected traffic, shown by `ttc status`.
struct CoordinatorCounters {
  int64_t messages = 0;
  int64_t malformed = 0;     // not MessagePack, not a map, no v/type, oversized
  int64_t unknown_type = 0;  // a type this version does not know
  int64_t invalid = 0;       // a known type with a missing or mistyped field
  int64_t version_mismatch = 0;
  int64_t samples_inserted = 0;
  int64_t samples_duplicate = 0;
  int64_t samples_stale = 0;  // late or fenced-off results (an older attempt)
  int64_t scores_inserted = 0;
  int64_t units_assigned = 0;
  int64_t units_completed = 0;
  int64_t units_failed_attempts = 0;
  int64_t leases_expired = 0;
  int64_t workers_lost = 0;
  int64_t workers_stalled = 0;
  int64_t zap_denied = 0;
};

// Seconds an experiment still needs: the larger of its samples left at the recent sample rate and
// its units left (pending or leased) at the recent unit rate. The unit term matters once every
// sample has landed but PRM score units, added as generate units finish, still run: the sample term
// alone then reads 0. nullopt while work is left and no rate is known yet; 0 when nothing is left.
std::optional<double> EstimateEtaSeconds(int64_t samples_left, double samples_per_s,
                                         int64_t units_left, double units_per_s);

class Coordinator {
 public:
  // Opens the database, binds the endpoints (refusing non-loopback ones without CURVE) and starts
  // the ZAP handler when CURVE is on. kInvalidArgument for a bad configuration (the CLI maps it to
  // exit code 2).
  static Result<std::unique_ptr<Coordinator>> Create(const CoordinatorOptions& options);
  ~Coordinator();

  // Serves until `stop` becomes true; returns the first fatal error (database unusable), else Ok.
  Status Run(const std::atomic<bool>& stop);

  // The endpoints actually bound (wildcard ports resolved).
  const std::vector<std::string>& bound_endpoints() const;
  const CoordinatorCounters& counters() const;

 private:
  class Impl;
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ttc::coordinator
