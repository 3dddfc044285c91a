// Whether a decode step gains from running its batch as two halves on two streams, so that one
// half's memory-bound attention overlaps the other half's compute-bound GEMMs (NanoFlow-style
// nano-batches), before the engine is built for it. A layer here is what dominates a Llama decode
// layer: the qkv GEMM, the decode attention (engine/cuda/kernels.h LaunchAttention, cascade with
// the backend's choice of ranges: a 512-position shared prompt and `own` positions per row), the
// o, gate_up and down GEMMs (cublasGemmEx bf16 x bf16 -> f32 as the backend calls it; norms, RoPE
// and SwiGLU left out). Six layers of distinct random weights (1.2 GB at Llama-3B, so nothing is
// served from L2), recorded as one CUDA graph per mode and replayed: 3 warm-up and 15 timed
// replays, CUDA events, median, microseconds per layer. Modes: the whole batch on one stream
// ("full"), its parts one after the other on one stream ("parts serial"), and the parts on as many
// streams, forked and joined by events inside the graph ("parts streams"); plus the GEMMs alone
// and the attention alone of the whole batch. Usage: cuda_overlap [B,B,...] [own] [parts]
// (default 256,512, 256, 2).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "engine/cuda/kernels.h"
#include "tools/bench/cuda/bench_util.h"

