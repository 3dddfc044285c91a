// Typed messages of the ttc wire protocol, version kProtocolVersion (docs/protocol.md is the
// normative text). Each struct has ToJson() (the body given to Encode) and a static Parse(json)
// that validates every field and returns a Status naming the message and field on the first
// problem. The message type strings are the k*Type constants. Worker <-> coordinator messages
// travel on DEALER -> ROUTER; client requests use the same ROUTER. Thread-safety: value types and
// pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "protocol/wire.h"

namespace ttc::protocol {

// Worker -> coordinator.
inline constexpr const char* kHelloType = "hello";
inline constexpr const char* kHeartbeatType = "heartbeat";  // both directions
inline constexpr const char* kRequestWorkType = "request_work";
inline constexpr const char* kSampleType = "sample";
inline constexpr const char* kScoresType = "scores";
inline constexpr const char* kUnitDoneType = "unit_done";
inline constexpr const char* kUnitFailedType = "unit_failed";
inline constexpr const char* kReleaseType = "release";
inline constexpr const char* kByeType = "bye";
// Coordinator -> worker.
inline constexpr const char* kWelcomeType = "welcome";
inline constexpr const char* kRefusedType = "refused";  // also to clients; frozen across versions
inline constexpr const char* kAssignType = "assign";
inline constexpr const char* kNoWorkType = "no_work";
inline constexpr const char* kAckType = "ack";
inline constexpr const char* kCancelUnitType = "cancel_unit";
inline constexpr const char* kReconnectType = "reconnect";  // "I do not know you: say hello again"
// Client <-> coordinator.
inline constexpr const char* kSubmitType = "submit";
inline constexpr const char* kStatusType = "status";
inline constexpr const char* kCancelType = "cancel";
inline constexpr const char* kListType = "list";
inline constexpr const char* kReplyType = "reply";

// A unit the worker holds: the pair that fences its results.
struct UnitRef {
  int64_t unit_id = 0;
  int64_t attempt = 0;
};

struct Hello {
  std::string worker_id;  // stable identity (host/device), also the ZeroMQ routing id
  std::string host;
  std::string device;  // "cpu" or the GPU name and UUID
  int64_t memory_bytes = 0;
  int64_t threads = 0;
  int64_t pid = 0;
  std::vector<std::string>
      models;                // model folders it has loaded or can serve ("" entries not allowed)
  std::string loaded_model;  // path of the model in memory now ("" = none)
  std::optional<UnitRef> current;  // the unit it is still working on after a reconnect
  bool draining = false;

  nlohmann::json ToJson() const;
  static Result<Hello> Parse(const nlohmann::json& j);
};

struct Welcome {
  std::string coordinator_id;  // changes on every coordinator start: workers notice a restart
  int64_t heartbeat_ms = 1000;
  int64_t liveness = 3;  // missed heartbeats before a peer is presumed dead
  bool resumed = false;  // the coordinator accepted Hello::current: keep streaming it

  nlohmann::json ToJson() const;
  static Result<Welcome> Parse(const nlohmann::json& j);
};

struct Refused {
  std::string reason;
  nlohmann::json ToJson() const;
  static Result<Refused> Parse(const nlohmann::json& j);
};

// Heartbeat from a worker: progress is what proves it alive (tokens produced in the current unit
// grow).
struct WorkerHeartbeat {
  std::string state = "idle";  // idle | loading | busy | draining
  std::optional<UnitRef> unit;
  int64_t tokens = 0;   // tokens produced so far in the current unit attempt
  int64_t samples = 0;  // samples finished so far in the current unit attempt
  double tokens_per_s = 0;

