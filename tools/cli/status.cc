// `ttc status`: workers (id, host, device, state, model, unit, tokens/s, last heartbeat) and
// experiments (units done/running/failed, samples, throughput, ETA, failed units with their last
// error), from the coordinator, or with --db straight from a store file (no coordinator needed;
// workers as they last recorded themselves, no rates or ETA).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "coordinator/client.h"
#include "coordinator/store_view.h"
#include "tools/cli/client_options.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

void RegisterStatus(CLI::App& app, CommandTable& table) {
  auto client = std::make_shared<coordinator::ClientOptions>();
  auto json = std::make_shared<bool>(false);
  auto watch = std::make_shared<bool>(false);
  auto interval = std::make_shared<double>(2.0);
  auto experiment = std::make_shared<int64_t>(0);
  auto db = std::make_shared<std::string>();
  CLI::App* sub = AddCommand(
      app, table, "status", "Show workers and experiment progress",
      [client, json, watch, interval, experiment, db] {
        bool tty = ::isatty(STDOUT_FILENO);
        while (true) {
          Result<nlohmann::json> reply = nlohmann::json();
          if (!db->empty()) {
            // Opened afresh each time: a file another process writes is read as it is now.
            auto store = OpenStoreToRead(*db);
            if (!store.ok()) {
              reply = store.status();
            } else if (reply = coordinator::StatusJsonFromStore(**store, *experiment);
                       !reply.ok()) {
              reply = Status(reply.status().code(), *db + ": " + reply.status().message());
            }
          } else {
            protocol::ClientRequest req;
            req.type = protocol::kStatusType;
            req.experiment_id = *experiment;
            reply = CallOrSuggestDb(*client, req);
          }
          if (!reply.ok()) {
            std::cerr << "error: " << reply.status().message() << "\n";
            return kExitFailure;
          }
          if (*json) {
            std::cout << reply->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                      << std::endl;
          } else {
            if (*watch && tty) std::cout << "\033[H\033[2J";
            std::cout << coordinator::FormatStatus(*reply) << std::flush;
          }
          if (!*watch) return kExitOk;
          std::this_thread::sleep_for(
              std::chrono::milliseconds(static_cast<int>(*interval * 1000)));
        }
      });
  sub->add_option("--experiment", *experiment, "Only this experiment (with its failed units)");
  sub->add_flag("--watch", *watch, "Refresh until interrupted");
  sub->add_option("--interval", *interval, "Seconds between refreshes with --watch")
      ->capture_default_str();
  sub->add_flag("--json", *json, "Print JSON");
  AddClientOptions(sub, *client);
  AddStoreOption(sub, *db);
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderStatus, RegisterStatus);

}  // namespace ttc::cli
