// What a worker runs a unit with. UnitRunner is the seam between the daemon (sockets, leases,
// draining) and the engine: EngineRunner loads the unit's model through engine/ (keeping it loaded
// while the next unit uses the same folder), renders each problem's chat with the model's
// tokenizer, generates every requested sample with the per-sample random streams, and for score
// units renders the PRM conversation (evaluation.md §6) and reads the step scores from one forward
// pass. Thread-safety: a runner is used by one thread at a time (the worker's job thread); the
// hooks it calls must be thread-safe with respect to the daemon thread (they are: they push to a
// locked queue and atomics).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "protocol/messages.h"

namespace ttc::worker {

struct RunHooks {
  // A finished sample (generate units); unit, seq are filled in by the daemon.
  std::function<void(protocol::SampleResult)> on_sample;
  // PRM step scores of one sample (score units).
  std::function<void(protocol::ScoresResult)> on_scores;
  // Tokens produced so far in this unit (progress = liveness); the runner adds to it as it decodes.
  std::atomic<int64_t>* tokens = nullptr;
  // Set by the daemon when the unit is cancelled or handed back: stop as soon as possible.
  const std::atomic<bool>* cancel = nullptr;
};

struct RunOutcome {
  Status status;
  bool device_error =
      false;  // sticky accelerator failure: the worker must exit (distinct exit code)
};

struct RunnerOptions {
  bool cpu = true;
  int gpu = -1;            // device index when !cpu
  int threads = 0;         // CPU threads (0 = engine default)
  std::string models_dir;  // relative model paths resolve here
};

class UnitRunner {
 public:
  virtual ~UnitRunner() = default;
  virtual RunOutcome Run(const protocol::Assign& unit, const RunHooks& hooks) = 0;
  // Folder of the model in memory ("" = none).
  virtual std::string loaded_model() const = 0;
  // Device description for hello ("cpu", or the GPU name) and its memory in bytes.
  virtual std::string device() const = 0;
  virtual int64_t memory_bytes() const = 0;
};

// The engine-backed runner.
std::unique_ptr<UnitRunner> MakeEngineRunner(const RunnerOptions& options);

// Splits a completion into PRM steps the way SAL does (evaluation.md §6.2): on "\n\n", keeping
// empty pieces.
std::vector<std::string> SplitSteps(const std::string& completion);

}  // namespace ttc::worker
