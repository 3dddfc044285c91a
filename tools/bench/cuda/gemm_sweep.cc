// Every cublasLt configuration of the decode GEMMs, timed: is there a kernel cuBLAS's heuristic
// does not pick that runs the narrow decode shapes (N of a few thousand at M = 16-512 rows, far
// fewer output tiles than SMs) faster? The backend calls cublasGemmEx (bf16 weights [N, K] times
// M bf16 rows into f32, engine/cuda/cuda_backend.cc Bf16Gemm); TTC_CUDA_GEMM_TUNE=1 times only
// the heuristic's first 8 candidates and their split-K variants, and found nothing (session 3).
//
// Per shape and M: cublasGemmEx's time; the heuristic's first candidate's; then the candidates of
// (a) the heuristic asked for 64, (b) the heuristic limited to each algorithm id, and (c) each
// algorithm id's tiles x stages x split-K {1, 2, 4, 8} (each reduction scheme it supports) x
// swizzle x custom options 0-3, every one that cublasLtMatmulAlgoCheck accepts. All candidates
// are screened (one replay of a CUDA graph of 10 launches, within --budget-ms per cell); the 12
// fastest are timed as cublasGemmEx is (median of 9 replays of a graph of 20 launches, CUDA
// events: what the decode step's graph sees, without the host's launch rate, which bounds
// back-to-back launches of a few-microsecond kernel). The best one's output is checked against
// cublasGemmEx's (a K split changes only the summation order). CUDA builds only.
//
// Usage: cuda_gemm_sweep [M,M,...] [shape-substring] [--budget-ms MS]
// (default M 64,256,512; every shape of gemm_bench but the LM heads).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "tools/bench/cuda/bench_util.h"

namespace {

struct Shape {
  const char* what;
  int N, K;
};

constexpr size_t kWorkspace = 32u << 20;

struct Candidate {
  cublasLtMatmulAlgo_t algo;
  std::string how;  // (a), (b) or (c)
  double screen_us = 0;
  double us = 0;
};

template <typename T>
T ConfigAttr(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  T v{};
  size_t written = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written);
  return v;
}

std::string Describe(const cublasLtMatmulAlgo_t& a) {
  char buf[200];
  std::snprintf(buf, sizeof(buf),
                "algo %d tile %u stages %u splitk %d red %u swizzle %u custom %u cluster %u",
                ConfigAttr<int32_t>(a, CUBLASLT_ALGO_CONFIG_ID),
                ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_TILE_ID),
                ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                ConfigAttr<int32_t>(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
                ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
                ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION),
                unsigned(ConfigAttr<uint16_t>(a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID)));
  return buf;
}

// Two algos are the same candidate when their config attributes are.
auto Key(const cublasLtMatmulAlgo_t& a) {
  return std::make_tuple(ConfigAttr<int32_t>(a, CUBLASLT_ALGO_CONFIG_ID),
                         ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_TILE_ID),
                         ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                         ConfigAttr<int32_t>(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                         ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
                         ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
                         ConfigAttr<uint32_t>(a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION),
                         ConfigAttr<uint16_t>(a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID),
                         ConfigAttr<uint16_t>(a, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID));
}

template <typename T>
std::vector<T> CapArray(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoCapAttributes_t attr) {
  size_t written = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&algo, attr, nullptr, 0, &written) !=
          CUBLAS_STATUS_SUCCESS ||
      written == 0) {
    return {};
  }
  std::vector<T> v(written / sizeof(T));
  cublasLtMatmulAlgoCapGetAttribute(&algo, attr, v.data(), v.size() * sizeof(T), &written);
  return v;
}

