// Kernel-level checks of the CUDA backend's private launchers (engine/cuda/kernels.h), behind the
// golden parity tests (whose tiny models have head_dim 32 only and decode a few rows):
// - the decode-attention kernels (tensor-core mma and its three variants, lane-per-position,
//   warp-per-position) against a double-precision reference on the same bf16 cache, over the shapes
//   the real models use (head_dim 32/64/128, GQA groups 1-8), rows of several slots with and
//   without a shared prompt prefix, contexts that end mid-tile, and split-KV, each also with the
//   shared prefixes walked per task of up to 64 query heads (cascade, one, three and ten prefix
//   ranges: up to 8 the own kernel merges them with per-head factors, beyond that per element),
//   and the O projection's bf16 input written with the output;
// - the small-batch matmul (LaunchGemv), the causal conv step (LaunchCausalConv), the SSD and
//   Mamba-1 state updates (LaunchSsdScan, LaunchMamba1Scan) and Llamba's gate (LaunchLlambaGate)
//   against double references;
// - the sampler's fast path against its general path (identical ids);
// - RoPE with the KV append (LaunchRopeAppend): the 16-byte kernel equal to the scalar one bit for
//   bit, both against a double reference;
// - the f16 state's saturation and overflow word, and the model's refusal to go on from such a
//   state (Backend::StateHealth).
// Skips with a visible message when no CUDA device is present (CI).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/cuda/kernels.h"
#include "engine/model.h"
#include "tests/engine/engine_test_util.h"

namespace ttc {
namespace {

namespace cu = engine::cuda;

// Whether this machine has a CUDA device; each test skips with its own message without one (CI).
bool HasCudaDevice() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

uint16_t ToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
double FromBf16(uint16_t b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// A kernel's copy of its output as the next GEMM's bf16 input (d_bf: out rounded, then with
// split the remainders out - hi rounded) against the f32 output it wrote: equal bit for bit, as
// LaunchF32ToBf16 / LaunchSplitBf16 would have made it.
void ExpectGemmInput(const std::vector<float>& out, const uint16_t* d_bf, bool split) {
  const size_t n = out.size();
  std::vector<uint16_t> bf(split ? 2 * n : n);
  ASSERT_EQ(cudaMemcpy(bf.data(), d_bf, bf.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  size_t wrong = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t hi = ToBf16(out[i]);
    wrong += bf[i] != hi;
    if (split) wrong += bf[n + i] != ToBf16(out[i] - static_cast<float>(FromBf16(hi)));
  }
  EXPECT_EQ(wrong, 0u) << (split ? "split" : "rounded") << " GEMM input of " << n << " values";
}

template <typename T>
T* ToDevice(const std::vector<T>& v) {
  T* d = nullptr;
  EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), std::max<size_t>(16, v.size() * sizeof(T))),
            cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return d;
}

struct Shape {
  int hd, H, Hkv, splits;
};

// Slots 0-2 share prefix A (plen_a positions), slots 3-4 prefix B, slot 5 has none; each slot owns
// the positions from its plen up to its row's position.
void CheckShape(const Shape& sh, uint32_t seed) {
  SCOPED_TRACE("head_dim " + std::to_string(sh.hd) + ", heads " + std::to_string(sh.H) + "/" +
               std::to_string(sh.Hkv) + ", splits " + std::to_string(sh.splits));
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int hd = sh.hd, H = sh.H, Hkv = sh.Hkv, G = H / Hkv;
  const int64_t kvw = static_cast<int64_t>(Hkv) * hd;
  const int plen_a = 512, plen_b = 37;
  std::vector<int> plen = {plen_a, plen_a, plen_a, plen_b, plen_b, 0};
  std::vector<int> pos = {512, 700, 511, 37, 300, 129};  // row r reads slot r, 0..pos
  // 18 more rows on prefix A, so that a cascade task fills several warps' tile rows (and, for
  // G >= 4, more than one task).
  for (int i = 0; i < 18; ++i) {
    plen.push_back(plen_a);
    pos.push_back(512 + 7 * i);
  }
  const int rows = static_cast<int>(pos.size());
  auto random_bf16 = [&](int64_t n, float scale) {
    std::vector<uint16_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = ToBf16(nd(gen) * scale);
    return v;
  };
  // Host copies: keys scaled so that the softmax is peaked in places and flat in others.
  const auto kp_a = random_bf16(plen_a * kvw, 2.0f), vp_a = random_bf16(plen_a * kvw, 1.0f);
  const auto kp_b = random_bf16(plen_b * kvw, 2.0f), vp_b = random_bf16(plen_b * kvw, 1.0f);
  std::vector<std::vector<uint16_t>> k_own, v_own;
  for (int r = 0; r < rows; ++r) {
    const int64_t n = std::max(0, pos[r] + 1 - plen[r]) * kvw;
    k_own.push_back(random_bf16(n, 2.0f));
    v_own.push_back(random_bf16(n, 1.0f));
  }
  std::vector<float> q(static_cast<size_t>(rows) * H * hd);
  for (auto& x : q) x = nd(gen);

  std::vector<void*> to_free;
  auto dev = [&](const std::vector<uint16_t>& v) {
    uint16_t* d = ToDevice(v);
    to_free.push_back(d);
    return d;
  };
  uint16_t* d_kp_a = dev(kp_a);
  uint16_t* d_vp_a = dev(vp_a);
  uint16_t* d_kp_b = dev(kp_b);
  uint16_t* d_vp_b = dev(vp_b);
  std::vector<cu::DevKv> kv(static_cast<size_t>(rows));
  std::vector<cu::DevRow> info(static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    kv[r].kp = plen[r] == plen_a ? d_kp_a : d_kp_b;
    kv[r].vp = plen[r] == plen_a ? d_vp_a : d_vp_b;
    kv[r].k = dev(k_own[r]);
    kv[r].v = dev(v_own[r]);
    kv[r].plen = plen[r];
    info[r] = {r, pos[r]};
  }
  cu::DevKv* d_kv = ToDevice(kv);
  cu::DevRow* d_info = ToDevice(info);
  float* d_q = ToDevice(q);
  to_free.insert(to_free.end(), {d_kv, d_info, d_q});
  const size_t out_n = q.size();
  float *d_out = nullptr, *d_po = nullptr, *d_pml = nullptr;
  ASSERT_EQ(cudaMalloc(&d_out, out_n * 4), cudaSuccess);
  // Prefix ranges of the cascade runs below: 3, and 10 (two of them past prefix A's 512 positions)
  // for the own kernel's per-element merge of more than 8 prefix ranges.
  constexpr int kMaxChunks = 10;
  const int max_parts = sh.splits + kMaxChunks;
  ASSERT_EQ(cudaMalloc(&d_po, out_n * max_parts * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_pml, static_cast<size_t>(rows) * H * max_parts * 2 * 4), cudaSuccess);
  to_free.insert(to_free.end(), {d_out, d_po, d_pml});

  // Reference in double on the same bf16 values.
  std::vector<double> ref(out_n);
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < H; ++h) {
      const int kvh = h / G;
      auto key = [&](int p, int d) {
        return p < plen[r] ? FromBf16((plen[r] == plen_a ? kp_a : kp_b)[p * kvw + kvh * hd + d])
                           : FromBf16(k_own[r][(p - plen[r]) * kvw + kvh * hd + d]);
      };
      auto val = [&](int p, int d) {
        return p < plen[r] ? FromBf16((plen[r] == plen_a ? vp_a : vp_b)[p * kvw + kvh * hd + d])
                           : FromBf16(v_own[r][(p - plen[r]) * kvw + kvh * hd + d]);
      };
      std::vector<double> s(static_cast<size_t>(pos[r] + 1));
      double mx = -INFINITY;
      for (int p = 0; p <= pos[r]; ++p) {
        double a = 0.0;
        for (int d = 0; d < hd; ++d) a += static_cast<double>(q[(r * H + h) * hd + d]) * key(p, d);
        s[p] = a / std::sqrt(static_cast<double>(hd));
        mx = std::max(mx, s[p]);
      }
      double l = 0.0;
      for (auto& x : s) l += (x = std::exp(x - mx));
      for (int d = 0; d < hd; ++d) {
        double o = 0.0;
        for (int p = 0; p <= pos[r]; ++p) o += s[p] * val(p, d);
        ref[(r * H + h) * hd + d] = o / l;
      }
    }
  }
  const std::pair<cu::AttnKernel, const char*> kernels[] = {
      {cu::AttnKernel::kMma, "mma"},      {cu::AttnKernel::kMmaNs2, "mma-ns2"},
      {cu::AttnKernel::kMmaW8, "mma-w8"}, {cu::AttnKernel::kMmaW1, "mma-w1"},
      {cu::AttnKernel::kLanes, "lanes"},  {cu::AttnKernel::kWarp, "warp"}};
  // The cascade's tasks: rows grouped by prefix (A: 0-2 and 6-23, B: 3-4, none: 5) in tasks of at
  // most PrefixRowsPerTask(G) rows (G >= 4 splits prefix A over several tasks).
  const int per_task = cu::PrefixRowsPerTask(G);
  std::vector<int32_t> task_rows;
  std::vector<int32_t> group_a = {0, 1, 2};
  for (int r = 6; r < rows; ++r) group_a.push_back(r);
  for (const std::vector<int32_t>& group : {group_a, {3, 4}, {5}}) {
    for (size_t i = 0; i < group.size(); i += per_task) {
      const size_t n = std::min(group.size() - i, static_cast<size_t>(per_task));
      task_rows.insert(task_rows.end(), group.begin() + i, group.begin() + i + n);
      task_rows.insert(task_rows.end(), cu::kPrefixTaskRows - n, -1);
    }
  }
  int32_t* d_tasks = ToDevice(task_rows);
  to_free.push_back(d_tasks);
  const int tasks = static_cast<int>(task_rows.size()) / cu::kPrefixTaskRows;
  struct Run {
    cu::AttnKernel kernel;
    std::string name;
    int chunks;  // 0: no cascade
  };
  std::vector<Run> runs;
  for (const auto& [kernel, name] : kernels) {
    runs.push_back({kernel, name, 0});
    runs.push_back({kernel, std::string(name) + "+prefix", 1});
  }
  runs.push_back({cu::AttnKernel::kMma, "mma+prefix/3", 3});
  runs.push_back({cu::AttnKernel::kMma, "mma+prefix/10", kMaxChunks});
  runs.push_back({cu::AttnKernel::kMmaW1, "mma-w1+prefix/10", kMaxChunks});
  // Every run also asks for the O projection's bf16 input (rounded and split forms in turn),
  // written by the kernel that normalises the output or converted after it.
  uint16_t* d_bf = ToDevice(std::vector<uint16_t>(2 * out_n, 0));
  to_free.push_back(d_bf);
  bool split = false;
  for (const auto& [kernel, name, chunks] : runs) {
    ASSERT_EQ(cudaMemset(d_out, 0xff, out_n * 4), cudaSuccess);  // NaN until written
    ASSERT_EQ(cudaMemset(d_bf, 0xff, 2 * out_n * 2), cudaSuccess);
    const cu::PrefixPlan plan{d_tasks, tasks, std::max(1, chunks)};
    split = !split;
    cu::LaunchAttention(d_q, rows, d_info, d_kv, H, Hkv, hd, d_out, sh.splits, d_po, d_pml, nullptr,
                        kernel, chunks > 0 ? &plan : nullptr, d_bf, split);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << name;
    std::vector<float> got(out_n);
    ASSERT_EQ(cudaMemcpy(got.data(), d_out, out_n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    {
      SCOPED_TRACE(name);
      ExpectGemmInput(got, d_bf, split);
    }
    double worst = 0.0;
    for (size_t i = 0; i < out_n; ++i) {
      const double e = std::abs(got[i] - ref[i]);
      worst = std::isnan(e) ? INFINITY : std::max(worst, e);
    }
    // f32 accumulation over <= 701 positions of O(1) terms: ~1e-6; the bound leaves room for the
    // order of summation but catches any wrong position, head or dimension (errors ~0.1-1).
    EXPECT_LT(worst, 2e-4) << name;
    std::printf("[cuda] attention %s head_dim %d heads %d/%d splits %d: max |err| %.3g\n",
                name.c_str(), hd, H, Hkv, sh.splits, worst);
  }
  for (void* p : to_free) cudaFree(p);
}

TEST(CudaAttention, KernelsAgreeWithReference) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the attention kernels are checked on a GPU machine";
  }
  uint32_t seed = 1;
  for (const Shape& sh :
       {Shape{64, 32, 8, 1}, Shape{64, 32, 8, 3}, Shape{128, 24, 8, 1}, Shape{128, 24, 8, 4},
        Shape{32, 4, 2, 1}, Shape{32, 16, 2, 2}, Shape{64, 64, 8, 1}, Shape{128, 8, 8, 2}}) {
    CheckShape(sh, seed++);
  }
}

