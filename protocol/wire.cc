#include "protocol/wire.h"

#include <cmath>
#include <memory>

namespace ttc::protocol {

namespace {
const nlohmann::json& NullJson() {
  static const nlohmann::json kNull;
  return kNull;
}
}  // namespace

std::string Encode(std::string_view type, const nlohmann::json& body) {
  nlohmann::json j = body.is_object() ? body : nlohmann::json::object();
  j["v"] = kProtocolVersion;
  j["type"] = std::string(type);
  std::vector<uint8_t> bytes = nlohmann::json::to_msgpack(j);
  return std::string(bytes.begin(), bytes.end());
}

Result<Envelope> Decode(std::string_view frame) {
  if (frame.empty()) return InvalidArgument("empty message");
  if (static_cast<int64_t>(frame.size()) > kMaxMessageBytes) {
    return InvalidArgument("message of {} bytes exceeds the {} byte limit", frame.size(),
                           kMaxMessageBytes);
  }
  nlohmann::json j;
  try {
    // allow_exceptions=false returns a discarded value on malformed input instead of throwing.
    j = nlohmann::json::from_msgpack(frame.begin(), frame.end(), /*strict=*/true,
                                     /*allow_exceptions=*/false);
  } catch (const std::exception& e) {
    return InvalidArgument("malformed MessagePack: {}", e.what());
  }
  if (j.is_discarded()) return InvalidArgument("malformed MessagePack ({} bytes)", frame.size());
  if (!j.is_object()) return InvalidArgument("message is not a map");
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer())
    return InvalidArgument("message has no integer field 'v'");
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) return InvalidArgument("message has no string field 'type'");
  Envelope env;
  env.version = v->get<int64_t>() > 1000000 || v->get<int64_t>() < -1000000
                    ? -1
                    : static_cast<int>(v->get<int64_t>());
  env.type = t->get<std::string>();
  if (env.type.size() > 64) return InvalidArgument("message type longer than 64 bytes");
  env.body = std::move(j);
  return env;
}

FieldReader::FieldReader(const nlohmann::json& object, std::string path)
    : FieldReader(object, std::move(path), std::make_shared<Status>()) {}

FieldReader::FieldReader(const nlohmann::json& object, std::string path,
                         std::shared_ptr<Status> status)
    : object_(object), path_(std::move(path)), status_(std::move(status)) {
  if (status_->ok() && !object_.is_object()) {
    *status_ = InvalidArgument("{}: expected a map", path_);
  }
}

void FieldReader::Fail(const std::string& key, const std::string& what) {
  if (!status_->ok()) return;
  *status_ = InvalidArgument("{}.{}: {}", path_, key, what);
}

const nlohmann::json* FieldReader::Find(const char* key, bool required) {
  if (!status_->ok() || !object_.is_object()) return nullptr;
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) {
    if (required) Fail(key, "missing");
    return nullptr;
  }
  return &*it;
}

std::string FieldReader::String(const char* key, size_t max_len) {
  auto v = OptString(key, max_len);
  if (!v && ok()) Fail(key, "missing");
  return v.value_or("");
}

std::optional<std::string> FieldReader::OptString(const char* key, size_t max_len) {
  const nlohmann::json* v = Find(key, false);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    Fail(key, "expected a string");
    return std::nullopt;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_len) {
    Fail(key, fmt::format("string of {} bytes exceeds {}", s.size(), max_len));
    return std::nullopt;
  }
  return s;
}

int64_t FieldReader::Int(const char* key, int64_t min, int64_t max) {
  auto v = OptInt(key, min, max);
  if (!v && ok()) Fail(key, "missing");
  return v.value_or(0);
}

std::optional<int64_t> FieldReader::OptInt(const char* key, int64_t min, int64_t max) {
  const nlohmann::json* v = Find(key, false);
  if (v == nullptr) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      Fail(key, "integer out of range");
      return std::nullopt;
    }
    x = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else {
    Fail(key, "expected an integer");
    return std::nullopt;
  }
  if (x < min || x > max) {
    Fail(key, fmt::format("{} is outside [{}, {}]", x, min, max));
    return std::nullopt;
  }
  return x;
}

uint64_t FieldReader::UInt(const char* key) {
  const nlohmann::json* v = Find(key, true);
  if (v == nullptr) return 0;
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  if (v->is_number_integer() && v->get<int64_t>() >= 0)
    return static_cast<uint64_t>(v->get<int64_t>());
  Fail(key, "expected an unsigned integer");
  return 0;
}

double FieldReader::Double(const char* key, double min, double max) {
  auto v = OptDouble(key, min, max);
  if (!v && ok()) Fail(key, "missing");
  return v.value_or(0.0);
}

std::optional<double> FieldReader::OptDouble(const char* key, double min, double max) {
  const nlohmann::json* v = Find(key, false);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) {
    Fail(key, "expected a number");
    return std::nullopt;
  }
  double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    Fail(key, fmt::format("{} is outside [{}, {}]", x, min, max));
    return std::nullopt;
  }
  return x;
}

bool FieldReader::Bool(const char* key) {
  auto v = OptBool(key);
  if (!v && ok()) Fail(key, "missing");
  return v.value_or(false);
}

std::optional<bool> FieldReader::OptBool(const char* key) {
  const nlohmann::json* v = Find(key, false);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    Fail(key, "expected a boolean");
    return std::nullopt;
  }
  return v->get<bool>();
}

const nlohmann::json& FieldReader::Object(const char* key) {
  const nlohmann::json* v = Find(key, true);
  if (v == nullptr) return NullJson();
  if (!v->is_object()) {
    Fail(key, "expected a map");
    return NullJson();
  }
  return *v;
}

const nlohmann::json* FieldReader::OptObject(const char* key) {
  const nlohmann::json* v = Find(key, false);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    Fail(key, "expected a map");
    return nullptr;
  }
  return v;
}

const nlohmann::json& FieldReader::Array(const char* key, size_t max_items) {
  const nlohmann::json* v = Find(key, true);
  if (v == nullptr) return NullJson();
  if (!v->is_array()) {
    Fail(key, "expected an array");
    return NullJson();
  }
  if (v->size() > max_items) {
    Fail(key, fmt::format("array of {} items exceeds {}", v->size(), max_items));
    return NullJson();
  }
  return *v;
}

std::vector<std::string> FieldReader::StringArray(const char* key, size_t max_items) {
  std::vector<std::string> out;
  const nlohmann::json* v = Find(key, false);
  if (v == nullptr) return out;
  if (!v->is_array() || v->size() > max_items) {
    Fail(key, "expected an array of strings");
    return out;
  }
  for (const auto& e : *v) {
    if (!e.is_string()) {
      Fail(key, "expected an array of strings");
      return {};
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

FieldReader FieldReader::Child(const nlohmann::json& value, const std::string& suffix) {
  return FieldReader(value, path_ + suffix, status_);
}

std::string SafeDump(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ttc::protocol
