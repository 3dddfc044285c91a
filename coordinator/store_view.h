// The JSON views of a store that `ttc list` and `ttc status` print: the coordinator answers with
// them, and the commands build them from a store file directly (`--db`) when no coordinator is
// running, e.g. after `ttc run` has finished, so one rendering serves both.
// Thread-safety: the functions that take a Store use it as its own contract says (one caller at a
// time per Store); ExperimentStatusJson is pure.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "common/result.h"
#include "store/store.h"

namespace ttc::coordinator {

// `ttc list`: one entry per experiment (id, name, state, units and samples done).
Result<nlohmann::json> ListJson(store::Store& store);

// One experiment's entry in a status reply. The rates and the ETA are what a running coordinator
// measured; nullopt (JSON null) where nobody measured them (read from a file).
nlohmann::json ExperimentStatusJson(const store::Experiment& e, const store::ExperimentStatus& s,
                                    std::optional<double> samples_per_s,
                                    std::optional<double> units_per_s, std::optional<double> eta_s);

// Up to `limit` failed units of an experiment (unit, model, attempts, last error).
Result<nlohmann::json> FailedUnitsJson(store::Store& store, store::Id experiment_id,
                                       size_t limit = 20);

// A status reply read from the store alone (`only` = 0: every experiment): the workers as they
// last recorded themselves (state, unit, tokens/s, time since their last heartbeat; "alive" is
// false, since no coordinator vouches for them), the experiments with null rates and ETA, and
// failed units as the coordinator lists them. No "coordinator" section.
Result<nlohmann::json> StatusJsonFromStore(store::Store& store, store::Id only);

}  // namespace ttc::coordinator
