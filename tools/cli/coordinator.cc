// `ttc coordinator`: the coordinator daemon (coordinator/coordinator.h). Stops cleanly on
// SIGTERM/SIGINT.
#include "coordinator/coordinator.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <iostream>
#include <memory>

#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

std::atomic<bool> g_stop{false};
void OnStopSignal(int) { g_stop.store(true); }

void RegisterCoordinator(CLI::App& app, CommandTable& table) {
  auto opts = std::make_shared<coordinator::CoordinatorOptions>();
  auto listen = std::make_shared<std::string>("tcp://127.0.0.1:5555");
  auto client_listen = std::make_shared<std::vector<std::string>>();
  CLI::App* sub = AddCommand(
      app, table, "coordinator", "Run the coordinator daemon (workers and clients connect to it)",
      [opts, listen, client_listen] {
        opts->listen = {*listen};
        opts->client_listen = *client_listen;
        struct sigaction sa {};
        sa.sa_handler = OnStopSignal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, nullptr);
        sigaction(SIGINT, &sa, nullptr);
        signal(SIGPIPE, SIG_IGN);
        auto c = coordinator::Coordinator::Create(*opts);
        if (!c.ok()) {
          std::cerr << "error: " << c.status().message() << "\n";
          return c.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
        }
        Status st = (*c)->Run(g_stop);
        if (!st.ok()) {
          std::cerr << "error: " << st.ToString() << "\n";
          return kExitFailure;
        }
        return kExitOk;
      });
  sub->add_option("--db", opts->db_path, "SQLite database file (created if missing)")->required();
  sub->add_option("--listen", *listen,
                  "Endpoint for workers and clients (tcp://127.0.0.1:* picks a free port; beyond "
                  "loopback needs CURVE)")
      ->capture_default_str();
  sub->add_option("--client-listen", *client_listen, "Extra endpoint(s) for clients");
  sub->add_option("--endpoint-file", opts->endpoint_file,
                  "Write the bound endpoints to this file once listening");
  sub->add_option("--heartbeat-ms", opts->heartbeat_ms, "Heartbeat interval, both directions")
      ->capture_default_str();
  sub->add_option("--liveness", opts->liveness, "Missed heartbeats before a worker is lost")
      ->capture_default_str();
  sub->add_option("--lease-s", opts->lease_s, "Unit lease length (renewed by progress)")
      ->capture_default_str();
  sub->add_option("--stall-s", opts->stall_s,
                  "A busy worker without token progress this long loses its unit")
      ->capture_default_str();
  sub->add_option("--max-attempts", opts->max_attempts, "Attempts per unit before it is failed")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  sub->add_option("--curve-keys", opts->curve_keys_file,
                  "Server CURVE key pair file (from `ttc keygen`)");
  sub->add_option(
      "--authorized-keys", opts->authorized_keys,
      "File or folder (*.pub) of worker/client public keys allowed in (with --curve-keys)");
  sub->add_option("--tokens-per-s", opts->plan.assumed_tokens_per_s,
                  "Decode rate assumed when sizing units by time")
      ->capture_default_str();
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderCoordinator, RegisterCoordinator);

}  // namespace ttc::cli
