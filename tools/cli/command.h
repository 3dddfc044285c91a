// The `ttc` subcommand framework. Each command lives in its own file tools/cli/<name>.cc and
// registers itself with TTC_REGISTER_COMMAND, so adding a command touches no shared file. The cli
// sources are compiled straight into the `ttc` executable (not a static library), which keeps the
// self-registering objects linked. Registration happens during static initialisation and parsing on
// the main thread; not thread-safe.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/result.h"
#include "store/store.h"

namespace ttc::cli {

// Exit codes shared by every command: 0 ok, 1 failure, 2 usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Maps a subcommand name to what runs it. Filled by the Register functions, read by main().
using CommandTable = std::map<std::string, std::function<int()>>;
using RegisterFn = void (*)(CLI::App& app, CommandTable& table);

// Where each command appears in `ttc --help`: the workflow order of a user.
enum CommandOrder : int {
  kOrderRun = 10,
  kOrderSubmit = 20,
  kOrderStatus = 30,
  kOrderList = 35,
  kOrderCancel = 40,
  kOrderReport = 50,
  kOrderCoordinator = 60,
  kOrderWorker = 70,
  kOrderKeygen = 75,
  kOrderGenerate = 80,
  kOrderBench = 90,
  kOrderTokenize = 100,
  kOrderGrade = 110,
  kOrderDataset = 120,
  kOrderVersion = 200,
};

// Adds a subcommand and its runner. The runner returns an exit code.
CLI::App* AddCommand(CLI::App& app, CommandTable& table, const std::string& name,
                     const std::string& description, std::function<int()> run);

// Prints a usage error the way CLI11 does and returns kExitUsage; for checks CLI11 cannot express.
int UsageError(const std::string& message);

// Checks that an id (experiment, unit) is a whole number >= 1, with a message that says so
// (CLI11's PositiveNumber prints its range up to the largest double).
CLI::Validator PositiveId();

// Opens an existing store file read-only (never creates or migrates it), for the commands that
// only read one (report, and status / list with --db); a missing file or one that is not a ttc
// store is an error that names the file (the store's messages do).
Result<std::unique_ptr<store::Store>> OpenStoreToRead(const std::string& path);

// Records a Register function; used through TTC_REGISTER_COMMAND.
struct CommandRegistration {
  CommandRegistration(int order, RegisterFn fn);
};

// Calls every registered Register function in CommandOrder.
void RegisterCommands(CLI::App& app, CommandTable& table);

}  // namespace ttc::cli

#define TTC_CLI_CONCAT_INNER(a, b) a##b
#define TTC_CLI_CONCAT(a, b) TTC_CLI_CONCAT_INNER(a, b)
// TTC_REGISTER_COMMAND(kOrderX, RegisterX); at namespace scope in the command's .cc file.
#define TTC_REGISTER_COMMAND(order, fn) \
  static const ::ttc::cli::CommandRegistration TTC_CLI_CONCAT(ttc_cmd_reg_, __LINE__)((order), (fn))
