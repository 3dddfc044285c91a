// The `ttc` subcommand framework. Each command lives in tools/cli/<name>.cc and exposes one Register function
// that adds a CLI11 subcommand and the function to run when it is selected. Used only from main(); not
// thread-safe (CLI parsing happens once, on the main thread).
#pragma once

#include <functional>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

namespace ttc::cli {

// Exit codes shared by every command: 0 ok, 1 failure, 2 usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Maps a subcommand name to what runs it. Filled by the Register functions, read by main().
using CommandTable = std::map<std::string, std::function<int()>>;

// Global options every command sees (set by flags on the root app).
struct GlobalOptions {
  std::string log_level = "info";
};

// Adds a subcommand and its runner. The runner returns an exit code.
CLI::App* AddCommand(CLI::App& app, CommandTable& table, const std::string& name,
                     const std::string& description, std::function<int()> run);

// Prints a usage error the way CLI11 does and returns kExitUsage; for checks CLI11 cannot express.
int UsageError(const std::string& message);

// One Register function per command. Keep this list in the order `ttc --help` shows them.
void RegisterVersion(CLI::App& app, CommandTable& table);
void RegisterCommands(CLI::App& app, CommandTable& table);  // all of the above, in order

}  // namespace ttc::cli
