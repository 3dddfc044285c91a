#include "coordinator/planner.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace ttc::coordinator {

namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t ProblemSeed(uint64_t experiment_seed, int problem_index) {
  return SplitMix64(experiment_seed ^
                    SplitMix64(static_cast<uint64_t>(problem_index) + 0x5851f42d4c957f2dull));
}

int SamplesPerUnit(const experiments::GridSpec& grid, const PlanOptions& options) {
  int by_samples = std::max(1, grid.units.max_samples_per_unit);
  // A unit decodes its samples together, so its time is about max_new_tokens steps at the batched
  // rate; the token budget of one unit is rate * target seconds.
  double token_budget = options.assumed_tokens_per_s * grid.units.target_seconds_per_unit;
  double by_time = token_budget / std::max(1, grid.max_new_tokens);
  int bound = static_cast<int>(std::min<double>(by_samples, std::max(1.0, std::floor(by_time))));
  return std::max(1, bound);
}

Result<store::NewExperiment> PlanExperiment(const experiments::GridSpec& grid,
                                            const std::string& grid_json,
                                            const std::vector<experiments::Problem>& problems,
                                            const std::string& fingerprint,
                                            const PlanOptions& options) {
  if (problems.empty())
    return InvalidArgument("grid '{}': the dataset yields no problems", grid.name);
  if (grid.models.empty()) return InvalidArgument("grid '{}': no models", grid.name);
  if (grid.temperatures.empty()) return InvalidArgument("grid '{}': no temperatures", grid.name);
  store::NewExperiment plan;
  plan.experiment.name = grid.name;
  plan.experiment.grid_spec_json = grid_json;
  plan.experiment.dataset_fingerprint = fingerprint;
  plan.experiment.seed = grid.seed;
  for (const auto& m : grid.models) {
    store::Model model;
    model.name = m.name;
    model.path = m.path;
    model.options_json = nlohmann::json{{"kind", "generate"},       {"dtype", m.dtype},
                                        {"rope", m.rope},           {"backend", m.backend},
                                        {"max_batch", m.max_batch}, {"state_dtype", m.state_dtype}}
                             .dump();
    plan.models.push_back(std::move(model));
  }
  if (grid.reward_model) {
    const auto& prm = *grid.reward_model;
    if (std::any_of(grid.models.begin(), grid.models.end(),
                    [&](const auto& m) { return m.name == prm.name; })) {
      return InvalidArgument("grid '{}': reward_model.name '{}' is also a generation model's name",
                             grid.name, prm.name);
    }
    store::Model model;
    model.name = prm.name;
    model.path = prm.path;
    model.options_json = nlohmann::json{
        {"kind", "prm"},
        {"dtype", prm.dtype},
        {"backend", prm.backend},
        {"aggregation", prm.aggregation},
        {"chat_template",
         prm.chat_template}}.dump();
    plan.models.push_back(std::move(model));
  }
  for (size_t i = 0; i < problems.size(); ++i) {
    store::Problem p;
    p.index = static_cast<int>(i);
    p.external_id = problems[i].id;
    p.question = problems[i].question;
    p.gold_answer = problems[i].gold_answer;
    nlohmann::json extra = {{"task", experiments::TaskName(problems[i].task)}};
    if (!problems[i].subject.empty()) extra["subject"] = problems[i].subject;
    if (problems[i].level != 0) extra["level"] = problems[i].level;
    p.extra_json = extra.dump();
    plan.problems.push_back(std::move(p));
  }

  const int per_unit = SamplesPerUnit(grid, options);
  const int n = grid.n_samples;
  // Few samples per problem: several problems share a unit (same sample range). Many: one problem
  // per unit and the sample axis is cut into waves.
  const int problems_per_unit = n >= per_unit ? 1 : std::max(1, per_unit / n);
  const int range = std::min(n, per_unit);
  const int waves = (n + range - 1) / range;
  const int num_problems = static_cast<int>(problems.size());
  const int chunks = (num_problems + problems_per_unit - 1) / problems_per_unit;
  const int64_t num_models = static_cast<int64_t>(grid.models.size());
  const int64_t num_temps = static_cast<int64_t>(grid.temperatures.size());
  for (int w = 0; w < waves; ++w) {
    const int begin = w * range;
    const int end = std::min(n, begin + range);
    for (int c = 0; c < chunks; ++c) {
      std::vector<int> indices;
      for (int p = c * problems_per_unit; p < std::min(num_problems, (c + 1) * problems_per_unit);
           ++p) {
        indices.push_back(p);
      }
      for (int64_t m = 0; m < num_models; ++m) {
        for (int64_t t = 0; t < num_temps; ++t) {
          store::Unit u;
          u.kind = store::UnitKind::kGenerate;
          u.model_name = grid.models[m].name;
          u.temperature = grid.temperatures[t];
          u.problem_indices = indices;
          u.sample_begin = begin;
          u.sample_end = end;
          // Per-problem seeds derive from the experiment seed (ProblemSeed); the unit keeps the
          // experiment seed.
          u.seed = grid.seed;
          u.order_key = ((static_cast<int64_t>(w) * chunks + c) * num_models + m) * num_temps + t;
          u.max_attempts = options.max_attempts;
          plan.units.push_back(std::move(u));
        }
      }
    }
  }
  return plan;
}

store::Unit ScoreUnitFor(const store::Unit& g, const experiments::RewardModelSpec& prm,
                         int max_attempts) {
  store::Unit u;
  u.kind = store::UnitKind::kScore;
  u.model_name = prm.name;
  u.target_model_name = g.model_name;
  u.temperature = g.temperature;
  u.problem_indices = g.problem_indices;
  u.sample_begin = g.sample_begin;
  u.sample_end = g.sample_end;
  u.seed = g.seed;
  // Score units go after every generate unit of the same wave position: generation keeps the GPUs
  // busy first.
  u.order_key = g.order_key + (int64_t{1} << 40);
  u.max_attempts = max_attempts;
  return u;
}

}  // namespace ttc::coordinator