  nlohmann::json ToJson() const;
  static Result<WorkerHeartbeat> Parse(const nlohmann::json& j);
};

struct RequestWork {
  std::string
      loaded_model;  // path of the model in memory ("" = none): the coordinator prefers its units
  nlohmann::json ToJson() const;
  static Result<RequestWork> Parse(const nlohmann::json& j);
};

struct ChatMessage {
  std::string role;
  std::string content;
};

// One prompt of a generate unit: the chat for one problem and which sample indices to produce.
struct GenerateItem {
  int64_t problem_index = 0;
  std::vector<ChatMessage> messages;
  uint64_t seed = 0;                    // the problem's sample-stream seed
  std::vector<int64_t> sample_indices;  // only the missing ones on a retry
};

// One sample to score in a score unit.
struct ScoreItem {
  int64_t sample_id = 0;
  int64_t problem_index = 0;
  int64_t sample_index = 0;
  std::string question;
  std::string completion;
};

struct Assign {
  UnitRef unit;
  std::string kind = "generate";  // generate | score
  int64_t lease_ms = 0;
  std::string model_name;
  std::string model_path;
  nlohmann::json model_options = nlohmann::json::object();  // dtype, rope, backend, max_batch
  // generate
  double temperature = 0;
  int64_t top_k = -1;
  double top_p = 1.0;
  int64_t max_new_tokens = 0;
  std::string chat_template = "llama3";  // llama3-sal | llama3 | none
  std::string date;                      // "Today Date:" line of the chat template
  std::vector<GenerateItem> items;
  // score
  std::string prm_chat_template = "auto";  // auto | llama3.0 | llama3.1
  std::vector<ScoreItem> score_items;

  nlohmann::json ToJson() const;
  static Result<Assign> Parse(const nlohmann::json& j);
};

struct NoWork {
  int64_t retry_ms = 1000;
  std::string reason;
  nlohmann::json ToJson() const;
  static Result<NoWork> Parse(const nlohmann::json& j);
};

// One finished sample. `seq` numbers the worker's results so the coordinator can acknowledge them.
struct SampleResult {
  UnitRef unit;
  int64_t seq = 0;
  int64_t problem_index = 0;
  int64_t sample_index = 0;
  std::string text;
  int64_t num_tokens = 0;
  std::string finish_reason;  // stop | length | ...
  double prefill_s = 0;
  double decode_s = 0;
  int64_t steps = 0;
  nlohmann::json extra = nlohmann::json::object();

  nlohmann::json ToJson() const;
  static Result<SampleResult> Parse(const nlohmann::json& j);
};

// PRM step scores of one sample (score units).
struct ScoresResult {
  UnitRef unit;
  int64_t seq = 0;
  int64_t sample_id = 0;
  std::vector<double> scores;
  nlohmann::json ToJson() const;
  static Result<ScoresResult> Parse(const nlohmann::json& j);
};

// The coordinator stored (or deliberately dropped as stale/duplicate) these results: the worker
// forgets them.
struct Ack {
  std::vector<int64_t> seqs;
  nlohmann::json ToJson() const;
  static Result<Ack> Parse(const nlohmann::json& j);
};

struct UnitDone {
  UnitRef unit;
  int64_t tokens = 0;
  double seconds = 0;
  nlohmann::json ToJson() const;
  static Result<UnitDone> Parse(const nlohmann::json& j);
};

struct UnitFailed {
  UnitRef unit;
  std::string error;
  bool device_error = false;  // sticky accelerator error: the worker exits after sending this
  nlohmann::json ToJson() const;
  static Result<UnitFailed> Parse(const nlohmann::json& j);
};

// Worker hands a unit back (draining); samples already sent stay.
struct Release {
  UnitRef unit;
  std::string reason;
  nlohmann::json ToJson() const;
  static Result<Release> Parse(const nlohmann::json& j);
};

struct CancelUnit {
  UnitRef unit;
  std::string reason;
  nlohmann::json ToJson() const;
  static Result<CancelUnit> Parse(const nlohmann::json& j);
};

struct Bye {
  std::string reason;
  nlohmann::json ToJson() const;
  static Result<Bye> Parse(const nlohmann::json& j);
};

// Client request: type is submit | status | cancel | list; `request_id` is echoed in the reply.
struct ClientRequest {
  std::string type;
  int64_t request_id = 0;
  nlohmann::json grid;        // submit: the grid document
  std::string base_dir;       // submit: folder relative grid paths resolve against
  int64_t experiment_id = 0;  // cancel (required), status (0 = all)
  nlohmann::json ToJson() const;
  static Result<ClientRequest> Parse(const std::string& type, const nlohmann::json& j);
};

struct ClientReply {
  int64_t request_id = 0;
  bool ok = false;
  std::string error;
  nlohmann::json data;
  nlohmann::json ToJson() const;
  static Result<ClientReply> Parse(const nlohmann::json& j);
};

}  // namespace ttc::protocol
