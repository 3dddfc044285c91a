// PRM scoring throughput: the same requests scored one per forward pass (engine::Score, as the
// worker did before session 12) and in batches of several sequences per forward pass
// (engine::ScoreInBatches, as the worker scores). The requests are shaped like a PRM
// unit's: random token ids of about --tokens tokens (±25 %), --queries scored positions each (the
// steps) with the two candidate ids, as RunScore asks. Batches hold up to --batch-tokens tokens
// (default 4096); the worker takes the backend's Backend::PrefillBatchTokens, printed beside the
// table (0: one request per forward). Random bf16 weights from a config: the
// built-in small Llama of generate_bench, or any folder's config.json (--model DIR, e.g. a
// Llama-3.2-1B config for a real PRM's shape). With --shared N, consecutive groups of --group
// requests begin with the same N tokens (a PRM unit's conversations of one question), which the
// batches share (engine::ScoreBatch); the requests keep about --tokens tokens each. Prints the
// median of --repeats runs of each way, and the largest difference between the two ways'
// candidate logits (0 on the CPU backend).
// Usage: score_bench [--model DIR] [--backend cpu|cuda] [--requests 64] [--tokens 300]
//   [--queries 8] [--batch-tokens 4096] [--shared 0] [--group 32] [--repeats 3] [--threads 0]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/score.h"
#include "tools/bench/bench_model.h"

namespace {

using namespace ttc::engine;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, backend = "cpu";
  int requests = 64, tokens = 300, queries = 8, repeats = 3, threads = 0, batch_tokens = 4096,
      shared = 0, group = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--model") {
      model_dir = argv[i + 1];
    } else if (flag == "--backend") {
      backend = argv[i + 1];
    } else if (flag == "--requests") {
      requests = std::atoi(argv[i + 1]);
    } else if (flag == "--tokens") {
      tokens = std::atoi(argv[i + 1]);
    } else if (flag == "--queries") {
      queries = std::atoi(argv[i + 1]);
    } else if (flag == "--repeats") {
      repeats = std::atoi(argv[i + 1]);
    } else if (flag == "--batch-tokens") {
      batch_tokens = std::atoi(argv[i + 1]);
    } else if (flag == "--shared") {
      shared = std::atoi(argv[i + 1]);
    } else if (flag == "--group") {
      group = std::atoi(argv[i + 1]);
    } else if (flag == "--threads") {
      threads = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "score_bench: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "score_bench: %s needs a value\n", argv[argc - 1]);
    return 2;
  }
  if (backend != "cpu" && backend != "cuda") {
    std::fprintf(stderr, "score_bench: --backend %s (expected cpu or cuda)\n", backend.c_str());
    return 2;
  }
  if (requests < 1 || tokens < 8 || queries < 1 || repeats < 1 || batch_tokens < 0 || shared < 0 ||
      shared >= tokens * 3 / 4 || group < 1) {
    std::fprintf(stderr,
                 "score_bench: --requests, --queries, --repeats and --group must be >= 1, --tokens "
                 ">= 8, --batch-tokens >= 0 and --shared from 0 to below 3/4 of --tokens\n");
    return 2;
  }
  ModelOptions options;
  options.threads = threads;
  options.backend = backend == "cuda" ? BackendKind::kCuda : BackendKind::kCpu;
  auto model = ttc::bench::RandomBenchModel(model_dir, options);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  const auto V = static_cast<int32_t>((*model)->config().vocab_size);
  std::mt19937 gen(11);
  std::uniform_int_distribution<int32_t> id(0, V - 1);
  std::uniform_int_distribution<int> len(tokens * 3 / 4, tokens * 5 / 4);
  std::vector<ScoreRequest> reqs(static_cast<size_t>(requests));
  int64_t total_tokens = 0;
  std::vector<int32_t> head;
  for (size_t n = 0; n < reqs.size(); ++n) {
    ScoreRequest& r = reqs[n];
    const int L = len(gen);
    if (n % static_cast<size_t>(group) == 0) {
      head.clear();
      for (int i = 0; i < shared; ++i) head.push_back(id(gen));
    }
    r.token_ids = head;
    for (int i = shared; i < L; ++i) r.token_ids.push_back(id(gen));
    // The steps' positions spread over the request's own tokens (a PRM scores after each step).
    for (int q = 1; q <= queries; ++q)
      r.queries.push_back({shared + int64_t{L - shared} * q / (queries + 1), id(gen)});
    r.candidate_ids = {id(gen), id(gen)};
    total_tokens += L;
  }
  std::printf("model: %s\n", (*model)->Describe().c_str());
  std::printf(
      "%d requests, %lld tokens in all, %d scored positions each, groups of %d sharing their first "
      "%d tokens; median of %d runs\n",
      requests, static_cast<long long>(total_tokens), queries, group, shared, repeats);
  std::vector<ScoreResult> one(reqs.size()), batched(reqs.size());
  std::vector<double> t_one, t_batch;
  int64_t batches = 0;
  for (int rep = 0; rep < repeats + 1; ++rep) {  // the first run of each way warms up
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < reqs.size(); ++i) {
      auto r = Score(**model, reqs[i]);
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
        return 1;
      }
      one[i] = std::move(r).value();
    }
    if (rep > 0) t_one.push_back(Seconds(t0));
    t0 = std::chrono::steady_clock::now();
    auto forwards = ScoreInBatches(**model, reqs, batch_tokens,
                                   [&](size_t i, ScoreResult&& r) { batched[i] = std::move(r); });
    if (!forwards.ok()) {
      std::fprintf(stderr, "%s\n", forwards.status().ToString().c_str());
      return 1;
    }
    batches = *forwards;
    if (rep > 0) t_batch.push_back(Seconds(t0));
  }
  double worst = 0.0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    for (size_t k = 0; k < one[i].candidate_logits.size(); ++k) {
      worst = std::max(worst, static_cast<double>(std::abs(one[i].candidate_logits[k] -
                                                           batched[i].candidate_logits[k])));
    }
  }
  const double a = Median(t_one), b = Median(t_batch);
  std::printf("| way | forwards | s | requests/s | tokens/s |\n|---|---|---|---|---|\n");
  std::printf("| one per forward | %d | %.3f | %.1f | %.0f |\n", requests, a, requests / a,
              static_cast<double>(total_tokens) / a);
  std::printf("| batched (<= %d tokens, <= %lld requests) | %lld | %.3f | %.1f | %.0f |\n",
              batch_tokens, static_cast<long long>(kScoreBatchRequests),
              static_cast<long long>(batches), b, requests / b,
              static_cast<double>(total_tokens) / b);
  std::printf(
      "speed-up %.2fx; max |candidate logit difference| %.3g; the worker's batches on this "
      "backend: %lld tokens (0: one request per forward)\n",
      a / b, worst, static_cast<long long>((*model)->backend().PrefillBatchTokens()));
  return 0;
}
