// The flags every client command (submit, status, list, cancel) uses to reach a coordinator, in one
// place, and the --db flag of the commands that can also read a store file without one (status,
// list). Used during CLI setup on the main thread; not thread-safe.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "common/result.h"
#include "coordinator/client.h"

namespace ttc::cli {

// Adds --coordinator, --curve-keys, --server-key and --timeout-ms bound to `client`.
void AddClientOptions(CLI::App* sub, coordinator::ClientOptions& client);

// Adds --db FILE bound to `db`: read the store file directly instead of asking a coordinator
// (excludes --coordinator, --curve-keys and --server-key, which AddClientOptions added first).
void AddStoreOption(CLI::App* sub, std::string& db);

// coordinator::Call for a command that also takes --db (status, list): where no coordinator
// answers, the error says that --db FILE reads a store file instead.
Result<nlohmann::json> CallOrSuggestDb(const coordinator::ClientOptions& client,
                                       const protocol::ClientRequest& request);

}  // namespace ttc::cli
