#include "engine/score.h"

#include <fmt/format.h>

#include <algorithm>
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

// The requests a batch scores, by reference (ScoreInBatches scores a subset, without copies).
using RequestRefs = std::span<const ScoreRequest* const>;

// Runs of consecutive requests whose token sequences begin alike (ScoreBatch's prefix sharing):
// requests [first, last] share their first `shared` tokens (0: the run is one request, or too
// little is shared to be worth a pass of its own).
struct PrefixRun {
  size_t first = 0, last = 0;
  int64_t shared = 0;
};

int64_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return ia - a.begin();
}

// Greedy: a request joins the current run while the run keeps at least kMinSharedPrefix tokens in
// common, every member keeping one token of its own (its slot forks from the prefix and then runs
// at least one row).
std::vector<PrefixRun> PrefixRuns(RequestRefs requests) {
  std::vector<PrefixRun> runs;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto L = static_cast<int64_t>(requests[i]->token_ids.size());
    if (!runs.empty()) {
      PrefixRun& r = runs.back();
      const std::vector<int32_t>& lead = requests[r.first]->token_ids;
      // A lone lead keeps one token of its own too; a longer run keeps what all share.
      const int64_t cap = r.first == r.last ? static_cast<int64_t>(lead.size()) - 1 : r.shared;
      const int64_t shared = std::min({CommonPrefix(lead, requests[i]->token_ids), L - 1, cap});
      if (shared >= kMinSharedPrefix) {
        r.last = i;
        r.shared = shared;
        continue;
      }
    }
    runs.push_back({i, i, 0});
  }
  return runs;
}

// The runs of requests [begin, end) of a list whose runs are `runs`, indexed from begin: a run cut
// by the range keeps its prefix (every member shares it), and one member alone shares nothing.
std::vector<PrefixRun> ClipRuns(std::span<const PrefixRun> runs, size_t begin, size_t end) {
  std::vector<PrefixRun> out;
  for (const PrefixRun& r : runs) {
    if (r.last < begin || r.first >= end) continue;
    const size_t first = std::max(r.first, begin) - begin, last = std::min(r.last, end - 1) - begin;
    out.push_back({first, last, last > first ? r.shared : 0});
  }
  return out;
}

