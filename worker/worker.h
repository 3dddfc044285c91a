// The worker daemon (`ttc worker`): one per GPU (or CPU workers). A Paranoid-Pirate DEALER: it says
// hello (identity, host, device, memory, protocol version, models it holds), asks for work, runs
// each assigned unit on a job thread through a UnitRunner, streams every finished sample back at
// once, keeps results until the coordinator acknowledges them (resending after a reconnect),
// heartbeats with its progress (tokens produced), and reconnects with exponential back-off when the
// coordinator goes silent. SIGTERM (or SIGUSR1/2) drains: no new units; the current one is finished
// within the drain timeout or handed back; then exit 0. A sticky device error exits with
// kExitDeviceError after reporting the unit failed.
// Thread-safety: Run() is called once from the main thread; the stop/drain flags are
// async-signal-safe atomics.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "protocol/transport.h"
#include "worker/runner.h"

namespace ttc::worker {

// Exit codes of `ttc worker` (also for Slurm accounting and Kubernetes podFailurePolicy).
inline constexpr int kExitOk = 0;           // drained or told to stop
inline constexpr int kExitFailure = 1;      // unexpected failure
inline constexpr int kExitUsage = 2;        // bad flags or configuration: do not retry
inline constexpr int kExitDeviceError = 3;  // sticky GPU error: retry on another device
inline constexpr int kExitGaveUp = 4;       // coordinator unreachable for longer than --give-up-s
inline constexpr int kExitRefused = 5;  // the coordinator refused us (protocol version, identity)

struct WorkerOptions {
  std::string coordinator;  // endpoint
  std::string worker_id;    // stable identity; default host/cpu or host/gpuN (+ --name suffix)
  RunnerOptions runner;
  int heartbeat_ms = 1000;
  int liveness = 3;
  int backoff_initial_ms = 1000;
  int backoff_max_ms = 32000;
  double drain_timeout_s =
      60;                // how long a drain may wait for the current unit before handing it back
  double give_up_s = 0;  // exit kExitGaveUp after this long without a coordinator (0 = never)
  protocol::ClientSecurity security;
};

// Flags that signal handlers set.
struct WorkerSignals {
  std::atomic<int> drain_requests{0};  // each SIGTERM/SIGINT/SIGUSR1/SIGUSR2 increments; 2+ = hurry
};

// Runs the daemon until it drains, fails or gives up; returns the exit code.
int RunWorker(const WorkerOptions& options, std::unique_ptr<UnitRunner> runner,
              WorkerSignals& signals);

// The default identity: "<hostname>/cpu" or "<hostname>/gpu<N>".
std::string DefaultWorkerId(const RunnerOptions& options);

}  // namespace ttc::worker
