// Scoring: one forward pass over a token sequence, returning the probability (and log-probability)
// of chosen tokens at chosen positions under the model's full softmax, plus the raw logits of
// optional candidate ids. This is the primitive behind process-reward-model scoring
// (../shared/reference/evaluation.md §6: the PRM step score is softmax over the '+' and '-' logits
// at each step's position). Thread-safety: Score uses the Model exclusively for the duration of the
// call.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "engine/model.h"

namespace ttc::engine {

struct ScoreQuery {
  int64_t position = 0;  // logits after consuming token_ids[0..position]
  int32_t token_id = 0;  // the token whose probability is wanted at that position
};

struct ScoreResult {
  std::vector<float> probs;     // per query, softmax over the whole vocabulary
  std::vector<float> logprobs;  // per query
  // Per query, logits of ScoreRequest::candidate_ids (row-major [queries, candidates]); empty
  // without candidates.
  std::vector<float> candidate_logits;
};

struct ScoreRequest {
  std::vector<int32_t> token_ids;
  std::vector<ScoreQuery> queries;
  std::vector<int32_t> candidate_ids;  // e.g. {plus, minus} for PRM step scores
};

// Errors: empty sequence, ids outside the vocabulary, positions outside the sequence.
Result<ScoreResult> Score(Model& model, const ScoreRequest& request);

// PRM step score from candidate logits: softmax over {plus, minus} taken at plus, in float32
// (1 / (1 + exp(minus - plus))).
float PlusProbability(float plus_logit, float minus_logit);

}  // namespace ttc::engine
