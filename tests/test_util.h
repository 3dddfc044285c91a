// Helpers shared by tests: fixture paths, temporary directories, running the ttc binary. Not thread-safe.
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include <sys/wait.h>

namespace ttc::testing {

inline std::filesystem::path SharedDir() { return TTC_SHARED_DIR; }
inline std::filesystem::path SourceDir() { return TTC_SOURCE_DIR; }
inline std::filesystem::path TtcBinary() { return TTC_BINARY; }

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("ttc-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line and captures its output and exit code.
inline CommandResult RunCommand(const std::string& command_line) {
  CommandResult result;
  FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs `ttc ARGS`.
inline CommandResult RunTtc(const std::string& args) {
  return RunCommand(TtcBinary().string() + " " + args);
}

}  // namespace ttc::testing
