// `ttc cancel EXP`: cancels an experiment; its pending units never run and running ones are stopped
// (their late results are fenced off).
#include <iostream>
#include <memory>

#include "coordinator/client.h"
#include "tools/cli/client_options.h"
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
  sub->add_option("experiment", *experiment, "Experiment id")->required()->check(PositiveId());
  sub->add_flag("--json", *json, "Print JSON");
  AddClientOptions(sub, *client);
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderCancel, RegisterCancel);

}  // namespace ttc::cli
