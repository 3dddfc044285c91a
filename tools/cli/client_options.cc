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

void AddStoreOption(CLI::App* sub, std::string& db) {
  CLI::Option* opt = sub->add_option(
      "--db", db,
      "Read this store (SQLite) file directly instead of asking a coordinator (none need run)");
  for (const char* name : {"--coordinator", "--curve-keys", "--server-key"}) {
    opt->excludes(sub->get_option(name));
  }
}

Result<nlohmann::json> CallOrSuggestDb(const coordinator::ClientOptions& client,
                                       const protocol::ClientRequest& request) {
  auto reply = coordinator::Call(client, request);
  if (!reply.ok() && reply.status().code() == StatusCode::kUnavailable) {
    return Status(StatusCode::kUnavailable,
                  reply.status().message() + "; to read a store file instead: --db FILE");
  }
  return reply;
}

}  // namespace ttc::cli
