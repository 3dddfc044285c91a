#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <unordered_set>

#include "engine/tokenizer.h"

namespace ttc::engine {

const char* FinishReasonName(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Live {
  size_t result;  // index into GenerateResult::samples
  int slot;
  int32_t last_token;  // the last collected draw (the next token when nothing is in flight)
  int64_t pos;         // position of the next token fed
  uint64_t seed;
  int inflight = 0;  // launched draws not collected yet
  int64_t row = 0;   // its row in the last launched step (its token there, when inflight > 0)
};

// A launched decode step whose draws are not collected yet.
struct Flight {
  std::vector<size_t> results;  // per row
  Clock::time_point t0;
};

}  // namespace

Result<GenerateResult> Generate(Model& model, const GenerateRequest& req) {
  const ModelConfig& config = model.config();
  const int64_t V = config.vocab_size;
  TTC_RETURN_IF_ERROR(ValidateSamplingParams(req.sampling));
  if (req.max_new_tokens < 1) return InvalidArgument("generate: max_new_tokens must be at least 1");
  if (req.prompts.empty()) return InvalidArgument("generate: no prompts");
  int64_t total_samples = 0;
  for (size_t p = 0; p < req.prompts.size(); ++p) {
    const auto& pr = req.prompts[p];
    if (pr.prompt_ids.empty()) return InvalidArgument("generate: prompt {} is empty", p);
    if (pr.num_samples < 1)
      return InvalidArgument("generate: prompt {} asks for {} samples", p, pr.num_samples);
    if (pr.first_sample_index < 0)
      return InvalidArgument("generate: prompt {} has a negative sample index", p);
    for (size_t i = 0; i < pr.prompt_ids.size(); ++i) {
      if (pr.prompt_ids[i] < 0 || pr.prompt_ids[i] >= V) {
        return InvalidArgument(
            "generate: prompt {} token {} (id {}) is outside the vocabulary (size {})", p, i,
            pr.prompt_ids[i], V);
      }
    }
    total_samples += pr.num_samples;
  }
  if (total_samples > (1 << 20))
    return InvalidArgument("generate: {} samples is too many", total_samples);
  const std::vector<int32_t>& stops = req.stop_ids ? *req.stop_ids : config.stop_ids;
  const std::unordered_set<int32_t> stop_set(stops.begin(), stops.end());

  TTC_ASSIGN_OR_RETURN(auto state, model.NewState(static_cast<int>(total_samples)));
  GenerateResult result;
  result.samples.resize(static_cast<size_t>(total_samples));
  std::vector<Live> live;
  const Tokenizer* tok = req.decode_text ? model.tokenizer() : nullptr;

  auto finish = [&](SampleResult& s, FinishReason reason, int32_t stop_id) {
    s.finish = reason;
    s.stop_id = stop_id;
    s.generated_tokens = static_cast<int64_t>(s.tokens.size()) + (stop_id >= 0 ? 1 : 0);
    if (tok) s.text = tok->Decode(s.tokens);
    if (req.on_sample_done) req.on_sample_done(s);
  };
  // Appends a sampled token; returns true while the sample goes on.
  auto accept = [&](SampleResult& s, int32_t token) {
    if (stop_set.count(token)) {
      finish(s, FinishReason::kStop, token);
      return false;
    }
    s.tokens.push_back(token);
    if (static_cast<int64_t>(s.tokens.size()) >= req.max_new_tokens) {
      finish(s, FinishReason::kLength, -1);
      return false;
    }
    return true;
  };

  std::vector<SampleKey> keys;
  std::vector<int32_t> sampled;

  // Prefill each prompt once into its first sample's slot, fork, and draw every sample's first
  // token from the one prompt row.
  size_t next = 0;
  for (size_t p = 0; p < req.prompts.size(); ++p) {
    const auto& pr = req.prompts[p];
    const auto t0 = Clock::now();
    const int first_slot = static_cast<int>(next);
    const int64_t L = static_cast<int64_t>(pr.prompt_ids.size());
    BatchLayout batch{{{first_slot, 0, L}}};
    const int64_t last_row = L - 1;
    keys.resize(static_cast<size_t>(pr.num_samples));
    sampled.resize(keys.size());
    for (int i = 0; i < pr.num_samples; ++i)
      keys[static_cast<size_t>(i)] = {pr.seed, static_cast<uint64_t>(pr.first_sample_index + i), 0};
    TTC_RETURN_IF_ERROR(model.ForwardSample(state.get(), batch, pr.prompt_ids,
                                            std::span(&last_row, 1), req.sampling, keys, sampled));
    for (int i = 1; i < pr.num_samples; ++i) state->CopySlot(first_slot, first_slot + i);
    if (req.on_step && !req.on_step(pr.num_samples))
      return Unavailable("generate: cancelled after the prefill of prompt {}", p);
    const double prefill_s = Seconds(t0, Clock::now());
    result.timings.prefill_s += prefill_s;
    for (int i = 0; i < pr.num_samples; ++i) {
      SampleResult& s = result.samples[next];
      s.prompt_index = static_cast<int>(p);
      s.sample_index = pr.first_sample_index + i;
      s.prompt_tokens = L;
      s.prefill_s = prefill_s;
      const int32_t token = sampled[static_cast<size_t>(i)];
      if (accept(s, token)) live.push_back({next, first_slot + i, token, L, pr.seed});
      ++next;
    }
  }

  // Decode all live samples in lockstep. A step is launched for every sample that may go on, then
  // the oldest step in flight is collected: at once (not pipelined), or once the next step is
  // launched too (pipelined: its tokens are the draws still on the backend).
  const bool pipelined =
      req.pipeline == DecodePipeline::kOn ||
      (req.pipeline == DecodePipeline::kAuto && model.backend().PrefersPipelinedDecode());
  const auto decode_start = Clock::now();
  auto last_collect = decode_start;
  std::deque<Flight> flights;
  std::vector<int32_t> tokens;
  std::vector<int64_t> rows, prev;
  std::vector<size_t> launched;  // live indices of a launched step's rows
  // Leaves no draws pending in the model when the loop ends early.
  auto fail = [&](Status st) -> Status {
    for (; !flights.empty(); flights.pop_front()) {
      sampled.resize(flights.front().results.size());
      (void)model.CollectSample(sampled);
    }
    return st;
  };
  while (true) {
    // Launch: samples with a draw in flight take it as their token (pipelined: all of them after
    // the first step), the others their last collected draw.
    BatchLayout batch;
    Flight f;
    f.t0 = Clock::now();
    tokens.clear();
    prev.clear();
    keys.clear();
    launched.clear();
    for (size_t i = 0; i < live.size(); ++i) {
      const Live& l = live[i];
      const SampleResult& s = result.samples[l.result];
      const int64_t drawn = static_cast<int64_t>(s.tokens.size()) + l.inflight;
      if (drawn >= req.max_new_tokens) continue;  // its pending draw is its last
      launched.push_back(i);
      batch.seqs.push_back({l.slot, l.pos, 1});
      if (l.inflight > 0) {
        prev.push_back(l.row);
      } else {
        tokens.push_back(l.last_token);
      }
      // The step is the number of tokens drawn so far (a stop token is never followed).
      keys.push_back({l.seed, static_cast<uint64_t>(s.sample_index), static_cast<uint64_t>(drawn)});
      f.results.push_back(l.result);
    }
    if (!tokens.empty() && !prev.empty())
      return fail(Internal("generate: a decode step mixes host tokens and pipelined draws"));
    if (!batch.seqs.empty()) {
      rows.resize(batch.seqs.size());
      for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
      Status st =
          model.ForwardSampleAsync(state.get(), batch, tokens, prev, rows, req.sampling, keys);
      if (!st.ok()) return fail(st);
      for (size_t r = 0; r < launched.size(); ++r) {
        Live& l = live[launched[r]];
        ++l.inflight;
        l.row = static_cast<int64_t>(r);
        l.pos += 1;
      }
      flights.push_back(std::move(f));
    }
    if (flights.empty()) break;
    if (pipelined && flights.size() < 2 && !batch.seqs.empty()) continue;

    // Collect the oldest step: rows of samples that stopped in an earlier step are discarded.
    Flight done = std::move(flights.front());
    flights.pop_front();
    sampled.resize(done.results.size());
    Status st = model.CollectSample(sampled);
    if (!st.ok()) return fail(st);
    const auto now = Clock::now();
    const double decode_so_far = Seconds(decode_start, now);
    // live and the step's rows are both in increasing result order (live is built in that order
    // and only loses entries; a step's rows are a subsequence of live when it was launched), so
    // one merge pass finds each row's sample.
    int64_t drawn_rows = 0;
    size_t li = 0;
    for (size_t i = 0; i < done.results.size(); ++i) {
      while (li < live.size() && live[li].result < done.results[i]) ++li;
      if (li == live.size() || live[li].result != done.results[i]) continue;  // stopped earlier
      Live& l = live[li];
      SampleResult& s = result.samples[l.result];
      --l.inflight;
      ++drawn_rows;
      s.decode_s = decode_so_far;
      if (accept(s, sampled[i])) {
        l.last_token = sampled[i];
      } else {
        l.slot = -1;  // finished: dropped below
      }
    }
    std::erase_if(live, [](const Live& l) { return l.slot < 0; });
    const int B = static_cast<int>(done.results.size());
    result.timings.steps += 1;
    result.timings.live_batch.push_back(B);
    result.timings.step_s.push_back(Seconds(std::max(done.t0, last_collect), now));
    last_collect = now;
    if (req.on_step && !req.on_step(drawn_rows)) {
      return fail(Unavailable("generate: cancelled after {} decode steps", result.timings.steps));
    }
  }
  result.timings.decode_s = Seconds(decode_start, Clock::now());
  return result;
}

}  // namespace ttc::engine
