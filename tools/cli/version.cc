// `ttc version`: version, git commit and whether the CUDA backend is compiled in.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/version.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

void RegisterVersion(CLI::App& app, CommandTable& table) {
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = AddCommand(app, table, "version", "Print version, git commit and CUDA on/off", [json] {
    if (*json) {
      nlohmann::json j = {{"version", kVersion}, {"git_commit", kGitCommit}, {"cuda", kCudaEnabled}};
      std::cout << j.dump() << "\n";
    } else {
      std::cout << "ttc " << kVersion << " (commit " << kGitCommit << ", CUDA "
                << (kCudaEnabled ? "on" : "off") << ")\n";
    }
    return kExitOk;
  });
  sub->add_flag("--json", *json, "Print JSON");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderVersion, RegisterVersion);

}  // namespace ttc::cli
