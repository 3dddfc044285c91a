// Planning: turns a validated grid and its problems into the units the coordinator stores
// (store::NewExperiment). A unit is (model, temperature, one or several problems, a sample index
// range, seed). Its size is bounded by samples (grid units.max_samples_per_unit) and by expected
// time (units.target_seconds_per_unit at an assumed decode rate), so a lost unit costs minutes.
// Order keys are wave-major: wave w holds sample ranges [w*S, (w+1)*S) of every problem, models
// interleaved inside each problem chunk, so early results cover every model and the "first k
// samples" of every problem; the store's claim adds model affinity on top. Score units (PRM) mirror
// finished generate units; ScoreUnitFor builds one. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "experiments/grid.h"
#include "experiments/problem.h"
#include "store/store.h"

namespace ttc::coordinator {

struct PlanOptions {
  // Decode rate assumed when sizing units by time (tokens per second for one unit's batch).
  // Conservative for a 1B model batched on one GPU; the bound only needs the right order of
  // magnitude.
  double assumed_tokens_per_s = 2000.0;
  int max_attempts = 3;
};

// The per-problem sample-stream seed: a strong mix of the experiment seed and the problem index.
// Every sample of a problem draws from the engine's RNG keyed (this seed, sample index, step),
// whatever unit or worker produces it.
uint64_t ProblemSeed(uint64_t experiment_seed, int problem_index);

// How many samples one generate unit may hold for this grid (>= 1).
int SamplesPerUnit(const experiments::GridSpec& grid, const PlanOptions& options);

// The whole experiment: models (generation models, then the reward model if any), problems and
// generate units. `grid_json` is stored as the experiment's spec; `fingerprint` identifies the
// dataset.
Result<store::NewExperiment> PlanExperiment(const experiments::GridSpec& grid,
                                            const std::string& grid_json,
                                            const std::vector<experiments::Problem>& problems,
                                            const std::string& fingerprint,
                                            const PlanOptions& options = {});

// The score unit that scores the samples of a finished generate unit with the grid's reward model.
store::Unit ScoreUnitFor(const store::Unit& generate_unit, const experiments::RewardModelSpec& prm,
                         int max_attempts);

}  // namespace ttc::coordinator
