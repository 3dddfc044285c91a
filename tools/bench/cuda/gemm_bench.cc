// cuBLAS alone at the decode GEMM shapes of the real models (engine-perf.md §1.1): how close the
// library gets to the memory and tensor-core limits for bf16 weights [N, K] times M activation
// rows, with the f32 output the CUDA backend uses and with bf16 output, so the per-op profile of
// `ttc bench` (TTC_CUDA_PROFILE=1) can be split into "cuBLAS" and "around cuBLAS". CUDA builds
// only. Usage: cuda_gemm_bench [M,M,...] (default 64,256,512). Measured with CUDA events, 5
// warm-up and 30 timed runs per cell, median; weights and inputs random, fresh per shape.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tools/bench/cuda/bench_util.h"

namespace {

struct Shape {
  const char* what;
  int N, K;
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<int> ms = ttc::bench::SizeList(argc > 1 ? argv[1] : nullptr, {64, 256, 512});
  const std::vector<Shape> shapes = {
      {"llama-1b qkv", 3072, 2048},      {"llama-1b o", 2048, 2048},
      {"llama-1b gate_up", 16384, 2048}, {"llama-1b down", 2048, 8192},
      {"llama-1b head", 128256, 2048},   {"llama-3b qkv", 5120, 3072},
      {"llama-3b gate_up", 16384, 3072}, {"llama-3b down", 3072, 8192},
      {"llama-3b head", 128256, 3072}};
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
  std::printf("# %s; cublasGemmEx bf16 x bf16, f32 accumulation; median of 30 after 5 warm-up\n",
              prop.name);
  std::printf("%-18s %5s %9s %9s %9s %9s %9s\n", "shape", "M", "us f32out", "TB/s", "TFLOP/s",
              "us bf16out", "TB/s");
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
      void *w, *x, *y;
      CK(cudaMalloc(&w, wn * 2));
      CK(cudaMalloc(&x, xn * 2));
      CK(cudaMalloc(&y, yn * 4));
      CK(cudaMemcpy(w, hw.data(), wn * 2, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(x, hx.data(), xn * 2, cudaMemcpyHostToDevice));
      double med[2];
      for (int out_bf16 = 0; out_bf16 < 2; ++out_bf16) {
        const float alpha = 1.0f, beta = 0.0f;
        auto run = [&] {
          CK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, sh.N, M, sh.K, &alpha, w, CUDA_R_16BF, sh.K,
                          x, CUDA_R_16BF, sh.K, &beta, y, out_bf16 ? CUDA_R_16BF : CUDA_R_32F, sh.N,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        };
        for (int i = 0; i < 5; ++i) run();
        std::vector<float> t;
        for (int i = 0; i < 30; ++i) {
          CK(cudaEventRecord(e0, s));
          run();
          CK(cudaEventRecord(e1, s));
          CK(cudaEventSynchronize(e1));
          float ms_ = 0;
          CK(cudaEventElapsedTime(&ms_, e0, e1));
          t.push_back(ms_ * 1e3f);
        }
        std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
        med[out_bf16] = t[t.size() / 2];
      }
      const double bytes_f32 = wn * 2.0 + xn * 2.0 + yn * 4.0,
                   bytes_bf = wn * 2.0 + xn * 2.0 + yn * 2.0;
      std::printf("%-18s %5d %9.1f %9.2f %9.1f %9.1f %9.2f\n", sh.what, M, med[0],
                  bytes_f32 / med[0] / 1e6, 2.0 * M * sh.N * sh.K / med[0] / 1e6, med[1],
                  bytes_bf / med[1] / 1e6);
      CK(cudaFree(w));
      CK(cudaFree(x));
      CK(cudaFree(y));
    }
  }
  return 0;
}