// The small-batch matmul (LaunchGemv) against a double reference: f32 inputs times bf16 weights,
// with and without accumulation, row counts across its templates, N not a multiple of its column
// group, and the refusal of shapes it does not handle.
TEST(CudaGemv, MatchesReferenceAndRefusesUnalignedShapes) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the small-batch matmul is checked on a GPU machine";
  }
  std::mt19937 gen(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const auto& [M, N, K] : {std::tuple{1, 2048, 2048}, std::tuple{3, 1027, 8192},
                                std::tuple{8, 5120, 3072}, std::tuple{16, 130, 256}}) {
    SCOPED_TRACE("M " + std::to_string(M) + " N " + std::to_string(N) + " K " + std::to_string(K));
    std::vector<uint16_t> w(static_cast<size_t>(N) * K);
    for (auto& v : w) v = ToBf16(nd(gen) * 0.05f);
    std::vector<float> x(static_cast<size_t>(M) * K), base(static_cast<size_t>(M) * N);
    for (auto& v : x) v = nd(gen);
    for (auto& v : base) v = nd(gen);
    uint16_t* d_w = ToDevice(w);
    float* d_x = ToDevice(x);
    float* d_out = ToDevice(base);
    for (bool accumulate : {false, true}) {
      ASSERT_EQ(cudaMemcpy(d_out, base.data(), base.size() * 4, cudaMemcpyHostToDevice),
                cudaSuccess);
      ASSERT_TRUE(cu::LaunchGemv(d_w, N, K, d_x, K, M, d_out, N, accumulate, nullptr));
      std::vector<float> got(base.size());
      ASSERT_EQ(cudaMemcpy(got.data(), d_out, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
      double worst = 0.0;
      for (int m = 0; m < M; ++m) {
        for (int n = 0; n < N; ++n) {
          double ref = accumulate ? base[m * N + n] : 0.0;
          for (int k = 0; k < K; ++k)
            ref += FromBf16(w[static_cast<size_t>(n) * K + k]) * x[m * K + k];
          worst = std::max(worst, std::abs(ref - got[m * N + n]));
        }
      }
      // Sums of K products of size ~0.05: f32 accumulation error ~1e-6 relative.
      EXPECT_LT(worst, 1e-4) << "accumulate " << accumulate;
      std::printf("[cuda] gemv M %d N %d K %d accumulate %d: max |err| %.3g\n", M, N, K,
                  static_cast<int>(accumulate), worst);
    }
    EXPECT_FALSE(cu::LaunchGemv(d_w, N, K, d_x + 1, K, M, d_out, N, false, nullptr));  // unaligned
    EXPECT_FALSE(cu::LaunchGemv(d_w, N, K, d_x, K, 17, d_out, N, false, nullptr));     // too many
    cudaFree(d_w);
    cudaFree(d_x);
    cudaFree(d_out);
  }
}

// The decode-sized tensor-core matmul (LaunchSkinnyGemm) against a double reference, over the
// cluster sizes it picks (from 1 to 8, some where the chunks do not divide by more: K = 192 or
// 640), partial 128-feature tiles, row counts of every tile size (1-64), both input forms and the
// accumulate flag. Split input: hi = bf16(x), lo = bf16(x - hi), so the reference is x itself
// (hi + lo holds it to 2^-17 relative); rounded input: the reference is bf16(x). It writes no
// column past N (the guard columns of a wider ldo) and gives the same bits when run again.
TEST(CudaSkinnyGemm, MatchesReferenceAndRefusesWhatItCannotRun) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the skinny matmul is checked on a GPU machine";
  }
  std::mt19937 gen(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const auto& [M, N, K] :
       {std::tuple{4, 2048, 2048}, std::tuple{5, 200, 192}, std::tuple{16, 3072, 2048},
        std::tuple{33, 130, 8192}, std::tuple{64, 5120, 3072}, std::tuple{40, 11264, 2048},
        std::tuple{1, 64, 64}, std::tuple{12, 1000, 640}, std::tuple{24, 768, 1024},
        std::tuple{32, 2048, 2048}}) {
    SCOPED_TRACE("M " + std::to_string(M) + " N " + std::to_string(N) + " K " + std::to_string(K));
    const int64_t ldo = N + 3;
    std::vector<uint16_t> w(static_cast<size_t>(N) * K);
    for (auto& v : w) v = ToBf16(nd(gen) * 0.05f);
    std::vector<float> x(static_cast<size_t>(M) * K), base(static_cast<size_t>(M) * ldo);
    for (auto& v : x) v = nd(gen);
    for (auto& v : base) v = nd(gen);
    std::vector<uint16_t> rounded(x.size()), split(2 * x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      rounded[i] = ToBf16(x[i]);
      split[i] = rounded[i];
      split[x.size() + i] = ToBf16(static_cast<float>(x[i] - FromBf16(rounded[i])));
    }
    uint16_t* d_w = ToDevice(w);
    uint16_t* d_round = ToDevice(rounded);
    uint16_t* d_split = ToDevice(split);
    float* d_out = ToDevice(base);
    for (bool halves : {true, false}) {
      std::vector<double> product(static_cast<size_t>(M) * N);
      for (int m = 0; m < M; ++m) {
        for (int n = 0; n < N; ++n) {
          double sum = 0.0;
          for (int k = 0; k < K; ++k) {
            const size_t i = static_cast<size_t>(m) * K + k;
            sum += FromBf16(w[static_cast<size_t>(n) * K + k]) *
                   (halves ? static_cast<double>(x[i]) : FromBf16(rounded[i]));
          }
          product[static_cast<size_t>(m) * N + n] = sum;
        }
      }
      for (bool accumulate : {false, true}) {
        std::vector<float> got[2];
        for (auto& g : got) {
          ASSERT_EQ(cudaMemcpy(d_out, base.data(), base.size() * 4, cudaMemcpyHostToDevice),
                    cudaSuccess);
          ASSERT_TRUE(cu::LaunchSkinnyGemm(d_w, N, K, halves ? d_split : d_round, M, halves, d_out,
                                           ldo, accumulate, nullptr));
          g.resize(base.size());
          ASSERT_EQ(cudaMemcpy(g.data(), d_out, g.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        }
        EXPECT_EQ(0, std::memcmp(got[0].data(), got[1].data(), got[0].size() * 4))
            << "not deterministic";
        double worst = 0.0;
        for (int m = 0; m < M; ++m) {
          for (int64_t n = 0; n < ldo; ++n) {
            const size_t o = static_cast<size_t>(m * ldo + n);
            if (n >= N) {
              ASSERT_EQ(got[0][o], base[o]) << "wrote past N at row " << m;
              continue;
            }
            const double ref =
                (accumulate ? base[o] : 0.0) + product[static_cast<size_t>(m) * N + n];
            worst = std::max(worst, std::abs(ref - got[0][o]));
          }
        }
        // Sums of K products of size ~0.05 in f32: ~1e-6 relative; the split input adds 2^-17.
        EXPECT_LT(worst, 1e-4) << "split " << halves << " accumulate " << accumulate;
        std::printf("[cuda] skinny gemm M %d N %d K %d split %d accumulate %d: max |err| %.3g\n", M,
                    N, K, static_cast<int>(halves), static_cast<int>(accumulate), worst);
      }
    }
    EXPECT_FALSE(cu::LaunchSkinnyGemm(d_w, N, K, d_round + 1, M, false, d_out, ldo, false,
                                      nullptr));  // unaligned input
    EXPECT_FALSE(cu::LaunchSkinnyGemm(d_w, N, K, d_round, 65, false, d_out, ldo, false,
                                      nullptr));  // too many rows
    if (K > 64) {
      EXPECT_FALSE(cu::LaunchSkinnyGemm(d_w, N, K - 8, d_round, M, false, d_out, ldo, false,
                                        nullptr));  // K not a multiple of 64
    }
    cudaFree(d_w);
    cudaFree(d_round);
    cudaFree(d_split);
    cudaFree(d_out);
  }
}

// The recurrent state's storage kinds, their names, and `v` rounded to one (round to nearest even;
// f16 through the compiler's _Float16, saturated as the kernels store it).
const char* StoreName(cu::StateStore st) {
  return st == cu::StateStore::kF32 ? "f32" : st == cu::StateStore::kBf16 ? "bf16" : "f16";
}
float RoundToStore(float v, cu::StateStore st) {
  if (st == cu::StateStore::kBf16) return static_cast<float>(FromBf16(ToBf16(v)));
  if (st == cu::StateStore::kF16) {
    return static_cast<float>(static_cast<_Float16>(std::clamp(v, -65504.0f, 65504.0f)));
  }
  return v;
}
// Relative error of one rounding to the storage kind (half an ulp: 2^-9 bf16, 2^-12 f16), with
// room for the f32 math.
double StoreTolerance(cu::StateStore st) {
  return st == cu::StateStore::kBf16 ? 8e-3 : st == cu::StateStore::kF16 ? 1e-3 : 1e-5;
}

// A recurrent state on the device as the kernels keep it (the values of `state` exact in the
// storage kind), and read back as floats; the largest error relative to 1 + |reference|.
void* StateToDevice(const std::vector<float>& state, cu::StateStore st) {
  if (st == cu::StateStore::kF32) return ToDevice(state);
  std::vector<uint16_t> v(state.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (st == cu::StateStore::kBf16) {
      v[i] = ToBf16(state[i]);
    } else {
      const _Float16 h = static_cast<_Float16>(state[i]);
      std::memcpy(&v[i], &h, 2);
    }
  }
  return ToDevice(v);
}
std::vector<float> StateFromDevice(const void* d, cu::StateStore st, size_t n) {
  std::vector<float> out(n);
  if (st == cu::StateStore::kF32) {
    EXPECT_EQ(cudaMemcpy(out.data(), d, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
  std::vector<uint16_t> v(n);
  EXPECT_EQ(cudaMemcpy(v.data(), d, n * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  for (size_t i = 0; i < n; ++i) {
    if (st == cu::StateStore::kBf16) {
      out[i] = static_cast<float>(FromBf16(v[i]));
    } else {
      _Float16 h;
      std::memcpy(&h, &v[i], 2);
      out[i] = static_cast<float>(h);
    }
  }
  return out;
}
double WorstStateError(const std::vector<double>& ref, const std::vector<float>& got) {
  double worst = 0.0;
  for (size_t i = 0; i < ref.size(); ++i)
    worst = std::max(worst, std::abs(ref[i] - got[i]) / (1.0 + std::abs(ref[i])));
  return worst;
}

// The SSD (discrete / HF Mamba-2) state update (LaunchSsdScan) against a double reference of the
// recurrence h = decay h + scale x B, y = C.h + D x: the real models' head shapes (d_state 64, head
// dims 64 and 96: the register-resident kernel) and one too large for it (d_state 128 x 128: the
// scan kernel), f32, bf16 and f16 state, both kinds, three sequences of 1, 5 and 1 tokens (a prompt
// and two decode rows) in one launch, and decode steps of one token per sequence (the shared-memory
// copy kernel), checking every y and the stored state.
struct SsdCase {
  int64_t N, P;
  bool llamba;
  cu::StateStore store;
  bool decode = false;  // one token per sequence (a decode step: SsdCopyKernel)
};
void CheckSsd(const SsdCase& c, uint32_t seed) {
  SCOPED_TRACE("N " + std::to_string(c.N) + " P " + std::to_string(c.P) +
               (c.llamba ? " llamba" : " hf") + " " + StoreName(c.store) + " state");
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t H = 4, G = 2, N = c.N, P = c.P, di = H * P, C = di + 2 * G * N;
  const std::vector<int> tokens = c.decode ? std::vector<int>{1, 1, 1} : std::vector<int>{1, 5, 1},
                         slots = {2, 0, 1};
  const int64_t M = c.decode ? 3 : 7, slot_count = 3, ld_proj = H + 3, dt_off = 2;
  std::vector<float> proj(M * ld_proj), xbc(M * C), D(H), dt_bias(H), A(H);
  for (auto& v : proj) v = nd(gen);
  for (auto& v : xbc) v = nd(gen) * 0.5f;
  for (int64_t h = 0; h < H; ++h) {
    D[h] = nd(gen);
    dt_bias[h] = nd(gen) * 0.5f;
    A[h] = -std::exp(nd(gen) * 0.5f);
  }
  const int64_t state_n = slot_count * H * P * N;
  std::vector<float> state(state_n);
  for (auto& v : state) v = RoundToStore(nd(gen), c.store);
  std::vector<cu::DevSeq> seqs;
  for (int i = 0, row = 0; i < 3; row += tokens[i], ++i)
    seqs.push_back({slots[i], row, tokens[i], 0});
  // Reference in double.
  std::vector<double> ref_state(state.begin(), state.end()), ref_y(M * di);
  const double dt_min = 0.001, dt_max = 0.1;
  for (const cu::DevSeq& sq : seqs) {
    for (int t = 0; t < sq.n; ++t) {
      const int64_t r = sq.row0 + t;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / G);
        const double raw = proj[r * ld_proj + dt_off + h];
        double decay, scale;
        if (c.llamba) {
          decay = std::exp(-std::log1p(std::exp(raw)));
          scale = 1.0;
        } else {
          double dtv = std::log1p(std::exp(raw + dt_bias[h]));
          dtv = std::min(std::max(dtv, dt_min), dt_max);
          decay = std::exp(dtv * A[h]);
          scale = dtv;
        }
        for (int64_t p = 0; p < P; ++p) {
          const double x = xbc[r * C + h * P + p];
          double y = 0.0;
          for (int64_t n = 0; n < N; ++n) {
            double& st = ref_state[((sq.slot * H + h) * P + p) * N + n];
            st = decay * st + scale * x * xbc[r * C + di + g * N + n];
            y += st * xbc[r * C + di + G * N + g * N + n];
          }
          ref_y[r * di + h * P + p] = y + D[h] * x;
        }
      }
    }
  }
  float* d_proj = ToDevice(proj);
  float* d_xbc = ToDevice(xbc);
  float* d_D = ToDevice(D);
  float* d_bias = ToDevice(dt_bias);
  float* d_A = ToDevice(A);
  float* d_y = ToDevice(std::vector<float>(M * di, 0.0f));
  cu::DevSeq* d_seqs = ToDevice(seqs);
  void* d_state = StateToDevice(state, c.store);
  cu::SsdScanArgs a{d_proj,
                    ld_proj,
                    dt_off,
                    d_xbc,
                    di,
                    N,
                    H,
                    P,
                    G,
                    c.llamba,
                    d_D,
                    c.llamba ? nullptr : d_bias,
                    c.llamba ? nullptr : d_A,
                    static_cast<float>(dt_min),
                    static_cast<float>(dt_max),
                    d_state,
                    c.store,
                    /*stage=*/!c.decode,
                    d_y};
  cu::LaunchSsdScan(a, d_seqs, 3, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> y(M * di);
  ASSERT_EQ(cudaMemcpy(y.data(), d_y, y.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  const std::vector<float> got_state = StateFromDevice(d_state, c.store, state_n);
  double worst_y = 0.0;
  for (int64_t i = 0; i < M * di; ++i) worst_y = std::max(worst_y, std::abs(ref_y[i] - y[i]));
  const double worst_s = WorstStateError(ref_state, got_state);
  // f32 math over <= 5 tokens and N terms of O(1): ~1e-5 (y is taken from the f32 state, also with
  // 16-bit storage); a 16-bit state is rounded once per forward when stored (StoreTolerance). A
  // wrong row, head, group or column, or a wrong conversion, is off by O(1).
  EXPECT_LT(worst_y, 1e-3);
  EXPECT_LT(worst_s, StoreTolerance(c.store));
  std::printf("[cuda] ssd N %lld P %lld %s %s%s: max |y err| %.3g, max state err %.3g\n",
              static_cast<long long>(N), static_cast<long long>(P), c.llamba ? "llamba" : "hf",
              StoreName(c.store), c.decode ? " decode" : "", worst_y, worst_s);
  for (void* q : {static_cast<void*>(d_proj), static_cast<void*>(d_xbc), static_cast<void*>(d_D),
                  static_cast<void*>(d_bias), static_cast<void*>(d_A), static_cast<void*>(d_y),
                  static_cast<void*>(d_seqs), d_state})
    cudaFree(q);
}

TEST(CudaSsd, StateUpdateMatchesReference) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the SSD state update is checked on a GPU machine";
  }
  uint32_t seed = 21;
  constexpr auto kF32 = cu::StateStore::kF32, kBf16 = cu::StateStore::kBf16,
                 kF16 = cu::StateStore::kF16;
  for (const SsdCase& c :
       {SsdCase{64, 64, true, kF32}, SsdCase{64, 96, true, kF32}, SsdCase{64, 64, false, kF32},
        SsdCase{64, 96, true, kBf16}, SsdCase{16, 32, false, kBf16}, SsdCase{128, 128, true, kF32},
        SsdCase{64, 64, true, kF32, true}, SsdCase{64, 96, false, kBf16, true},
        SsdCase{16, 32, true, kF32, true}, SsdCase{64, 64, true, kF16},
        SsdCase{128, 128, false, kF16}, SsdCase{64, 64, true, kF16, true},
        SsdCase{64, 96, false, kF16, true}}) {
    CheckSsd(c, seed++);
  }
}

// RoPE + KV append (LaunchRopeAppend): rows of three slots (one with a 5-position shared prefix, so
// its own buffer starts there) at positions up to ~4000, head dims 32 / 64 / 128 with GQA. The
// 16-byte kernel must equal the scalar kernel bit for bit (same sincosf and the same RopeLo /
// RopeHi instructions per element); both must match a double reference within f32 rounding of the
// angle (position times frequency: ~4e-4 absolute on O(1) values at 4000) and, for k and v, one
// bf16 rounding.
TEST(CudaRope, VectorKernelEqualsScalarAndReference) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the RoPE kernels are checked on a GPU machine";
  }
  if (const char* e = std::getenv("TTC_CUDA_ROPE_SCALAR"); e != nullptr && e[0] == '1') {
    GTEST_SKIP() << "TTC_CUDA_ROPE_SCALAR=1 is set: both variants would run the scalar kernel";
  }
  std::mt19937 gen(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const auto& [H, Hkv, hd] : {std::tuple{4, 2, 32}, std::tuple{32, 8, 64},
                                   std::tuple{24, 8, 128}, std::tuple{8, 8, 64}}) {
    SCOPED_TRACE("H " + std::to_string(H) + " Hkv " + std::to_string(Hkv) + " hd " +
                 std::to_string(hd));
    const int64_t qw = int64_t{H} * hd, kvw = int64_t{Hkv} * hd, ld = qw + 2 * kvw;
    const std::vector<cu::DevRow> rows = {{0, 5}, {1, 0}, {2, 3999}, {1, 1}, {0, 6}};
    const std::vector<int32_t> plen = {5, 0, 0};
    const int64_t cap = 4000, M = static_cast<int64_t>(rows.size());
    std::vector<float> qkv(M * ld), inv_freq(hd / 2);
    for (auto& v : qkv) v = nd(gen);
    for (int j = 0; j < hd / 2; ++j)
      inv_freq[j] = static_cast<float>(std::pow(500000.0, -2.0 * j / hd));
    float* d_qkv = ToDevice(qkv);
    float* d_freq = ToDevice(inv_freq);
    cu::DevRow* d_rows = ToDevice(rows);
    std::vector<float> q[2];
    std::vector<uint16_t> k[2], v[2];
    for (int variant = 0; variant < 2; ++variant) {
      std::vector<cu::DevKv> kv(3);
      std::vector<uint16_t*> own;
      for (int sl = 0; sl < 3; ++sl) {
        uint16_t* kb = ToDevice(std::vector<uint16_t>(cap * kvw, 0));
        uint16_t* vb = ToDevice(std::vector<uint16_t>(cap * kvw, 0));
        own.push_back(kb);
        own.push_back(vb);
        kv[sl] = {nullptr, nullptr, kb, vb, plen[sl], 0};
      }
      cu::DevKv* d_kv = ToDevice(kv);
      float* d_q = ToDevice(std::vector<float>(M * qw, 0.0f));
      cu::LaunchRopeAppend(d_qkv, M, d_rows, d_freq, H, Hkv, hd, d_q, d_kv, nullptr,
                           /*scalar=*/variant == 0);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      q[variant].resize(M * qw);
      ASSERT_EQ(cudaMemcpy(q[variant].data(), d_q, M * qw * 4, cudaMemcpyDeviceToHost),
                cudaSuccess);
      // Each row's k and v, read back from its slot at its position.
      k[variant].resize(M * kvw);
      v[variant].resize(M * kvw);
      for (int64_t r = 0; r < M; ++r) {
        const int sl = rows[r].slot;
        const int64_t at = (rows[r].pos - plen[sl]) * kvw;
        ASSERT_EQ(
            cudaMemcpy(&k[variant][r * kvw], own[2 * sl] + at, kvw * 2, cudaMemcpyDeviceToHost),
            cudaSuccess);
        ASSERT_EQ(
            cudaMemcpy(&v[variant][r * kvw], own[2 * sl + 1] + at, kvw * 2, cudaMemcpyDeviceToHost),
            cudaSuccess);
      }
      for (uint16_t* b : own) cudaFree(b);
      cudaFree(d_kv);
      cudaFree(d_q);
    }
    EXPECT_EQ(std::memcmp(q[0].data(), q[1].data(), q[0].size() * 4), 0);
    EXPECT_EQ(k[0], k[1]);
    EXPECT_EQ(v[0], v[1]);
    double worst_q = 0.0, worst_k = 0.0, worst_v = 0.0;
    const int half = hd / 2;
    for (int64_t r = 0; r < M; ++r) {
      const float* src = &qkv[r * ld];
      for (int h = 0; h < H + Hkv; ++h) {
        for (int j = 0; j < half; ++j) {
          const double ang = static_cast<double>(rows[r].pos) * inv_freq[j];
          const double cs = std::cos(ang), sn = std::sin(ang);
          const double x1 = src[h * hd + j], x2 = src[h * hd + j + half];
          const double o1 = x1 * cs - x2 * sn, o2 = x2 * cs + x1 * sn;
          if (h < H) {
            worst_q = std::max(worst_q, std::abs(o1 - q[1][r * qw + h * hd + j]));
            worst_q = std::max(worst_q, std::abs(o2 - q[1][r * qw + h * hd + j + half]));
          } else {
            const int64_t at = r * kvw + (h - H) * hd;
            worst_k = std::max(worst_k, std::abs(o1 - FromBf16(k[1][at + j])) / (1 + std::abs(o1)));
            worst_k = std::max(worst_k,
                               std::abs(o2 - FromBf16(k[1][at + j + half])) / (1 + std::abs(o2)));
          }
        }
      }
      for (int64_t i = 0; i < kvw; ++i) {
        const double x = src[qw + kvw + i];
        worst_v = std::max(worst_v, std::abs(x - FromBf16(v[1][r * kvw + i])) / (1 + std::abs(x)));
      }
    }
    EXPECT_LT(worst_q, 3e-3);
    EXPECT_LT(worst_k, 6e-3);
    EXPECT_LT(worst_v, 4e-3);
    std::printf(
        "[cuda] rope H %d Hkv %d hd %d: vector == scalar; max |q err| %.3g, k %.3g, v %.3g\n", H,
        Hkv, hd, worst_q, worst_k, worst_v);
    cudaFree(d_qkv);
    cudaFree(d_freq);
    cudaFree(d_rows);
  }
}

// An f16 state store past +-65504 saturates there (not an infinity) and sets the overflow word
// that the backend's StateHealth reads; stores within range leave the word alone. A Llamba head
// with decay 1 (dt -30) adds x B = 100 x 100 per token to states of +-60000 (head 0) and nothing
// to head 1's 1.5, on a decode step (the copy kernel) and a 3-token prompt (the register kernel).
TEST(CudaSsd, F16StoreSaturatesAndReports) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the f16 state's saturation is checked on a GPU machine";
  }
  unsigned* word = cu::ArmStateOverflowWord();
  ASSERT_NE(word, nullptr);
  *static_cast<volatile unsigned*>(word) = 0;
  const int64_t H = 2, G = 1, N = 64, P = 64, di = H * P, C = di + 2 * G * N, ld_proj = H + 1;
  for (const bool decode : {true, false}) {
    for (const float push : {0.0f, 100.0f}) {
      SCOPED_TRACE(std::string(decode ? "decode" : "prompt") + (push > 0 ? " overflowing" : ""));
      const int T = decode ? 1 : 3;
      std::vector<float> proj(T * ld_proj, -30.0f), xbc(T * C, 0.0f), D(H, 0.0f);
      for (int t = 0; t < T; ++t) {
        for (int64_t p = 0; p < P; ++p) xbc[t * C + p] = p % 2 ? -push : push;  // head 0's x
        for (int64_t n = 0; n < N; ++n) xbc[t * C + di + n] = push;             // B
      }
      std::vector<float> state(H * P * N);
      for (int64_t p = 0; p < P; ++p) {
        for (int64_t n = 0; n < N; ++n) {
          state[p * N + n] = p % 2 ? -60000.0f : 60000.0f;
          state[(P + p) * N + n] = 1.5f;
        }
      }
      const std::vector<cu::DevSeq> seqs = {{0, 0, T, 0}};
      float* d_proj = ToDevice(proj);
      float* d_xbc = ToDevice(xbc);
      float* d_D = ToDevice(D);
      float* d_y = ToDevice(std::vector<float>(T * di, 0.0f));
      cu::DevSeq* d_seqs = ToDevice(seqs);
      void* d_state = StateToDevice(state, cu::StateStore::kF16);
      cu::SsdScanArgs a{d_proj,
                        ld_proj,
                        /*dt_off=*/0,
                        d_xbc,
                        di,
                        N,
                        H,
                        P,
                        G,
                        true,
                        d_D,
                        nullptr,
                        nullptr,
                        0.0f,
                        0.0f,
                        d_state,
                        cu::StateStore::kF16,
                        /*stage=*/!decode,
                        d_y};
      cu::LaunchSsdScan(a, d_seqs, 1, nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<float> got = StateFromDevice(d_state, cu::StateStore::kF16, state.size());
      EXPECT_EQ(*static_cast<volatile unsigned*>(word), push > 0 ? 1u : 0u);
      int wrong = 0;
      for (int64_t p = 0; p < P; ++p) {
        for (int64_t n = 0; n < N; ++n) {
          const float sign = p % 2 ? -1.0f : 1.0f;
          wrong += got[p * N + n] != sign * (push > 0 ? 65504.0f : 60000.0f);
          wrong += got[(P + p) * N + n] != 1.5f;
        }
      }
      EXPECT_EQ(wrong, 0);
      *static_cast<volatile unsigned*>(word) = 0;
      for (void* q :
           {static_cast<void*>(d_proj), static_cast<void*>(d_xbc), static_cast<void*>(d_D),
            static_cast<void*>(d_y), static_cast<void*>(d_seqs), d_state})
        cudaFree(q);
    }
  }
}

// The overflow test is exactly where f16's round to nearest gives up: every value it flags would
// round to an infinity, and every value it lets through rounds to a finite f16 (65504 for the
// band just above it). Host arithmetic, so it runs without a GPU.
TEST(CudaSsd, F16OverflowIsExactlyWhereRoundingOverflows) {
  for (const float v : {65504.0f, 65505.0f, 65519.0f, std::nextafter(65520.0f, 0.0f), 65520.0f,
                        65536.0f, 1e30f, INFINITY}) {
    for (const float x : {v, -v}) {
      const float rounded = static_cast<float>(static_cast<_Float16>(x));
      EXPECT_EQ(cu::F16StoreOverflows(x), std::isinf(rounded)) << x;
      if (!std::isinf(rounded)) {
        EXPECT_EQ(std::fabs(rounded), 65504.0f) << x;
      }
    }
  }
  EXPECT_FALSE(cu::F16StoreOverflows(NAN));
  EXPECT_FALSE(cu::F16StoreOverflows(0.0f));
}

// The model side of the overflow word: once it is set (as a saturating store sets it, above),
// the next forward and every one after it fail with kFailedPrecondition naming the f16 state, and
// a new state cache (which starts at zero) clears it.
TEST(CudaSsd, F16OverflowFailsTheForwardUntilANewState) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the f16 state's overflow check runs on a GPU machine";
  }
  auto model = engine::LoadModel(
      testing::GoldenModel("llamba"),
      {.backend = engine::BackendKind::kCuda, .state_dtype = engine::StateDType::kF16});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const std::vector<int32_t> prompt = {1, 5, 9, 30};
  const engine::BatchLayout whole{{{0, 0, 4}}}, next{{{0, 4, 1}}};
  const std::vector<int64_t> last = {0};
  std::vector<float> logits;
  auto st = (*model)->NewState(1);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE((*model)->Forward(st->get(), whole, prompt, {}, nullptr).ok());
  *static_cast<volatile unsigned*>(cu::ArmStateOverflowWord()) = 1;
  for (int i = 0; i < 2; ++i) {
    const Status s = (*model)->Forward(st->get(), next, std::span(prompt).first(1), last, &logits);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
    EXPECT_NE(s.message().find("f16 recurrent state overflowed"), std::string::npos) << s.message();
  }
  auto fresh = (*model)->NewState(1);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE((*model)->Forward(fresh->get(), whole, prompt, last, &logits).ok());
}

