// CPU benchmark of the sampler and the weight conversion: SampleToken over one 128256-entry logits
// row (Llama 3 vocabulary) under several settings, against a full-sort top-p baseline in the same
// run, and ToFloat32 throughput for BF16/F16 against memcpy and a per-element scalar baseline.
// Prints the median of repeated runs. Usage: sampler_bench [--repeats N] [--elements N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "engine/sampler.h"

namespace {

using ttc::engine::DType;
using ttc::engine::SamplerScratch;
using ttc::engine::SamplingParams;
using ttc::engine::TensorView;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median seconds of `repeats` runs of fn (after one warm-up).
double Time(int repeats, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return Median(t);
}

// The straightforward implementation the sampler avoids: softmax, then a full sort for top-p.
int32_t FullSortTopP(const std::vector<float>& logits, float temperature, float top_p, double u) {
  const size_t v = logits.size();
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<std::pair<float, int32_t>> p(v);
  double total = 0;
  for (size_t i = 0; i < v; ++i) {
    p[i] = {std::exp((logits[i] - mx) / temperature), static_cast<int32_t>(i)};
    total += p[i].first;
  }
  std::sort(p.begin(), p.end(), [](auto& a, auto& b) { return a.first > b.first; });
  double acc = 0;
  size_t keep = 0;
  while (keep < v) {
    acc += p[keep++].first;
    if (acc >= top_p * total) break;
  }
  double r = u * acc, run = 0;
  for (size_t i = 0; i < keep; ++i) {
    run += p[i].first;
    if (run > r) return p[i].second;
  }
  return p[keep - 1].second;
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 51;
  size_t elements = size_t{1} << 24;  // 16 Mi elements: 32 MiB of bf16
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--repeats") repeats = std::stoi(argv[i + 1]);
    if (std::string(argv[i]) == "--elements") elements = std::stoull(argv[i + 1]);
  }

  // A realistic logits row: mostly low values, a few dozen plausible tokens.
  constexpr size_t kVocab = 128256;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = normal(rng);
  for (int i = 0; i < 40; ++i) logits[rng() % kVocab] += 12.0f + static_cast<float>(i % 7);

  std::printf("SampleToken over one %zu-entry row, median of %d runs (microseconds)\n", kVocab,
              repeats);
  std::printf("| setting | ttc sampler | full-sort baseline |\n|---|---|---|\n");
  SamplerScratch scratch;
  uint64_t step = 0;
  volatile int32_t sink = 0;
  struct Case {
    const char* name;
    SamplingParams p;
  };
  const Case cases[] = {
      {"greedy (argmax)", SamplingParams{.greedy = true}},
      {"T=1.0 (full softmax)", SamplingParams{.temperature = 1.0f}},
      {"T=0.7 top_p=0.9", SamplingParams{.temperature = 0.7f, .top_p = 0.9f}},
      {"T=0.6 top_p=0.95 (flat row)", SamplingParams{.temperature = 0.6f, .top_p = 0.95f}},
      {"T=1.0 top_k=40", SamplingParams{.temperature = 1.0f, .top_k = 40}},
      {"T=0.8 top_k=50 top_p=0.95",
       SamplingParams{.temperature = 0.8f, .top_k = 50, .top_p = 0.95f}},
  };
  std::vector<float> flat(kVocab);
  for (float& x : flat)
    x = normal(rng) * 0.5f;  // no dominant tokens: the nucleus holds most of the vocab
  for (const Case& c : cases) {
    const std::vector<float>& row =
        std::string(c.name).find("flat") != std::string::npos ? flat : logits;
    double t =
        Time(repeats, [&] { sink = ttc::engine::SampleToken(row, c.p, 7, 0, step++, &scratch); });
    std::string baseline = "-";
    if (c.p.top_p < 1.0f && c.p.top_k <= 0) {
      double b = Time(repeats, [&] { sink = FullSortTopP(row, c.p.temperature, c.p.top_p, 0.5); });
      baseline = std::to_string(static_cast<int>(b * 1e6 + 0.5));
    }
    std::printf("| %s | %.0f | %s |\n", c.name, t * 1e6, baseline.c_str());
  }

  // Conversion throughput.
  std::vector<uint16_t> bf16(elements), f16(elements);
  for (size_t i = 0; i < elements; ++i) {
    float x = normal(rng);
    bf16[i] = ttc::engine::Float32ToBF16(x);
    f16[i] = ttc::engine::Float32ToF16(x);
  }
  std::vector<float> f32(elements), out(elements);
  for (size_t i = 0; i < elements; ++i) f32[i] = ttc::engine::BF16ToFloat32(bf16[i]);
  const int conv_repeats = std::max(3, repeats / 5);
  auto view = [&](DType d, const void* p, size_t bytes) {
    return TensorView{
        "t", d, {static_cast<int64_t>(elements)}, static_cast<const std::byte*>(p), bytes};
  };
  const TensorView vb = view(DType::kBF16, bf16.data(), elements * 2);
  const TensorView vh = view(DType::kF16, f16.data(), elements * 2);
  const TensorView vf = view(DType::kF32, f32.data(), elements * 4);
  auto gbs = [&](double s) { return static_cast<double>(elements) * 4 / s / 1e9; };  // output GB/s
  std::printf("\nToFloat32 over %zu elements, median of %d runs (output GB/s, higher is better)\n",
              elements, conv_repeats);
  std::printf("| conversion | ttc ToFloat32 | scalar baseline |\n|---|---|---|\n");
  double t_memcpy = Time(conv_repeats, [&] { (void)ttc::engine::ToFloat32(vf, out); });
  std::printf("| F32 (memcpy) | %.2f | - |\n", gbs(t_memcpy));
  double t_bf = Time(conv_repeats, [&] { (void)ttc::engine::ToFloat32(vb, out); });
  double t_bf_s = Time(conv_repeats, [&] {
    for (size_t i = 0; i < elements; ++i) out[i] = ttc::engine::BF16ToFloat32(bf16[i]);
  });
  std::printf("| BF16 | %.2f | %.2f |\n", gbs(t_bf), gbs(t_bf_s));
  double t_h = Time(conv_repeats, [&] { (void)ttc::engine::ToFloat32(vh, out); });
  double t_h_s = Time(conv_repeats, [&] {
    for (size_t i = 0; i < elements; ++i) out[i] = ttc::engine::F16ToFloat32(f16[i]);
  });
  std::printf("| F16 | %.2f | %.2f |\n", gbs(t_h), gbs(t_h_s));
  // Sanity: the bulk paths agree with the scalar ones (a benchmark that computes garbage is
  // worthless).
  (void)ttc::engine::ToFloat32(vh, out);
  for (size_t i = 0; i < elements; i += 997) {
    if (out[i] != ttc::engine::F16ToFloat32(f16[i])) {
      std::fprintf(stderr, "F16 mismatch at %zu\n", i);
      return 1;
    }
  }
  return sink == -12345 ? 1 : 0;
}
