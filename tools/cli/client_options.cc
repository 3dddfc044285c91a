#include "tools/cli/client_options.h"

namespace ttc::cli {

void AddClientOptions(CLI::App* sub, coordinator::ClientOptions& client) {
  sub->add_option("--coordinator", client.endpoint,
                  "Coordinator endpoint (default $TTC_COORDINATOR or tcp://127.0.0.1:5555)");
  sub->add_option("--curve-keys", client.curve_keys, "This client's CURVE key pair file");
  sub->add_option("--server-key", client.server_key,
                  "The coordinator's CURVE public key (Z85 or file)");
  sub->add_option("--timeout-ms", client.timeout_ms, "Reply timeout per try")
      ->capture_default_str();
}

}  // namespace ttc::cli
