// cuBLAS at the decode GEMM shapes of the real models (engine-perf.md §1.1): bf16 weights [N, K]
// times M bf16 activation rows into f32 (cublasGemmEx, as the backend calls it), so the per-op
// profile of `ttc bench` (TTC_CUDA_PROFILE=1) can be split into "cuBLAS" and "around cuBLAS". CUDA
// builds only. Usage: cuda_gemm_bench [M,M,...] (default 64,256,512). Two timings per cell, both
// the median of 15 rounds after 5 warm-up rounds: CUDA events around one launch (what a lone launch
// costs, launch latency included) and around 20 back-to-back launches, per launch (session 7's
// call U found the one-launch figure ~5 µs higher on the narrow shapes); and a third, the median of
// 9 replays of a CUDA graph of 20 launches, per launch: what the decode step's graph sees, without
// the host's launch rate (cublasGemmEx's host time can bound back-to-back launches of a kernel of a
// few microseconds). TB/s and TFLOP/s are of the graph time. Weights and inputs random, fresh per
// shape. At M <= 64 two more graph times: what the backend ran there before the skinny kernel
// (cuBLAS on the 2M rows of the hi/lo split input, then LaunchSumParts adding the halves: "split")
// and LaunchSkinnyGemm on the same split input ("skinny"), both into [M, N].
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/cuda/kernels.h"
#include "tools/bench/cuda/bench_util.h"

namespace {

struct Shape {
  const char* what;
  int N, K;
};

}  // namespace

namespace engine = ttc::engine;

int main(int argc, char** argv) {
  const std::vector<int> ms = ttc::bench::SizeList(argc > 1 ? argv[1] : nullptr, {64, 256, 512});
  const std::vector<Shape> shapes = {
      {"llama-1b qkv", 3072, 2048},      {"llama-1b o", 2048, 2048},
      {"llama-1b gate_up", 16384, 2048}, {"llama-1b down", 2048, 8192},
      {"llama-1b head", 128256, 2048},   {"llama-3b qkv", 5120, 3072},
      {"llama-3b o", 3072, 3072},        {"llama-3b gate_up", 16384, 3072},
      {"llama-3b down", 3072, 8192},     {"llama-3b head", 128256, 3072}};
  cublasHandle_t h;
  CK(cublasCreate(&h));
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  CK(cublasSetStream(h, s));
  void* ws = nullptr;
  CK(cudaMalloc(&ws, 32 << 20));
  CK(cublasSetWorkspace(h, ws, 32 << 20));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf(
      "# %s, %d SMs; cublasGemmEx bf16 x bf16 -> f32; us per GEMM, median of 15 rounds (one launch "
      "/ 20 back-to-back launches / a CUDA graph of 20 launches); TB/s and TFLOP/s of the graph "
      "time\n",
      prop.name, prop.multiProcessorCount);
  std::printf("%-17s %5s %9s %9s %9s %8s %8s %9s %9s %8s\n", "shape", "M", "us 1", "us b2b",
              "us graph", "TB/s", "TFLOP/s", "split", "skinny", "TB/s");
  std::mt19937 gen(1);
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (const Shape& sh : shapes) {
    for (int M : ms) {
      const size_t wn = size_t(sh.N) * sh.K, xn = size_t(M) * sh.K, yn = size_t(M) * sh.N;
      std::vector<uint16_t> hw(wn), hx(xn);
      std::uniform_int_distribution<int> bits(0x3c00, 0x3f80);  // bf16 in [2^-7, 1)
      for (auto& v : hw) v = uint16_t(bits(gen)) ^ uint16_t((gen() & 1) << 15);
      for (auto& v : hx) v = uint16_t(bits(gen));
      uint16_t *w, *x;
      float* y;
      CK(cudaMalloc(&w, wn * 2));
      CK(cudaMalloc(&x, xn * 2));
      CK(cudaMalloc(&y, yn * 4));
      CK(cudaMemcpy(w, hw.data(), wn * 2, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(x, hx.data(), xn * 2, cudaMemcpyHostToDevice));
      const float alpha = 1.0f, beta = 0.0f;
      auto run = [&] {
        CK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, sh.N, M, sh.K, &alpha, w, CUDA_R_16BF, sh.K, x,
                        CUDA_R_16BF, sh.K, &beta, y, CUDA_R_32F, sh.N, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT));
      };
      auto time = [&](int launches) {
        for (int i = 0; i < 5 * launches; ++i) run();
        std::vector<float> t;
        for (int r = 0; r < 15; ++r) {
          CK(cudaEventRecord(e0, s));
          for (int i = 0; i < launches; ++i) run();
          CK(cudaEventRecord(e1, s));
          CK(cudaEventSynchronize(e1));
          float ms_ = 0;
          CK(cudaEventElapsedTime(&ms_, e0, e1));
          t.push_back(ms_ * 1e3f / launches);
        }
        std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
        return double(t[t.size() / 2]);
      };
      const double one = time(1), b2b = time(20);
      const double graph = ttc::bench::GraphMicros(
          s,
          [&] {
            run();
            return true;
          },
          9, 20);
      const double bytes = wn * 2.0 + xn * 2.0 + yn * 4.0;
      std::printf("%-17s %5d %9.1f %9.1f %9.1f %8.2f %8.0f", sh.what, M, one, b2b, graph,
                  bytes / graph / 1e6, 2.0 * M * sh.N * sh.K / graph / 1e6);
      if (M <= engine::cuda::kSkinnyMaxRows) {
        uint16_t* x2 = ttc::bench::Dev<uint16_t>(2 * xn);  // hi rows, then lo rows
        float* y2 = ttc::bench::Dev<float>(2 * yn);
        CK(cudaMemcpy(x2, x, xn * 2, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(x2 + xn, x, xn * 2, cudaMemcpyDeviceToDevice));
        const double split = ttc::bench::GraphMicros(
            s,
            [&] {
              CK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, sh.N, 2 * M, sh.K, &alpha, w,
                              CUDA_R_16BF, sh.K, x2, CUDA_R_16BF, sh.K, &beta, y2, CUDA_R_32F, sh.N,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
              engine::cuda::LaunchSumParts(y2, 1, M, true, sh.N, y, sh.N, false, s);
              return true;
            },
            9, 20);
        const double skinny = ttc::bench::GraphMicros(
            s,
            [&] {
              return engine::cuda::LaunchSkinnyGemm(w, sh.N, sh.K, x2, M, true, y, sh.N, false, s);
            },
            9, 20);
        std::printf(" %9.1f %9.1f %8.2f", split, skinny,
                    skinny > 0 ? (wn * 2.0 + 2 * xn * 2.0 + yn * 4.0) / skinny / 1e6 : 0.0);
        CK(cudaFree(x2));
        CK(cudaFree(y2));
      }
      std::printf("\n");
      std::fflush(stdout);
      CK(cudaFree(w));
      CK(cudaFree(x));
      CK(cudaFree(y));
    }
  }
  return 0;
}
