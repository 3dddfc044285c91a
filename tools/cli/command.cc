#include "tools/cli/command.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iostream>
#include <utility>
#include <vector>

namespace ttc::cli {
namespace {

std::vector<std::pair<int, RegisterFn>>& Registry() {
  static std::vector<std::pair<int, RegisterFn>> registry;
  return registry;
}

}  // namespace

CommandRegistration::CommandRegistration(int order, RegisterFn fn) {
  Registry().emplace_back(order, fn);
}

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

CLI::Validator PositiveId() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v < 1) {
          return "'" + text + "' is not an id (a whole number from 1)";
        }
        return {};
      },
      "ID");
}

Result<std::unique_ptr<store::Store>> OpenStoreToRead(const std::string& path) {
  store::OpenOptions options;
  options.create_if_missing = false;
  options.read_only = true;
  return store::Store::Open(path, options);
}

void RegisterCommands(CLI::App& app, CommandTable& table) {
  auto entries = Registry();
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, fn] : entries) fn(app, table);
}

}  // namespace ttc::cli
