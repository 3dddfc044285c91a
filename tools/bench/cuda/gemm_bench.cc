// The decode GEMM shapes of the real models (engine-perf.md §1.1), bf16 weights [N, K] times M bf16
// activation rows into f32: cuBLAS (cublasGemmEx, the backend's fallback) against the backend's own
// decode-shaped GEMM (LaunchGemm) with its default split count and with 1, 2, 4 and 8 K splits, so
// the dispatch rule of the backend rests on measurements. Each kernel's output is compared with
// cuBLAS's (max |difference|). CUDA builds only. Usage: cuda_gemm_bench [M,M,...] (default
// 64,256,512). Timing: CUDA events around 20 back-to-back launches (launch gaps as in a CUDA graph
// are small next to these kernels), 5 warm-up rounds, median of 15 rounds; weights and inputs
// random, fresh per shape.
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

int main(int argc, char** argv) {
  namespace cu = ttc::engine::cuda;
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
      "# %s, %d SMs; bf16 x bf16 -> f32; us per GEMM, median of 15 rounds of 20 launches; "
      "TFLOP/s of the best; diff = max |ours - cuBLAS| (auto splits)\n",
      prop.name, prop.multiProcessorCount);
  std::printf("%-17s %5s %8s %8s %3s %8s %8s %8s %8s %8s %9s\n", "shape", "M", "cublas", "ours",
              "spl", "s=1", "s=2", "s=4", "s=8", "TFLOP/s", "diff");
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
      float *y, *y2;
      CK(cudaMalloc(&w, wn * 2));
      CK(cudaMalloc(&x, xn * 2));
      CK(cudaMalloc(&y, yn * 4));
      CK(cudaMalloc(&y2, yn * 4));
      CK(cudaMemcpy(w, hw.data(), wn * 2, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(x, hx.data(), xn * 2, cudaMemcpyHostToDevice));
      const float alpha = 1.0f, beta = 0.0f;
      auto cublas = [&] {
        CK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, sh.N, M, sh.K, &alpha, w, CUDA_R_16BF, sh.K, x,
                        CUDA_R_16BF, sh.K, &beta, y, CUDA_R_32F, sh.N, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT));
      };
      const int auto_splits = cu::GemmSplits(sh.N, M, sh.K, prop.multiProcessorCount);
      auto ours = [&](int splits) {
        return [&, splits] {
          if (!cu::LaunchGemm(w, sh.N, sh.K, x, M, y2, sh.N, false, splits, s)) std::exit(2);
        };
      };
      auto time = [&](const auto& run) {
        for (int i = 0; i < 5 * 20; ++i) run();
        std::vector<float> t;
        for (int r = 0; r < 15; ++r) {
          CK(cudaEventRecord(e0, s));
          for (int i = 0; i < 20; ++i) run();
          CK(cudaEventRecord(e1, s));
          CK(cudaEventSynchronize(e1));
          float ms_ = 0;
          CK(cudaEventElapsedTime(&ms_, e0, e1));
          t.push_back(ms_ * 1e3f / 20);
        }
        std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
        return double(t[t.size() / 2]);
      };
      const double t_cublas = time(cublas), t_ours = time(ours(auto_splits));
      std::vector<float> a(yn), b(yn);
      CK(cudaMemcpy(a.data(), y, yn * 4, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(b.data(), y2, yn * 4, cudaMemcpyDeviceToHost));
      double diff = 0.0;
      for (size_t i = 0; i < yn; ++i) diff = std::max(diff, double(std::abs(a[i] - b[i])));
      double per[4];
      for (int i = 0; i < 4; ++i) {
        const int sp = 1 << i;
        per[i] = sh.K % (64 * sp) == 0 ? time(ours(sp)) : 0.0;
      }
      const double best = std::min(t_cublas, t_ours);
      std::printf("%-17s %5d %8.1f %8.1f %3d %8.1f %8.1f %8.1f %8.1f %8.0f %9.2g\n", sh.what, M,
                  t_cublas, t_ours, auto_splits, per[0], per[1], per[2], per[3],
                  2.0 * M * sh.N * sh.K / best / 1e6, diff);
      std::fflush(stdout);
      CK(cudaFree(w));
      CK(cudaFree(x));
      CK(cudaFree(y));
      CK(cudaFree(y2));
    }
  }
  return 0;
}
