// Decode attention alone (engine/cuda/kernels.h LaunchAttention) at the real models' shapes: B rows
// forked from one prompt of `plen` positions, each with `own` positions of its own, every row
// walking the prefix itself (the backend with TTC_CUDA_CASCADE=0) against the shared-prefix cascade
// (the backend's default, "casc auto": its choice of prefix ranges) with 1 to 8 prefix ranges per
// task. The L2 is flushed (a 256 MiB memset) before every timed launch, as the weights streaming
// between two layers would. CUDA events, 3 warm-up and 15 timed launches per cell, median,
// microseconds. Usage: cuda_attention [B,B,...] (default 64,256,512).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/cuda/kernels.h"
#include "tools/bench/cuda/bench_util.h"

namespace {

namespace cu = ttc::engine::cuda;
using ttc::bench::Dev;

void FillRandom(uint16_t* d, size_t n, std::mt19937& gen) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> h(n);
  for (auto& x : h) {
    const float f = nd(gen);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    x = static_cast<uint16_t>(u >> 16);
  }
  CK(cudaMemcpy(d, h.data(), n * 2, cudaMemcpyHostToDevice));
}

struct Model {
  const char* name;
  int hd, H, Hkv;
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<int> batches =
      ttc::bench::SizeList(argc > 1 ? argv[1] : nullptr, {64, 256, 512});
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = Dev<char>(flush_bytes);
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::mt19937 gen(7);
  const int plen = 512;
  std::printf("%-12s %5s %5s %10s %10s %10s %10s %10s %10s\n", "model", "B", "own", "per-row",
              "casc auto", "casc 1", "casc 2", "casc 4", "casc 8");
  for (const Model& m : {Model{"llama-1b", 64, 32, 8}, Model{"llama-3b", 128, 24, 8}}) {
    const int64_t kvw = static_cast<int64_t>(m.Hkv) * m.hd;
    const int G = m.H / m.Hkv;
    for (int B : batches) {
      for (int own : {1, 64, 256}) {
        uint16_t* kp = Dev<uint16_t>(plen * kvw);
        uint16_t* vp = Dev<uint16_t>(plen * kvw);
        FillRandom(kp, plen * kvw, gen);
        FillRandom(vp, plen * kvw, gen);
        uint16_t* ko = Dev<uint16_t>(static_cast<size_t>(B) * own * kvw);
        uint16_t* vo = Dev<uint16_t>(static_cast<size_t>(B) * own * kvw);
        FillRandom(ko, static_cast<size_t>(B) * own * kvw, gen);
        FillRandom(vo, static_cast<size_t>(B) * own * kvw, gen);
        std::vector<cu::DevKv> kv(B);
        std::vector<cu::DevRow> info(B);
        for (int r = 0; r < B; ++r) {
          kv[r] = {kp,
                   vp,
                   ko + static_cast<int64_t>(r) * own * kvw,
                   vo + static_cast<int64_t>(r) * own * kvw,
                   plen,
                   0};
          info[r] = {r, plen + own - 1};
        }
        auto* d_kv = Dev<cu::DevKv>(B);
        auto* d_info = Dev<cu::DevRow>(B);
        CK(cudaMemcpy(d_kv, kv.data(), B * sizeof(cu::DevKv), cudaMemcpyHostToDevice));
        CK(cudaMemcpy(d_info, info.data(), B * sizeof(cu::DevRow), cudaMemcpyHostToDevice));
        const int per_task = cu::PrefixRowsPerTask(G);
        std::vector<int32_t> task_rows;
        for (int r = 0; r < B; r += per_task) {
          const int n = std::min(per_task, B - r);
          for (int i = 0; i < n; ++i) task_rows.push_back(r + i);
          task_rows.insert(task_rows.end(), cu::kPrefixTaskRows - n, -1);
        }
        const int tasks = static_cast<int>(task_rows.size()) / cu::kPrefixTaskRows;
        auto* d_tasks = Dev<int32_t>(task_rows.size());
        CK(cudaMemcpy(d_tasks, task_rows.data(), task_rows.size() * 4, cudaMemcpyHostToDevice));
        const size_t qn = static_cast<size_t>(B) * m.H * m.hd;
        float* q = Dev<float>(qn);
        {
          std::vector<float> h(qn);
          std::normal_distribution<float> nd(0.0f, 1.0f);
          for (auto& x : h) x = nd(gen);
          CK(cudaMemcpy(q, h.data(), qn * 4, cudaMemcpyHostToDevice));
        }
        float* out = Dev<float>(qn);
        const int max_parts = 64;
        float* po = Dev<float>(qn * max_parts);
        float* pml = Dev<float>(static_cast<size_t>(B) * m.H * max_parts * 2);
        // chunks: -1 per-row walk; 0 the backend's choice; else that many prefix ranges.
        auto time = [&](int chunks) {
          const int splits =
              cu::AttentionRanges(int64_t{B} * m.Hkv, chunks < 0 ? plen + own : own, sms);
          cu::PrefixPlan plan{
              d_tasks, tasks,
              chunks == 0 ? cu::PrefixRanges(int64_t{tasks} * m.Hkv, plen, sms) : chunks};
          std::vector<float> ms;
          for (int it = 0; it < 18; ++it) {
            CK(cudaMemsetAsync(flush, it, flush_bytes));
            CK(cudaEventRecord(e0));
            cu::LaunchAttention(q, B, d_info, d_kv, m.H, m.Hkv, m.hd, out, splits, po, pml, nullptr,
                                cu::AttnKernel::kAuto, chunks < 0 ? nullptr : &plan);
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            float t = 0;
            CK(cudaEventElapsedTime(&t, e0, e1));
            if (it >= 3) ms.push_back(t * 1000.0f);
          }
          std::sort(ms.begin(), ms.end());
          return ms[ms.size() / 2];
        };
        std::printf("%-12s %5d %5d %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", m.name, B, own,
                    time(-1), time(0), time(1), time(2), time(4), time(8));
        for (void* p :
             std::initializer_list<void*>{kp, vp, ko, vo, d_kv, d_info, d_tasks, q, out, po, pml})
          cudaFree(p);
      }
    }
  }
  return 0;
}