// The causal conv step (LaunchCausalConv) against a double reference of out = act(b + sum_k
// w[k] window[k]) with the window shifted by each token: d_conv 4 with channels and columns in
// multiples of 4 (the float4 kernel), also MambaInLlama's repeated x columns, and the general
// kernel for d_conv 3 and for an odd channel count; sequences of 1, 3 and 1 tokens in one launch,
// checking every output and the stored window.
struct ConvCase {
  int K;
  int64_t channels;
  int64_t mil_n = 0, mil_rep = 1;
  bool silu = true;
};
void CheckConv(const ConvCase& c, uint32_t seed) {
  SCOPED_TRACE("K " + std::to_string(c.K) + " channels " + std::to_string(c.channels) + " mil_n " +
               std::to_string(c.mil_n));
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int K = c.K;
  const int64_t ch = c.channels, col_base = 8, ld = col_base + ch + 4;
  const std::vector<int> tokens = {1, 3, 1}, slots = {1, 2, 0};
  const int64_t M = 5;
  std::vector<float> in(M * ld), w(ch * K), b(ch), state(3 * (K - 1) * ch);
  for (auto* v : {&in, &w, &b, &state})
    for (auto& e : *v) e = nd(gen);
  std::vector<cu::DevSeq> seqs;
  for (int i = 0, row = 0; i < 3; row += tokens[i], ++i)
    seqs.push_back({slots[i], row, tokens[i], 0});
  std::vector<double> ref_state(state.begin(), state.end()), ref_out(M * ch);
  for (const cu::DevSeq& sq : seqs) {
    for (int64_t k = 0; k < ch; ++k) {
      double* win = ref_state.data() + sq.slot * (K - 1) * ch + k;  // tap j at win[j * ch]
      const int64_t col = c.mil_n > 0
                              ? col_base + (k / (c.mil_n * c.mil_rep)) * c.mil_n + k % c.mil_n
                              : col_base + k;
      for (int t = 0; t < sq.n; ++t) {
        const int64_t r = sq.row0 + t;
        const double u = in[r * ld + col];
        double acc = b[k] + w[k * K + K - 1] * u;
        for (int j = 0; j < K - 1; ++j) acc += w[k * K + j] * win[j * ch];
        for (int j = 0; j + 1 < K - 1; ++j) win[j * ch] = win[(j + 1) * ch];
        if (K > 1) win[(K - 2) * ch] = u;
        ref_out[r * ch + k] = c.silu ? acc / (1.0 + std::exp(-acc)) : acc;
      }
    }
  }
  float* d_in = ToDevice(in);
  float* d_w = ToDevice(w);
  float* d_b = ToDevice(b);
  float* d_state = ToDevice(state);
  float* d_out = ToDevice(std::vector<float>(M * ch, 0.0f));
  cu::DevSeq* d_seqs = ToDevice(seqs);
  const bool vec =
      cu::CausalConvVectorised(d_in, ld, col_base, c.mil_n, ch, K, d_w, d_b, d_state, d_out);
  EXPECT_EQ(vec, K == 4 && ch % 4 == 0 && ld % 4 == 0);
  cu::LaunchCausalConv(d_in, ld, col_base, c.mil_n, c.mil_rep, ch, K, d_w, d_b, c.silu, d_seqs, 3,
                       d_state, d_out, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> out(M * ch), got_state(state.size());
  ASSERT_EQ(cudaMemcpy(out.data(), d_out, out.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(got_state.data(), d_state, got_state.size() * 4, cudaMemcpyDeviceToHost),
            cudaSuccess);
  double worst_o = 0.0, worst_s = 0.0;
  for (size_t i = 0; i < out.size(); ++i)
    worst_o = std::max(worst_o, std::abs(ref_out[i] - out[i]));
  for (size_t i = 0; i < state.size(); ++i) {
    worst_s = std::max(worst_s, std::abs(ref_state[i] - got_state[i]));
  }
  // f32 sums of K terms of O(1): ~1e-6; the window is moved, not computed (exact). A wrong tap,
  // column or slot is off by O(1).
  EXPECT_LT(worst_o, 1e-5);
  EXPECT_EQ(worst_s, 0.0);
  std::printf("[cuda] conv K %d channels %lld mil_n %lld (%s kernel): max |out err| %.3g\n", K,
              static_cast<long long>(ch), static_cast<long long>(c.mil_n),
              vec ? "float4" : "general", worst_o);
  for (void* q :
       {static_cast<void*>(d_in), static_cast<void*>(d_w), static_cast<void*>(d_b),
        static_cast<void*>(d_state), static_cast<void*>(d_out), static_cast<void*>(d_seqs)})
    cudaFree(q);
}

TEST(CudaConv, MatchesReference) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the causal conv step is checked on a GPU machine";
  }
  uint32_t seed = 61;
  for (const ConvCase& c : {ConvCase{4, 520}, ConvCase{4, 384, 16, 3},
                            ConvCase{4, 256, 0, 1, false}, ConvCase{3, 520}, ConvCase{4, 130}}) {
    CheckConv(c, seed++);
  }
}

