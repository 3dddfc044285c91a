// `ttc cancel EXP`: cancels an experiment; its pending units never run and running ones are stopped
// (their late results are fenced off).
#include <iostream>
#include <memory>

#include "coordinator/client.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

void RegisterCancel(CLI::App& app, CommandTable& table) {
  auto client = std::make_shared<coordinator::ClientOptions>();
  auto experiment = std::make_shared<int64_t>(0);
  auto json = std::make_shared<bool>(false);
  CLI::App* sub =
      AddCommand(app, table, "cancel", "Cancel an experiment", [client, experiment, json] {
        protocol::ClientRequest req;
        req.type = protocol::kCancelType;
        req.experiment_id = *experiment;
        auto reply = coordinator::Call(*client, req);
        if (!reply.ok()) {
          std::cerr << "error: " << reply.status().message() << "\n";
          return kExitFailure;
        }
        if (*json) {
          std::cout << reply->dump() << "\n";
        } else {
          std::cout << "experiment " << *experiment << " cancelled (" << (*reply)["units_cancelled"]
                    << " units)\n";
        }
        return kExitOk;
      });
  sub->add_option("experiment", *experiment, "Experiment id")
      ->required()
      ->check(CLI::PositiveNumber);
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

TTC_REGISTER_COMMAND(kOrderCancel, RegisterCancel);

}  // namespace ttc::cli
