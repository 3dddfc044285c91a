// The flags every client command (submit, status, list, cancel) uses to reach a coordinator, in one
// place, and the --db flag of the commands that can also read a store file without one (status,
// list). Used during CLI setup on the main thread; not thread-safe.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "common/result.h"
#include "coordinator/client.h"
#include "store/store.h"

namespace ttc::cli {

// Adds --coordinator, --curve-keys, --server-key and --timeout-ms bound to `client`.
void AddClientOptions(CLI::App* sub, coordinator::ClientOptions& client);

// Adds --db FILE bound to `db`: read the store file directly instead of asking a coordinator
// (excludes --coordinator, --curve-keys and --server-key, which AddClientOptions added first).
void AddStoreOption(CLI::App* sub, std::string& db);

// Opens an existing store file read-only (never creates or migrates it); a missing file or one
// that is not a ttc store is an error that names the file (the store's messages do).
Result<std::unique_ptr<store::Store>> OpenStoreToRead(const std::string& path);

}  // namespace ttc::cli
