// Scoring: one forward pass over a token sequence, returning the probability (and log-probability)
// of chosen tokens at chosen positions under the model's full softmax, plus the raw logits of
// optional candidate ids. This is the primitive behind process-reward-model scoring
// (../shared/reference/evaluation.md §6: the PRM step score is softmax over the '+' and '-' logits
// at each step's position). Thread-safety: Score uses the Model exclusively for the duration of the
// call.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/result.h"
#include "engine/model.h"

namespace ttc::engine {

struct ScoreQuery {
  int64_t position = 0;  // logits after consuming token_ids[0..position]
  int32_t token_id = 0;  // the token whose probability is wanted at that position
  bool operator==(const ScoreQuery&) const = default;
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
  bool operator==(const ScoreRequest&) const = default;
};

// Errors: empty sequence, ids outside the vocabulary, positions outside the sequence.
Result<ScoreResult> Score(Model& model, const ScoreRequest& request);

// Several requests in one forward pass, each sequence in a slot of its own: the results of Score
// on each, in order (on the CPU backend bit for bit; on the CUDA backend the GEMMs see more rows,
// so their inputs may be rounded where a lone short request's were split, within bf16 precision).
// One forward fills a GPU where a request of a few hundred tokens cannot; the caller keeps the
// batch to what the backend wants (Backend::PrefillBatchTokens, ScoreBatchFits). Consecutive
// requests that begin with the same kMinSharedPrefix or more tokens (a PRM's conversations of one
// question: the header and the question) share them: a first pass runs the common prefix once and
// forks it into each request's slot, the second pass runs the rest, so those tokens go through the
// model once instead of once per request. Errors: as Score, naming the request.
inline constexpr int64_t kMinSharedPrefix = 16;
Result<std::vector<ScoreResult>> ScoreBatch(Model& model, std::span<const ScoreRequest> requests);

// Whether a request of `tokens` tokens may join a batch already holding `batch_requests` requests
// of `batch_tokens` tokens: at most max_tokens tokens and kScoreBatchRequests requests in all, or
// the request alone (always, with max_tokens 0).
inline constexpr int64_t kScoreBatchRequests = 64;
bool ScoreBatchFits(int64_t batch_requests, int64_t batch_tokens, int64_t tokens,
                    int64_t max_tokens);

// Scores `requests` in order, in batches that ScoreBatchFits allows with max_tokens (0: one per
// forward; a request that shares a prefix with the one before it counts only its own tokens),
// calling on_result(i, result) for each request as its batch finishes. A request equal to an
// earlier one (tokens, queries and candidates) is not scored again: it gets that one's result,
// delivered just before it. Returns the number of forward passes (two for a batch with a shared
// prefix, see ScoreBatch). Order the requests so that those with a common beginning are adjacent.
// Every request is checked first (an error names it, and nothing is scored). Stops with
// Unavailable when `cancelled` (asked before each batch) says so, and at a forward's error, naming
// the batch's requests; the results before it have been delivered.
Result<int64_t> ScoreInBatches(Model& model, std::span<const ScoreRequest> requests,
                               int64_t max_tokens,
                               const std::function<void(size_t, ScoreResult&&)>& on_result,
                               const std::function<bool()>& cancelled = {});

// PRM step score from candidate logits: softmax over {plus, minus} taken at plus, in float32
// (1 / (1 + exp(minus - plus))).
float PlusProbability(float plus_logit, float minus_logit);

}  // namespace ttc::engine
