// `ttc keygen [--out PREFIX]`: a CURVE key pair (libzmq zmq_curve_keypair) as PREFIX.key (secret,
// mode 0600) and PREFIX.pub. The coordinator uses its .key with --curve-keys; workers and clients
// use theirs with --curve-keys and the coordinator's .pub with --server-key; the coordinator lists
// allowed peers' .pub files in --authorized-keys.
#include <iostream>
#include <memory>

#include "protocol/transport.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

void RegisterKeygen(CLI::App& app, CommandTable& table) {
  auto prefix = std::make_shared<std::string>("ttc");
  CLI::App* sub =
      AddCommand(app, table, "keygen",
                 "Make a CURVE key pair for the coordinator, a worker or a client", [prefix] {
                   auto keys = protocol::GenerateCurveKeyPair();
                   if (!keys.ok()) {
                     std::cerr << "error: " << keys.status().message() << "\n";
                     return kExitFailure;
                   }
                   Status st = protocol::WriteKeyFiles(*prefix, *keys);
                   if (!st.ok()) {
                     std::cerr << "error: " << st.message() << "\n";
                     return kExitFailure;
                   }
                   std::cout << "wrote " << *prefix << ".key (secret) and " << *prefix
                             << ".pub\npublic key: " << keys->public_key << "\n";
                   return kExitOk;
                 });
  sub->add_option("--out", *prefix, "Path prefix of the two files")->capture_default_str();
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderKeygen, RegisterKeygen);

}  // namespace ttc::cli
