// `ttc submit GRID`: validates a grid locally (every error at once), sends it to the coordinator
// and prints the experiment id. Submitting the same grid again returns the existing experiment (it
// resumes).
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "coordinator/client.h"
#include "experiments/grid.h"
#include "tools/cli/client_options.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

void RegisterSubmit(CLI::App& app, CommandTable& table) {
  auto grid_file = std::make_shared<std::string>();
  auto client = std::make_shared<coordinator::ClientOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = AddCommand(
      app, table, "submit", "Submit a grid to a running coordinator; prints the experiment id",
      [grid_file, client, json] {
        auto grid = experiments::LoadGridSpec(*grid_file);
        if (!grid.ok()) {
          std::cerr << "error: " << *grid_file << " is not a valid grid:\n"
                    << grid.status().message() << "\n";
          return kExitUsage;
        }
        std::ifstream in(*grid_file);
        std::stringstream text;
        text << in.rdbuf();
        protocol::ClientRequest req;
        req.type = protocol::kSubmitType;
        req.grid = nlohmann::json::parse(text.str(), nullptr, false);
        req.base_dir = std::filesystem::absolute(*grid_file).parent_path().string();
        auto reply = coordinator::Call(*client, req);
        if (!reply.ok()) {
          std::cerr << "error: " << reply.status().message() << "\n";
          return kExitFailure;
        }
        if (*json) {
          std::cout << reply->dump() << "\n";
        } else {
          std::cout << (*reply)["experiment_id"].get<int64_t>() << "\n";
          if ((*reply).value("existing", false)) {
            std::cerr << "(the same grid was already submitted: experiment "
                      << (*reply)["experiment_id"] << " continues)\n";
          }
        }
        return kExitOk;
      });
  sub->add_option("grid", *grid_file, "Grid spec (JSON)")->required()->check(CLI::ExistingFile);
  AddClientOptions(sub, *client);
  sub->add_flag("--json", *json, "Print the reply as JSON");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderSubmit, RegisterSubmit);

}  // namespace ttc::cli