namespace {

namespace cu = ttc::engine::cuda;
using ttc::bench::Dev;

uint16_t* RandomBf16(size_t n, std::mt19937& gen) {
  std::vector<uint16_t> h(n);
  std::uniform_int_distribution<int> bits(0x3c00, 0x3f80);  // bf16 in [2^-7, 1)
  for (auto& v : h) v = uint16_t(bits(gen)) ^ uint16_t((gen() & 1) << 15);
  uint16_t* d = Dev<uint16_t>(n);
  CK(cudaMemcpy(d, h.data(), n * 2, cudaMemcpyHostToDevice));
  return d;
}

struct Model {
  const char* name;
  int d, ff, hd, H, Hkv;
};

struct Layer {
  uint16_t *qkv, *o, *gate_up, *down;
};

// One part of the batch: rows [r0, r0 + n) with their own attention metadata and scratch, so that
// two parts can run at once.
struct Part {
  int r0 = 0, n = 0, splits = 1;
  cu::DevRow* info = nullptr;
  int32_t* tasks = nullptr;
  int ntasks = 0;
  float *po = nullptr, *pml = nullptr;
  void* ws = nullptr;  // its cuBLAS handle's workspace
  cudaStream_t s = nullptr;
  cublasHandle_t h = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<int> batches = ttc::bench::SizeList(argc > 1 ? argv[1] : nullptr, {256, 512});
  const int own = argc > 2 ? std::atoi(argv[2]) : 256;
  const int nparts = argc > 3 ? std::atoi(argv[3]) : 2;
  const int plen = 512, kLayers = 6;
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("# %s, %d SMs; own %d, prompt %d, %d parts; us per layer (median of 15 replays)\n",
              prop.name, sms, own, plen, nparts);
  std::printf("%-9s %5s %10s %10s %10s %10s %10s\n", "model", "B", "gemms", "attention", "full",
              "parts ser", "parts str");
  std::mt19937 gen(3);
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (const Model& m :
       {Model{"llama-1b", 2048, 8192, 64, 32, 8}, Model{"llama-3b", 3072, 8192, 128, 24, 8}}) {
    const int64_t kvw = int64_t{m.Hkv} * m.hd, qw = int64_t{m.H} * m.hd;
    const int nqkv = static_cast<int>(qw + 2 * kvw);
    const int G = m.H / m.Hkv;
    std::vector<Layer> layers(kLayers);
    for (Layer& l : layers) {
      l.qkv = RandomBf16(size_t(nqkv) * m.d, gen);
      l.o = RandomBf16(size_t(m.d) * qw, gen);
      l.gate_up = RandomBf16(size_t(2 * m.ff) * m.d, gen);
      l.down = RandomBf16(size_t(m.d) * m.ff, gen);
    }
    for (int B : batches) {
      // Activations: one bf16 input wide enough for every GEMM and one f32 output, per row.
      const int64_t in_w = std::max<int64_t>(m.ff, m.d), out_w = 2 * m.ff;
      uint16_t* x = RandomBf16(size_t(B) * in_w, gen);
      float* y = Dev<float>(size_t(B) * out_w);
      float* q = Dev<float>(size_t(B) * qw);
      CK(cudaMemset(q, 0, size_t(B) * qw * 4));
      float* att = Dev<float>(size_t(B) * qw);
      uint16_t* kp = RandomBf16(plen * kvw, gen);
      uint16_t* vp = RandomBf16(plen * kvw, gen);
      uint16_t* ko = RandomBf16(size_t(B) * own * kvw, gen);
      uint16_t* vo = RandomBf16(size_t(B) * own * kvw, gen);
      std::vector<cu::DevKv> kv(B);
      for (int r = 0; r < B; ++r)
        kv[r] = {kp, vp, ko + int64_t{r} * own * kvw, vo + int64_t{r} * own * kvw, plen, 0};
      auto* d_kv = Dev<cu::DevKv>(B);
      CK(cudaMemcpy(d_kv, kv.data(), B * sizeof(cu::DevKv), cudaMemcpyHostToDevice));
      // Parts: 1 (the whole batch) and nparts.
      auto make_parts = [&](int count) {
        std::vector<Part> parts(count);
        for (int i = 0; i < count; ++i) {
          Part& p = parts[i];
          p.r0 = B * i / count;
          p.n = B * (i + 1) / count - p.r0;
          std::vector<cu::DevRow> info(p.n);
          for (int r = 0; r < p.n; ++r) info[r] = {r, plen + own - 1};  // slots local to the part
          p.info = Dev<cu::DevRow>(p.n);
          CK(cudaMemcpy(p.info, info.data(), p.n * sizeof(cu::DevRow), cudaMemcpyHostToDevice));
          const int per_task = cu::PrefixRowsPerTask(G);
          std::vector<int32_t> rows;
          for (int r = 0; r < p.n; r += per_task) {
            const int k = std::min(per_task, p.n - r);
            for (int j = 0; j < k; ++j) rows.push_back(r + j);
            rows.insert(rows.end(), cu::kPrefixTaskRows - k, -1);
          }
          p.ntasks = static_cast<int>(rows.size()) / cu::kPrefixTaskRows;
          p.tasks = Dev<int32_t>(rows.size());
          CK(cudaMemcpy(p.tasks, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice));
          p.splits = cu::AttentionRanges(int64_t{p.n} * m.Hkv, own, sms);
          p.po = Dev<float>(size_t(p.n) * qw * 16);
          p.pml = Dev<float>(size_t(p.n) * m.H * 16 * 2);
          CK(cudaStreamCreateWithFlags(&p.s, cudaStreamNonBlocking));
          CK(cublasCreate(&p.h));
          CK(cublasSetStream(p.h, p.s));
          p.ws = Dev<char>(32 << 20);
          CK(cublasSetWorkspace(p.h, p.ws, 32 << 20));
        }
        return parts;
      };
      std::vector<Part> whole = make_parts(1), split = make_parts(nparts);
      const float alpha = 1.0f, beta = 0.0f;
      auto gemm = [&](const Part& p, const uint16_t* w, int N, int K) {
        CK(cublasGemmEx(p.h, CUBLAS_OP_T, CUBLAS_OP_N, N, p.n, K, &alpha, w, CUDA_R_16BF, K,
                        x + int64_t{p.r0} * in_w, CUDA_R_16BF, static_cast<int>(in_w), &beta,
                        y + int64_t{p.r0} * out_w, CUDA_R_32F, static_cast<int>(out_w),
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      };
      auto attention = [&](const Part& p) {
        cu::PrefixPlan plan{p.tasks, p.ntasks,
                            cu::PrefixRanges(int64_t{p.ntasks} * m.Hkv, plen, sms)};
        cu::LaunchAttention(q + int64_t{p.r0} * qw, p.n, p.info, d_kv + p.r0, m.H, m.Hkv, m.hd,
                            att + int64_t{p.r0} * qw, p.splits, p.po, p.pml, p.s,
                            cu::AttnKernel::kAuto, &plan);
      };
      auto layer = [&](const Part& p, const Layer& l, bool gemms, bool attn) {
        if (gemms) gemm(p, l.qkv, nqkv, m.d);
        if (attn) attention(p);
        if (gemms) {
          gemm(p, l.o, m.d, static_cast<int>(qw));
          gemm(p, l.gate_up, 2 * m.ff, m.d);
          gemm(p, l.down, m.d, m.ff);
        }
      };
      // Records `body` on the first part's stream (forking the others from it) and times replays.
      auto timed = [&](std::vector<Part>& parts, auto body) {
        cudaStream_t s0 = parts[0].s;
        std::vector<cudaEvent_t> ev(2 * parts.size());
        for (auto& e : ev) CK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
        cudaGraph_t graph;
        CK(cudaStreamBeginCapture(s0, cudaStreamCaptureModeGlobal));
        CK(cudaEventRecord(ev[0], s0));
        for (size_t i = 1; i < parts.size(); ++i) CK(cudaStreamWaitEvent(parts[i].s, ev[0]));
        body();
        for (size_t i = 1; i < parts.size(); ++i) {
          CK(cudaEventRecord(ev[i], parts[i].s));
          CK(cudaStreamWaitEvent(s0, ev[i]));
        }
        CK(cudaStreamEndCapture(s0, &graph));
        cudaGraphExec_t exec;
        CK(cudaGraphInstantiate(&exec, graph, 0));
        std::vector<float> us;
        for (int it = 0; it < 18; ++it) {
          CK(cudaEventRecord(e0, s0));
          CK(cudaGraphLaunch(exec, s0));
          CK(cudaEventRecord(e1, s0));
          CK(cudaEventSynchronize(e1));
          float ms = 0;
          CK(cudaEventElapsedTime(&ms, e0, e1));
          if (it >= 3) us.push_back(ms * 1000.0f / kLayers);
        }
        CK(cudaGraphExecDestroy(exec));
        CK(cudaGraphDestroy(graph));
        for (auto& e : ev) CK(cudaEventDestroy(e));
        std::sort(us.begin(), us.end());
        return us[us.size() / 2];
      };
      const float gemms = timed(whole, [&] {
        for (const Layer& l : layers) layer(whole[0], l, true, false);
      });
      const float attn = timed(whole, [&] {
        for (const Layer& l : layers) layer(whole[0], l, false, true);
      });
      const float full = timed(whole, [&] {
        for (const Layer& l : layers) layer(whole[0], l, true, true);
      });
      // Serial parts: every part on the first part's stream (its handle moved there).
      const float serial = timed(split, [&] {
        for (const Layer& l : layers) {
          for (Part p : split) {
            p.s = split[0].s;
            p.h = split[0].h;
            layer(p, l, true, true);
          }
        }
      });
      const float streams = timed(split, [&] {
        for (const Layer& l : layers) {
          for (const Part& p : split) layer(p, l, true, true);
        }
      });
      std::printf("%-9s %5d %10.1f %10.1f %10.1f %10.1f %10.1f\n", m.name, B, gemms, attn, full,
                  serial, streams);
      std::fflush(stdout);
      CK(cudaDeviceSynchronize());
      for (void* p : std::initializer_list<void*>{x, y, q, att, kp, vp, ko, vo, d_kv}) cudaFree(p);
      for (auto* parts : {&whole, &split}) {
        for (Part& p : *parts) {
          cudaFree(p.info);
          cudaFree(p.tasks);
          cudaFree(p.po);
          cudaFree(p.pml);
          cudaFree(p.ws);
          cublasDestroy(p.h);
          cudaStreamDestroy(p.s);
        }
      }
    }
    for (Layer& l : layers)
      for (void* p : std::initializer_list<void*>{l.qkv, l.o, l.gate_up, l.down}) cudaFree(p);
  }
  return 0;
}