// Llamba's gate (LaunchLlambaGate: out = y * silu(z + zb)) against a double reference, with
// aligned rows (the float4 kernel) and an odd z offset (the scalar one), and the bf16 GEMM input
// each kernel writes beside out (split hi/lo in one case, rounded in the other).
TEST(CudaLlambaGate, MatchesReference) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the Llamba gate is checked on a GPU machine";
  }
  std::mt19937 gen(71);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const int64_t z_off : {int64_t{8}, int64_t{7}}) {
    SCOPED_TRACE("z_off " + std::to_string(z_off));
    const int64_t rows = 5, di = 96, ld = 112;
    std::vector<float> y(rows * di), proj(rows * ld), zb(di);
    for (auto* v : {&y, &proj, &zb})
      for (auto& e : *v) e = nd(gen);
    float* d_y = ToDevice(y);
    float* d_proj = ToDevice(proj);
    float* d_zb = ToDevice(zb);
    float* d_out = ToDevice(std::vector<float>(rows * di, 0.0f));
    const bool split = z_off == 8;  // each kernel writes one form of the GEMM input
    uint16_t* d_bf = ToDevice(std::vector<uint16_t>(2 * rows * di, 0));
    cu::LaunchLlambaGate(d_y, d_proj, ld, z_off, d_zb, rows, di, d_out, nullptr, d_bf, split);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<float> out(rows * di);
    ASSERT_EQ(cudaMemcpy(out.data(), d_out, out.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    ExpectGemmInput(out, d_bf, split);
    cudaFree(d_bf);
    double worst = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < di; ++c) {
        const double z = static_cast<double>(proj[r * ld + z_off + c]) + zb[c];
        const double want = y[r * di + c] * (z / (1.0 + std::exp(-z)));
        worst = std::max(worst, std::abs(want - out[r * di + c]));
      }
    }
    EXPECT_LT(worst, 1e-5);  // one f32 silu and product of O(1) values; a wrong column is O(1)
    std::printf("[cuda] llamba gate z_off %lld: max |out err| %.3g\n",
                static_cast<long long>(z_off), worst);
    for (float* q : {d_y, d_proj, d_zb, d_out}) cudaFree(q);
  }
}

