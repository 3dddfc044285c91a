// `ttc list`: the coordinator's experiments (id, name, state, units and samples done).
#include <iostream>
#include <memory>

#include "coordinator/client.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

void RegisterList(CLI::App& app, CommandTable& table) {
  auto client = std::make_shared<coordinator::ClientOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = AddCommand(app, table, "list", "List experiments", [client, json] {
    protocol::ClientRequest req;
    req.type = protocol::kListType;
    auto reply = coordinator::Call(*client, req);
    if (!reply.ok()) {
      std::cerr << "error: " << reply.status().message() << "\n";
      return kExitFailure;
    }
    std::cout << (*json ? reply->dump() + "\n" : coordinator::FormatList(*reply));
    return kExitOk;
  });
  sub->add_flag("--json", *json, "Print JSON");
  sub->add_option("--coordinator", client->endpoint,
                  "Coordinator endpoint (default $TTC_COORDINATOR or tcp://127.0.0.1:5555)");
  sub->add_option("--curve-keys", client->curve_keys, "This client's CURVE key pair file");
  sub->add_option("--server-key", client->server_key,
                  "The coordinator's CURVE public key (Z85 or file)");
  sub->add_option("--timeout-ms", client->timeout_ms, "Reply timeout per try")
      ->capture_default_str();
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderList, RegisterList);

}  // namespace ttc::cli