// ScoreBatch on requests already checked (CheckRequest) whose runs are `runs` (PrefixRuns);
// *forwards counts the passes.
Result<std::vector<ScoreResult>> ScoreChecked(Model& model, RequestRefs requests,
                                              std::span<const PrefixRun> runs,
                                              int64_t* forwards = nullptr) {
  const int64_t V = model.config().vocab_size;
  if (requests.empty()) return std::vector<ScoreResult>{};
  // Each request in its own slot (slot i). A run of requests that begin alike first runs their
  // common prefix once, in its first request's slot, then forks it into the others' slots
  // (StateCache::CopySlot, as Generate forks a prompt into its samples); the second pass runs every
  // request's remaining tokens. The rows are the same rows a single pass would run, in two parts,
  // so the logits are too (bit for bit on the CPU backend). The LM head runs once per distinct
  // scored position of each request (once per run for a position inside the shared prefix).
  std::vector<int64_t> start(requests.size(), 0);  // first token of request i in the second pass
  BatchLayout prefix_batch, batch;
  std::vector<int32_t> prefix_tokens, tokens;
  std::vector<int64_t> prefix_rows, rows;
  // (pass, row) of each request's scored positions.
  std::vector<std::map<int64_t, std::pair<int, size_t>>> row_of(requests.size());
  int64_t prefix_offset = 0;
  for (const PrefixRun& run : runs) {
    if (run.shared == 0) continue;
    const ScoreRequest& lead = *requests[run.first];
    prefix_batch.seqs.push_back({static_cast<int>(run.first), 0, run.shared});
    prefix_tokens.insert(prefix_tokens.end(), lead.token_ids.begin(),
                         lead.token_ids.begin() + run.shared);
    std::map<int64_t, size_t> run_rows;
    for (size_t i = run.first; i <= run.last; ++i) {
      start[i] = run.shared;
      for (const auto& q : requests[i]->queries) {
        if (q.position >= run.shared) continue;
        auto [it, added] = run_rows.emplace(q.position, prefix_rows.size());
        if (added) prefix_rows.push_back(prefix_offset + q.position);
        row_of[i].emplace(q.position, std::pair{0, it->second});
      }
    }
    prefix_offset += run.shared;
  }
  int64_t offset = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const ScoreRequest& req = *requests[i];
    const auto L = static_cast<int64_t>(req.token_ids.size());
    batch.seqs.push_back({static_cast<int>(i), start[i], L - start[i]});
    tokens.insert(tokens.end(), req.token_ids.begin() + start[i], req.token_ids.end());
    for (const auto& q : req.queries) {
      if (q.position < start[i] || row_of[i].count(q.position) > 0) continue;
      row_of[i].emplace(q.position, std::pair{1, rows.size()});
      rows.push_back(offset + q.position - start[i]);
    }
    offset += L - start[i];
  }
  TTC_ASSIGN_OR_RETURN(auto state, model.NewState(static_cast<int>(requests.size())));
  std::vector<float> logits[2];
  if (!prefix_batch.seqs.empty()) {
    TTC_RETURN_IF_ERROR(model.Forward(state.get(), prefix_batch, prefix_tokens, prefix_rows,
                                      prefix_rows.empty() ? nullptr : &logits[0]));
    for (const PrefixRun& run : runs) {
      for (size_t i = run.first + 1; run.shared > 0 && i <= run.last; ++i) {
        state->CopySlot(static_cast<int>(run.first), static_cast<int>(i));
      }
    }
    if (forwards != nullptr) ++*forwards;
  }
  TTC_RETURN_IF_ERROR(model.Forward(state.get(), batch, tokens, rows, &logits[1]));
  if (forwards != nullptr) ++*forwards;
  std::map<std::pair<int, size_t>, std::vector<float>> logp_rows;
  std::vector<ScoreResult> out(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    for (const auto& q : requests[i]->queries) {
      const auto at = row_of[i].at(q.position);
      std::span<const float> row(logits[at.first].data() + at.second * V, static_cast<size_t>(V));
      std::vector<float>& logp = logp_rows[at];
      if (logp.empty()) {
        logp.resize(static_cast<size_t>(V));
        LogSoftmax(row, logp);
      }
      const float lp = logp[static_cast<size_t>(q.token_id)];
      out[i].logprobs.push_back(lp);
      out[i].probs.push_back(std::exp(lp));
      for (int32_t c : requests[i]->candidate_ids) {
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
  std::vector<const ScoreRequest*> refs;
  for (const ScoreRequest& r : requests) refs.push_back(&r);
  return ScoreChecked(model, refs, PrefixRuns(refs));
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
  // Identical requests are scored once (a unit's samples often repeat: the default experiment's
  // tiny models wrote 6,656 distinct completions of 19,200). `unique` holds the first of each kind,
  // in order; copies[u] the later requests equal to unique[u].
  std::vector<size_t> unique;
  std::vector<const ScoreRequest*> todo;  // requests[unique[u]]
  std::vector<std::vector<size_t>> copies;
  {
    auto by_value = [](const std::vector<int32_t>* a, const std::vector<int32_t>* b) {
      return *a < *b;
    };
    // Token ids -> the unique requests with them (compared whole: queries, candidates).
    std::map<const std::vector<int32_t>*, std::vector<size_t>, decltype(by_value)> by_tokens(
        by_value);
    for (size_t i = 0; i < requests.size(); ++i) {
      std::vector<size_t>& seen = by_tokens[&requests[i].token_ids];
      const auto same =
          std::find_if(seen.begin(), seen.end(), [&](size_t u) { return *todo[u] == requests[i]; });
      if (same != seen.end()) {
        copies[*same].push_back(i);
        continue;
      }
      seen.push_back(todo.size());
      unique.push_back(i);
      todo.push_back(&requests[i]);
      copies.emplace_back();
    }
  }
  // What a request adds to a batch: its tokens, less the prefix it shares with the request before
  // it in the same batch (ScoreBatch runs that prefix once). The runs are found once; each batch
  // takes its part of them (ClipRuns).
  const std::vector<PrefixRun> runs = PrefixRuns(todo);
  std::vector<int64_t> shared_with_previous(todo.size(), 0);
  for (const PrefixRun& run : runs) {
    for (size_t i = run.first + 1; i <= run.last; ++i) shared_with_previous[i] = run.shared;
  }
  int64_t forwards = 0;
  for (size_t begin = 0; begin < todo.size();) {
    if (cancelled && cancelled()) return Unavailable("scoring cancelled");
    size_t end = begin;
    int64_t tokens = 0;
    auto cost = [&](size_t i) {
      const auto L = static_cast<int64_t>(todo[i]->token_ids.size());
      return i > begin ? L - shared_with_previous[i] : L;
    };
    while (end < todo.size() &&
           ScoreBatchFits(static_cast<int64_t>(end - begin), tokens, cost(end), max_tokens)) {
      tokens += cost(end);
      ++end;
    }
    auto results = ScoreChecked(model, std::span(todo).subspan(begin, end - begin),
                                ClipRuns(runs, begin, end), &forwards);
    if (!results.ok()) {
      return results.status().WithContext(
          fmt::format("score requests {} to {}", unique[begin], unique[end - 1]));
    }
    for (size_t u = begin; u < end; ++u) {
      ScoreResult& r = (*results)[u - begin];
      for (size_t c : copies[u]) on_result(c, ScoreResult(r));
      on_result(unique[u], std::move(r));
    }
    begin = end;
  }
  return forwards;
}

}  // namespace ttc::engine
