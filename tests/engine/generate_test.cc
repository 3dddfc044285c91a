// Generate and Score API behaviour: stop ids, lengths, callbacks, greedy determinism, timings,
// errors.
#include "engine/generate.h"

#include <gtest/gtest.h>

#include <random>

#include "engine/sampler.h"
#include "engine/score.h"
#include "tests/engine/engine_test_util.h"

namespace ttc {
namespace {

std::unique_ptr<engine::Model> LoadLlama() {
  auto m = engine::LoadModel(testing::GoldenModel("llama"), testing::OneThread());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

TEST(Generate, GreedyFollowsGoldenChainAndStopsOnStopId) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  auto golden = engine::SafetensorsFile::Open(testing::GoldenModel("llama") / "golden.safetensors");
  ASSERT_TRUE(golden.ok());
  auto prompt64 = testing::ReadI64(*(*golden)->Find("prompt_ids"));
  auto chain = testing::ReadI64(*(*golden)->Find("decode_ids"));
  engine::GenerateRequest req;
  req.prompts.push_back({std::vector<int32_t>(prompt64.begin(), prompt64.end()), 1, 0, 2});
  req.sampling.greedy = true;
  req.max_new_tokens = 16;
  req.stop_ids = std::vector<int32_t>{};
  int callbacks = 0;
  req.on_sample_done = [&](const engine::SampleResult& s) {
    ++callbacks;
    EXPECT_EQ(s.finish, engine::FinishReason::kLength);
  };
  auto res = engine::Generate(*model, req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(callbacks, 2);
  ASSERT_EQ(res->samples.size(), 2u);
  for (const auto& s : res->samples) {
    ASSERT_EQ(s.tokens.size(), 16u);
    for (size_t i = 0; i < 16; ++i) EXPECT_EQ(s.tokens[i], chain[i]) << i;
    EXPECT_EQ(s.prompt_tokens, 24);
    EXPECT_EQ(s.generated_tokens, 16);
  }
  EXPECT_EQ(res->timings.steps, 15);  // the 16th token comes from the 15th decode step
  EXPECT_EQ(res->timings.live_batch, std::vector<int>(15, 2));

  // Stopping on the 5th greedy token: it is not part of tokens, and the sample ends there.
  req.stop_ids = std::vector<int32_t>{static_cast<int32_t>(chain[4])};
  req.on_sample_done = nullptr;
  res = engine::Generate(*model, req);
  ASSERT_TRUE(res.ok());
  const auto& s = res->samples[0];
  EXPECT_EQ(s.finish, engine::FinishReason::kStop);
  EXPECT_EQ(s.stop_id, chain[4]);
  size_t first = 0;
  while (chain[first] != chain[4]) ++first;
  EXPECT_EQ(s.tokens.size(), first);
  EXPECT_EQ(s.generated_tokens, static_cast<int64_t>(first) + 1);
}

TEST(Generate, SeedsChangeSamples) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  engine::GenerateRequest req;
  req.prompts.push_back({{1, 2, 3}, 7, 0, 1});
  req.prompts.push_back({{1, 2, 3}, 8, 0, 1});
  req.max_new_tokens = 12;
  req.stop_ids = std::vector<int32_t>{};
  auto res = engine::Generate(*model, req);
  ASSERT_TRUE(res.ok());
  EXPECT_NE(res->samples[0].tokens, res->samples[1].tokens);
}

TEST(Generate, OnStepCountsEveryDrawAndCanStop) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  engine::GenerateRequest req;
  req.prompts.push_back({{1, 2, 3, 4, 5}, 7, 0, 3});
  req.prompts.push_back({{9, 8, 7}, 7, 0, 2});
  req.sampling.temperature = 1.0f;
  req.max_new_tokens = 12;
  req.stop_ids = std::vector<int32_t>{};
  int64_t drawn = 0, calls = 0;
  req.on_step = [&](int64_t n) {
    drawn += n;
    ++calls;
    return true;
  };
  auto res = engine::Generate(*model, req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  int64_t tokens = 0;
  for (const auto& s : res->samples) tokens += s.generated_tokens;
  EXPECT_EQ(drawn, tokens);  // progress equals what the samples hold, step by step
  EXPECT_EQ(calls, 2 + res->timings.steps);

  // Returning false stops at once with a clear status; nothing finished late is reported.
  int done = 0;
  req.on_sample_done = [&](const engine::SampleResult&) { ++done; };
  req.on_step = [&](int64_t) { return calls++ < 4; };
  calls = 0;
  res = engine::Generate(*model, req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(res.status().message().find("cancelled"), std::string::npos);
  EXPECT_EQ(done, 0);
}

TEST(Generate, ForwardSampleEqualsForwardThenSampleToken) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  const int64_t V = model->config().vocab_size;
  auto st_a = model->NewState(3);
  auto st_b = model->NewState(3);
  ASSERT_TRUE(st_a.ok() && st_b.ok());
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6};
  const int64_t last = static_cast<int64_t>(prompt.size()) - 1;
  const engine::SamplingParams p{.temperature = 0.9f, .top_k = 20, .top_p = 0.9f};
  // One prompt row feeds three draws (one per sample), as Generate's prefill does.
  std::vector<engine::SampleKey> keys = {{5, 0, 0}, {5, 1, 0}, {5, 2, 0}};
  std::vector<int32_t> ids(3);
  ASSERT_TRUE(
      model->ForwardSample(st_a->get(), {{{0, 0, 8}}}, prompt, std::span(&last, 1), p, keys, ids)
          .ok());
  std::vector<float> logits;
  ASSERT_TRUE(
      model->Forward(st_b->get(), {{{0, 0, 8}}}, prompt, std::span(&last, 1), &logits).ok());
  ASSERT_EQ(static_cast<int64_t>(logits.size()), V);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ids[i], engine::SampleToken(logits, p, 5, i, 0, nullptr)) << i;
  }
  // Keys that are not a multiple of the rows are refused, naming the counts.
  std::vector<int32_t> two(2);
  const std::vector<int64_t> rows = {last, last - 1, last - 2};
  auto st = model->ForwardSample(st_a->get(), {{{1, 0, 8}}}, prompt, rows, p,
                                 std::span(keys.data(), 2), two);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("3 logit rows"), std::string::npos) << st.message();
}

