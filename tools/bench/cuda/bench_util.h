// Shared by the CUDA-only benchmark programs (tools/bench/cuda): exit on a failed CUDA/cuBLAS call
// with what failed and where, device allocation (Dev), and the comma-separated size list of their
// first argument.
// Thread-safety: plain functions, no state.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#define CK(x)                                                                            \
  do {                                                                                   \
    if ((x) != 0) {                                                                      \
      std::fprintf(stderr, "%s failed (%d) at %s:%d\n", #x, int(x), __FILE__, __LINE__); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

namespace ttc::bench {

// n elements of T in device memory (at least one), or exit with where it failed.
template <typename T>
T* Dev(size_t n) {
  T* p = nullptr;
  CK(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * sizeof(T)));
  return p;
}

// "64,256,512" -> {64, 256, 512}; `fallback` when arg is null.
inline std::vector<int> SizeList(const char* arg, std::vector<int> fallback) {
  if (arg == nullptr) return fallback;
  std::vector<int> out;
  std::stringstream ss(arg);
  std::string tok;
  while (std::getline(ss, tok, ',')) out.push_back(std::atoi(tok.c_str()));
  return out;
}

// Microseconds per launch of `run` (returns false when a launch fails) as a CUDA graph replays it:
// `launches` calls captured into one graph, the median over `rounds` replays timed with events
// (after two untimed ones). Host launch overhead is out of it, unlike back-to-back launches from
// the host, whose rate bounds kernels of a few microseconds. -1 when the capture or a launch fails.
template <typename F>
double GraphMicros(cudaStream_t s, F&& run, int rounds, int launches) {
  if (!run() || cudaStreamSynchronize(s) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  cudaGraph_t graph = nullptr;
  if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != cudaSuccess) return -1;
  bool ok = true;
  for (int i = 0; i < launches; ++i) ok = run() && ok;
  if (cudaStreamEndCapture(s, &graph) != cudaSuccess || !ok) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    return -1;
  }
  cudaGraphExec_t exec = nullptr;
  const bool inst = cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  cudaGraphDestroy(graph);
  if (!inst) {
    cudaGetLastError();
    return -1;
  }
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<float> t;
  for (int r = 0; r < rounds + 2; ++r) {
    CK(cudaEventRecord(e0, s));
    CK(cudaGraphLaunch(exec, s));
    CK(cudaEventRecord(e1, s));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (r >= 2) t.push_back(ms * 1e3f / static_cast<float>(launches));
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaGraphExecDestroy(exec);
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  return static_cast<double>(t[t.size() / 2]);
}

}  // namespace ttc::bench
