// `ttc list`: the experiments (id, name, state, units and samples done), from the coordinator, or
// with --db straight from a store file (no coordinator needed, e.g. after `ttc run` has ended).
#include <iostream>
#include <memory>
#include <string>

#include "coordinator/client.h"
#include "coordinator/store_view.h"
#include "tools/cli/client_options.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

void RegisterList(CLI::App& app, CommandTable& table) {
  auto client = std::make_shared<coordinator::ClientOptions>();
  auto json = std::make_shared<bool>(false);
  auto db = std::make_shared<std::string>();
  CLI::App* sub = AddCommand(app, table, "list", "List experiments", [client, json, db] {
    Result<nlohmann::json> reply = nlohmann::json();
    if (!db->empty()) {
      auto store = OpenStoreToRead(*db);
      if (!store.ok()) {
        std::cerr << "error: " << store.status().message() << "\n";
        return kExitFailure;
      }
      reply = coordinator::ListJson(**store);
    } else {
      protocol::ClientRequest req;
      req.type = protocol::kListType;
      reply = CallOrSuggestDb(*client, req);
    }
    if (!reply.ok()) {
      std::cerr << "error: " << reply.status().message() << "\n";
      return kExitFailure;
    }
    std::cout << (*json ? reply->dump() + "\n" : coordinator::FormatList(*reply));
    return kExitOk;
  });
  sub->add_flag("--json", *json, "Print JSON");
  AddClientOptions(sub, *client);
  AddStoreOption(sub, *db);
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderList, RegisterList);

}  // namespace ttc::cli