// The Mamba-1 state update (LaunchMamba1Scan) against a double reference of h = exp(d A) h +
// d B x, out = (C.h + D x) silu(z), d = softplus(dt + bias): both kinds (MambaInLlama's grouped B/C
// columns, HF Mamba's shared x_proj ones), f32, bf16 and f16 state, d_inner 160 (one full and one
// partial block of 128 channels), decode steps (one token per sequence: the streaming decode
// kernel) and a launch with a 4-token prompt (the per-channel kernel). The cases with 100
// sequences and 33 channel tiles give each decode block several sequences, more than its
// kM1Stages copies in flight, so the refills and the mbarrier phases are exercised too. Decode
// steps whose projection rows are a multiple of 4 floats stream (bulk copies of 16-byte runs);
// an odd row length (ld_pad 3) sends them to the per-channel kernel, and both are checked. Both
// also write out's bf16 copy for the out_proj GEMM (ExpectGemmInput).
struct Mamba1Case {
  bool mil;
  cu::StateStore store;
  bool decode;
  int nseq = 3;
  int64_t di = 160;
  int64_t ld_pad = 4;
  int64_t rep = 2;  // MambaInLlama: channels per B column (d_inner / d_xb); 3 in the 3B model
};
void CheckMamba1(const Mamba1Case& c, uint32_t seed) {
  SCOPED_TRACE(std::string(c.mil ? "mambainllama" : "hf") + " " + StoreName(c.store) +
               (c.decode ? " decode" : " prompt") + " sequences " + std::to_string(c.nseq) +
               " row pad " + std::to_string(c.ld_pad) + " rep " + std::to_string(c.rep));
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t N = 16, di = c.di, dxb = di / c.rep, rep = c.rep, R = 8;
  const int nseq = c.nseq;
  std::vector<int> tokens(nseq, 1), slots(nseq);
  if (!c.decode) tokens[1] = 4;
  for (int i = 0; i < nseq; ++i) slots[i] = (7 * i + 1) % nseq;  // a permutation (7 is coprime)
  int64_t M = 0;
  for (int t : tokens) M += t;
  const int64_t ld_proj = 2 * di + 2 * dxb + c.ld_pad;
  std::vector<float> proj(M * ld_proj), xc(M * di), dt(M * di), xdbc(M * (R + 2 * N)), dt_b(di),
      A(di * N), D(di);
  for (auto* v : {&proj, &xc, &dt, &xdbc, &dt_b, &D})
    for (auto& e : *v) e = nd(gen) * 0.5f;
  for (auto& e : A) e = -std::exp(nd(gen) * 0.5f);
  const int64_t state_n = nseq * N * di;
  std::vector<float> state(state_n);
  for (auto& v : state) v = RoundToStore(RoundToStore(nd(gen), cu::StateStore::kBf16), c.store);
  std::vector<cu::DevSeq> seqs;
  for (int i = 0, row = 0; i < nseq; row += tokens[i], ++i)
    seqs.push_back({slots[i], row, tokens[i], 0});
  std::vector<double> ref_state(state.begin(), state.end()), ref_out(M * di);
  for (const cu::DevSeq& sq : seqs) {
    for (int t = 0; t < sq.n; ++t) {
      const int64_t r = sq.row0 + t;
      const float* pr = proj.data() + r * ld_proj;
      for (int64_t ch = 0; ch < di; ++ch) {
        const float *B, *C;
        double z;
        if (c.mil) {
          B = pr + di + dxb + (ch / (N * rep)) * N;
          C = pr + di + 2 * dxb + (ch / N) * N;
          z = pr[ch];
        } else {
          B = xdbc.data() + r * (R + 2 * N) + R;
          C = B + N;
          z = pr[di + ch];
        }
        const double d = std::log1p(std::exp(static_cast<double>(dt[r * di + ch]) + dt_b[ch]));
        const double x = xc[r * di + ch];
        double y = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          double& h = ref_state[(sq.slot * di + ch) * N + n];  // [slot][di][N]
          h = std::exp(d * A[ch * N + n]) * h + d * B[n] * x;
          y += h * C[n];
        }
        y += D[ch] * x;
        ref_out[r * di + ch] = y * (z / (1.0 + std::exp(-z)));
      }
    }
  }
  float* d_proj = ToDevice(proj);
  float* d_xc = ToDevice(xc);
  float* d_dt = ToDevice(dt);
  float* d_xdbc = ToDevice(xdbc);
  float* d_dtb = ToDevice(dt_b);
  float* d_A = ToDevice(A);
  float* d_D = ToDevice(D);
  float* d_out = ToDevice(std::vector<float>(M * di, 0.0f));
  cu::DevSeq* d_seqs = ToDevice(seqs);
  void* d_state = StateToDevice(state, c.store);
  cu::Mamba1ScanArgs a{d_proj,
                       ld_proj,
                       d_xc,
                       d_dt,
                       d_dtb,
                       d_A,
                       d_D,
                       c.mil ? nullptr : d_xdbc,
                       R,
                       di,
                       N,
                       dxb,
                       c.mil,
                       d_state,
                       c.store,
                       /*stage=*/!c.decode,
                       d_out};
  // The GEMM input copy of out: split (hi, lo) in the small cases, rounded in the large ones, and
  // the other way round for the f16 cases, so each kernel writes both forms somewhere (a prompt
  // longer than TTC_CUDA_SPLIT_ROWS reaches the per-channel kernel with the rounded form).
  uint16_t* d_bf = ToDevice(std::vector<uint16_t>(2 * M * di, 0));
  a.gemm_in = d_bf;
  a.split = (nseq < 50) != (c.store == cu::StateStore::kF16);
  a.rows = M;
  const bool streams = cu::Mamba1DecodeStreams(a);
  EXPECT_EQ(streams, c.decode && c.ld_pad % 4 == 0);
  cu::LaunchMamba1Scan(a, d_seqs, nseq, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> out(M * di);
  ASSERT_EQ(cudaMemcpy(out.data(), d_out, out.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  const std::vector<float> got_state = StateFromDevice(d_state, c.store, state_n);
  ExpectGemmInput(out, d_bf, a.split);
  cudaFree(d_bf);
  double worst_o = 0.0;
  for (int64_t i = 0; i < M * di; ++i) worst_o = std::max(worst_o, std::abs(ref_out[i] - out[i]));
  const double worst_s = WorstStateError(ref_state, got_state);
  // f32 math over 16 terms of O(1) per token: ~1e-6; 16-bit storage rounds the state once per
  // forward (StoreTolerance). A wrong channel, group or slot is off by O(0.1-1).
  EXPECT_LT(worst_o, 1e-4);
  EXPECT_LT(worst_s, StoreTolerance(c.store));
  std::printf(
      "[cuda] mamba1 %s %s %s (%s kernel), %d sequences: max |out err| %.3g, max state "
      "err %.3g\n",
      c.mil ? "mambainllama" : "hf", StoreName(c.store), c.decode ? "decode" : "prompt",
      streams ? "streaming" : "per-channel", nseq, worst_o, worst_s);
  for (void* q :
       {static_cast<void*>(d_proj), static_cast<void*>(d_xc), static_cast<void*>(d_dt),
        static_cast<void*>(d_xdbc), static_cast<void*>(d_dtb), static_cast<void*>(d_A),
        static_cast<void*>(d_D), static_cast<void*>(d_out), static_cast<void*>(d_seqs), d_state})
    cudaFree(q);
}

TEST(CudaMamba1, StateUpdateMatchesReference) {
  if (!HasCudaDevice()) {
    GTEST_SKIP() << "no CUDA device here: the Mamba-1 state update is checked on a GPU machine";
  }
  uint32_t seed = 41;
  constexpr auto kF32 = cu::StateStore::kF32, kBf16 = cu::StateStore::kBf16,
                 kF16 = cu::StateStore::kF16;
  // Every state here stays far inside f16's range: no store may report an overflow, including
  // the idle threads of a partial channel tile (di 160) that run over uninitialised chunks.
  unsigned* word = cu::ArmStateOverflowWord();
  ASSERT_NE(word, nullptr);
  *static_cast<volatile unsigned*>(word) = 0;
  for (const Mamba1Case& c :
       {Mamba1Case{true, kF32, true}, Mamba1Case{false, kF32, true}, Mamba1Case{true, kBf16, true},
        Mamba1Case{true, kF32, false}, Mamba1Case{false, kBf16, false},
        Mamba1Case{true, kF32, true, 100, 33 * 128}, Mamba1Case{false, kBf16, true, 100, 33 * 128},
        Mamba1Case{true, kBf16, true, 100, 33 * 128, 4, 3},
        Mamba1Case{false, kF32, true, 5, 160, 3}, Mamba1Case{true, kBf16, true, 5, 160, 3},
        Mamba1Case{true, kF16, true}, Mamba1Case{false, kF16, false},
        Mamba1Case{true, kF16, true, 100, 33 * 128, 4, 3},
        Mamba1Case{true, kF16, true, 5, 160, 3}}) {
    CheckMamba1(c, seed++);
  }
  EXPECT_EQ(*static_cast<volatile unsigned*>(word), 0u);
}

// The sampler's fast paths (no top-k, no top-p: probabilities never stored, the landing chunk
// recomputed), the cluster kernel (the row spread over a cluster's shared memory), the one-block
// kernel and the split kernels (slice maxima, chunk sums and draws as three launches over the
// batch), draw exactly the ids of the general path, over Llama 3's vocabulary (8 blocks per row),
// HF Mamba's (a partial last chunk), a small one (a cluster of one) and an odd one (the one-block
// kernel on scalar loads), with NaN and -inf logits, flat and peaked rows (most probabilities
// underflowing to zero), a row of NaN and a row with +inf twice (both the argmax: the lowest id of
// the maximum, where the split kernels find the two in different slices), a row whose maximum is
// tied across slices, and two temperatures.
TEST(CudaSamplerKernel, FastPathsEqualFullPasses) {
  if (!HasCudaDevice()) {
    cudaGetLastError();
    GTEST_SKIP() << "no CUDA device";
  }
  for (const char* var : {"TTC_CUDA_SAMPLE_SCALAR", "TTC_CUDA_SAMPLE_CLUSTER"}) {
    if (std::getenv(var) != nullptr) {
      GTEST_SKIP() << var << " is set: the default path would not be the cluster kernel";
    }
  }
  for (int64_t V : {int64_t{128256}, int64_t{50280}, int64_t{1024}, int64_t{1001}}) {
    constexpr int kRows = 6, kPerRow = 64;
    std::mt19937 gen(static_cast<uint32_t>(V));
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> logits(static_cast<size_t>(kRows * V));
    for (int r = 0; r < kRows; ++r) {
      for (int64_t i = 0; i < V; ++i) {
        float v = nd(gen);
        if (r == 2) v *= 40.0f;  // peaked: most of the row's probabilities are exactly 0
        if (r == 3) v = NAN;
        logits[static_cast<size_t>(r * V + i)] = v;
      }
    }
    logits[5] = NAN;
    logits[static_cast<size_t>(V + 7)] = -INFINITY;
    logits[static_cast<size_t>(4 * V + 777)] = INFINITY;
    logits[static_cast<size_t>(5 * V - 3)] = INFINITY;   // a tie, in the last slice
    logits[static_cast<size_t>(5 * V + V / 8)] = 50.0f;  // row 5's maximum, tied across slices
    logits[static_cast<size_t>(6 * V - 3)] = 50.0f;
    std::vector<cu::DevSampleKey> keys(kRows * kPerRow);
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = {11, i, 3};
    float* d_logits = ToDevice(logits);
    cu::DevSampleKey* d_keys = ToDevice(keys);
    float* d_probs = nullptr;
    int32_t* d_out = nullptr;
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_probs), keys.size() * V * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_out), keys.size() * 4), cudaSuccess);
    for (float temp : {1.0f, 0.6f}) {
      // 0: the default (the cluster kernel where it applies), 1: the one-block kernel's fast path,
      // 2: the general path, 3: the split kernels (where they apply; else the one-block kernel).
      std::vector<int32_t> ids[4];
      for (int mode = 0; mode < 4; ++mode) {
        cu::DevSampling sp{temp, -1, 1.0f, false, mode == 2};
        sp.one_block = mode == 1;
        sp.split = mode == 3;
        ASSERT_EQ(cu::SampleNeedsProbs(sp, V), mode == 2);
        if (mode == 0) {
          ASSERT_EQ(cu::SampleUsesCluster(sp, V, d_logits), V % 4 == 0) << "vocab " << V;
          ASSERT_FALSE(cu::SampleUsesSplit(sp, V, d_logits, kRows)) << "vocab " << V;
        }
        if (mode == 3) {
          ASSERT_EQ(cu::SampleUsesSplit(sp, V, d_logits, kRows), V % 4 == 0) << "vocab " << V;
          // The split kernels' scratch (chunk sums and slice maxima) fits in the general path's.
          ASSERT_LE(
              cu::SampleScratchBytes(sp, V, static_cast<int64_t>(keys.size()), kPerRow, d_logits),
              keys.size() * V * 4);
        }
        cu::LaunchSample(d_logits, static_cast<int64_t>(keys.size()), kPerRow, V, sp, d_keys,
                         d_probs, d_out, nullptr);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        ids[mode].resize(keys.size());
        ASSERT_EQ(cudaMemcpy(ids[mode].data(), d_out, keys.size() * 4, cudaMemcpyDeviceToHost),
                  cudaSuccess);
      }
      EXPECT_EQ(ids[0], ids[2]) << "vocab " << V << ", temperature " << temp;
      EXPECT_EQ(ids[1], ids[2]) << "vocab " << V << ", temperature " << temp;
      EXPECT_EQ(ids[3], ids[2]) << "vocab " << V << ", temperature " << temp << " (split)";
      for (int mode : {0, 3}) {
        for (int k = 0; k < kPerRow; ++k) {
          EXPECT_EQ(ids[mode][3 * kPerRow + k], 0);    // all NaN: nothing found, id 0
          EXPECT_EQ(ids[mode][4 * kPerRow + k], 777);  // +inf: the argmax (the lower of two)
        }
      }
      int distinct = 0;
      for (size_t i = 1; i < ids[0].size(); ++i) distinct += ids[0][i] != ids[0][i - 1];
      EXPECT_GT(distinct, 0);  // the draws are not all the argmax
      std::printf(
          "[cuda] sampler fast paths, vocab %lld, temperature %.1f: %zu draws equal to the "
          "general path (%s kernel and one-block kernel)\n",
          static_cast<long long>(V), temp, ids[0].size(),
          V % 4 == 0 ? "cluster, split" : "one-block");
    }
    cudaFree(d_logits);
    cudaFree(d_keys);
    cudaFree(d_probs);
    cudaFree(d_out);
  }
}

