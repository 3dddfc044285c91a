// The ttc wire format (docs/protocol.md): every message is ONE ZeroMQ frame (after the ROUTER
// routing-id frame) holding a MessagePack map with at least {"v": <protocol version>, "type":
// <string>}. Decoding never throws and never trusts the peer: size limits, MessagePack errors,
// missing or mistyped fields all become a Status naming the message type and field. FieldReader is
// the validation helper every typed message uses. Thread-safety: pure functions and value types; a
// FieldReader is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ttc::protocol {

// Version 1: the first versioned format. A peer speaking another version is refused with a
// "refused" message whose shape ({"v","type":"refused","reason"}) is frozen across versions so old
// and new peers can read it.
inline constexpr int kProtocolVersion = 1;

// No legitimate message comes near this: the biggest is an assignment of a score unit (sample
// texts). Sockets are configured with ZMQ_MAXMSGSIZE at this value so an oversized frame drops the
// connection inside libzmq.
inline constexpr int64_t kMaxMessageBytes = 32ll << 20;

// A decoded message: its type and the whole map (including "v" and "type").
struct Envelope {
  int version = 0;
  std::string type;
  nlohmann::json body;
};

// Encodes {"v": kProtocolVersion, "type": type} merged with the fields of body (an object) as
// MessagePack.
std::string Encode(std::string_view type, const nlohmann::json& body);

// Decodes one frame. Fails (kInvalidArgument) on oversize, bad MessagePack, a non-map, or
// missing/mistyped "v" or "type". A version other than kProtocolVersion still decodes (the caller
// decides to refuse it).
Result<Envelope> Decode(std::string_view frame);

// Reads typed fields out of a JSON object, recording the first error with a path
// ("assign.items[2].seed: expected an unsigned integer"). Every getter returns a default value
// after an error, so parsing code reads straight through and checks status() once at the end.
class FieldReader {
 public:
  FieldReader(const nlohmann::json& object, std::string path);

  std::string String(const char* key, size_t max_len = 1 << 20);
  std::optional<std::string> OptString(const char* key, size_t max_len = 1 << 20);
  int64_t Int(const char* key, int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  std::optional<int64_t> OptInt(const char* key, int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  uint64_t UInt(const char* key);
  double Double(const char* key, double min = -1e300, double max = 1e300);
  std::optional<double> OptDouble(const char* key, double min = -1e300, double max = 1e300);
  bool Bool(const char* key);
  std::optional<bool> OptBool(const char* key);
  // A nested object or array; returns a null json on error.
  const nlohmann::json& Object(const char* key);
  const nlohmann::json& Array(const char* key, size_t max_items = 1 << 20);
  const nlohmann::json* OptObject(const char* key);
  std::vector<std::string> StringArray(const char* key, size_t max_items = 1 << 16);

  // A child reader for an element, sharing this reader's error slot.
  FieldReader Child(const nlohmann::json& value, const std::string& suffix);

  void Fail(const std::string& key, const std::string& what);
  bool ok() const { return status_->ok(); }
  Status status() const { return *status_; }
  const std::string& path() const { return path_; }

 private:
  FieldReader(const nlohmann::json& object, std::string path, std::shared_ptr<Status> status);
  const nlohmann::json* Find(const char* key, bool required);

  const nlohmann::json& object_;
  std::string path_;
  std::shared_ptr<Status> status_;
};

// Dumps JSON for humans and logs without throwing on invalid UTF-8 in model output (replaced with
// U+FFFD).
std::string SafeDump(const nlohmann::json& j, int indent = -1);

}  // namespace ttc::protocol