// The pipelined decode loop (each step launched before the previous step's draws are collected,
// its tokens taken from those draws on the backend, stops applied one step late) gives exactly
// the samples of the step-by-step loop: same tokens, stop ids, finish reasons and progress
// counts, with samples stopping at many different steps (a stop id every 37 ids) and at the
// length limit. A cancelled pipelined run leaves no draws pending: the model serves the next one.
TEST(Generate, PipelinedDecodeGivesTheSameSamples) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  const int64_t V = model->config().vocab_size;
  engine::GenerateRequest req;
  req.prompts = {{{1, 5, 9, 30, 7, 2, 11, 40, 3}, 7, 0, 5}, {{4, 8, 15, 16, 23, 42}, 9, 3, 4}};
  req.sampling = {.temperature = 1.0f, .top_k = 50};
  req.max_new_tokens = 24;
  req.decode_text = false;
  std::vector<int32_t> stops;
  for (int32_t id = 5; id < V; id += 37) stops.push_back(id);
  req.stop_ids = stops;
  int64_t drawn = 0;
  req.on_step = [&](int64_t n) {
    drawn += n;
    return true;
  };
  req.pipeline = engine::DecodePipeline::kOff;
  auto off = engine::Generate(*model, req);
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  const int64_t drawn_off = drawn;
  drawn = 0;
  req.pipeline = engine::DecodePipeline::kOn;
  auto on = engine::Generate(*model, req);
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  ASSERT_EQ(on->samples.size(), off->samples.size());
  int stopped = 0, by_length = 0;
  for (size_t i = 0; i < on->samples.size(); ++i) {
    EXPECT_EQ(on->samples[i].tokens, off->samples[i].tokens) << i;
    EXPECT_EQ(on->samples[i].stop_id, off->samples[i].stop_id) << i;
    EXPECT_EQ(on->samples[i].finish, off->samples[i].finish) << i;
    EXPECT_EQ(on->samples[i].generated_tokens, off->samples[i].generated_tokens) << i;
    (off->samples[i].finish == engine::FinishReason::kStop ? stopped : by_length) += 1;
  }
  EXPECT_GT(stopped, 0);  // the request exercises both endings
  EXPECT_GT(by_length, 0);
  EXPECT_EQ(drawn, drawn_off);
  // The step-by-step loop's batch shrinks as samples stop; the pipelined one carries each stopped
  // sample one step longer, so its rows add up to at least as many.
  int64_t rows_off = 0, rows_on = 0;
  for (int b : off->timings.live_batch) rows_off += b;
  for (int b : on->timings.live_batch) rows_on += b;
  EXPECT_GE(rows_on, rows_off);

  int calls = 0;
  req.on_step = [&](int64_t) { return ++calls < 3; };
  auto cancelled = engine::Generate(*model, req);
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.status().code(), StatusCode::kUnavailable);
  req.on_step = nullptr;
  auto again = engine::Generate(*model, req);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  for (size_t i = 0; i < again->samples.size(); ++i)
    EXPECT_EQ(again->samples[i].tokens, off->samples[i].tokens) << i;
}

