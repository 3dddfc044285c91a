#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "coordinator/experiment_glue.h"
#include "coordinator/store_view.h"
#include "protocol/messages.h"
#include "protocol/transport.h"
#include "protocol/wire.h"
#include "store/store.h"

namespace ttc::coordinator {

namespace {

using Clock = std::chrono::steady_clock;
using protocol::Encode;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

store::WorkerState WorkerStateFromName(const std::string& s) {
  if (s == "loading") return store::WorkerState::kLoading;
  if (s == "busy") return store::WorkerState::kBusy;
  if (s == "draining") return store::WorkerState::kDraining;
  return store::WorkerState::kIdle;
}

// One worker as the coordinator sees it while it is connected.
struct LiveWorker {
  std::string id;
  protocol::Hello hello;
  std::string state = "idle";
  std::optional<protocol::UnitRef> unit;
  store::Id experiment_id = 0;
  std::string model_name;
  int64_t tokens = 0;
  int64_t samples = 0;
  double tokens_per_s = 0;
  Clock::time_point last_seen = Clock::now();
  Clock::time_point last_progress = Clock::now();
  double last_seen_unix = 0;
};

// Counts of events over the last minute (at least the latest batch), for rates.
struct RateWindow {
  static constexpr double kSpanSeconds = 60;
  std::deque<std::pair<Clock::time_point, int64_t>> events;
  void Add(int64_t n) {
    events.emplace_back(Clock::now(), n);
    while (events.size() > 1 && SecondsSince(events.front().first) > kSpanSeconds) {
      events.pop_front();
    }
  }
  // Over the events of the last kSpanSeconds only: once nothing lands any more (every sample in,
  // the score units running) the rate falls to 0 within a span instead of decaying over the whole
  // time since the last event (the demo's status line went 206 -> 122 samples/s after its last
  // sample).
  double PerSecond() const {
    int64_t n = 0;
    double oldest = 0.0;
    for (const auto& [t, k] : events) {
      const double age = SecondsSince(t);
      if (age > kSpanSeconds) continue;
      n += k;
      oldest = std::max(oldest, age);
    }
    return n > 0 ? n / std::max(1.0, oldest) : 0.0;
  }
};

// Cached per-experiment data the hot paths need (grid, golds, tasks, model names).
struct ExperimentInfo {
  store::Experiment experiment;
  experiments::GridSpec grid;
  std::vector<store::Problem> problems;
  std::vector<experiments::Task> tasks;
  std::vector<store::Model> models;
  RateWindow samples_landed;  // per ingest batch: throughput and ETA
  RateWindow units_finished;  // done or failed: the ETA of the units left
  std::unordered_map<std::string, std::optional<bool>> verdicts;  // "problem\x1fanswer" -> correct
};

struct PendingSample {
  std::string identity;
  int64_t seq = 0;
  store::Sample sample;
};

struct PendingScores {
  std::string identity;
  int64_t seq = 0;
  protocol::ScoresResult scores;
};

}  // namespace

class Coordinator::Impl {
 public:
  explicit Impl(const CoordinatorOptions& options) : options_(options), context_(1) {}

  Status Init();
  Status Run(const std::atomic<bool>& stop);

  CoordinatorOptions options_;
  CoordinatorCounters counters_;
  std::vector<std::string> bound_;

 private:
  // Networking.
  void Send(const std::string& identity, std::string_view type, const nlohmann::json& body);
  void HandleFrame(const std::string& identity, std::string_view frame);
  void HandleZap();
  void LogDrop(const std::string& identity, const std::string& what);

  // Workers.
  void OnHello(const std::string& identity, const nlohmann::json& body);
  void OnHeartbeat(LiveWorker& w, const nlohmann::json& body);
  void OnRequestWork(LiveWorker& w, const nlohmann::json& body);
  void OnUnitDone(LiveWorker& w, const nlohmann::json& body);
  void OnUnitFailed(LiveWorker& w, const nlohmann::json& body);
  void OnRelease(LiveWorker& w, const nlohmann::json& body);
  void OnBye(const std::string& identity, const nlohmann::json& body);
  void OnSample(const std::string& identity, const nlohmann::json& body);
  void OnScores(const std::string& identity, const nlohmann::json& body);
  Result<std::optional<protocol::Assign>> ClaimFor(LiveWorker& w);
  Result<protocol::Assign> BuildAssign(const store::Unit& unit);
  void FailWorkerUnit(LiveWorker& w, const std::string& error, bool tell_worker);
  void AfterUnitFinished(store::Id experiment_id);
  void Tick();

  // Results.
  Status FlushResults();

  // Clients.
  void OnClient(const std::string& identity, const std::string& type, const nlohmann::json& body);
  Result<nlohmann::json> Submit(const protocol::ClientRequest& req);
  Result<nlohmann::json> StatusJson(store::Id experiment_id);
  Result<nlohmann::json> ListJson();
  Result<nlohmann::json> Cancel(store::Id experiment_id);

