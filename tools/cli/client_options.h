// The flags every client command (submit, status, list, cancel) uses to reach a coordinator, in one place.
// Used during CLI setup on the main thread; not thread-safe.
#pragma once

#include <CLI/CLI.hpp>

#include "coordinator/client.h"

namespace ttc::cli {

// Adds --coordinator, --curve-keys, --server-key and --timeout-ms bound to `client`.
void AddClientOptions(CLI::App* sub, coordinator::ClientOptions& client);

}  // namespace ttc::cli
