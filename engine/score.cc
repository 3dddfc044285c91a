#include "engine/score.h"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <span>
#include <vector>

#include "engine/sampler.h"

namespace ttc::engine {

namespace {

Status CheckRequest(const ScoreRequest& req, int64_t V) {
  const int64_t L = static_cast<int64_t>(req.token_ids.size());
  if (L == 0) return InvalidArgument("score: empty token sequence");
  for (int32_t id : req.token_ids) {
    if (id < 0 || id >= V) {
      return InvalidArgument("score: token id {} is outside the vocabulary (size {})", id, V);
    }
  }
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
  return Status::Ok();
}

// ScoreBatch on requests already checked (CheckRequest).
Result<std::vector<ScoreResult>> ScoreChecked(Model& model,
                                              std::span<const ScoreRequest> requests) {
  const int64_t V = model.config().vocab_size;
  if (requests.empty()) return std::vector<ScoreResult>{};
  // One sequence per slot, rows in request order; the LM head runs once per distinct scored
  // position of each request.
  BatchLayout batch;
  std::vector<int32_t> tokens;
  std::vector<int64_t> rows;
  std::vector<std::map<int64_t, size_t>> row_of(requests.size());
  int64_t offset = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const ScoreRequest& req = requests[i];
    const auto L = static_cast<int64_t>(req.token_ids.size());
    batch.seqs.push_back({static_cast<int>(i), 0, L});
    tokens.insert(tokens.end(), req.token_ids.begin(), req.token_ids.end());
    for (const auto& q : req.queries) {
      if (row_of[i].emplace(q.position, rows.size()).second) rows.push_back(offset + q.position);
    }
    offset += L;
  }
  TTC_ASSIGN_OR_RETURN(auto state, model.NewState(static_cast<int>(requests.size())));
  std::vector<float> logits;
  TTC_RETURN_IF_ERROR(model.Forward(state.get(), batch, tokens, rows, &logits));
  std::vector<std::vector<float>> logp_rows(rows.size());
  std::vector<ScoreResult> out(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    for (const auto& q : requests[i].queries) {
      const size_t r = row_of[i].at(q.position);
      std::span<const float> row(logits.data() + r * V, static_cast<size_t>(V));
      if (logp_rows[r].empty()) {
        logp_rows[r].resize(static_cast<size_t>(V));
        LogSoftmax(row, logp_rows[r]);
      }
      const float lp = logp_rows[r][static_cast<size_t>(q.token_id)];
      out[i].logprobs.push_back(lp);
      out[i].probs.push_back(std::exp(lp));
      for (int32_t c : requests[i].candidate_ids) {
        out[i].candidate_logits.push_back(row[static_cast<size_t>(c)]);
      }
    }
  }
  return out;
}

// Every request checked, an error naming the request when there are several.
Status CheckRequests(std::span<const ScoreRequest> requests, int64_t V) {
  for (size_t i = 0; i < requests.size(); ++i) {
    Status st = CheckRequest(requests[i], V);
    if (!st.ok()) {
      return requests.size() == 1 ? st : st.WithContext(fmt::format("score request {}", i));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ScoreResult> Score(Model& model, const ScoreRequest& req) {
  TTC_ASSIGN_OR_RETURN(std::vector<ScoreResult> out, ScoreBatch(model, std::span(&req, 1)));
  return std::move(out[0]);
}

Result<std::vector<ScoreResult>> ScoreBatch(Model& model, std::span<const ScoreRequest> requests) {
  TTC_RETURN_IF_ERROR(CheckRequests(requests, model.config().vocab_size));
  return ScoreChecked(model, requests);
}

bool ScoreBatchFits(int64_t batch_requests, int64_t batch_tokens, int64_t tokens,
                    int64_t max_tokens) {
  return batch_requests == 0 ||
         (batch_requests < kScoreBatchRequests && batch_tokens + tokens <= max_tokens);
}

float PlusProbability(float plus_logit, float minus_logit) {
  return 1.0f / (1.0f + std::exp(minus_logit - plus_logit));
}

Result<int64_t> ScoreInBatches(Model& model, std::span<const ScoreRequest> requests,
                               int64_t max_tokens,
                               const std::function<void(size_t, ScoreResult&&)>& on_result,
                               const std::function<bool()>& cancelled) {
  TTC_RETURN_IF_ERROR(CheckRequests(requests, model.config().vocab_size));
  int64_t forwards = 0;
  for (size_t begin = 0; begin < requests.size(); ++forwards) {
    if (cancelled && cancelled()) return Unavailable("scoring cancelled");
    size_t end = begin;
    int64_t tokens = 0;
    while (end < requests.size() &&
           ScoreBatchFits(static_cast<int64_t>(end - begin), tokens,
                          static_cast<int64_t>(requests[end].token_ids.size()), max_tokens)) {
      tokens += static_cast<int64_t>(requests[end].token_ids.size());
      ++end;
    }
    auto results = ScoreChecked(model, requests.subspan(begin, end - begin));
    if (!results.ok()) {
      return results.status().WithContext(fmt::format("score requests {} to {}", begin, end - 1));
    }
    for (size_t i = begin; i < end; ++i) on_result(i, std::move((*results)[i - begin]));
    begin = end;
  }
  return forwards;
}

}  // namespace ttc::engine