// Model::ForwardSampleAsync / CollectSample refuse what would read or return the wrong draws.
TEST(Generate, PipelinedSamplingRefusesMisuse) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  auto st = model->NewState(4);
  ASSERT_TRUE(st.ok());
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
  const int64_t last = 4;
  const engine::SamplingParams p{.temperature = 1.0f};
  std::vector<engine::SampleKey> keys = {{1, 0, 0}, {1, 1, 0}};
  std::vector<int32_t> out(2);
  // Nothing pending, no previous call to take draws from.
  EXPECT_EQ(model->CollectSample(out).code(), StatusCode::kFailedPrecondition);
  const std::vector<int64_t> row0 = {0};
  EXPECT_EQ(model
                ->ForwardSampleAsync(st->get(), {{{0, 0, 1}}}, {}, row0, row0, p,
                                     std::span(keys.data(), 1))
                .code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(
      model->ForwardSampleAsync(st->get(), {{{0, 0, 5}}}, prompt, {}, std::span(&last, 1), p, keys)
          .ok());
  (*st)->CopySlot(0, 1);
  // Two rows taking draws 0 and 1 of that call; a third draw does not exist.
  const std::vector<int64_t> rows = {0, 1}, bad = {0, 2};
  EXPECT_EQ(
      model->ForwardSampleAsync(st->get(), {{{0, 5, 1}, {1, 5, 1}}}, {}, bad, rows, p, keys).code(),
      StatusCode::kInvalidArgument);
  std::vector<engine::SampleKey> next = {{1, 0, 1}, {1, 1, 1}};
  ASSERT_TRUE(
      model->ForwardSampleAsync(st->get(), {{{0, 5, 1}, {1, 5, 1}}}, {}, rows, rows, p, next).ok());
  // Two pending: a third launch and a synchronous ForwardSample are refused.
  EXPECT_EQ(model->ForwardSampleAsync(st->get(), {{{0, 6, 1}, {1, 6, 1}}}, {}, rows, rows, p, next)
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      model->ForwardSample(st->get(), {{{2, 0, 5}}}, prompt, std::span(&last, 1), p, keys, out)
          .code(),
      StatusCode::kFailedPrecondition);
  std::vector<int32_t> one(1);
  EXPECT_EQ(model->CollectSample(one).code(), StatusCode::kInvalidArgument);
  std::vector<int32_t> first(2), second(2);
  ASSERT_TRUE(model->CollectSample(first).ok());
  ASSERT_TRUE(model->CollectSample(second).ok());
  // The second step's draws are the ones a synchronous run draws after feeding the first ones.
  auto st2 = model->NewState(4);
  ASSERT_TRUE(st2.ok());
  std::vector<int32_t> sync_first(2), sync_second(2);
  ASSERT_TRUE(model
                  ->ForwardSample(st2->get(), {{{0, 0, 5}}}, prompt, std::span(&last, 1), p, keys,
                                  sync_first)
                  .ok());
  (*st2)->CopySlot(0, 1);
  ASSERT_TRUE(model
                  ->ForwardSample(st2->get(), {{{0, 5, 1}, {1, 5, 1}}}, sync_first, rows, p, next,
                                  sync_second)
                  .ok());
  EXPECT_EQ(first, sync_first);
  EXPECT_EQ(second, sync_second);
}

