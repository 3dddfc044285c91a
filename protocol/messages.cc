#include "protocol/messages.h"

#include <limits>

namespace ttc::protocol {

namespace {

constexpr size_t kShort = 256;          // identities, names, states
constexpr size_t kPath = 4096;          // file system paths
constexpr size_t kText = 8u << 20;      // sample texts, questions, chat contents
constexpr size_t kMaxItems = 1u << 20;  // array lengths
constexpr int64_t kMaxIndex = std::numeric_limits<int32_t>::max();

nlohmann::json RefJson(const UnitRef& r) {
  return {{"unit_id", r.unit_id}, {"attempt", r.attempt}};
}

UnitRef ReadRef(FieldReader& r, const char* key) {
  UnitRef ref;
  const nlohmann::json& o = r.Object(key);
  if (!r.ok()) return ref;
  FieldReader c = r.Child(o, std::string(".") + key);
  ref.unit_id = c.Int("unit_id", 1);
  ref.attempt = c.Int("attempt", 1, kMaxIndex);
  return ref;
}

std::optional<UnitRef> ReadOptRef(FieldReader& r, const char* key) {
  const nlohmann::json* o = r.OptObject(key);
  if (o == nullptr) return std::nullopt;
  FieldReader c = r.Child(*o, std::string(".") + key);
  UnitRef ref;
  ref.unit_id = c.Int("unit_id", 1);
  ref.attempt = c.Int("attempt", 1, kMaxIndex);
  return ref;
}

template <typename T>
Result<T> Done(const FieldReader& r, T value) {
  if (!r.ok()) return r.status();
  return value;
}

}  // namespace

nlohmann::json Hello::ToJson() const {
  nlohmann::json j = {
      {"worker_id", worker_id}, {"host", host}, {"device", device}, {"memory_bytes", memory_bytes},
      {"threads", threads},     {"pid", pid},   {"models", models}, {"loaded_model", loaded_model},
      {"draining", draining}};
  if (current) j["current"] = RefJson(*current);
  return j;
}

Result<Hello> Hello::Parse(const nlohmann::json& j) {
  FieldReader r(j, kHelloType);
  Hello m;
  m.worker_id = r.String("worker_id", kShort);
  if (r.ok() && m.worker_id.empty()) r.Fail("worker_id", "empty");
  m.host = r.String("host", kShort);
  m.device = r.String("device", kShort);
  m.memory_bytes = r.Int("memory_bytes", 0);
  m.threads = r.Int("threads", 0, 1 << 20);
  m.pid = r.Int("pid", 0);
  m.models = r.StringArray("models", 4096);
  m.loaded_model = r.OptString("loaded_model", kPath).value_or("");
  m.current = ReadOptRef(r, "current");
  m.draining = r.OptBool("draining").value_or(false);
  return Done(r, std::move(m));
}

nlohmann::json Welcome::ToJson() const {
  return {{"coordinator_id", coordinator_id},
          {"heartbeat_ms", heartbeat_ms},
          {"liveness", liveness},
          {"resumed", resumed}};
}

Result<Welcome> Welcome::Parse(const nlohmann::json& j) {
  FieldReader r(j, kWelcomeType);
  Welcome m;
  m.coordinator_id = r.String("coordinator_id", kShort);
  m.heartbeat_ms = r.Int("heartbeat_ms", 1, 3600 * 1000);
  m.liveness = r.Int("liveness", 1, 1000);
  m.resumed = r.OptBool("resumed").value_or(false);
  return Done(r, std::move(m));
}

nlohmann::json Refused::ToJson() const { return {{"reason", reason}}; }

Result<Refused> Refused::Parse(const nlohmann::json& j) {
  FieldReader r(j, kRefusedType);
  Refused m;
  m.reason = r.String("reason", 1 << 16);
  return Done(r, std::move(m));
}

nlohmann::json WorkerHeartbeat::ToJson() const {
  nlohmann::json j = {
      {"state", state}, {"tokens", tokens}, {"samples", samples}, {"tokens_per_s", tokens_per_s}};
  if (unit) j["unit"] = RefJson(*unit);
  return j;
}

Result<WorkerHeartbeat> WorkerHeartbeat::Parse(const nlohmann::json& j) {
  FieldReader r(j, kHeartbeatType);
  WorkerHeartbeat m;
  // A coordinator heartbeat has no fields; a worker heartbeat always names its state.
  m.state = r.OptString("state", kShort).value_or("");
  if (!m.state.empty() && m.state != "idle" && m.state != "loading" && m.state != "busy" &&
      m.state != "draining") {
    r.Fail("state", "expected idle, loading, busy or draining, got '" + m.state + "'");
  }
  m.unit = ReadOptRef(r, "unit");
  m.tokens = r.OptInt("tokens", 0).value_or(0);
  m.samples = r.OptInt("samples", 0).value_or(0);
  m.tokens_per_s = r.OptDouble("tokens_per_s", 0).value_or(0);
  return Done(r, std::move(m));
}

nlohmann::json RequestWork::ToJson() const { return {{"loaded_model", loaded_model}}; }

Result<RequestWork> RequestWork::Parse(const nlohmann::json& j) {
  FieldReader r(j, kRequestWorkType);
  RequestWork m;
  m.loaded_model = r.OptString("loaded_model", kPath).value_or("");
  return Done(r, std::move(m));
}

nlohmann::json Assign::ToJson() const {
  nlohmann::json j = {{"unit", RefJson(unit)},
                      {"kind", kind},
                      {"lease_ms", lease_ms},
                      {"model_name", model_name},
                      {"model_path", model_path},
                      {"model_options", model_options},
                      {"temperature", temperature},
                      {"top_k", top_k},
                      {"top_p", top_p},
                      {"max_new_tokens", max_new_tokens},
                      {"chat_template", chat_template},
                      {"date", date},
                      {"prm_chat_template", prm_chat_template}};
  nlohmann::json items_j = nlohmann::json::array();
  for (const GenerateItem& it : items) {
    nlohmann::json msgs = nlohmann::json::array();
    for (const ChatMessage& m : it.messages)
      msgs.push_back({{"role", m.role}, {"content", m.content}});
    items_j.push_back({{"problem_index", it.problem_index},
                       {"messages", msgs},
                       {"seed", it.seed},
                       {"sample_indices", it.sample_indices}});
  }
  j["items"] = std::move(items_j);
  nlohmann::json score_j = nlohmann::json::array();
  for (const ScoreItem& s : score_items) {
    score_j.push_back({{"sample_id", s.sample_id},
                       {"problem_index", s.problem_index},
                       {"sample_index", s.sample_index},
                       {"question", s.question},
                       {"completion", s.completion}});
  }
  j["score_items"] = std::move(score_j);
  return j;
}

Result<Assign> Assign::Parse(const nlohmann::json& j) {
  FieldReader r(j, kAssignType);
  Assign m;
  m.unit = ReadRef(r, "unit");
  m.kind = r.String("kind", kShort);
  if (r.ok() && m.kind != "generate" && m.kind != "score")
    r.Fail("kind", "expected generate or score");
  m.lease_ms = r.Int("lease_ms", 1);
  m.model_name = r.String("model_name", kShort);
  m.model_path = r.String("model_path", kPath);
  if (r.ok() && m.model_path.empty()) r.Fail("model_path", "empty");
  if (const nlohmann::json* o = r.OptObject("model_options")) m.model_options = *o;
  m.temperature = r.Double("temperature", 0, 100);
  m.top_k = r.Int("top_k", -1, kMaxIndex);
  m.top_p = r.Double("top_p", 0, 1);
  m.max_new_tokens = r.Int("max_new_tokens", 0, 1 << 24);
  m.chat_template = r.OptString("chat_template", kShort).value_or("llama3");
  m.date = r.OptString("date", kShort).value_or("");
  m.prm_chat_template = r.OptString("prm_chat_template", kShort).value_or("auto");
  const nlohmann::json& items = r.Array("items", kMaxItems);
  if (r.ok()) {
    for (size_t i = 0; i < items.size() && r.ok(); ++i) {
      FieldReader c = r.Child(items[i], fmt::format(".items[{}]", i));
      GenerateItem it;
      it.problem_index = c.Int("problem_index", 0, kMaxIndex);
      it.seed = c.UInt("seed");
      const nlohmann::json& msgs = c.Array("messages", 64);
      for (size_t k = 0; c.ok() && k < msgs.size(); ++k) {
        FieldReader mc = c.Child(msgs[k], fmt::format(".messages[{}]", k));
        ChatMessage cm;
        cm.role = mc.String("role", kShort);
        cm.content = mc.String("content", kText);
        it.messages.push_back(std::move(cm));
      }
      const nlohmann::json& idx = c.Array("sample_indices", kMaxItems);
      for (size_t k = 0; c.ok() && k < idx.size(); ++k) {
        if (!idx[k].is_number_integer() || idx[k].get<int64_t>() < 0 ||
            idx[k].get<int64_t>() > kMaxIndex) {
          c.Fail("sample_indices", fmt::format("element {} is not a sample index", k));
          break;
        }
        it.sample_indices.push_back(idx[k].get<int64_t>());
      }
      m.items.push_back(std::move(it));
    }
  }
  const nlohmann::json& sitems = r.Array("score_items", kMaxItems);
  if (r.ok()) {
    for (size_t i = 0; i < sitems.size() && r.ok(); ++i) {
      FieldReader c = r.Child(sitems[i], fmt::format(".score_items[{}]", i));
      ScoreItem s;
      s.sample_id = c.Int("sample_id", 1);
      s.problem_index = c.Int("problem_index", 0, kMaxIndex);
      s.sample_index = c.Int("sample_index", 0, kMaxIndex);
      s.question = c.String("question", kText);
      s.completion = c.String("completion", kText);
      m.score_items.push_back(std::move(s));
    }
  }
  if (r.ok() && m.kind == "generate" && m.items.empty())
    r.Fail("items", "a generate unit with no items");
  if (r.ok() && m.kind == "score" && m.score_items.empty())
    r.Fail("score_items", "a score unit with no items");
  return Done(r, std::move(m));
}

nlohmann::json NoWork::ToJson() const { return {{"retry_ms", retry_ms}, {"reason", reason}}; }

Result<NoWork> NoWork::Parse(const nlohmann::json& j) {
  FieldReader r(j, kNoWorkType);
  NoWork m;
  m.retry_ms = r.Int("retry_ms", 0, 3600 * 1000);
  m.reason = r.OptString("reason", 1 << 12).value_or("");
  return Done(r, std::move(m));
}

nlohmann::json SampleResult::ToJson() const {
  return {{"unit", RefJson(unit)},
          {"seq", seq},
          {"problem_index", problem_index},
          {"sample_index", sample_index},
          {"text", text},
          {"num_tokens", num_tokens},
          {"finish_reason", finish_reason},
          {"prefill_s", prefill_s},
          {"decode_s", decode_s},
          {"steps", steps},
          {"extra", extra}};
}

Result<SampleResult> SampleResult::Parse(const nlohmann::json& j) {
  FieldReader r(j, kSampleType);
  SampleResult m;
  m.unit = ReadRef(r, "unit");
  m.seq = r.Int("seq", 0);
  m.problem_index = r.Int("problem_index", 0, kMaxIndex);
  m.sample_index = r.Int("sample_index", 0, kMaxIndex);
  m.text = r.String("text", kText);
  m.num_tokens = r.Int("num_tokens", 0, 1 << 24);
  m.finish_reason = r.String("finish_reason", kShort);
  m.prefill_s = r.Double("prefill_s", 0, 1e9);
  m.decode_s = r.Double("decode_s", 0, 1e9);
  m.steps = r.Int("steps", 0, 1 << 24);
  if (const nlohmann::json* o = r.OptObject("extra")) m.extra = *o;
  return Done(r, std::move(m));
}

nlohmann::json ScoresResult::ToJson() const {
  return {{"unit", RefJson(unit)}, {"seq", seq}, {"sample_id", sample_id}, {"scores", scores}};
}

Result<ScoresResult> ScoresResult::Parse(const nlohmann::json& j) {
  FieldReader r(j, kScoresType);
  ScoresResult m;
  m.unit = ReadRef(r, "unit");
  m.seq = r.Int("seq", 0);
  m.sample_id = r.Int("sample_id", 1);
  const nlohmann::json& s = r.Array("scores", 1 << 16);
  for (size_t i = 0; r.ok() && i < s.size(); ++i) {
    if (!s[i].is_number() || !(s[i].get<double>() >= 0.0 && s[i].get<double>() <= 1.0)) {
      r.Fail("scores", fmt::format("element {} is not a probability in [0, 1]", i));
      break;
    }
    m.scores.push_back(s[i].get<double>());
  }
  return Done(r, std::move(m));
}

nlohmann::json Ack::ToJson() const { return {{"seqs", seqs}}; }

Result<Ack> Ack::Parse(const nlohmann::json& j) {
  FieldReader r(j, kAckType);
  Ack m;
  const nlohmann::json& s = r.Array("seqs", kMaxItems);
  for (size_t i = 0; r.ok() && i < s.size(); ++i) {
    if (!s[i].is_number_integer()) {
      r.Fail("seqs", fmt::format("element {} is not an integer", i));
      break;
    }
    m.seqs.push_back(s[i].get<int64_t>());
  }
  return Done(r, std::move(m));
}

nlohmann::json UnitDone::ToJson() const {
  return {{"unit", RefJson(unit)}, {"tokens", tokens}, {"seconds", seconds}};
}

Result<UnitDone> UnitDone::Parse(const nlohmann::json& j) {
  FieldReader r(j, kUnitDoneType);
  UnitDone m;
  m.unit = ReadRef(r, "unit");
  m.tokens = r.OptInt("tokens", 0).value_or(0);
  m.seconds = r.OptDouble("seconds", 0).value_or(0);
  return Done(r, std::move(m));
}

nlohmann::json UnitFailed::ToJson() const {
  return {{"unit", RefJson(unit)}, {"error", error}, {"device_error", device_error}};
}

Result<UnitFailed> UnitFailed::Parse(const nlohmann::json& j) {
  FieldReader r(j, kUnitFailedType);
  UnitFailed m;
  m.unit = ReadRef(r, "unit");
  m.error = r.String("error", 1 << 16);
  m.device_error = r.OptBool("device_error").value_or(false);
  return Done(r, std::move(m));
}

nlohmann::json Release::ToJson() const { return {{"unit", RefJson(unit)}, {"reason", reason}}; }

Result<Release> Release::Parse(const nlohmann::json& j) {
  FieldReader r(j, kReleaseType);
  Release m;
  m.unit = ReadRef(r, "unit");
  m.reason = r.OptString("reason", 1 << 12).value_or("");
  return Done(r, std::move(m));
}

nlohmann::json CancelUnit::ToJson() const { return {{"unit", RefJson(unit)}, {"reason", reason}}; }

Result<CancelUnit> CancelUnit::Parse(const nlohmann::json& j) {
  FieldReader r(j, kCancelUnitType);
  CancelUnit m;
  m.unit = ReadRef(r, "unit");
  m.reason = r.OptString("reason", 1 << 12).value_or("");
  return Done(r, std::move(m));
}

nlohmann::json Bye::ToJson() const { return {{"reason", reason}}; }

Result<Bye> Bye::Parse(const nlohmann::json& j) {
  FieldReader r(j, kByeType);
  Bye m;
  m.reason = r.OptString("reason", 1 << 12).value_or("");
  return Done(r, std::move(m));
}

nlohmann::json ClientRequest::ToJson() const {
  nlohmann::json j = {{"request_id", request_id}};
  if (type == kSubmitType) {
    j["grid"] = grid;
    j["base_dir"] = base_dir;
  }
  if (type == kCancelType || type == kStatusType) j["experiment_id"] = experiment_id;
  return j;
}

Result<ClientRequest> ClientRequest::Parse(const std::string& type, const nlohmann::json& j) {
  FieldReader r(j, type);
  ClientRequest m;
  m.type = type;
  m.request_id = r.OptInt("request_id").value_or(0);
  if (type == kSubmitType) {
    m.grid = r.Object("grid");
    m.base_dir = r.OptString("base_dir", kPath).value_or("");
  } else if (type == kCancelType) {
    m.experiment_id = r.Int("experiment_id", 1);
  } else if (type == kStatusType) {
    m.experiment_id = r.OptInt("experiment_id", 0).value_or(0);
  } else if (type != kListType) {
    return InvalidArgument("unknown client request type '{}'", type);
  }
  return Done(r, std::move(m));
}

nlohmann::json ClientReply::ToJson() const {
  return {{"request_id", request_id}, {"ok", ok}, {"error", error}, {"data", data}};
}

Result<ClientReply> ClientReply::Parse(const nlohmann::json& j) {
  FieldReader r(j, kReplyType);
  ClientReply m;
  m.request_id = r.OptInt("request_id").value_or(0);
  m.ok = r.Bool("ok");
  m.error = r.OptString("error", 1 << 20).value_or("");
  if (r.ok() && j.contains("data")) m.data = j.at("data");
  return Done(r, std::move(m));
}

}  // namespace ttc::protocol