template <typename T>
T Cap(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoCapAttributes_t attr) {
  T v{};
  size_t written = 0;
  cublasLtMatmulAlgoCapGetAttribute(&algo, attr, &v, sizeof(v), &written);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> ms = {64, 256, 512};
  std::string filter;
  double budget_ms = 4000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--budget-ms") == 0 && i + 1 < argc) {
      budget_ms = std::atof(argv[++i]);
    } else if (std::isdigit(static_cast<unsigned char>(argv[i][0]))) {
      ms = ttc::bench::SizeList(argv[i], ms);
    } else {
      filter = argv[i];
    }
  }
  const std::vector<Shape> all = {{"llama-1b qkv", 3072, 2048},      {"llama-1b o", 2048, 2048},
                                  {"llama-1b gate_up", 16384, 2048}, {"llama-1b down", 2048, 8192},
                                  {"llama-3b qkv", 5120, 3072},      {"llama-3b o", 3072, 3072},
                                  {"llama-3b gate_up", 16384, 3072}, {"llama-3b down", 3072, 8192}};
  cublasHandle_t h;
  CK(cublasCreate(&h));
  cublasLtHandle_t lt;
  CK(cublasLtCreate(&lt));
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  CK(cublasSetStream(h, s));
  void* ws = ttc::bench::Dev<char>(kWorkspace);
  CK(cublasSetWorkspace(h, ws, kWorkspace));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf(
      "# %s, %d SMs; bf16 x bf16 -> f32, us per GEMM (median of 9 replays of a CUDA graph of 20 "
      "launches); gemmex = cublasGemmEx as the backend calls it, heur1 = the heuristic's first "
      "cublasLt candidate, best = the fastest of every valid configuration\n",
      prop.name, prop.multiProcessorCount);
  std::printf("%-17s %4s %8s %8s %8s %7s %6s %6s  %s\n", "shape", "M", "gemmex", "heur1", "best",
              "gain", "valid", "err", "best configuration");
  std::mt19937 gen(1);
  const float alpha = 1.0f, beta = 0.0f;
  for (const Shape& sh : all) {
    if (!filter.empty() && std::string(sh.what).find(filter) == std::string::npos) continue;
    for (int M : ms) {
      const size_t wn = size_t(sh.N) * sh.K, xn = size_t(M) * sh.K, yn = size_t(M) * sh.N;
      std::vector<uint16_t> hw(wn), hx(xn);
      std::uniform_int_distribution<int> bits(0x3c00, 0x3f80);  // bf16 in [2^-7, 1)
      for (auto& v : hw) v = uint16_t(bits(gen)) ^ uint16_t((gen() & 1) << 15);
      for (auto& v : hx) v = uint16_t(bits(gen));
      uint16_t* w = ttc::bench::Dev<uint16_t>(wn);
      uint16_t* x = ttc::bench::Dev<uint16_t>(xn);
      float* y_ref = ttc::bench::Dev<float>(yn);
      float* y = ttc::bench::Dev<float>(yn);
      CK(cudaMemcpy(w, hw.data(), wn * 2, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(x, hx.data(), xn * 2, cudaMemcpyHostToDevice));
      auto gemmex = [&] {
        CK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, sh.N, M, sh.K, &alpha, w, CUDA_R_16BF, sh.K, x,
                        CUDA_R_16BF, sh.K, &beta, y_ref, CUDA_R_32F, sh.N, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT));
      };
      // us per launch: the median of `rounds` rounds of `launches` back-to-back launches, or -1 if
      // a launch fails.
      auto time = [&](auto&& run, int rounds, int launches) {
        return ttc::bench::GraphMicros(s, run, rounds, launches);
      };
      const double t_gemmex = time(
          [&] {
            gemmex();
            return true;
          },
          9, 20);

      cublasLtMatmulDesc_t op;
      CK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
      CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
      CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
      cublasLtMatrixLayout_t la, lb, lc;
      CK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, sh.K, sh.N, sh.K));
      CK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, sh.K, M, sh.K));
      CK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, sh.N, M, sh.N));
      auto lt_run = [&](const cublasLtMatmulAlgo_t& a) {
        return cublasLtMatmul(lt, op, &alpha, w, la, x, lb, &beta, y, lc, y, lc, &a, ws, kWorkspace,
                              s) == CUBLAS_STATUS_SUCCESS;
      };
      auto valid = [&](const cublasLtMatmulAlgo_t& a) {
        cublasLtMatmulHeuristicResult_t r{};
        return cublasLtMatmulAlgoCheck(lt, op, la, lb, lc, lc, &a, &r) == CUBLAS_STATUS_SUCCESS &&
               r.workspaceSize <= kWorkspace;
      };

      std::vector<Candidate> cand;
      std::set<decltype(Key(cublasLtMatmulAlgo_t{}))> seen;
      auto add = [&](const cublasLtMatmulAlgo_t& a, const char* how) {
        if (seen.insert(Key(a)).second) cand.push_back({a, how});
      };
      auto heuristic = [&](cublasLtMatmulPreference_t pref, int n, const char* how) {
        std::vector<cublasLtMatmulHeuristicResult_t> r(static_cast<size_t>(n));
        int got = 0;
        if (cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, n, r.data(), &got) !=
            CUBLAS_STATUS_SUCCESS) {
          return;
        }
        for (int i = 0; i < got; ++i)
          if (r[i].state == CUBLAS_STATUS_SUCCESS) add(r[i].algo, how);
      };
      cublasLtMatmulPreference_t pref;
      CK(cublasLtMatmulPreferenceCreate(&pref));
      const size_t wsb = kWorkspace;
      CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                              sizeof(wsb)));
      heuristic(pref, 64, "a");
      const bool have_heur1 = !cand.empty();
      const cublasLtMatmulAlgo_t heur1 = have_heur1 ? cand[0].algo : cublasLtMatmulAlgo_t{};

      int ids[256];
      int nids = 0;
      cublasLtMatmulAlgoGetIds(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF,
                               CUDA_R_32F, CUDA_R_32F, 256, ids, &nids);
      const uint32_t mode = CUBLASLT_SEARCH_LIMITED_BY_ALGO_ID;
      for (int i = 0; i < nids; ++i) {
        cublasLtMatmulAlgo_t base;
        if (cublasLtMatmulAlgoInit(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF,
                                   CUDA_R_32F, CUDA_R_32F, ids[i], &base) != CUBLAS_STATUS_SUCCESS)
          continue;
        // (b)
        cublasLtMatmulPreference_t p2;
        CK(cublasLtMatmulPreferenceCreate(&p2));
        CK(cublasLtMatmulPreferenceSetAttribute(p2, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                                sizeof(wsb)));
        if (cublasLtMatmulPreferenceSetAttribute(p2, CUBLASLT_MATMUL_PREF_SEARCH_MODE, &mode,
                                                 sizeof(mode)) == CUBLAS_STATUS_SUCCESS) {
          // The limited search reads the algo id from the result slots' algos (in, out).
          std::vector<cublasLtMatmulHeuristicResult_t> r(16);
          for (auto& slot : r) slot.algo = base;
          int got = 0;
          if (cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, p2, 16, r.data(), &got) ==
              CUBLAS_STATUS_SUCCESS) {
            for (int j = 0; j < got; ++j)
              if (r[j].state == CUBLAS_STATUS_SUCCESS) add(r[j].algo, "b");
          }
        }
        cublasLtMatmulPreferenceDestroy(p2);
        // (c)
        std::vector<uint32_t> tiles = CapArray<uint32_t>(base, CUBLASLT_ALGO_CAP_TILE_IDS);
        std::vector<uint32_t> stages = CapArray<uint32_t>(base, CUBLASLT_ALGO_CAP_STAGES_IDS);
        if (tiles.empty()) tiles = {CUBLASLT_MATMUL_TILE_UNDEFINED};
        if (stages.empty()) stages = {CUBLASLT_MATMUL_STAGES_UNDEFINED};
        const int32_t splitk_ok = Cap<int32_t>(base, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT);
        const uint32_t red_mask = Cap<uint32_t>(base, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK);
        const uint32_t swz_ok = Cap<uint32_t>(base, CUBLASLT_ALGO_CAP_CTA_SWIZZLING_SUPPORT);
        const int32_t custom_max = Cap<int32_t>(base, CUBLASLT_ALGO_CAP_CUSTOM_OPTION_MAX);
        for (uint32_t tile : tiles) {
          for (uint32_t st : stages) {
            for (int32_t sk : {1, 2, 4, 8}) {
              if (sk > 1 && !splitk_ok) continue;
              std::vector<uint32_t> reds = {CUBLASLT_REDUCTION_SCHEME_NONE};
              if (sk > 1) {
                reds.clear();
                for (uint32_t r :
                     {CUBLASLT_REDUCTION_SCHEME_INPLACE, CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE,
                      CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE})
                  if (red_mask & r) reds.push_back(r);
              }
              for (uint32_t red : reds) {
                for (uint32_t swz = 0; swz <= (swz_ok ? 1u : 0u); ++swz) {
                  for (int32_t c = 0; c <= std::min(custom_max, 3); ++c) {
                    cublasLtMatmulAlgo_t a = base;
                    const uint32_t cu = static_cast<uint32_t>(c);
                    if (cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_TILE_ID,
                                                             &tile, sizeof(tile)) ||
                        cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_STAGES_ID,
                                                             &st, sizeof(st)) ||
                        cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                                             &sk, sizeof(sk)) ||
                        cublasLtMatmulAlgoConfigSetAttribute(
                            &a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof(red)) ||
                        cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING,
                                                             &swz, sizeof(swz)) ||
                        cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION,
                                                             &cu, sizeof(cu))) {
                      continue;
                    }
                    if (valid(a)) add(a, "c");
                  }
                }
              }
            }
          }
        }
      }
      cublasLtMatmulPreferenceDestroy(pref);

      // Screen every candidate once (within the budget), then time the fastest 12 properly.
      const auto t0 = std::chrono::steady_clock::now();
      int screened = 0;
      for (Candidate& c : cand) {
        const double spent =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        if (spent > budget_ms) {
          c.screen_us = 1e30;
          continue;
        }
        c.screen_us = time([&] { return lt_run(c.algo); }, 1, 10);
        if (c.screen_us < 0) {
          cudaGetLastError();
          c.screen_us = 1e30;
        }
        ++screened;
      }
      std::sort(cand.begin(), cand.end(),
                [](const Candidate& a, const Candidate& b) { return a.screen_us < b.screen_us; });
      const size_t top = std::min<size_t>(cand.size(), 12);
      for (size_t i = 0; i < top; ++i) {
        if (cand[i].screen_us >= 1e29) break;
        cand[i].us = time([&] { return lt_run(cand[i].algo); }, 9, 20);
      }
      std::sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(top),
                [](const Candidate& a, const Candidate& b) {
                  return (a.us > 0 ? a.us : 1e30) < (b.us > 0 ? b.us : 1e30);
                });
      const double t_heur1 = have_heur1 ? time([&] { return lt_run(heur1); }, 9, 20) : -1;

      // The best configuration's output against cublasGemmEx's, relative to the largest |y|.
      double err = -1;
      if (top > 0 && cand[0].us > 0) {
        gemmex();
        lt_run(cand[0].algo);
        CK(cudaStreamSynchronize(s));
        std::vector<float> a(yn), b(yn);
        CK(cudaMemcpy(a.data(), y_ref, yn * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(b.data(), y, yn * 4, cudaMemcpyDeviceToHost));
        double mx = 0, d = 0;
        for (size_t i = 0; i < yn; ++i) {
          mx = std::max(mx, double(std::fabs(a[i])));
          d = std::max(d, double(std::fabs(a[i] - b[i])));
        }
        err = mx > 0 ? d / mx : d;
      }
      const double best = top > 0 && cand[0].us > 0 ? cand[0].us : -1;
      std::printf("%-17s %4d %8.2f %8.2f %8.2f %6.1f%% %6d %6.0e  %s (%s)%s\n", sh.what, M,
                  t_gemmex, t_heur1, best, best > 0 ? 100.0 * (t_gemmex - best) / t_gemmex : 0.0,
                  static_cast<int>(cand.size()), err,
                  best > 0 ? Describe(cand[0].algo).c_str() : "-",
                  best > 0 ? cand[0].how.c_str() : "-",
                  screened < static_cast<int>(cand.size()) ? " [budget: not all screened]" : "");
      for (size_t i = 1; i < std::min<size_t>(top, 4); ++i) {
        if (cand[i].us <= 0) break;
        std::printf("%-17s %4s %8s %8s %8.2f %7s %6s %6s  %s (%s)\n", "", "", "", "", cand[i].us,
                    "", "", "", Describe(cand[i].algo).c_str(), cand[i].how.c_str());
      }
      std::fflush(stdout);
      cublasLtMatrixLayoutDestroy(la);
      cublasLtMatrixLayoutDestroy(lb);
      cublasLtMatrixLayoutDestroy(lc);
      cublasLtMatmulDescDestroy(op);
      CK(cudaFree(w));
      CK(cudaFree(x));
      CK(cudaFree(y));
      CK(cudaFree(y_ref));
    }
  }
  return 0;
}