TEST(Generate, BadRequests) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  engine::GenerateRequest req;
  EXPECT_FALSE(engine::Generate(*model, req).ok());  // no prompts
  req.prompts.push_back({{}, 0, 0, 1});
  EXPECT_FALSE(engine::Generate(*model, req).ok());  // empty prompt
  req.prompts[0].prompt_ids = {1, 512};
  auto r = engine::Generate(*model, req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("512"), std::string::npos) << r.status().message();
  req.prompts[0].prompt_ids = {1, 2};
  req.prompts[0].num_samples = 0;
  EXPECT_FALSE(engine::Generate(*model, req).ok());
  req.prompts[0].num_samples = 1;
  req.sampling.top_p = 0.0f;
  EXPECT_FALSE(engine::Generate(*model, req).ok());
  req.sampling.top_p = 1.0f;
  req.max_new_tokens = 0;
  EXPECT_FALSE(engine::Generate(*model, req).ok());
}

TEST(Score, MatchesPrefillLogSoftmax) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  auto golden = engine::SafetensorsFile::Open(testing::GoldenModel("llama") / "golden.safetensors");
  ASSERT_TRUE(golden.ok());
  auto prompt64 = testing::ReadI64(*(*golden)->Find("prompt_ids"));
  auto ref = engine::ToFloat32(*(*golden)->Find("prefill_logits"));
  ASSERT_TRUE(ref.ok());
  engine::ScoreRequest req;
  req.token_ids.assign(prompt64.begin(), prompt64.end());
  req.queries = {{5, 10}, {23, 12}, {5, 12}};
  req.candidate_ids = {10, 12};
  auto res = engine::Score(*model, req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  ASSERT_EQ(res->probs.size(), 3u);
  ASSERT_EQ(res->candidate_logits.size(), 6u);
  for (size_t q = 0; q < 3; ++q) {
    const auto& query = req.queries[q];
    std::span<const float> row(ref->data() + query.position * 512, 512);
    std::vector<float> lp(512);
    engine::LogSoftmax(row, lp);
    EXPECT_NEAR(res->logprobs[q], lp[static_cast<size_t>(query.token_id)], 1e-3);
    EXPECT_NEAR(res->candidate_logits[2 * q], row[10], 1e-3);
    EXPECT_NEAR(res->candidate_logits[2 * q + 1], row[12], 1e-3);
  }
  EXPECT_NEAR(engine::PlusProbability(res->candidate_logits[0], res->candidate_logits[1]),
              1.0 / (1.0 + std::exp(ref->at(5 * 512 + 12) - ref->at(5 * 512 + 10))), 1e-3);
  req.queries = {{24, 1}};
  EXPECT_FALSE(engine::Score(*model, req).ok());
}