// Kernel attributes belong to a device's context: the sampler's cluster kernel (69.5 KB of shared
// memory for Llama 3's vocabulary, above the 48 KB default) must be set up on every device a
// process uses, not only the first. Each device draws the one-block kernel's ids.
TEST(CudaKernelSetup, EveryDeviceGetsItsAttributes) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 2) {
    cudaGetLastError();
    GTEST_SKIP() << "fewer than 2 CUDA devices here: per-device kernel setup is checked on a "
                    "multi-GPU machine";
  }
  if (std::getenv("TTC_CUDA_SAMPLE_SCALAR") != nullptr ||
      std::getenv("TTC_CUDA_SAMPLE_CLUSTER") != nullptr) {
    GTEST_SKIP() << "a TTC_CUDA_SAMPLE_* switch is set: the cluster kernel may be off";
  }
  constexpr int64_t V = 128256;
  constexpr int kRows = 4, kPerRow = 16;
  std::mt19937 gen(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(kRows * V));
  for (float& v : logits) v = nd(gen);
  std::vector<cu::DevSampleKey> keys(kRows * kPerRow);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = {7, i, 1};
  std::vector<int32_t> first;
  for (int d = 0; d < devices; ++d) {
    ASSERT_EQ(cudaSetDevice(d), cudaSuccess);
    float* d_logits = ToDevice(logits);
    cu::DevSampleKey* d_keys = ToDevice(keys);
    int32_t* d_out = nullptr;
    float* d_probs = nullptr;  // unused by these draws (SampleNeedsProbs is false)
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_out), keys.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_probs), 16), cudaSuccess);
    std::vector<int32_t> ids[2];
    for (int mode = 0; mode < 2; ++mode) {
      cu::DevSampling sp{1.0f, -1, 1.0f, false, false};
      sp.one_block = mode == 1;
      if (mode == 0) {
        ASSERT_TRUE(cu::SampleUsesCluster(sp, V, d_logits)) << "device " << d;
      }
      cu::LaunchSample(d_logits, static_cast<int64_t>(keys.size()), kPerRow, V, sp, d_keys, d_probs,
                       d_out, nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << "device " << d;
      ids[mode].resize(keys.size());
      ASSERT_EQ(cudaMemcpy(ids[mode].data(), d_out, keys.size() * 4, cudaMemcpyDeviceToHost),
                cudaSuccess);
    }
    EXPECT_EQ(ids[0], ids[1]) << "device " << d;
    if (d == 0) first = ids[0];
    EXPECT_EQ(ids[0], first) << "device " << d;
    cudaFree(d_logits);
    cudaFree(d_keys);
    cudaFree(d_out);
    cudaFree(d_probs);
  }
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  std::printf("[cuda] per-device setup: the cluster sampler drew the same ids on %d devices\n",
              devices);
}

}  // namespace
}  // namespace ttc
