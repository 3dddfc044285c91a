// Entry point of the `ttc` command: parses the global flags, sets up logging (spdlog, stderr) and runs the
// selected subcommand. Exit codes: 0 ok, 1 failure, 2 usage error.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "tools/cli/command.h"

int main(int argc, char** argv) {
  using namespace ttc::cli;
  CLI::App app{"ttc: test-time-compute experiments on language models", "ttc"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "Log level: trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  CommandTable table;
  RegisterCommands(app, table);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports an unknown subcommand as "a subcommand is required"; name the word instead.
    std::vector<std::string> rest = app.remaining();
    if (app.get_subcommands().empty() && !rest.empty() && rest.front().rfind("-", 0) != 0) {
      return UsageError("unknown command '" + rest.front() + "' (see ttc --help for the list)");
    }
    app.exit(e);
    return kExitUsage;
  }
  auto logger = spdlog::stderr_color_mt("ttc");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  for (CLI::App* sub : app.get_subcommands()) {
    auto it = table.find(sub->get_name());
    if (it == table.end()) continue;
    try {
      return it->second();
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", sub->get_name(), e.what());
      return kExitFailure;
    }
  }
  return UsageError("no command given");
}
