#include "coordinator/store_view.h"

#include <string>

namespace ttc::coordinator {

Result<nlohmann::json> ListJson(store::Store& store) {
  nlohmann::json out = nlohmann::json::array();
  TTC_ASSIGN_OR_RETURN(auto list, store.ListExperiments());
  for (const auto& e : list) {
    TTC_ASSIGN_OR_RETURN(store::ExperimentStatus s, store.GetExperimentStatus(e.id));
    out.push_back({{"id", e.id},
                   {"name", e.name},
                   {"state", store::Name(e.state)},
                   {"created_at", e.created_at},
                   {"units_done", s.units_done},
                   {"units_total", s.units_total()},
                   {"samples", s.samples},
                   {"samples_expected", s.samples_expected}});
  }
  return out;
}

nlohmann::json ExperimentStatusJson(const store::Experiment& e, const store::ExperimentStatus& s,
                                    std::optional<double> samples_per_s,
                                    std::optional<double> units_per_s,
                                    std::optional<double> eta_s) {
  const auto or_null = [](std::optional<double> v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  return {{"id", e.id},
          {"name", e.name},
          {"state", store::Name(s.state)},
          {"created_at", e.created_at},
          {"units",
           {{"pending", s.units_pending},
            {"leased", s.units_leased},
            {"done", s.units_done},
            {"failed", s.units_failed},
            {"cancelled", s.units_cancelled},
            {"total", s.units_total()}}},
          {"samples", s.samples},
          {"samples_expected", s.samples_expected},
          {"samples_graded", s.samples_graded},
          {"samples_correct", s.samples_correct},
          {"tokens", s.tokens},
          {"in_flight_tokens", s.in_flight_tokens},
          {"samples_per_s", or_null(samples_per_s)},
          {"units_per_s", or_null(units_per_s)},
          {"eta_s", or_null(eta_s)}};
}

Result<nlohmann::json> FailedUnitsJson(store::Store& store, store::Id experiment_id, size_t limit) {
  nlohmann::json failed = nlohmann::json::array();
  TTC_ASSIGN_OR_RETURN(auto units, store.ListUnits({.experiment_id = experiment_id,
                                                    .state = store::UnitState::kFailed,
                                                    .kind = std::nullopt}));
  for (const auto& u : units) {
    if (failed.size() >= limit) break;
    failed.push_back({{"unit", u.id},
                      {"model", u.model_name},
                      {"attempts", u.attempts_used},
                      {"error", u.last_error}});
  }
  return failed;
}

Result<nlohmann::json> StatusJsonFromStore(store::Store& store, store::Id only) {
  const double now = store::UnixSeconds();
  nlohmann::json workers = nlohmann::json::array();
  TTC_ASSIGN_OR_RETURN(auto rows, store.ListWorkers());
  for (const auto& r : rows) {
    workers.push_back({{"id", r.id},
                       {"host", r.host},
                       {"device", r.device},
                       {"state", store::Name(r.state)},
                       {"alive", false},
                       {"unit", r.current_unit},
                       {"tokens_per_s", r.tokens_per_s},
                       {"last_heartbeat_s", now - r.last_heartbeat}});
  }
  nlohmann::json exps = nlohmann::json::array();
  TTC_ASSIGN_OR_RETURN(auto list, store.ListExperiments());
  bool found = only == 0;
  for (const auto& e : list) {
    if (only != 0 && e.id != only) continue;
    found = true;
    TTC_ASSIGN_OR_RETURN(store::ExperimentStatus s, store.GetExperimentStatus(e.id));
    nlohmann::json x = ExperimentStatusJson(e, s, std::nullopt, std::nullopt, std::nullopt);
    if (only != 0 || s.units_failed > 0) {
      TTC_ASSIGN_OR_RETURN(x["failed_units"], FailedUnitsJson(store, e.id));
    }
    exps.push_back(std::move(x));
  }
  if (!found) return NotFound("no experiment {} here (`ttc list --db FILE` lists them)", only);
  return nlohmann::json{{"workers", std::move(workers)}, {"experiments", std::move(exps)}};
}

}  // namespace ttc::coordinator
