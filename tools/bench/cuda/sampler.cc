// The GPU sampler's kernels on decode-shaped launches: B rows of Llama 3's 128,256 logits (f32, as
// the LM head writes them), one temperature-only draw per row, as every decode step of `ttc bench`
// and of a grid without top-k / top-p ends. Times the cluster kernel (the row read once from the
// cluster's shared memory), the one-block kernel's fast path (two reads), the split kernels (slice
// maxima, chunk sums, draws: three launches over the batch, two reads) and, for scale, the
// general path (probabilities stored; what top-k / top-p take). CUDA builds only.
// Usage: cuda_sampler [B,B,...] [vocab] (default 64,256,512 and 128256). Per cell: CUDA events
// around 20 back-to-back launches, per launch, median of 15 rounds after 5 warm-up rounds; each
// round draws with fresh RNG keys (the step advances) over logits drawn once per batch size
// (N(0, 3), so most of the mass sits in a few hundred ids, as in a real row). Also prints the
// achieved read bandwidth over the logits' bytes and checks that the four paths drew the same ids.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "engine/cuda/kernels.h"
#include "tools/bench/cuda/bench_util.h"

namespace cu = ttc::engine::cuda;

int main(int argc, char** argv) {
  const std::vector<int> batches =
      ttc::bench::SizeList(argc > 1 ? argv[1] : nullptr, {64, 256, 512});
  const int64_t V = argc > 2 ? std::atoll(argv[2]) : 128256;
  if (V < 2) {
    std::fprintf(stderr, "cuda_sampler: vocab %lld must be at least 2\n",
                 static_cast<long long>(V));
    return 2;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf(
      "# %s, %d SMs; vocab %lld, temperature 0.8, no top-k/top-p; us per launch (20 back-to-back, "
      "median of 15 rounds), GB/s over one read of the logits\n",
      prop.name, prop.multiProcessorCount, static_cast<long long>(V));
  std::printf("%6s %-10s %9s %8s\n", "B", "kernel", "us", "GB/s");
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  int mismatched_cells = 0;
  for (const int B : batches) {
    if (B < 1) continue;
    std::vector<float> host(static_cast<size_t>(B) * V);
    for (auto& v : host) v = nd(gen);
    float* logits = ttc::bench::Dev<float>(host.size());
    CK(cudaMemcpy(logits, host.data(), host.size() * 4, cudaMemcpyHostToDevice));
    // The general path's probabilities, or the split kernels' scratch where that is larger (tiny
    // vocabularies).
    cu::DevSampling split_sp{0.8f, -1, 1.0f, false, false};
    split_sp.split = true;
    const size_t scratch =
        std::max(host.size(), (cu::SampleScratchBytes(split_sp, V, B, 1, logits) + 3) / 4);
    float* probs = ttc::bench::Dev<float>(scratch);
    cu::DevSampleKey* keys = ttc::bench::Dev<cu::DevSampleKey>(B);
    int32_t* out = ttc::bench::Dev<int32_t>(B);
    std::vector<cu::DevSampleKey> hk(static_cast<size_t>(B));
    std::vector<int32_t> ids[4];
    const char* names[4] = {"cluster", "one-block", "general", "split"};
    for (const int kind : {0, 1, 3, 2}) {
      cu::DevSampling sp{0.8f, -1, 1.0f, false, kind == 2};
      sp.one_block = kind == 1;
      sp.split = kind == 3;
      if ((kind == 0 && !cu::SampleUsesCluster(sp, V, logits)) ||
          (kind == 3 && !cu::SampleUsesSplit(sp, V, logits, B))) {
        std::printf("%6d %-10s %9s %8s  (not used for this vocabulary, device or setting)\n", B,
                    names[kind], "-", "-");
        continue;
      }
      std::vector<float> rounds;
      for (int round = 0; round < 20; ++round) {
        for (int b = 0; b < B; ++b) {
          hk[static_cast<size_t>(b)] = {1, static_cast<uint64_t>(b), static_cast<uint64_t>(round)};
        }
        CK(cudaMemcpyAsync(keys, hk.data(), hk.size() * sizeof(hk[0]), cudaMemcpyHostToDevice, s));
        CK(cudaEventRecord(e0, s));
        for (int rep = 0; rep < 20; ++rep)
          cu::LaunchSample(logits, B, 1, V, sp, keys, probs, out, s);
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms = 0.0f;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (round >= 5) rounds.push_back(ms * 1000.0f / 20.0f);
      }
      // The ids of the last round's keys, to compare the four paths.
      ids[kind].resize(static_cast<size_t>(B));
      CK(cudaMemcpy(ids[kind].data(), out, B * 4, cudaMemcpyDeviceToHost));
      std::nth_element(rounds.begin(), rounds.begin() + rounds.size() / 2, rounds.end());
      const double us = rounds[rounds.size() / 2];
      std::printf("%6d %-10s %9.1f %8.0f\n", B, names[kind], us,
                  static_cast<double>(B) * V * 4 / (us * 1e3));
    }
    for (const int kind : {0, 1, 3}) {
      if (!ids[kind].empty() && ids[kind] != ids[2]) {
        std::printf("%6d %-10s drew other ids than the general path\n", B, names[kind]);
        ++mismatched_cells;
      }
    }
    CK(cudaFree(logits));
    CK(cudaFree(probs));
    CK(cudaFree(keys));
    CK(cudaFree(out));
  }
  return mismatched_cells == 0 ? 0 : 1;
}
