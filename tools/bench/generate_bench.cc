// CPU generation benchmark: decode throughput of the engine at several batch sizes (one prompt, N
// samples in lockstep, fixed length: no stop ids), prefill excluded, as the paper's speed protocol
// does. The model is a random-weight network (BF16 weights, like real checkpoints) built from a
// config: a built-in small Llama-shaped config, or any model folder's config.json (--model DIR,
// e.g. a folder holding the Llama-3.2-1B config.json). Batch 1 is the baseline of the same run.
// Prints the median of --repeats runs per batch size. Usage: generate_bench [--model DIR] [--batch
// 1,8,32] [--prompt 64] [--tokens 64] [--repeats 3] [--threads 2]
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "engine/generate.h"
#include "engine/model.h"
#include "tools/bench/bench_model.h"

namespace {

using namespace ttc::engine;

// CPU seconds used by the process so far (user + system): on a shared, oversubscribed machine
// tokens per CPU-second is steadier than wall-clock tokens/s.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int> ParseList(const char* s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::atoi(item.c_str()));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir;
  std::vector<int> batches = {1, 8, 32};
  int prompt_len = 64, tokens = 64, repeats = 3, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model"))
      model_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--batch"))
      batches = ParseList(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--prompt"))
      prompt_len = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--tokens"))
      tokens = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeats"))
      repeats = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  ModelOptions options;
  options.threads = threads;
  auto model = ttc::bench::RandomBenchModel(model_dir, options);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  std::printf("model: %s\n", (*model)->Describe().c_str());
  std::printf("prompt %d tokens, %d new tokens per sample, %d repeats (median), prefill excluded\n",
              prompt_len, tokens, repeats);
  std::printf(
      "| batch | decode s (median) | ms / step | tokens/s | speed-up vs batch 1 | CPU s / run | "
      "tokens per "
      "CPU-s |\n|---|---|---|---|---|---|---|\n");
  std::vector<int32_t> prompt;
  for (int i = 0; i < prompt_len; ++i)
    prompt.push_back((i * 7919 + 13) % static_cast<int>((*model)->config().vocab_size));
  double base_tps = 0;
  for (int b : batches) {
    std::vector<double> decode, cpu;
    for (int r = 0; r < repeats; ++r) {
      const double c0 = CpuSeconds();
      GenerateRequest req;
      req.prompts.push_back({prompt, 7, 0, b});
      req.max_new_tokens = tokens;
      req.stop_ids = std::vector<int32_t>{};
      req.sampling.temperature = 1.0f;
      auto res = Generate(**model, req);
      if (!res.ok()) {
        std::fprintf(stderr, "%s\n", res.status().ToString().c_str());
        return 1;
      }
      decode.push_back(res->timings.decode_s);
      cpu.push_back(CpuSeconds() - c0);
    }
    const double d = Median(decode);
    // The first token of each sample comes from the prefill logits; decode steps produce the rest.
    const double tps = static_cast<double>(b) * (tokens - 1) / d;
    if (base_tps == 0) base_tps = tps;
    const double c = Median(cpu);  // includes the run's (small) prefill
    std::printf("| %d | %.3f | %.1f | %.1f | %.2fx | %.3f | %.1f |\n", b, d,
                1000.0 * d / (tokens - 1), tps, tps / base_tps, c,
                static_cast<double>(b) * (tokens - 1) / c);
    std::fflush(stdout);
  }
  return 0;
}
