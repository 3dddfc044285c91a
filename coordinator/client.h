// The client side of the coordinator protocol, for `ttc submit/status/cancel/list/run`: connection
// options, one call helper, and the human-readable renderings of status and list replies.
// Thread-safety: functions are reentrant.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "protocol/messages.h"

namespace ttc::coordinator {

struct ClientOptions {
  std::string endpoint;    // empty: protocol::DefaultCoordinatorEndpoint()
  std::string curve_keys;  // own key pair file (CURVE), or $TTC_CURVE_KEYS
  std::string server_key;  // coordinator public key or file, or $TTC_SERVER_KEY
  int timeout_ms = 5000;
  int retries = 2;
};

// Sends the request and returns the reply's data (errors carry the coordinator's message).
Result<nlohmann::json> Call(const ClientOptions& options, const protocol::ClientRequest& request);

// Renders a status reply: workers table, experiments table with progress, failed units,
// dropped-message counters.
std::string FormatStatus(const nlohmann::json& status);
// One line per experiment.
std::string FormatList(const nlohmann::json& list);
// One progress line for an experiment of a status reply ("exp 3 demo: 12/40 units, 96/320 samples,
// ...").
std::string FormatProgressLine(const nlohmann::json& experiment);

}  // namespace ttc::coordinator
