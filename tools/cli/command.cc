#include "tools/cli/command.h"

#include <iostream>

namespace ttc::cli {

CLI::App* AddCommand(CLI::App& app, CommandTable& table, const std::string& name,
                     const std::string& description, std::function<int()> run) {
  CLI::App* sub = app.add_subcommand(name, description);
  table[name] = std::move(run);
  return sub;
}

int UsageError(const std::string& message) {
  std::cerr << "error: " << message << "\nRun with --help for more information.\n";
  return kExitUsage;
}

void RegisterCommands(CLI::App& app, CommandTable& table) {
  RegisterVersion(app, table);
}

}  // namespace ttc::cli