// ScoreBatch: several requests of different lengths in one forward pass equal Score on each, bit
// for bit on the CPU backend (its per-row arithmetic does not depend on the batch), for every
// family (attention, the Mamba-1 and Mamba-2 scans and their conv windows, each sequence in a slot
// of its own). A bad request fails the batch with its index.
TEST(Score, BatchEqualsOneByOne) {
  for (const char* family : {"llama", "mambainllama", "llamba", "mamba", "mamba2"}) {
    SCOPED_TRACE(family);
    auto model = engine::LoadModel(testing::GoldenModel(family), testing::OneThread());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    std::vector<engine::ScoreRequest> reqs =
        testing::RandomScoreRequests((*model)->config().vocab_size, {17, 1, 40, 9}, 3);
    auto batch = engine::ScoreBatch(**model, reqs);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    ASSERT_EQ(batch->size(), reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      auto one = engine::Score(**model, reqs[i]);
      ASSERT_TRUE(one.ok()) << one.status().ToString();
      EXPECT_EQ((*batch)[i].logprobs, one->logprobs) << "request " << i;
      EXPECT_EQ((*batch)[i].probs, one->probs) << "request " << i;
      EXPECT_EQ((*batch)[i].candidate_logits, one->candidate_logits) << "request " << i;
    }
    // Runs of requests that begin alike: {0, 1, 2} share 30 tokens (2 only 30 of its 31, and
    // 0 and 1 are scored inside the prefix, at its last token and past it), 3 shares nothing
    // and ends the run, {4, 5} share 20 (5 is 4's first 21 tokens). Each part equal to Score.
    std::mt19937 gen(11);
    const auto V = static_cast<int32_t>((*model)->config().vocab_size);
    std::uniform_int_distribution<int32_t> id(0, V - 1);
    auto ids = [&](int64_t n) {
      std::vector<int32_t> v(static_cast<size_t>(n));
      for (auto& x : v) x = id(gen);
      return v;
    };
    const std::vector<int32_t> p30 = ids(30), p20 = ids(20);
    std::vector<engine::ScoreRequest> shared(6);
    for (size_t i = 0; i < shared.size(); ++i) {
      const std::vector<int32_t>& head = i < 3 ? p30 : i == 3 ? std::vector<int32_t>{} : p20;
      const int64_t own = std::vector<int64_t>{12, 5, 1, 25, 9, 1}[i];
      shared[i].token_ids = head;
      for (int32_t t : ids(own)) shared[i].token_ids.push_back(t);
      const auto L = static_cast<int64_t>(shared[i].token_ids.size());
      shared[i].queries = {{L - 1, id(gen)}, {L / 2, id(gen)}};
      shared[i].candidate_ids = {id(gen), id(gen)};
    }
    shared[5].token_ids.assign(shared[4].token_ids.begin(), shared[4].token_ids.begin() + 21);
    shared[5].queries = {{20, 1}, {3, 2}};
    shared[0].queries.push_back({3, 4});
    shared[0].queries.push_back({29, 5});
    shared[1].queries.push_back({3, 6});
    auto sb = engine::ScoreBatch(**model, shared);
    ASSERT_TRUE(sb.ok()) << sb.status().ToString();
    for (size_t i = 0; i < shared.size(); ++i) {
      auto one = engine::Score(**model, shared[i]);
      ASSERT_TRUE(one.ok()) << one.status().ToString();
      EXPECT_EQ((*sb)[i].logprobs, one->logprobs) << "shared-prefix request " << i;
      EXPECT_EQ((*sb)[i].candidate_logits, one->candidate_logits) << "shared-prefix request " << i;
    }
    reqs[2].queries.push_back({40, 1});  // past the end of its 40 tokens
    auto bad = engine::ScoreBatch(**model, reqs);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("score request 2"), std::string::npos)
        << bad.status().message();
  }
  // Batches: up to max_tokens tokens and kScoreBatchRequests requests, or one alone.
  EXPECT_TRUE(engine::ScoreBatchFits(0, 0, 5000, 4096));
  EXPECT_TRUE(engine::ScoreBatchFits(3, 1000, 3096, 4096));
  EXPECT_FALSE(engine::ScoreBatchFits(3, 1000, 3097, 4096));
  EXPECT_FALSE(engine::ScoreBatchFits(engine::kScoreBatchRequests, 64, 1, 4096));
  EXPECT_TRUE(engine::ScoreBatchFits(0, 0, 10, 0));
  EXPECT_FALSE(engine::ScoreBatchFits(1, 10, 10, 0));  // 0: one request per forward
}

