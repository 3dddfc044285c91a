// Helpers for the orchestration tests: child processes of the real `ttc` binary (spawn, signal,
// wait), a tiny model fixture folder (the golden Llama weights plus a byte-level tokenizer.json
// with Llama-3 special tokens), grids, and a coordinator started on a free loopback port. Not
// thread-safe.
#pragma once

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace ttc::testing {

// A child process running `[PREFIX...] ttc ARGS...` with stdout+stderr in a log file. PREFIX is a
// launcher that execs the rest of its command line (e.g. `ip netns exec NS`), so pid() is ttc's.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::filesystem::path& log,
        const std::vector<std::string>& prefix = {})
      : log_(log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<std::string> full = prefix;
      full.push_back(TtcBinary().string());
      full.insert(full.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : full) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    if (exited_) return false;
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return false;
    }
    return true;
  }
  void Signal(int sig) { ::kill(pid_, sig); }
  // Waits for exit; returns the exit code (128+signal when killed), or -1 on timeout.
  int Wait(double seconds) {
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    while (std::chrono::steady_clock::now() < until) {
      if (!running()) return exit_code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
  bool exited_ = false;
  int exit_code_ = -1;
};

inline void WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

// GPT-2 byte-to-unicode table: byte b is the vocabulary entry of id b.
inline std::string ByteToken(int b) {
  std::vector<int> bs;
  for (int c = '!'; c <= '~'; ++c) bs.push_back(c);
  for (int c = 0xA1; c <= 0xAC; ++c) bs.push_back(c);
  for (int c = 0xAE; c <= 0xFF; ++c) bs.push_back(c);
  std::vector<int> cs = bs;
  int n = 0;
  for (int x = 0; x < 256; ++x) {
    if (std::find(bs.begin(), bs.end(), x) == bs.end()) {
      bs.push_back(x);
      cs.push_back(256 + n++);
    }
  }
  int cp = 0;
  for (size_t i = 0; i < bs.size(); ++i) {
    if (bs[i] == b) cp = cs[i];
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A model folder: the golden tiny Llama (vocab 512) plus a byte-level tokenizer (ids 0..255 =
// bytes, no merges) with Llama-3 special tokens at 500..504.
inline void MakeTinyModel(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  auto golden = SharedDir() / "golden/models/llama";
  std::filesystem::copy_file(golden / "config.json", dir / "config.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(golden / "model.safetensors", dir / "model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteToken(b)] = b;
  nlohmann::json added = nlohmann::json::array();
  const char* specials[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                            "<|end_header_id|>", "<|eot_id|>"};
  for (int i = 0; i < 5; ++i) {
    vocab[specials[i]] = 500 + i;
    added.push_back({{"id", 500 + i},
                     {"content", specials[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  nlohmann::json level = {{"type", "ByteLevel"},
                          {"add_prefix_space", false},
                          {"trim_offsets", true},
                          {"use_regex", true}};
  nlohmann::json tok = {{"version", "1.0"},
                        {"truncation", nullptr},
                        {"padding", nullptr},
                        {"added_tokens", added},
                        {"normalizer", nullptr},
                        {"pre_tokenizer", level},
                        {"post_processor", nullptr},
                        {"decoder", level},
                        {"model",
                         {{"type", "BPE"},
                          {"dropout", nullptr},
                          {"unk_token", nullptr},
                          {"continuing_subword_prefix", nullptr},
                          {"end_of_word_suffix", nullptr},
                          {"fuse_unk", false},
                          {"byte_fallback", false},
                          {"ignore_merges", false},
                          {"vocab", vocab},
                          {"merges", nlohmann::json::array()}}}};
  WriteFile(dir / "tokenizer.json", tok.dump());
}

// A small synthetic grid on the tiny model.
inline nlohmann::json TinyGrid(const std::string& name, const std::filesystem::path& model,
                               int problems, int n_samples, int max_new_tokens, int per_unit,
                               int num_models = 1) {
  nlohmann::json models = nlohmann::json::array();
  for (int m = 0; m < num_models; ++m) {
    models.push_back({{"name", fmt::format("m{}", m)}, {"path", model.string()}});
  }
  return {{"name", name},
          {"dataset", {{"name", "synthetic"}, {"count", problems}, {"seed", 7}}},
          {"prompt", {{"chat_template", "sal"}}},
          {"models", models},
          {"temperatures", {0.8}},
          {"n_samples", n_samples},
          {"max_new_tokens", max_new_tokens},
          {"seed", 11},
          {"units", {{"max_samples_per_unit", per_unit}}}};
}

// Reads the first line of a file, waiting until it exists (the coordinator's --endpoint-file).
inline std::string WaitEndpoint(const std::filesystem::path& file, Child& owner,
                                double seconds = 30) {
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until) {
    std::ifstream in(file);
    std::string line;
    if (std::getline(in, line) && !line.empty()) return line;
    if (!owner.running()) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

// `ttc status --json` as JSON (null on failure).
inline nlohmann::json CoordinatorStatus(const std::string& endpoint,
                                        const std::string& extra = "") {
  auto r = RunTtc("status --json --coordinator " + endpoint + " --timeout-ms 3000 " + extra);
  if (r.exit_code != 0) return nullptr;
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')), nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

// Polls status until pred(status) or timeout; returns the last status.
template <typename Pred>
nlohmann::json WaitStatus(const std::string& endpoint, double seconds, Pred pred) {
  nlohmann::json last;
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until) {
    last = CoordinatorStatus(endpoint);
    if (!last.is_null() && pred(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return last;
}

inline const nlohmann::json& FirstExperiment(const nlohmann::json& st) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!st.is_object() || !st.contains("experiments") || st["experiments"].empty()) return kEmpty;
  return st["experiments"][0];
}

inline std::string ExperimentState(const nlohmann::json& st) {
  return FirstExperiment(st).value("state", "");
}

}  // namespace ttc::testing
