// `ttc worker`: the worker daemon (worker/worker.h). One per GPU, or CPU workers.
// SIGTERM/SIGINT/SIGUSR1/SIGUSR2 drain it (a second signal hurries the drain). Exit codes: 0
// drained, 1 failure, 2 usage, 3 sticky device error, 4 coordinator unreachable past --give-up-s, 5
// refused by the coordinator (e.g. protocol version).
#include "worker/worker.h"

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "common/version.h"
#include "protocol/transport.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

worker::WorkerSignals g_signals;
void OnDrainSignal(int) { g_signals.drain_requests.fetch_add(1); }

void RegisterWorker(CLI::App& app, CommandTable& table) {
  auto opts = std::make_shared<worker::WorkerOptions>();
  auto gpu = std::make_shared<int>(-1);
  auto cpu = std::make_shared<bool>(false);
  auto name = std::make_shared<std::string>();
  auto curve_keys = std::make_shared<std::string>();
  auto server_key = std::make_shared<std::string>();
  CLI::App* sub = AddCommand(
      app, table, "worker", "Run a worker daemon that generates and scores for a coordinator",
      [opts, gpu, cpu, name, curve_keys, server_key] {
        if (*gpu >= 0 && *cpu) return UsageError("--gpu and --cpu are exclusive");
        if (*gpu >= 0 && !kCudaEnabled)
          return UsageError("--gpu: this ttc was built without CUDA (use --cpu)");
        // Neither flag: the first GPU when this build has CUDA and the machine has one, else the
        // CPU.
        if (*gpu < 0 && !*cpu && kCudaEnabled && std::filesystem::exists("/dev/nvidia0")) *gpu = 0;
        opts->runner.cpu = *gpu < 0;
        opts->runner.gpu = *gpu;
        if (opts->coordinator.empty()) opts->coordinator = protocol::DefaultCoordinatorEndpoint();
        auto sec = protocol::ResolveClientSecurity(*curve_keys, *server_key);
        if (!sec.ok()) return UsageError(sec.status().message());
        opts->security = *sec;
        if (opts->worker_id.empty()) {
          opts->worker_id =
              worker::DefaultWorkerId(opts->runner) + (name->empty() ? "" : "/" + *name);
        }
        if (opts->worker_id.size() > 200) return UsageError("--id is longer than 200 bytes");
        struct sigaction sa {};
        sa.sa_handler = OnDrainSignal;
        sigemptyset(&sa.sa_mask);
        for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaction(s, &sa, nullptr);
        signal(SIGPIPE, SIG_IGN);
        return worker::RunWorker(*opts, worker::MakeEngineRunner(opts->runner), g_signals);
      });
  sub->add_option("--coordinator", opts->coordinator,
                  "Coordinator endpoint (default $TTC_COORDINATOR or tcp://127.0.0.1:5555)");
  sub->add_option("--gpu", *gpu, "CUDA device index (one worker per GPU)");
  sub->add_flag("--cpu", *cpu, "Run on the CPU backend (the default without CUDA)");
  sub->add_option("--models-dir", opts->runner.models_dir,
                  "Folder that relative model paths resolve against");
  sub->add_option("--threads", opts->runner.threads, "CPU threads (0 = all)")
      ->capture_default_str();
  sub->add_option("--id", opts->worker_id,
                  "Stable worker identity (default <host>/cpu or <host>/gpuN)");
  sub->add_option("--name", *name,
                  "Suffix added to the default identity (several CPU workers on one host)");
  sub->add_option("--heartbeat-ms", opts->heartbeat_ms,
                  "Heartbeat interval before the coordinator sets it")
      ->capture_default_str();
  sub->add_option("--drain-timeout-s", opts->drain_timeout_s,
                  "On SIGTERM, how long to finish the current unit before handing it back")
      ->capture_default_str();
  sub->add_option("--give-up-s", opts->give_up_s,
                  "Exit (code 4) after this long without a coordinator; 0 = never")
      ->capture_default_str();
  sub->add_option("--backoff-max-ms", opts->backoff_max_ms, "Longest reconnect back-off")
      ->capture_default_str();
  sub->add_option("--curve-keys", *curve_keys,
                  "This worker's CURVE key pair file (or $TTC_CURVE_KEYS)");
  sub->add_option("--server-key", *server_key,
                  "The coordinator's CURVE public key, Z85 or file ($TTC_SERVER_KEY)");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderWorker, RegisterWorker);

}  // namespace ttc::cli
