// `ttc list`: the coordinator's experiments (id, name, state, units and samples done).
#include <iostream>
#include <memory>

#include "coordinator/client.h"
#include "tools/cli/client_options.h"
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
  AddClientOptions(sub, *client);
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderList, RegisterList);

}  // namespace ttc::cli
