// ZeroMQ plumbing shared by the coordinator, the worker and the client commands: socket options
// every ttc socket gets (message size limit, linger, reconnect back-off), CURVE key pairs and key
// files (`ttc keygen`), the loopback test that decides whether CURVE is mandatory, and a
// Lazy-Pirate request helper for client commands. Thread-safety: functions are reentrant; a
// zmq::socket_t must only be used by the thread that owns it.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/result.h"
#include "protocol/messages.h"

namespace ttc::protocol {

// A CURVE key pair as Z85 text (40 characters each).
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

// A fresh key pair from libzmq (zmq_curve_keypair). Fails when libzmq lacks CURVE support.
Result<CurveKeyPair> GenerateCurveKeyPair();

// Writes PREFIX.key (public + secret, mode 0600) and PREFIX.pub (public only). Refuses to
// overwrite.
Status WriteKeyFiles(const std::filesystem::path& prefix, const CurveKeyPair& keys);

// Reads a .key file (lines "public = Z85" and "secret = Z85"; '#' comments allowed).
Result<CurveKeyPair> LoadKeyPair(const std::filesystem::path& file);

// A public key given either as 40 Z85 characters or as the path of a .pub/.key file.
Result<std::string> LoadPublicKey(const std::string& key_or_file);

// Loads every public key of a file (one key or `public = KEY` per line) or of every *.pub file of a
// folder.
Result<std::vector<std::string>> LoadAuthorizedKeys(const std::filesystem::path& file_or_dir);

// True for endpoints that cannot be reached from another host: ipc://, inproc://, tcp:// on
// 127.0.0.0/8, ::1 or localhost. Anything else (0.0.0.0, *, an interface name, a routable address)
// is not loopback.
bool IsLoopbackEndpoint(const std::string& endpoint);

// How a connecting socket (worker or client) authenticates: nothing on loopback, or CURVE with its
// own key pair and the coordinator's public key.
struct ClientSecurity {
  std::optional<CurveKeyPair> own;
  std::string server_public_key;  // Z85; empty: plain (NULL mechanism)
  bool enabled() const { return !server_public_key.empty(); }
};

// Options every ttc socket gets: ZMQ_MAXMSGSIZE = kMaxMessageBytes, bounded linger, reconnect
// back-off.
void ApplyCommonOptions(zmq::socket_t& socket, int linger_ms);

// Sets the CURVE client options (no-op when !security.enabled()). Fails if a server key is given
// without an own key pair.
Status ApplyClientSecurity(zmq::socket_t& socket, const ClientSecurity& security);

// Builds ClientSecurity from the usual flags/environment: --curve-keys FILE (own pair; else
// $TTC_CURVE_KEYS) and
// --server-key KEY|FILE (else $TTC_SERVER_KEY). With a server key and no own pair, an ephemeral
// pair is generated: the coordinator's authorized-keys list then decides (it normally refuses an
// unknown key).
Result<ClientSecurity> ResolveClientSecurity(const std::string& keys_file,
                                             const std::string& server_key);

// Sends one client request to the coordinator and waits for the reply (Lazy Pirate: poll with a
// timeout, reopen the socket and resend up to `retries` times). A "refused" answer or an ok=false
// reply becomes an error Status with the coordinator's reason; silence becomes kUnavailable naming
// the endpoint.
Result<ClientReply> CallCoordinator(const std::string& endpoint, const ClientRequest& request,
                                    const ClientSecurity& security, int timeout_ms = 5000,
                                    int retries = 2);

// The coordinator endpoint a client uses when none is given: $TTC_COORDINATOR, else
// tcp://127.0.0.1:5555.
std::string DefaultCoordinatorEndpoint();

}  // namespace ttc::protocol
