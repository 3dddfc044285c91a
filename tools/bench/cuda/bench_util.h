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

}  // namespace ttc::bench