// ScoreInBatches: batches of up to 60 tokens (17 + 1 + 40, then 9, then 70 alone), results in
// order and equal to Score's; a cancel before the first batch delivers nothing; a bad request is
// refused, by its index, before any batch runs. Requests that begin alike take two passes per
// batch (the shared prefix, then the rest); repeated requests are scored once.
TEST(Score, InBatchesInOrderCancelledAndRefused) {
  auto model = LoadLlama();
  ASSERT_TRUE(model);
  std::vector<engine::ScoreRequest> reqs;
  for (const int64_t L : {int64_t{17}, int64_t{1}, int64_t{40}, int64_t{9}, int64_t{70}}) {
    engine::ScoreRequest r;
    for (int64_t i = 0; i < L; ++i) r.token_ids.push_back(static_cast<int32_t>((i * 31 + L) % 512));
    r.queries = {{L - 1, 3}};
    r.candidate_ids = {5, 7};
    reqs.push_back(std::move(r));
  }
  std::vector<size_t> order;
  std::vector<engine::ScoreResult> got(reqs.size());
  auto forwards = engine::ScoreInBatches(*model, reqs, 60, [&](size_t i, engine::ScoreResult&& r) {
    order.push_back(i);
    got[i] = std::move(r);
  });
  ASSERT_TRUE(forwards.ok()) << forwards.status().ToString();
  EXPECT_EQ(*forwards, 3);  // {17, 1, 40}, {9}, {70} (alone, over the limit)
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3, 4}));
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto one = engine::Score(*model, reqs[i]);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(got[i].candidate_logits, one->candidate_logits) << "request " << i;
  }
  // Four requests of 40 tokens whose first 24 are the same: one batch, two passes.
  std::vector<engine::ScoreRequest> alike(4, reqs[2]);
  for (size_t i = 0; i < alike.size(); ++i) {
    for (size_t t = 24; t < 40; ++t) alike[i].token_ids[t] = static_cast<int32_t>(100 * i + t);
  }
  std::vector<engine::ScoreResult> alike_got(alike.size());
  auto two = engine::ScoreInBatches(
      *model, alike, 200, [&](size_t i, engine::ScoreResult&& r) { alike_got[i] = std::move(r); });
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(*two, 2);
  for (size_t i = 0; i < alike.size(); ++i) {
    auto one = engine::Score(*model, alike[i]);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(alike_got[i].candidate_logits, one->candidate_logits) << "alike request " << i;
  }
  // Repeated requests are scored once: {17, 1, 17, 40, 1, 17'} (the last 17 with another query)
  // takes one batch of four distinct requests; every index gets its result, equal to Score's.
  std::vector<engine::ScoreRequest> repeated = {reqs[0], reqs[1], reqs[0],
                                                reqs[2], reqs[1], reqs[0]};
  repeated[5].queries[0].token_id = 4;
  std::vector<int> delivered(repeated.size(), 0);
  std::vector<engine::ScoreResult> rep_got(repeated.size());
  auto once =
      engine::ScoreInBatches(*model, repeated, 1000, [&](size_t i, engine::ScoreResult&& r) {
        ++delivered[i];
        rep_got[i] = std::move(r);
      });
  ASSERT_TRUE(once.ok()) << once.status().ToString();
  EXPECT_EQ(*once, 1);
  EXPECT_EQ(delivered, std::vector<int>(repeated.size(), 1));
  for (size_t i = 0; i < repeated.size(); ++i) {
    auto one = engine::Score(*model, repeated[i]);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(rep_got[i].logprobs, one->logprobs) << "repeated request " << i;
    EXPECT_EQ(rep_got[i].candidate_logits, one->candidate_logits) << "repeated request " << i;
  }
  order.clear();
  auto cancelled = engine::ScoreInBatches(
      *model, reqs, 60, [&](size_t i, engine::ScoreResult&&) { order.push_back(i); },
      [] { return true; });
  EXPECT_EQ(cancelled.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(order.empty());
  reqs[3].queries.push_back({9, 1});  // past the end of its 9 tokens: refused before any batch
  auto bad = engine::ScoreInBatches(*model, reqs, 60,
                                    [&](size_t i, engine::ScoreResult&&) { order.push_back(i); });
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("score request 3"), std::string::npos)
      << bad.status().message();
  EXPECT_TRUE(order.empty());
}

TEST(RandomModel, DeterministicForASeed) {
  auto config = engine::LoadModelConfig(testing::GoldenModel("mambainllama"));
  ASSERT_TRUE(config.ok());
  auto a = engine::RandomModel(*config, 5, testing::OneThread());
  auto b = engine::RandomModel(*config, 5, testing::OneThread());
  auto c = engine::RandomModel(*config, 6, testing::OneThread());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ((*a)->parameter_count(), (*b)->parameter_count());
  std::vector<int32_t> tokens = {1, 2, 3, 4};
  const int64_t last = 3;
  std::vector<float> la, lb, lc;
  for (auto [m, out] : {std::pair{a->get(), &la}, {b->get(), &lb}, {c->get(), &lc}}) {
    auto st = m->NewState(1);
    ASSERT_TRUE(m->Forward(st->get(), {{{0, 0, 4}}}, tokens, std::span(&last, 1), out).ok());
  }
  EXPECT_EQ(la, lb);
  EXPECT_NE(la, lc);
  for (float v : la) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace ttc
