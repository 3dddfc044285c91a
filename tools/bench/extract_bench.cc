// Answer-extraction throughput (experiments/extract.h) on realistic inputs: MATH-500 reference
// solutions and Llama-style completions built from MATH-500 answers (SAL extractor), MATH-500
// answers (strip_string alone), and GSM8K worked answers rewritten to end in "The final answer is
// N." (GSM8K extractor). Reports the median of repeats in calls per second on one thread. Usage:
// extract_bench [--repeats N]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/dataset.h"
#include "experiments/extract.h"

namespace {

using ttc::experiments::ExtractGsm8kAnswer;
using ttc::experiments::ExtractMathAnswerSal;
using ttc::experiments::SalStripString;

double MedianCallsPerSecond(const std::vector<std::string>& inputs, int repeats,
                            const std::function<size_t(const std::string&)>& fn) {
  std::vector<double> rates;
  size_t sink = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const std::string& s : inputs) sink += fn(s);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(static_cast<double>(inputs.size()) / seconds);
  }
  std::sort(rates.begin(), rates.end());
  if (sink == 42) std::cerr << "";  // keep the results alive
  return rates[rates.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 7;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--repeats") == 0) repeats = std::max(1, std::atoi(argv[i + 1]));
  }
  const std::filesystem::path data = std::filesystem::path(TTC_SHARED_DIR) / "data";
  auto math = ttc::experiments::LoadMath500(data / ttc::experiments::kMath500FileName);
  auto gsm = ttc::experiments::LoadGsm8k(data / ttc::experiments::kGsm8kFileName);
  if (!math.ok() || !gsm.ok()) {
    std::cerr << "error: " << (math.ok() ? gsm.status() : math.status()).ToString() << "\n";
    return 1;
  }
  std::vector<std::string> solutions, completions, answers, gsm_completions;
  for (const auto& p : *math) {
    solutions.push_back(p.solution);
    completions.push_back(
        "## Step 1: Set up the problem\nWe work it out step by step.\n\n## Step 2: Compute\n"
        "The result follows.\n\nTherefore, the final answer is: $\\boxed{" +
        p.gold_answer + "}$. I hope it is correct.");
    answers.push_back(p.gold_answer);
  }
  for (const auto& p : *gsm) {
    gsm_completions.push_back(p.solution.substr(0, p.solution.rfind("####")) +
                              "The final answer is " + p.gold_answer + ".");
  }
  struct Row {
    const char* what;
    const std::vector<std::string>* inputs;
    std::function<size_t(const std::string&)> fn;
  };
  const std::vector<Row> rows = {
      {"ExtractMathAnswerSal, MATH-500 solutions", &solutions,
       [](const std::string& s) { return ExtractMathAnswerSal(s).size(); }},
      {"ExtractMathAnswerSal, Llama-style completions", &completions,
       [](const std::string& s) { return ExtractMathAnswerSal(s).size(); }},
      {"SalStripString, MATH-500 answers", &answers,
       [](const std::string& s) { return SalStripString(s).size(); }},
      {"ExtractGsm8kAnswer, GSM8K completions", &gsm_completions,
       [](const std::string& s) { return ExtractGsm8kAnswer(s).value_or("").size(); }},
  };
  std::cout << fmt::format("{:<48} {:>8} {:>14} {:>10}\n", "workload", "inputs", "calls/s",
                           "us/call");
  for (const Row& row : rows) {
    const double rate = MedianCallsPerSecond(*row.inputs, repeats, row.fn);
    std::cout << fmt::format("{:<48} {:>8} {:>14.0f} {:>10.1f}\n", row.what, row.inputs->size(),
                             rate, 1e6 / rate);
  }
  return 0;
}