  Result<ExperimentInfo*> Experiment(store::Id id);

  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> router_;
  std::unique_ptr<zmq::socket_t> zap_;
  std::set<std::string> authorized_;
  std::unique_ptr<store::Store> store_;
  std::string coordinator_id_;
  std::map<std::string, LiveWorker> workers_;
  std::map<store::Id, ExperimentInfo> experiments_;
  std::vector<PendingSample> pending_samples_;
  std::vector<PendingScores> pending_scores_;
  Clock::time_point started_ = Clock::now();
  Clock::time_point last_tick_ = Clock::now();
  Clock::time_point last_expire_ = Clock::now();
  int64_t drops_logged_ = 0;
  Status fatal_;
};

// ---------------------------------------------------------------------------------------------------------------
// Setup

Status Coordinator::Impl::Init() {
  if (options_.listen.empty()) return InvalidArgument("no --listen endpoint");
  if (options_.heartbeat_ms < 10) return InvalidArgument("--heartbeat-ms must be >= 10");
  if (options_.liveness < 1) return InvalidArgument("--liveness must be >= 1");
  if (options_.lease_s <= 0 || options_.stall_s <= 0)
    return InvalidArgument("--lease-s and --stall-s must be > 0");
  std::vector<std::string> all = options_.listen;
  all.insert(all.end(), options_.client_listen.begin(), options_.client_listen.end());
  bool curve = !options_.curve_keys_file.empty();
  for (const auto& e : all) {
    if (!protocol::IsLoopbackEndpoint(e) && !curve) {
      return InvalidArgument(
          "refusing to listen on '{}' without CURVE: endpoints beyond loopback need --curve-keys "
          "(make a pair "
          "with `ttc keygen`) and --authorized-keys",
          e);
    }
  }
  std::optional<protocol::CurveKeyPair> server_keys;
  if (curve) {
    TTC_ASSIGN_OR_RETURN(server_keys, protocol::LoadKeyPair(options_.curve_keys_file));
    if (options_.authorized_keys.empty()) {
      return InvalidArgument(
          "--curve-keys needs --authorized-keys (the public keys of workers and clients)");
    }
    TTC_ASSIGN_OR_RETURN(auto keys, protocol::LoadAuthorizedKeys(options_.authorized_keys));
    authorized_.insert(keys.begin(), keys.end());
  }

  TTC_ASSIGN_OR_RETURN(store_, store::Store::Open(options_.db_path));
  std::random_device rd;
  coordinator_id_ = fmt::format("{:08x}{:08x}", rd(), rd());

  try {
    if (curve) {
      // The ZAP handler must be bound before any CURVE socket binds (libzmq asks it about every
      // handshake).
      zap_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
      zap_->set(zmq::sockopt::linger, 0);
      zap_->bind("inproc://zeromq.zap.01");
    }
    router_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
    protocol::ApplyCommonOptions(*router_, 200);
    router_->set(zmq::sockopt::router_handover, 1);
    router_->set(zmq::sockopt::sndhwm, 100000);
    router_->set(zmq::sockopt::rcvhwm, 100000);
    if (curve) {
      router_->set(zmq::sockopt::curve_server, 1);
      router_->set(zmq::sockopt::curve_secretkey, server_keys->secret_key);
      router_->set(zmq::sockopt::curve_publickey, server_keys->public_key);
      router_->set(zmq::sockopt::zap_domain, std::string("ttc"));
    }
    for (const auto& e : all) {
      router_->bind(e);
      bound_.push_back(router_->get(zmq::sockopt::last_endpoint));
    }
  } catch (const zmq::error_t& e) {
    return InvalidArgument("cannot listen: {}", e.what());
  }
  if (!options_.endpoint_file.empty()) {
    std::string tmp = options_.endpoint_file + ".tmp";
    {
      std::ofstream out(tmp);
      for (const auto& b : bound_) out << b << "\n";
      if (!out) return IoError("cannot write {}", tmp);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, options_.endpoint_file, ec);
    if (ec) return IoError("cannot rename {} to {}: {}", tmp, options_.endpoint_file, ec.message());
  }
  spdlog::info("coordinator {} listening on {} (db {}, CURVE {})", coordinator_id_,
               fmt::join(bound_, ", "), options_.db_path, curve ? "on" : "off");
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------------------------
// Main loop

Status Coordinator::Impl::Run(const std::atomic<bool>& stop) {
  std::vector<zmq::pollitem_t> items = {{router_->handle(), 0, ZMQ_POLLIN, 0}};
  if (zap_) items.push_back({zap_->handle(), 0, ZMQ_POLLIN, 0});
  const int tick_ms = std::max(10, std::min(250, options_.heartbeat_ms / 2));
  while (!stop.load() && fatal_.ok()) {
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(tick_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Internal("zmq poll: {}", e.what());
    }
    if (zap_ && (items[1].revents & ZMQ_POLLIN)) HandleZap();
    // Drain what is waiting (bounded), committing samples in one transaction per batch.
    for (int n = 0; n < options_.ingest_batch; ++n) {
      std::vector<zmq::message_t> frames;
      zmq::recv_result_t got;
      try {
        got = zmq::recv_multipart(*router_, std::back_inserter(frames), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) break;
        spdlog::warn("receive failed: {}", e.what());
        break;
      }
      if (!got) break;
      ++counters_.messages;
      if (frames.size() != 2) {
        ++counters_.malformed;
        LogDrop(frames.empty() ? "" : frames[0].to_string(),
                fmt::format("{} frames (expected 1)", frames.size() - 1));
        continue;
      }
      HandleFrame(frames[0].to_string(), frames[1].to_string_view());
      if (zap_) {
        // Keep handshakes moving while a large backlog is drained.
        zmq::pollitem_t z = {zap_->handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&z, 1, std::chrono::milliseconds(0));
        if (z.revents & ZMQ_POLLIN) HandleZap();
      }
    }
    Status st = FlushResults();
    if (!st.ok()) spdlog::error("storing results: {}", st.ToString());
    if (std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_tick_).count() >=
        tick_ms) {
      Tick();
      last_tick_ = Clock::now();
    }
  }
  // Tell workers we are going away so they reconnect quickly to the next incarnation.
  (void)FlushResults();
  spdlog::info("coordinator stopping");
  return fatal_;
}

void Coordinator::Impl::Send(const std::string& identity, std::string_view type,
                             const nlohmann::json& body) {
  std::string payload = Encode(type, body);
  try {
    zmq::message_t id(identity.data(), identity.size());
    router_->send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    router_->send(zmq::buffer(payload), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    spdlog::debug("send {} to peer failed: {}", type, e.what());
  }
}

void Coordinator::Impl::LogDrop(const std::string& identity, const std::string& what) {
  ++drops_logged_;
  // Rate-limited: a fuzzing peer must not flood the log.
  if (drops_logged_ <= 20 || drops_logged_ % 1000 == 0) {
    std::string who;
    for (char c : identity.substr(0, 64)) who += (c >= 32 && c < 127) ? c : '?';
    spdlog::warn("dropped message from '{}': {} ({} dropped so far)", who, what, drops_logged_);
  }
}

void Coordinator::Impl::HandleFrame(const std::string& identity, std::string_view frame) {
  auto env = protocol::Decode(frame);
  if (!env.ok()) {
    ++counters_.malformed;
    LogDrop(identity, env.status().message());
    return;
  }
  const std::string& type = env->type;
  if (env->version != protocol::kProtocolVersion) {
    ++counters_.version_mismatch;
    std::string reason = fmt::format(
        "protocol version {} is not supported: this coordinator speaks version {} (run the same "
        "ttc version on "
        "workers, clients and coordinator)",
        env->version, protocol::kProtocolVersion);
    LogDrop(identity, reason);
    Send(identity, protocol::kRefusedType, protocol::Refused{reason}.ToJson());
    return;
  }
  using namespace protocol;
  if (type == kSampleType) return OnSample(identity, env->body);
  if (type == kScoresType) return OnScores(identity, env->body);
  // Anything else is ordered after the results before it: commit those first.
  Status st = FlushResults();
  if (!st.ok()) spdlog::error("storing results: {}", st.ToString());
  if (type == kSubmitType || type == kStatusType || type == kCancelType || type == kListType) {
    return OnClient(identity, type, env->body);
  }
  if (type == kHelloType) return OnHello(identity, env->body);
  if (type == kByeType) return OnBye(identity, env->body);
  bool known = type == kHeartbeatType || type == kRequestWorkType || type == kUnitDoneType ||
               type == kUnitFailedType || type == kReleaseType;
  if (!known) {
    ++counters_.unknown_type;
    LogDrop(identity, fmt::format("unknown message type '{}'", type.substr(0, 64)));
    return;
  }
  auto it = workers_.find(identity);
  if (it == workers_.end()) {
    // A worker we do not know (we restarted, or declared it lost): it must introduce itself again.
    Send(identity, kReconnectType, nlohmann::json::object());
    return;
  }
  LiveWorker& w = it->second;
  w.last_seen = Clock::now();
  if (type == kHeartbeatType) return OnHeartbeat(w, env->body);
  if (type == kRequestWorkType) return OnRequestWork(w, env->body);
  if (type == kUnitDoneType) return OnUnitDone(w, env->body);
  if (type == kUnitFailedType) return OnUnitFailed(w, env->body);
  if (type == kReleaseType) return OnRelease(w, env->body);
}

void Coordinator::Impl::HandleZap() {
  std::vector<zmq::message_t> frames;
  try {
    if (!zmq::recv_multipart(*zap_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
  } catch (const zmq::error_t&) {
    return;
  }
  if (frames.size() < 6) return;
  std::string version = frames[0].to_string();
  std::string request_id = frames[1].to_string();
  std::string mechanism = frames[5].to_string();
  bool ok = false;
  std::string reason = "unknown mechanism";
  if (mechanism == "CURVE" && frames.size() >= 7 && frames[6].size() == 32) {
    char z85[41] = {0};
    zmq_z85_encode(z85, static_cast<const uint8_t*>(frames[6].data()), 32);
    ok = authorized_.count(z85) > 0;
    reason = ok ? "OK" : "client key not authorized";
    if (!ok) {
      ++counters_.zap_denied;
      spdlog::warn("refused a CURVE peer from {}: public key {} is not in --authorized-keys",
                   frames[3].to_string(), z85);
    }
  }
  std::vector<zmq::message_t> reply;
  reply.emplace_back(version.data(), version.size());
  reply.emplace_back(request_id.data(), request_id.size());
  std::string code = ok ? "200" : "400";
  reply.emplace_back(code.data(), code.size());
  reply.emplace_back(reason.data(), reason.size());
  reply.emplace_back();
  reply.emplace_back();
  try {
    zmq::send_multipart(*zap_, reply);
  } catch (const zmq::error_t& e) {
    spdlog::warn("ZAP reply failed: {}", e.what());
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Experiments cache

Result<ExperimentInfo*> Coordinator::Impl::Experiment(store::Id id) {
  auto it = experiments_.find(id);
  if (it != experiments_.end()) {
    // Refresh the state (cancel may have happened through this process; done is set here too).
    return &it->second;
  }
  ExperimentInfo info;
  TTC_ASSIGN_OR_RETURN(info.experiment, store_->GetExperiment(id));
  nlohmann::json doc = nlohmann::json::parse(info.experiment.grid_spec_json, nullptr, false);
  if (doc.is_discarded()) return Corrupt("experiment {}: stored grid spec is not JSON", id);
  experiments::GridParseOptions po;
  po.check_files = false;
  auto grid = experiments::ParseGridSpec(doc, po);
  if (!grid.ok())
    return grid.status().WithContext(fmt::format("experiment {}: stored grid spec", id));
  info.grid = std::move(grid).value();
  TTC_ASSIGN_OR_RETURN(info.problems, store_->ListProblems(id));
  for (const auto& p : info.problems) {
    nlohmann::json extra =
        nlohmann::json::parse(p.extra_json.empty() ? "{}" : p.extra_json, nullptr, false);
    std::string task = extra.is_object() ? extra.value("task", "") : "";
    info.tasks.push_back(task == "gsm8k" ? experiments::Task::kGsm8k
                                         : (task == "math" ? experiments::Task::kMath
                                                           : info.grid.dataset.EffectiveTask()));
  }
  TTC_ASSIGN_OR_RETURN(info.models, store_->ListModels(id));
  auto [pos, _] = experiments_.emplace(id, std::move(info));
  return &pos->second;
}

// ---------------------------------------------------------------------------------------------------------------
// Workers

void Coordinator::Impl::OnHello(const std::string& identity, const nlohmann::json& body) {
  auto hello = protocol::Hello::Parse(body);
  if (!hello.ok()) {
    ++counters_.invalid;
    LogDrop(identity, hello.status().message());
    Send(identity, protocol::kRefusedType, protocol::Refused{hello.status().message()}.ToJson());
    return;
  }
  if (hello->worker_id != identity) {
    // The routing id is how we address the worker; a mismatch would misroute every reply.
    std::string reason =
        fmt::format("hello.worker_id '{}' differs from the socket routing id", hello->worker_id);
    ++counters_.invalid;
    Send(identity, protocol::kRefusedType, protocol::Refused{reason}.ToJson());
    return;
  }
  LiveWorker w;
  auto old = workers_.find(identity);
  if (old != workers_.end()) w = old->second;
  w.id = identity;
  w.hello = *hello;
  w.state = hello->draining ? "draining" : "idle";
  w.last_seen = w.last_progress = Clock::now();
  w.last_seen_unix = store::UnixSeconds();
  bool resumed = false;
  // Leases this worker id holds: resume the one it says it still runs, take back the others (an
  // earlier incarnation of the same worker died holding them).
  auto leased = store_->ListUnits(
      {.experiment_id = 0, .state = store::UnitState::kLeased, .kind = std::nullopt});
  if (leased.ok()) {
    for (const store::Unit& u : *leased) {
      if (u.worker_id != identity) continue;
      if (hello->current && hello->current->unit_id == u.id &&
          hello->current->attempt == u.attempt) {
        resumed = true;
        w.unit = hello->current;
        w.experiment_id = u.experiment_id;
        w.model_name = u.model_name;
        w.state = "busy";
        (void)store_->RenewLease(u.id, identity, u.attempt,
                                 store::UnixSeconds() + options_.lease_s);
        continue;
      }
      auto st =
          store_->FailUnit(u.id, identity, u.attempt, "worker restarted while holding the unit");
      if (st.ok()) ++counters_.units_failed_attempts;
      AfterUnitFinished(u.experiment_id);
    }
  }
  if (!resumed) {
    w.unit.reset();
    w.experiment_id = 0;
  }
  store::Worker row;
  row.id = identity;
  row.host = hello->host;
  row.device = hello->device;
  row.memory_bytes = hello->memory_bytes;
  row.models_held =
      hello->loaded_model.empty() ? std::vector<std::string>{} : std::vector{hello->loaded_model};
  row.state = WorkerStateFromName(w.state);
  row.current_unit = w.unit ? w.unit->unit_id : 0;
  row.last_heartbeat = store::UnixSeconds();
  row.protocol_version = protocol::kProtocolVersion;
  Status st = store_->UpsertWorker(row);
  if (!st.ok()) spdlog::warn("worker {}: {}", identity, st.ToString());
  workers_[identity] = w;
  spdlog::info("worker {} joined (host {}, device {}, pid {}{})", identity, hello->host,
               hello->device, hello->pid,
               resumed ? fmt::format(", resumes unit {}", w.unit->unit_id) : "");
  protocol::Welcome welcome{coordinator_id_, options_.heartbeat_ms, options_.liveness, resumed};
  Send(identity, protocol::kWelcomeType, welcome.ToJson());
  if (hello->current && !resumed) {
    Send(identity, protocol::kCancelUnitType,
         protocol::CancelUnit{*hello->current,
                              "the lease of this unit is gone (expired or reassigned)"}
             .ToJson());
  }
}

void Coordinator::Impl::OnHeartbeat(LiveWorker& w, const nlohmann::json& body) {
  auto hb = protocol::WorkerHeartbeat::Parse(body);
  if (!hb.ok()) {
    ++counters_.invalid;
    LogDrop(w.id, hb.status().message());
    return;
  }
  double now = store::UnixSeconds();
  w.last_seen_unix = now;
  if (!hb->state.empty()) w.state = hb->state;
  w.tokens_per_s = hb->tokens_per_s;
  if (hb->unit && w.unit && hb->unit->unit_id == w.unit->unit_id &&
      hb->unit->attempt == w.unit->attempt) {
    if (hb->tokens > w.tokens || hb->samples > w.samples) w.last_progress = Clock::now();
    w.tokens = std::max(w.tokens, hb->tokens);
    w.samples = std::max(w.samples, hb->samples);
    Status st =
        store_->RecordProgress(w.unit->unit_id, w.id, static_cast<int>(w.unit->attempt), w.tokens,
                               static_cast<int>(w.samples), now, now + options_.lease_s);
    if (!st.ok()) {
      // The lease is gone (expired, cancelled or reassigned): the worker must stop.
      spdlog::info("worker {}: unit {} attempt {} no longer leased to it ({})", w.id,
                   w.unit->unit_id, w.unit->attempt, st.message());
      Send(w.id, protocol::kCancelUnitType, protocol::CancelUnit{*w.unit, st.message()}.ToJson());
      w.unit.reset();
      w.state = "idle";
    }
  } else if (hb->unit && !w.unit) {
    // It works on something we did not give it (or took back): stop it.
    Send(w.id, protocol::kCancelUnitType,
         protocol::CancelUnit{*hb->unit, "unit not leased to this worker"}.ToJson());
  }
  store::WorkerHeartbeat row;
  row.state = WorkerStateFromName(w.state);
  row.current_unit = w.unit ? w.unit->unit_id : 0;
  row.tokens_per_s = w.tokens_per_s;
  row.at = now;
  (void)store_->Heartbeat(w.id, row);
}

Result<protocol::Assign> Coordinator::Impl::BuildAssign(const store::Unit& unit) {
  TTC_ASSIGN_OR_RETURN(ExperimentInfo * info, Experiment(unit.experiment_id));
  const store::Model* model = nullptr;
  for (const auto& m : info->models) {
    if (m.name == unit.model_name) model = &m;
  }
  if (model == nullptr)
    return NotFound("unit {}: model '{}' not in experiment", unit.id, unit.model_name);
  protocol::Assign a;
  a.unit = {unit.id, unit.attempt};
  a.kind = unit.kind == store::UnitKind::kGenerate ? "generate" : "score";
  a.lease_ms = static_cast<int64_t>(options_.lease_s * 1000);
  a.model_name = model->name;
  a.model_path = model->path;
  nlohmann::json opts = nlohmann::json::parse(
      model->options_json.empty() ? "{}" : model->options_json, nullptr, false);
  if (opts.is_object()) a.model_options = opts;
  const auto& g = info->grid;
  a.temperature = unit.temperature;
  a.top_k = g.top_k;
  a.top_p = g.top_p;
  a.max_new_tokens = g.max_new_tokens;
  a.chat_template = g.prompt.chat_template;
  a.date = g.prompt.date;
  if (unit.kind == store::UnitKind::kGenerate) {
    TTC_ASSIGN_OR_RETURN(auto missing, store_->MissingSamples(unit.id));
    std::map<int, std::vector<int64_t>> by_problem;
    for (const auto& k : missing) by_problem[k.problem_index].push_back(k.sample_index);
    for (auto& [pi, indices] : by_problem) {
      if (pi < 0 || pi >= static_cast<int>(info->problems.size())) {
        return Corrupt("unit {}: problem index {} out of range", unit.id, pi);
      }
      experiments::Problem p;
      p.id = info->problems[pi].external_id;
      p.question = info->problems[pi].question;
      p.gold_answer = info->problems[pi].gold_answer;
      p.task = info->tasks[pi];
      protocol::GenerateItem item;
      item.problem_index = pi;
      TTC_ASSIGN_OR_RETURN(item.messages, BuildMessages(g, p));
      item.seed = ProblemSeed(unit.seed, pi);
      item.sample_indices = std::move(indices);
      a.items.push_back(std::move(item));
    }
  } else {
    if (g.reward_model) a.prm_chat_template = g.reward_model->chat_template;
    TTC_ASSIGN_OR_RETURN(auto ids, store_->SamplesMissingScores(unit.id));
    for (store::Id sid : ids) {
      TTC_ASSIGN_OR_RETURN(store::Sample s, store_->GetSample(sid, /*include_text=*/true));
      protocol::ScoreItem item;
      item.sample_id = sid;
      item.problem_index = s.problem_index;
      item.sample_index = s.sample_index;
      item.question = info->problems.at(s.problem_index).question;
      item.completion = s.text;
      a.score_items.push_back(std::move(item));
    }
  }
  return a;
}

Result<std::optional<protocol::Assign>> Coordinator::Impl::ClaimFor(LiveWorker& w) {
  // One pass over the active experiments: the models this worker may run (experiments::
  // ModelWorkers; by name, as ClaimUnit filters by name only, so a name that does not fit in any
  // experiment is left out everywhere) and, for affinity, the models whose folder it holds.
  const bool cpu_worker = w.hello.device.rfind("cpu", 0) == 0;
  std::set<std::string> fit, unfit;
  std::vector<std::string> preferred;
  if (auto exps = store_->ListExperiments(); exps.ok()) {
    for (const auto& e : *exps) {
      if (e.state != store::ExperimentState::kActive) continue;
      auto info = Experiment(e.id);
      if (!info.ok()) continue;
      for (const auto& [name, kind] : experiments::GridWorkers((*info)->grid)) {
        const bool ok = kind == experiments::WorkerKind::kAny ||
                        (kind == experiments::WorkerKind::kCpu) == cpu_worker;
        (ok ? fit : unfit).insert(name);
      }
      if (w.hello.loaded_model.empty()) continue;
      for (const auto& m : (*info)->models) {
        if (m.path == w.hello.loaded_model) preferred.push_back(m.name);
      }
    }
  }
  std::vector<std::string> allowed;
  for (const auto& name : fit) {
    if (!unfit.count(name)) allowed.push_back(name);
  }
  const bool restricted = !unfit.empty();
  if (restricted && allowed.empty()) return std::optional<protocol::Assign>();
  for (int tries = 0; tries < 64; ++tries) {
    store::ClaimOptions co;
    co.worker_id = w.id;
    co.now = store::UnixSeconds();
    co.lease_seconds = options_.lease_s;
    if (restricted) co.allowed_models = allowed;
    co.preferred_models = preferred;
    TTC_ASSIGN_OR_RETURN(std::optional<store::Unit> unit, store_->ClaimUnit(co));
    if (!unit) return std::optional<protocol::Assign>();
    auto assign = BuildAssign(*unit);
    if (assign.ok() && assign->kind == "generate" && assign->items.empty()) {
      // Every sample is already stored (an earlier attempt finished them): the unit is done.
      Status st = store_->CompleteUnit(unit->id, w.id, unit->attempt);
      if (!st.ok()) spdlog::warn("unit {}: {}", unit->id, st.ToString());
      AfterUnitFinished(unit->experiment_id);
      continue;
    }
    if (assign.ok() && assign->kind == "score" && assign->score_items.empty()) {
      Status st = store_->CompleteUnit(unit->id, w.id, unit->attempt);
      if (!st.ok()) spdlog::warn("unit {}: {}", unit->id, st.ToString());
      AfterUnitFinished(unit->experiment_id);
      continue;
    }
    if (!assign.ok()) {
      spdlog::error("unit {}: cannot build its assignment: {}", unit->id,
                    assign.status().ToString());
      (void)store_->FailUnit(unit->id, w.id, unit->attempt, assign.status().ToString());
      ++counters_.units_failed_attempts;
      AfterUnitFinished(unit->experiment_id);
      continue;
    }
    w.unit = protocol::UnitRef{unit->id, unit->attempt};
    w.experiment_id = unit->experiment_id;
    w.model_name = unit->model_name;
    w.tokens = 0;
    w.samples = 0;
    w.last_progress = Clock::now();
    w.state = "loading";
    return std::optional<protocol::Assign>(std::move(assign).value());
  }
  return std::optional<protocol::Assign>();
}

void Coordinator::Impl::OnRequestWork(LiveWorker& w, const nlohmann::json& body) {
  auto req = protocol::RequestWork::Parse(body);
  if (!req.ok()) {
    ++counters_.invalid;
    LogDrop(w.id, req.status().message());
    return;
  }
  w.hello.loaded_model = req->loaded_model;
  if (w.unit) {
    // It asks for work while we think it holds a unit: our assignment was lost on the way. Hand it
    // back unpenalised.
    (void)store_->ReleaseUnit(w.unit->unit_id, w.id, static_cast<int>(w.unit->attempt));
    w.unit.reset();
  }
  if (w.state == "draining" || w.hello.draining) {
    Send(w.id, protocol::kNoWorkType, protocol::NoWork{options_.heartbeat_ms, "draining"}.ToJson());
    return;
  }
  auto assign = ClaimFor(w);
  if (!assign.ok()) {
    spdlog::error("claim for {}: {}", w.id, assign.status().ToString());
    Send(w.id, protocol::kNoWorkType,
         protocol::NoWork{options_.heartbeat_ms, assign.status().message()}.ToJson());
    return;
  }
  if (!*assign) {
    w.state = "idle";
    Send(w.id, protocol::kNoWorkType,
         protocol::NoWork{options_.heartbeat_ms, "no pending unit"}.ToJson());
    return;
  }
  ++counters_.units_assigned;
  spdlog::info(
      "unit {} attempt {} ({} {}, {} prompts) -> {}", (*assign)->unit.unit_id,
      (*assign)->unit.attempt, (*assign)->kind, (*assign)->model_name,
      (*assign)->kind == "generate" ? (*assign)->items.size() : (*assign)->score_items.size(),
      w.id);
  Send(w.id, protocol::kAssignType, (*assign)->ToJson());
}

void Coordinator::Impl::AfterUnitFinished(store::Id experiment_id) {
  if (auto it = experiments_.find(experiment_id); it != experiments_.end()) {
    it->second.units_finished.Add(1);
  }
  auto done = store_->FinishExperimentIfComplete(experiment_id);
  if (done.ok() && *done) {
    spdlog::info("experiment {} is done", experiment_id);
    experiments_.erase(experiment_id);
  }
}

void Coordinator::Impl::OnUnitDone(LiveWorker& w, const nlohmann::json& body) {
  auto m = protocol::UnitDone::Parse(body);
  if (!m.ok()) {
    ++counters_.invalid;
    LogDrop(w.id, m.status().message());
    return;
  }
  const auto ref = m->unit;
  if (w.unit && w.unit->unit_id == ref.unit_id && w.unit->attempt == ref.attempt) {
    w.unit.reset();
    w.state = "idle";
  }
  auto unit = store_->GetUnit(ref.unit_id);
  if (!unit.ok()) {
    ++counters_.invalid;
    LogDrop(w.id, unit.status().message());
    return;
  }
  Status st = store_->RunInTransaction([&]() -> Status {
    TTC_RETURN_IF_ERROR(store_->CompleteUnit(ref.unit_id, w.id, static_cast<int>(ref.attempt)));
    if (unit->kind == store::UnitKind::kGenerate) {
      TTC_ASSIGN_OR_RETURN(ExperimentInfo * info, Experiment(unit->experiment_id));
      if (info->grid.reward_model) {
        TTC_RETURN_IF_ERROR(
            store_
                ->AddUnits(unit->experiment_id,
                           {ScoreUnitFor(*unit, *info->grid.reward_model, options_.max_attempts)})
                .status());
      }
    }
    return Status::Ok();
  });
  if (st.ok()) {
    ++counters_.units_completed;
    spdlog::info("unit {} attempt {} done by {} ({} tokens, {:.2f} s)", ref.unit_id, ref.attempt,
                 w.id, m->tokens, m->seconds);
  } else {
    // Not all samples arrived (or the lease is gone). If we still hold the lease, count a failed
    // attempt: the retry generates only the missing samples.
    auto fs = store_->FailUnit(ref.unit_id, w.id, static_cast<int>(ref.attempt),
                               "worker reported done but: " + st.message());
    if (fs.ok()) ++counters_.units_failed_attempts;
    spdlog::info("unit {} attempt {} done by {} not accepted: {}", ref.unit_id, ref.attempt, w.id,
                 st.message());
  }
  AfterUnitFinished(unit->experiment_id);
}

void Coordinator::Impl::OnUnitFailed(LiveWorker& w, const nlohmann::json& body) {
  auto m = protocol::UnitFailed::Parse(body);
  if (!m.ok()) {
    ++counters_.invalid;
    LogDrop(w.id, m.status().message());
    return;
  }
  if (w.unit && w.unit->unit_id == m->unit.unit_id) {
    w.unit.reset();
    w.state = "idle";
  }
  auto st = store_->FailUnit(m->unit.unit_id, w.id, static_cast<int>(m->unit.attempt), m->error);
  if (st.ok()) {
    ++counters_.units_failed_attempts;
    spdlog::warn("unit {} attempt {} failed on {}: {} -> {}", m->unit.unit_id, m->unit.attempt,
                 w.id, m->error, store::Name(*st));
  }
  auto unit = store_->GetUnit(m->unit.unit_id);
  if (unit.ok()) AfterUnitFinished(unit->experiment_id);
}

void Coordinator::Impl::OnRelease(LiveWorker& w, const nlohmann::json& body) {
  auto m = protocol::Release::Parse(body);
  if (!m.ok()) {
    ++counters_.invalid;
    LogDrop(w.id, m.status().message());
    return;
  }
  Status st = store_->ReleaseUnit(m->unit.unit_id, w.id, static_cast<int>(m->unit.attempt));
  spdlog::info("worker {} handed back unit {} ({}): {}", w.id, m->unit.unit_id, m->reason,
               st.ToString());
  if (w.unit && w.unit->unit_id == m->unit.unit_id) w.unit.reset();
}

void Coordinator::Impl::OnBye(const std::string& identity, const nlohmann::json& body) {
  auto m = protocol::Bye::Parse(body);
  auto it = workers_.find(identity);
  if (it == workers_.end()) return;
  if (it->second.unit) {
    (void)store_->ReleaseUnit(it->second.unit->unit_id, identity,
                              static_cast<int>(it->second.unit->attempt));
  }
  store::WorkerHeartbeat row;
  row.state = store::WorkerState::kOffline;
  row.at = store::UnixSeconds();
  (void)store_->Heartbeat(identity, row);
  spdlog::info("worker {} left: {}", identity, m.ok() ? m->reason : "");
  workers_.erase(it);
}

void Coordinator::Impl::FailWorkerUnit(LiveWorker& w, const std::string& error, bool tell_worker) {
  if (!w.unit) return;
  auto st = store_->FailUnit(w.unit->unit_id, w.id, static_cast<int>(w.unit->attempt), error);
  if (st.ok()) {
    ++counters_.units_failed_attempts;
    spdlog::warn("unit {} attempt {} taken from {}: {} -> {}", w.unit->unit_id, w.unit->attempt,
                 w.id, error, store::Name(*st));
  }
  if (tell_worker)
    Send(w.id, protocol::kCancelUnitType, protocol::CancelUnit{*w.unit, error}.ToJson());
  store::Id exp = w.experiment_id;
  w.unit.reset();
  w.state = "idle";
  if (exp) AfterUnitFinished(exp);
}

void Coordinator::Impl::Tick() {
  const double silence_limit = options_.heartbeat_ms * options_.liveness / 1000.0;
  std::vector<std::string> lost;
  for (auto& [id, w] : workers_) {
    double silent = SecondsSince(w.last_seen);
    if (silent > silence_limit) {
      lost.push_back(id);
      continue;
    }
    // Liveness by progress: an open socket and heartbeats are not enough while a unit makes no
    // tokens.
    if (w.unit && (w.state == "busy" || w.state == "loading")) {
      double idle = SecondsSince(w.last_progress);
      double limit = w.state == "loading" ? options_.stall_s * 10 : options_.stall_s;
      if (idle > limit) {
        ++counters_.workers_stalled;
        FailWorkerUnit(
            w, fmt::format("worker {} stalled: no tokens produced for {:.1f} s", id, idle), true);
      }
    }
    Send(id, protocol::kHeartbeatType, nlohmann::json::object());
  }
  for (const auto& id : lost) {
    LiveWorker& w = workers_[id];
    ++counters_.workers_lost;
    spdlog::warn("worker {} lost: silent for {:.1f} s", id, SecondsSince(w.last_seen));
    FailWorkerUnit(
        w, fmt::format("worker {} lost: no heartbeat for {:.1f} s", id, SecondsSince(w.last_seen)),
        false);
    store::WorkerHeartbeat row;
    row.state = store::WorkerState::kOffline;
    row.at = w.last_seen_unix;
    (void)store_->Heartbeat(id, row);
    workers_.erase(id);
  }
  if (SecondsSince(last_expire_) >= 1.0) {
    last_expire_ = Clock::now();
    auto expired = store_->ExpireLeases(store::UnixSeconds());
    if (expired.ok()) {
      for (const auto& e : *expired) {
        ++counters_.leases_expired;
        spdlog::warn("lease of unit {} attempt {} ({}) expired -> {}", e.unit_id, e.attempt,
                     e.worker_id, store::Name(e.new_state));
        auto it = workers_.find(e.worker_id);
        if (it != workers_.end() && it->second.unit && it->second.unit->unit_id == e.unit_id) {
          Send(e.worker_id, protocol::kCancelUnitType,
               protocol::CancelUnit{*it->second.unit, "lease expired"}.ToJson());
          it->second.unit.reset();
          it->second.state = "idle";  // as in FailWorkerUnit: status must not show it busy
        }
        auto unit = store_->GetUnit(e.unit_id);
        if (unit.ok()) AfterUnitFinished(unit->experiment_id);
      }
    } else {
      spdlog::warn("expiring leases: {}", expired.status().ToString());
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Results

void Coordinator::Impl::OnSample(const std::string& identity, const nlohmann::json& body) {
  auto m = protocol::SampleResult::Parse(body);
  if (!m.ok()) {
    ++counters_.invalid;
    LogDrop(identity, m.status().message());
    return;
  }
  auto it = workers_.find(identity);
  if (it != workers_.end()) {
    it->second.last_seen = it->second.last_progress = Clock::now();
  }
  PendingSample p;
  p.identity = identity;
  p.seq = m->seq;
  store::Sample& s = p.sample;
  s.unit_id = m->unit.unit_id;
  s.attempt = static_cast<int>(m->unit.attempt);
  s.problem_index = static_cast<int>(m->problem_index);
  s.sample_index = static_cast<int>(m->sample_index);
  s.text = std::move(m->text);
  s.num_tokens = static_cast<int>(m->num_tokens);
  s.finish_reason = m->finish_reason;
  s.prefill_s = m->prefill_s;
  s.decode_s = m->decode_s;
  s.steps = static_cast<int>(m->steps);
  if (!m->extra.empty())
    s.extra_json = m->extra.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  pending_samples_.push_back(std::move(p));
}

void Coordinator::Impl::OnScores(const std::string& identity, const nlohmann::json& body) {
  auto m = protocol::ScoresResult::Parse(body);
  if (!m.ok()) {
    ++counters_.invalid;
    LogDrop(identity, m.status().message());
    return;
  }
  auto it = workers_.find(identity);
  if (it != workers_.end()) it->second.last_seen = it->second.last_progress = Clock::now();
  pending_scores_.push_back({identity, m->seq, std::move(m).value()});
}

Status Coordinator::Impl::FlushResults() {
  if (pending_samples_.empty() && pending_scores_.empty()) return Status::Ok();
  std::map<std::string, std::vector<int64_t>> acks;
  Status result;
  if (!pending_samples_.empty()) {
    // Grade before storing, so a sample lands with its grade in the same transaction. Units are
    // looked up once per batch.
    std::unordered_map<store::Id, std::optional<store::Unit>> units;
    std::vector<store::Sample> batch;
    std::vector<size_t> origin;
    for (size_t i = 0; i < pending_samples_.size(); ++i) {
      PendingSample& p = pending_samples_[i];
      auto [uit, inserted] = units.try_emplace(p.sample.unit_id);
      if (inserted) {
        auto u = store_->GetUnit(p.sample.unit_id);
        if (u.ok()) uit->second = *u;
      }
      if (!uit->second) {
        ++counters_.invalid;
        LogDrop(p.identity, fmt::format("sample for unknown unit {}", p.sample.unit_id));
        acks[p.identity].push_back(p.seq);
        continue;
      }
      const store::Unit& unit = *uit->second;
      auto info = Experiment(unit.experiment_id);
      int pi = p.sample.problem_index;
      if (info.ok() && pi >= 0 && pi < static_cast<int>((*info)->problems.size())) {
        ExperimentInfo& e = **info;
        p.sample.extracted_answer = ExtractCompletionAnswer(e.tasks[pi], p.sample.text);
        // Many samples of a problem give the same answer: the equivalence verdict is computed once
        // per pair.
        std::string key = std::to_string(pi) + '\x1f' + p.sample.extracted_answer;
        auto v = e.verdicts.find(key);
        if (v == e.verdicts.end()) {
          if (e.verdicts.size() > 1000000) e.verdicts.clear();
          v = e.verdicts
                  .emplace(std::move(key),
                           AnswerCorrect(e.grid, e.tasks[pi], p.sample.extracted_answer,
                                         e.problems[pi].gold_answer))
                  .first;
        }
        p.sample.correct = v->second;
      }
      batch.push_back(p.sample);
      origin.push_back(i);
    }
    auto outcomes = store_->InsertSamples(batch);
    std::vector<std::optional<store::SampleInsertResult>> per(batch.size());
    if (outcomes.ok()) {
      for (size_t i = 0; i < batch.size(); ++i) per[i] = (*outcomes)[i];
    } else if (outcomes.status().code() == StatusCode::kInvalidArgument) {
      // One bad sample (outside its unit) fails the batch: isolate it by inserting one at a time.
      for (size_t i = 0; i < batch.size(); ++i) {
        auto one = store_->InsertSample(batch[i]);
        if (one.ok()) {
          per[i] = *one;
        } else if (one.status().code() == StatusCode::kInvalidArgument) {
          ++counters_.invalid;
          LogDrop(pending_samples_[origin[i]].identity, one.status().message());
          acks[pending_samples_[origin[i]].identity].push_back(pending_samples_[origin[i]].seq);
        } else {
          result = one.status();
        }
      }
    } else {
      result = outcomes.status();  // busy or broken database: no ack, the worker resends
    }
    std::map<store::Id, int64_t> landed;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!per[i]) continue;
      const PendingSample& p = pending_samples_[origin[i]];
      switch (per[i]->outcome) {
        case store::InsertOutcome::kInserted:
          ++counters_.samples_inserted;
          ++landed[units[p.sample.unit_id]->experiment_id];
          break;
        case store::InsertOutcome::kDuplicate:
          ++counters_.samples_duplicate;
          break;
        case store::InsertOutcome::kStale:
          ++counters_.samples_stale;
          break;
      }
      acks[p.identity].push_back(p.seq);
    }
    for (const auto& [exp, n] : landed) {
      auto it = experiments_.find(exp);
      if (it == experiments_.end()) continue;
      it->second.samples_landed.Add(n);
    }
    pending_samples_.clear();
  }
  if (!pending_scores_.empty()) {
    for (const PendingScores& p : pending_scores_) {
      store::SampleStepScores s{p.scores.sample_id, p.scores.scores};
      auto out = store_->InsertStepScores(p.scores.unit.unit_id,
                                          static_cast<int>(p.scores.unit.attempt), {s});
      if (out.ok()) {
        if ((*out)[0] == store::InsertOutcome::kInserted) ++counters_.scores_inserted;
        if ((*out)[0] == store::InsertOutcome::kStale) ++counters_.samples_stale;
        acks[p.identity].push_back(p.seq);
      } else if (out.status().code() == StatusCode::kInvalidArgument ||
                 out.status().code() == StatusCode::kNotFound) {
        ++counters_.invalid;
        LogDrop(p.identity, out.status().message());
        acks[p.identity].push_back(p.seq);
      } else {
        result = out.status();
      }
    }
    pending_scores_.clear();
  }
  // Acknowledge only what is committed (or deliberately dropped): the worker forgets those results.
  for (auto& [identity, seqs] : acks)
    Send(identity, protocol::kAckType, protocol::Ack{std::move(seqs)}.ToJson());
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

void Coordinator::Impl::OnClient(const std::string& identity, const std::string& type,
                                 const nlohmann::json& body) {
  auto req = protocol::ClientRequest::Parse(type, body);
  protocol::ClientReply reply;
  if (!req.ok()) {
    ++counters_.invalid;
    reply.ok = false;
    reply.error = req.status().message();
    Send(identity, protocol::kReplyType, reply.ToJson());
    return;
  }
  reply.request_id = req->request_id;
  Result<nlohmann::json> data = nlohmann::json();
  if (type == protocol::kSubmitType) data = Submit(*req);
  if (type == protocol::kStatusType) data = StatusJson(req->experiment_id);
  if (type == protocol::kListType) data = ListJson();
  if (type == protocol::kCancelType) data = Cancel(req->experiment_id);
  reply.ok = data.ok();
  if (data.ok()) {
    reply.data = std::move(data).value();
  } else {
    reply.error = data.status().message();
  }
  Send(identity, protocol::kReplyType, reply.ToJson());
}

Result<nlohmann::json> Coordinator::Impl::Submit(const protocol::ClientRequest& req) {
  experiments::GridParseOptions po;
  po.check_files = true;
  po.base_dir = req.base_dir;
  TTC_ASSIGN_OR_RETURN(experiments::GridSpec grid, experiments::ParseGridSpec(req.grid, po));
  // Stored spec: complete and with absolute paths, so the coordinator can re-read it alone after a
  // restart.
  std::string grid_json = experiments::GridSpecToJson(grid).dump();
  // Re-submitting the same grid resumes the existing experiment instead of starting over.
  TTC_ASSIGN_OR_RETURN(auto existing, store_->ListExperiments());
  for (const auto& e : existing) {
    if (e.name != grid.name || e.state == store::ExperimentState::kCancelled) continue;
    if (e.grid_spec_json == grid_json) {
      return nlohmann::json{
          {"experiment_id", e.id}, {"existing", true}, {"state", store::Name(e.state)}};
    }
    return InvalidArgument(
        "an experiment named '{}' with a different grid already exists (id {}, {}); rename the "
        "grid or cancel it "
        "with `ttc cancel {}`",
        grid.name, e.id, store::Name(e.state), e.id);
  }
  TTC_ASSIGN_OR_RETURN(LoadedProblems loaded, LoadGridProblems(grid));
  TTC_ASSIGN_OR_RETURN(
      store::NewExperiment plan,
      PlanExperiment(grid, grid_json, loaded.problems, loaded.fingerprint, options_.plan));
  for (auto& u : plan.units) u.max_attempts = options_.max_attempts;
  TTC_ASSIGN_OR_RETURN(store::CreatedExperiment created, store_->CreateExperiment(plan));
  int64_t samples = 0;
  for (const auto& u : plan.units) samples += u.ExpectedSamples();
  spdlog::info("experiment {} '{}' submitted: {} problems, {} models, {} units, {} samples",
               created.experiment_id, grid.name, plan.problems.size(), grid.models.size(),
               plan.units.size(), samples);
  return nlohmann::json{{"experiment_id", created.experiment_id},
                        {"existing", false},
                        {"units", plan.units.size()},
                        {"problems", plan.problems.size()},
                        {"samples_expected", samples}};
}

Result<nlohmann::json> Coordinator::Impl::StatusJson(store::Id only) {
  nlohmann::json out;
  double now = store::UnixSeconds();
  nlohmann::json workers = nlohmann::json::array();
  TTC_ASSIGN_OR_RETURN(auto rows, store_->ListWorkers());
  for (const auto& r : rows) {
    auto it = workers_.find(r.id);
    bool alive = it != workers_.end();
    nlohmann::json w = {
        {"id", r.id},
        {"host", r.host},
        {"device", r.device},
        {"state", alive ? it->second.state : "offline"},
        {"alive", alive},
        {"last_heartbeat_s", alive ? SecondsSince(it->second.last_seen) : now - r.last_heartbeat}};
    if (alive) {
      const LiveWorker& lw = it->second;
      w["model"] = lw.unit ? lw.model_name : "";
      w["loaded_model"] = lw.hello.loaded_model;
      w["unit"] = lw.unit ? lw.unit->unit_id : 0;
      w["attempt"] = lw.unit ? lw.unit->attempt : 0;
      w["tokens"] = lw.tokens;
      w["samples"] = lw.samples;
      w["tokens_per_s"] = lw.tokens_per_s;
    }
    workers.push_back(std::move(w));
  }
  out["workers"] = std::move(workers);
  nlohmann::json exps = nlohmann::json::array();
  TTC_ASSIGN_OR_RETURN(auto list, store_->ListExperiments());
  for (const auto& e : list) {
    if (only != 0 && e.id != only) continue;
    TTC_ASSIGN_OR_RETURN(store::ExperimentStatus s, store_->GetExperimentStatus(e.id));
    auto it = experiments_.find(e.id);
    const bool cached = it != experiments_.end();
    const double rate = cached ? it->second.samples_landed.PerSecond() : 0.0;
    const double unit_rate = cached ? it->second.units_finished.PerSecond() : 0.0;
    int64_t remaining = std::max<int64_t>(0, s.samples_expected - s.samples);
    const std::optional<double> eta =
        EstimateEtaSeconds(remaining, rate, s.units_pending + s.units_leased, unit_rate);
    nlohmann::json x = ExperimentStatusJson(e, s, rate, unit_rate, eta);
    if (only != 0 || s.units_failed > 0) {
      auto failed = FailedUnitsJson(*store_, e.id);
      x["failed_units"] = failed.ok() ? std::move(failed).value() : nlohmann::json::array();
    }
    exps.push_back(std::move(x));
  }
  out["experiments"] = std::move(exps);
  const auto& c = counters_;
  out["coordinator"] = {{"id", coordinator_id_},
                        {"uptime_s", SecondsSince(started_)},
                        {"endpoints", bound_},
                        {"counters",
                         {{"messages", c.messages},
                          {"malformed", c.malformed},
                          {"unknown_type", c.unknown_type},
                          {"invalid", c.invalid},
                          {"version_mismatch", c.version_mismatch},
                          {"samples_inserted", c.samples_inserted},
                          {"samples_duplicate", c.samples_duplicate},
                          {"samples_stale", c.samples_stale},
                          {"scores_inserted", c.scores_inserted},
                          {"units_assigned", c.units_assigned},
                          {"units_completed", c.units_completed},
                          {"units_failed_attempts", c.units_failed_attempts},
                          {"leases_expired", c.leases_expired},
                          {"workers_lost", c.workers_lost},
                          {"workers_stalled", c.workers_stalled},
                          {"zap_denied", c.zap_denied}}}};
  return out;
}

Result<nlohmann::json> Coordinator::Impl::ListJson() { return coordinator::ListJson(*store_); }

Result<nlohmann::json> Coordinator::Impl::Cancel(store::Id id) {
  TTC_ASSIGN_OR_RETURN(int64_t n, store_->CancelExperiment(id));
  // Stop the workers running its units now; their late results are stale anyway.
  for (auto& [wid, w] : workers_) {
    if (w.unit && w.experiment_id == id) {
      Send(wid, protocol::kCancelUnitType,
           protocol::CancelUnit{*w.unit, "experiment cancelled"}.ToJson());
      w.unit.reset();
      w.state = "idle";
    }
  }
  experiments_.erase(id);
  spdlog::info("experiment {} cancelled ({} units)", id, n);
  return nlohmann::json{{"experiment_id", id}, {"units_cancelled", n}};
}

// ---------------------------------------------------------------------------------------------------------------

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Coordinator::~Coordinator() = default;

std::optional<double> EstimateEtaSeconds(int64_t samples_left, double samples_per_s,
                                         int64_t units_left, double units_per_s) {
  if (samples_left > 0 && samples_per_s <= 0) return std::nullopt;
  const double samples_s = samples_left > 0 ? samples_left / samples_per_s : 0.0;
  if (units_left <= 0) return samples_s;
  // No unit rate yet: the samples' time while samples are left, else unknown.
  if (units_per_s <= 0) return samples_left > 0 ? std::optional<double>(samples_s) : std::nullopt;
  return std::max(samples_s, units_left / units_per_s);
}

Result<std::unique_ptr<Coordinator>> Coordinator::Create(const CoordinatorOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  TTC_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Status Coordinator::Run(const std::atomic<bool>& stop) { return impl_->Run(stop); }
const std::vector<std::string>& Coordinator::bound_endpoints() const { return impl_->bound_; }
const CoordinatorCounters& Coordinator::counters() const { return impl_->counters_; }

}  // namespace ttc::coordinator
