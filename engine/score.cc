#include "engine/score.h"

#include <cmath>
#include <map>

#include "engine/sampler.h"

namespace ttc::engine {

Result<ScoreResult> Score(Model& model, const ScoreRequest& req) {
  const int64_t L = static_cast<int64_t>(req.token_ids.size());
  const int64_t V = model.config().vocab_size;
  if (L == 0) return InvalidArgument("score: empty token sequence");
  for (const auto& q : req.queries) {
    if (q.position < 0 || q.position >= L) {
      return InvalidArgument("score: position {} is outside the sequence of {} tokens", q.position,
                             L);
    }
    if (q.token_id < 0 || q.token_id >= V) {
      return InvalidArgument("score: token id {} is outside the vocabulary (size {})", q.token_id,
                             V);
    }
  }
  for (int32_t c : req.candidate_ids) {
    if (c < 0 || c >= V)
      return InvalidArgument("score: candidate id {} is outside the vocabulary", c);
  }
  // Distinct positions only: the LM head runs once per scored position.
  std::map<int64_t, size_t> row_of;
  std::vector<int64_t> rows;
  for (const auto& q : req.queries) {
    if (row_of.emplace(q.position, rows.size()).second) rows.push_back(q.position);
  }
  TTC_ASSIGN_OR_RETURN(auto state, model.NewState(1));
  std::vector<float> logits;
  BatchLayout batch{{{0, 0, L}}};
  TTC_RETURN_IF_ERROR(model.Forward(state.get(), batch, req.token_ids, rows, &logits));
  std::vector<float> logp(static_cast<size_t>(V));
  std::vector<std::vector<float>> logp_rows(rows.size());
  ScoreResult out;
  for (const auto& q : req.queries) {
    const size_t r = row_of.at(q.position);
    std::span<const float> row(logits.data() + r * V, static_cast<size_t>(V));
    if (logp_rows[r].empty()) {
      logp_rows[r].resize(static_cast<size_t>(V));
      LogSoftmax(row, logp_rows[r]);
    }
    const float lp = logp_rows[r][static_cast<size_t>(q.token_id)];
    out.logprobs.push_back(lp);
    out.probs.push_back(std::exp(lp));
    for (int32_t c : req.candidate_ids) out.candidate_logits.push_back(row[static_cast<size_t>(c)]);
  }
  return out;
}

float PlusProbability(float plus_logit, float minus_logit) {
  return 1.0f / (1.0f + std::exp(minus_logit - plus_logit));
}

}  // namespace ttc::engine
