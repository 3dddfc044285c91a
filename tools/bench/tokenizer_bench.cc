// Single-threaded encode throughput of the tokenizer on the GSM8K test and MATH-500 texts
// (question/answer, problem/solution fields), median of repeated passes. Compare with
// tools/bench/tokenizer_bench_hf.py (Hugging Face `tokenizers` on the same texts). Usage:
//   tokenizer_bench [--tokenizer FILE] [--repeats N] [--json]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/tokenizer.h"

namespace {

std::vector<std::string> LoadTexts() {
  std::vector<std::string> texts;
  const std::string shared = TTC_SHARED_DIR;
  for (const auto& [file, keys] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"/data/gsm8k_test.jsonl", {"question", "answer"}},
           {"/data/math500.jsonl", {"problem", "solution"}}}) {
    std::ifstream in(shared + file);
    if (!in) {
      std::cerr << "cannot open " << shared + file << "\n";
      std::exit(1);
    }
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      for (const auto& k : keys) texts.push_back(j.at(k).get<std::string>());
    }
  }
  return texts;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = std::string(TTC_SHARED_DIR) + "/assets/llama3/tokenizer.json";
  int repeats = 15;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tokenizer" && i + 1 < argc) {
      path = argv[++i];
    } else if (a == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--json") {
      json = true;
    } else {
      std::cerr << "usage: tokenizer_bench [--tokenizer FILE] [--repeats N] [--json]\n";
      return 2;
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  auto tok = ttc::engine::Tokenizer::Load(path);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!tok.ok()) {
    std::cerr << tok.status().ToString() << "\n";
    return 1;
  }
  const auto texts = LoadTexts();
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();

  // The first pass warms the per-thread scratch and caches and is not counted.
  std::vector<double> seconds;
  size_t tokens = 0;
  for (int r = 0; r <= repeats; ++r) {
    size_t n = 0;
    auto start = std::chrono::steady_clock::now();
    for (const auto& t : texts) n += tok->Encode(t).value().size();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0) seconds.push_back(s);
    tokens = n;
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  if (json) {
    std::cout << nlohmann::json({{"impl", "ttc"},
                                 {"texts", texts.size()},
                                 {"bytes", bytes},
                                 {"tokens", tokens},
                                 {"repeats", repeats},
                                 {"median_s", median},
                                 {"min_s", seconds.front()},
                                 {"max_s", seconds.back()},
                                 {"mb_per_s", bytes / median / 1e6},
                                 {"tokens_per_s", tokens / median},
                                 {"load_s", load_s}})
                     .dump()
              << "\n";
  } else {
    fmt::print("ttc tokenizer: {} texts, {} bytes, {} tokens; load {:.3f} s\n", texts.size(), bytes,
               tokens, load_s);
    fmt::print(
        "encode (1 thread), median of {}: {:.4f} s  ({:.1f} MB/s, {:.2f} M tokens/s; min {:.4f}, "
        "max {:.4f})\n",
        repeats, median, bytes / median / 1e6, tokens / median / 1e6, seconds.front(),
        seconds.back());
  }
  return 0;
}
