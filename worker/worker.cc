#include "worker/worker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "protocol/messages.h"
#include "protocol/wire.h"

namespace ttc::worker {

namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// Events from the job thread to the daemon thread.
struct JobEvent {
  enum Kind { kSample, kScores, kFinished } kind = kSample;
  protocol::SampleResult sample;
  protocol::ScoresResult scores;
  RunOutcome outcome;
  double seconds = 0;
};

// One unit running on the job thread.
struct Job {
  protocol::Assign assign;
  std::thread thread;
  std::atomic<bool> cancel{false};
  std::atomic<int64_t> tokens{0};
  std::atomic<int64_t> samples{0};
  bool finished = false;   // the kFinished event was seen
  bool abandoned = false;  // cancelled by the coordinator: drop its results
  Clock::time_point started = Clock::now();
};

class Daemon {
 public:
  Daemon(const WorkerOptions& options, std::unique_ptr<UnitRunner> runner, WorkerSignals& signals)
      : options_(options), runner_(std::move(runner)), signals_(signals), context_(1) {}

  int Run();

 private:
  void Connect();
  void SendRaw(const std::string& frame);
  void Send(std::string_view type, const nlohmann::json& body) {
    SendRaw(protocol::Encode(type, body));
  }
  void SendHello();
  void SendHeartbeat();
  void RequestWork();
  void HandleMessage(std::string_view frame);
  void StartJob(protocol::Assign assign);
  void DrainJobEvents();
  void FinishJobIfDone();
  void Push(JobEvent ev) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(ev));
  }
  std::optional<protocol::UnitRef> CurrentUnit() const {
    if (job_ && !job_->finished && !job_->abandoned) return job_->assign.unit;
    return std::nullopt;
  }

  WorkerOptions options_;
  std::unique_ptr<UnitRunner> runner_;
  WorkerSignals& signals_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;

  bool welcomed_ = false;
  std::string coordinator_id_;
  int heartbeat_ms_;
  int liveness_;
  Clock::time_point last_recv_ = Clock::now();
  Clock::time_point last_heartbeat_ = Clock::now();
  Clock::time_point connected_at_ = Clock::now();
  Clock::time_point lost_since_ = Clock::now();
  bool have_coordinator_ = false;
  int backoff_ms_;
  bool work_requested_ = false;
  Clock::time_point next_request_ = Clock::now();

  std::unique_ptr<Job> job_;
  std::mutex mu_;
  std::deque<JobEvent> events_;
  int64_t next_seq_ = 1;
  std::map<int64_t, std::string>
      unacked_;  // seq -> encoded frame, until the coordinator commits it

  bool draining_ = false;
  Clock::time_point drain_started_;
  int exit_code_ = -1;
};

void Daemon::Connect() {
  socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  protocol::ApplyCommonOptions(*socket_, 0);
  socket_->set(zmq::sockopt::routing_id, options_.worker_id);
  socket_->set(zmq::sockopt::sndhwm, 100000);
  Status st = protocol::ApplyClientSecurity(*socket_, options_.security);
  if (!st.ok()) {
    spdlog::error("{}", st.ToString());
    exit_code_ = kExitUsage;
    return;
  }
  socket_->connect(options_.coordinator);
  welcomed_ = false;
  connected_at_ = Clock::now();
  last_recv_ = Clock::now();
  SendHello();
}

void Daemon::SendRaw(const std::string& frame) {
  try {
    socket_->send(zmq::buffer(frame), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    spdlog::debug("send failed: {}", e.what());
  }
}

void Daemon::SendHello() {
  protocol::Hello h;
  h.worker_id = options_.worker_id;
  h.host = HostName();
  h.device = runner_->device();
  h.memory_bytes = runner_->memory_bytes();
  h.threads = options_.runner.threads;
  h.pid = ::getpid();
  h.loaded_model = runner_->loaded_model();
  if (!h.loaded_model.empty()) h.models.push_back(h.loaded_model);
  h.current = CurrentUnit();
  h.draining = draining_;
  Send(protocol::kHelloType, h.ToJson());
}

void Daemon::SendHeartbeat() {
  protocol::WorkerHeartbeat hb;
  auto unit = CurrentUnit();
  hb.state = draining_ ? "draining" : (unit ? "busy" : "idle");
  hb.unit = unit;
  if (job_ && unit) {
    hb.tokens = job_->tokens.load();
    hb.samples = job_->samples.load();
    double s = MsSince(job_->started) / 1000.0;
    hb.tokens_per_s = s > 0 ? hb.tokens / s : 0;
  }
  Send(protocol::kHeartbeatType, hb.ToJson());
  last_heartbeat_ = Clock::now();
}

void Daemon::RequestWork() {
  if (draining_ || CurrentUnit() || work_requested_ || !welcomed_) return;
  if (job_ && !job_->finished) return;  // an abandoned job still running: wait for it
  if (Clock::now() < next_request_) return;
  Send(protocol::kRequestWorkType, protocol::RequestWork{runner_->loaded_model()}.ToJson());
  work_requested_ = true;
}

void Daemon::StartJob(protocol::Assign assign) {
  if (job_ && job_->thread.joinable()) job_->thread.join();
  job_ = std::make_unique<Job>();
  job_->assign = std::move(assign);
  Job* job = job_.get();
  spdlog::info(
      "unit {} attempt {}: {} with {} ({} prompts)", job->assign.unit.unit_id,
      job->assign.unit.attempt, job->assign.kind, job->assign.model_name,
      job->assign.kind == "generate" ? job->assign.items.size() : job->assign.score_items.size());
  job->thread = std::thread([this, job] {
    RunHooks hooks;
    hooks.tokens = &job->tokens;
    hooks.cancel = &job->cancel;
    hooks.on_sample = [this, job](protocol::SampleResult s) {
      job->samples.fetch_add(1);
      JobEvent ev;
      ev.kind = JobEvent::kSample;
      ev.sample = std::move(s);
      Push(std::move(ev));
    };
    hooks.on_scores = [this, job](protocol::ScoresResult s) {
      job->samples.fetch_add(1);
      JobEvent ev;
      ev.kind = JobEvent::kScores;
      ev.scores = std::move(s);
      Push(std::move(ev));
    };
    auto t0 = Clock::now();
    RunOutcome out;
    try {
      out = runner_->Run(job->assign, hooks);
    } catch (const std::exception& e) {
      out.status = Internal("unit runner threw: {}", e.what());
    }
    JobEvent ev;
    ev.kind = JobEvent::kFinished;
    ev.outcome = std::move(out);
    ev.seconds = MsSince(t0) / 1000.0;
    Push(std::move(ev));
  });
}

void Daemon::DrainJobEvents() {
  std::deque<JobEvent> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    events.swap(events_);
  }
  for (JobEvent& ev : events) {
    if (!job_) continue;
    if (ev.kind == JobEvent::kFinished) {
      job_->finished = true;
      if (job_->abandoned) continue;
      const auto& unit = job_->assign.unit;
      if (ev.outcome.status.ok()) {
        Send(protocol::kUnitDoneType,
             protocol::UnitDone{unit, job_->tokens.load(), ev.seconds}.ToJson());
        spdlog::info("unit {} attempt {} finished: {} tokens in {:.2f} s", unit.unit_id,
                     unit.attempt, job_->tokens.load(), ev.seconds);
      } else if (job_->cancel.load() && draining_) {
        Send(protocol::kReleaseType, protocol::Release{unit, "worker draining"}.ToJson());
      } else {
        spdlog::error("unit {} attempt {} failed: {}", unit.unit_id, unit.attempt,
                      ev.outcome.status.ToString());
        Send(protocol::kUnitFailedType,
             protocol::UnitFailed{unit, ev.outcome.status.ToString(), ev.outcome.device_error}
                 .ToJson());
        if (ev.outcome.device_error) {
          spdlog::critical(
              "sticky device error: exiting with code {} so the scheduler retries elsewhere",
              kExitDeviceError);
          exit_code_ = kExitDeviceError;
        }
      }
      continue;
    }
    if (job_->abandoned) continue;
    std::string frame;
    int64_t seq = next_seq_++;
    if (ev.kind == JobEvent::kSample) {
      ev.sample.unit = job_->assign.unit;
      ev.sample.seq = seq;
      frame = protocol::Encode(protocol::kSampleType, ev.sample.ToJson());
    } else {
      ev.scores.unit = job_->assign.unit;
      ev.scores.seq = seq;
      frame = protocol::Encode(protocol::kScoresType, ev.scores.ToJson());
    }
    unacked_[seq] = frame;
    SendRaw(frame);
  }
}

void Daemon::HandleMessage(std::string_view frame) {
  auto env = protocol::Decode(frame);
  if (!env.ok()) {
    spdlog::warn("dropped a malformed message from the coordinator: {}", env.status().message());
    return;
  }
  last_recv_ = Clock::now();
  using namespace protocol;
  const std::string& type = env->type;
  if (type == kRefusedType) {
    auto r = Refused::Parse(env->body);
    spdlog::error("the coordinator at {} refused this worker: {}", options_.coordinator,
                  r.ok() ? r->reason : "(no reason given)");
    exit_code_ = kExitRefused;
    return;
  }
  if (env->version != kProtocolVersion) {
    spdlog::warn("dropped a message of protocol version {} (this worker speaks {})", env->version,
                 kProtocolVersion);
    return;
  }
  if (type == kWelcomeType) {
    auto w = Welcome::Parse(env->body);
    if (!w.ok()) {
      spdlog::warn("bad welcome: {}", w.status().message());
      return;
    }
    if (!coordinator_id_.empty() && coordinator_id_ != w->coordinator_id) {
      spdlog::info("coordinator restarted ({} -> {})", coordinator_id_, w->coordinator_id);
    }
    coordinator_id_ = w->coordinator_id;
    heartbeat_ms_ = static_cast<int>(w->heartbeat_ms);
    liveness_ = static_cast<int>(w->liveness);
    welcomed_ = true;
    have_coordinator_ = true;
    backoff_ms_ = std::min(options_.backoff_initial_ms, options_.backoff_max_ms);
    work_requested_ = false;
    spdlog::info("connected to coordinator {} at {}{}", coordinator_id_, options_.coordinator,
                 w->resumed ? " (resuming the current unit)" : "");
    // Whatever was not acknowledged may not be stored: send it again (insertion is idempotent).
    for (const auto& [seq, f] : unacked_) SendRaw(f);
    return;
  }
  if (type == kReconnectType) {
    welcomed_ = false;
    SendHello();
    return;
  }
  if (type == kHeartbeatType) return;
  if (type == kAckType) {
    auto a = Ack::Parse(env->body);
    if (a.ok()) {
      for (int64_t s : a->seqs) unacked_.erase(s);
    }
    return;
  }
  if (type == kNoWorkType) {
    auto n = NoWork::Parse(env->body);
    work_requested_ = false;
    next_request_ = Clock::now() +
                    std::chrono::milliseconds(n.ok() ? std::max<int64_t>(50, n->retry_ms) : 1000);
    return;
  }
  if (type == kAssignType) {
    work_requested_ = false;
    auto a = Assign::Parse(env->body);
    if (!a.ok()) {
      spdlog::error("bad assignment: {}", a.status().message());
      // Tell the coordinator so the unit is not stuck until its lease expires.
      if (env->body.is_object() && env->body.contains("unit")) {
        FieldReader r(env->body, "assign");
        const nlohmann::json& u = r.Object("unit");
        if (r.ok() && u.contains("unit_id") && u.contains("attempt") &&
            u["unit_id"].is_number_integer() && u["attempt"].is_number_integer()) {
          Send(kUnitFailedType,
               UnitFailed{{u["unit_id"].get<int64_t>(), u["attempt"].get<int64_t>()},
                          a.status().message(),
                          false}
                   .ToJson());
        }
      }
      return;
    }
    if (CurrentUnit() || draining_ || (job_ && !job_->finished)) {
      Send(kReleaseType, Release{a->unit, draining_ ? "worker draining" : "worker busy"}.ToJson());
      return;
    }
    StartJob(std::move(a).value());
    SendHeartbeat();
    return;
  }
  if (type == kCancelUnitType) {
    auto c = CancelUnit::Parse(env->body);
    if (!c.ok()) return;
    if (job_ && job_->assign.unit.unit_id == c->unit.unit_id &&
        job_->assign.unit.attempt == c->unit.attempt && !job_->abandoned) {
      spdlog::warn("unit {} attempt {} cancelled by the coordinator: {}", c->unit.unit_id,
                   c->unit.attempt, c->reason);
      job_->abandoned = true;
      job_->cancel = true;
      // Results of a fenced-off attempt would be dropped as stale anyway: forget them.
      for (auto it = unacked_.begin(); it != unacked_.end();) it = unacked_.erase(it);
    }
    return;
  }
  spdlog::warn("dropped a message of unknown type '{}'", type.substr(0, 64));
}

int Daemon::Run() {
  heartbeat_ms_ = options_.heartbeat_ms;
  liveness_ = options_.liveness;
  backoff_ms_ = std::min(options_.backoff_initial_ms, options_.backoff_max_ms);
  lost_since_ = Clock::now();
  Connect();
  int seen_drain = 0;
  while (exit_code_ < 0) {
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(std::min(50, heartbeat_ms_)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      while (true) {
        zmq::message_t msg;
        zmq::recv_result_t got;
        try {
          got = socket_->recv(msg, zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
          if (e.num() == EINTR) continue;
          throw;
        }
        if (!got) break;
        HandleMessage(msg.to_string_view());
        if (exit_code_ >= 0) break;
      }
    }
    DrainJobEvents();
    if (exit_code_ >= 0) break;

    // Signals: the first starts a drain, a second one hurries it.
    int drains = signals_.drain_requests.load();
    if (drains > seen_drain) {
      seen_drain = drains;
      if (!draining_) {
        draining_ = true;
        drain_started_ = Clock::now();
        spdlog::info("draining: finishing the current unit (up to {:.0f} s), then exiting",
                     options_.drain_timeout_s);
        SendHeartbeat();
      }
    }
    if (draining_) {
      bool busy = CurrentUnit().has_value();
      bool hurry = seen_drain >= 2 || MsSince(drain_started_) > options_.drain_timeout_s * 1000;
      if (busy && hurry) {
        // Hand the unit back: samples already acknowledged stay, the rest is regenerated elsewhere.
        auto unit = *CurrentUnit();
        job_->cancel = true;
        job_->abandoned = true;
        Send(protocol::kReleaseType, protocol::Release{unit, "worker draining (timeout)"}.ToJson());
        spdlog::info("handed unit {} back", unit.unit_id);
        busy = false;
      }
      // Done when nothing runs and every result is acknowledged (or we must hurry, or no
      // coordinator to ack).
      if (!busy && (unacked_.empty() || hurry || !have_coordinator_)) {
        Send(protocol::kByeType, protocol::Bye{"drained"}.ToJson());
        exit_code_ = kExitOk;
        break;
      }
    }

    if (MsSince(last_heartbeat_) >= heartbeat_ms_) SendHeartbeat();
    if (welcomed_ && !draining_) RequestWork();
    if (!welcomed_ && MsSince(connected_at_) >= heartbeat_ms_ &&
        MsSince(last_recv_) < heartbeat_ms_ * liveness_) {
      // Hello may have been lost (coordinator not up yet): repeat it at heartbeat pace until the
      // limit below.
      connected_at_ = Clock::now();
      SendHello();
    }
    // Paranoid Pirate: the coordinator is silent for too long -> reconnect with back-off.
    if (MsSince(last_recv_) > static_cast<int64_t>(heartbeat_ms_) * liveness_) {
      if (have_coordinator_) {
        have_coordinator_ = false;
        lost_since_ = Clock::now();
      }
      if (options_.give_up_s > 0 && MsSince(lost_since_) > options_.give_up_s * 1000) {
        spdlog::error("no coordinator at {} for {:.0f} s: giving up", options_.coordinator,
                      options_.give_up_s);
        exit_code_ = kExitGaveUp;
        break;
      }
      spdlog::warn("coordinator silent for {} ms: reconnecting in {} ms", MsSince(last_recv_),
                   backoff_ms_);
      socket_.reset();
      // Keep computing and stay responsive to signals while backing off.
      auto until = Clock::now() + std::chrono::milliseconds(backoff_ms_);
      while (Clock::now() < until && signals_.drain_requests.load() == seen_drain) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      backoff_ms_ = std::min(options_.backoff_max_ms, backoff_ms_ * 2);
      welcomed_ = false;
      work_requested_ = false;
      Connect();
      if (draining_ && !CurrentUnit() && job_ == nullptr) {
        exit_code_ = kExitOk;
        break;
      }
    }
  }
  // Let the last messages (bye, unit_failed) leave before closing.
  if (socket_) {
    socket_->set(zmq::sockopt::linger, 500);
    socket_.reset();
  }
  if (job_ && job_->thread.joinable()) {
    if (job_->finished) {
      job_->thread.join();
    } else {
      // A unit still computing (handed back): do not wait for it.
      job_->thread.detach();
      std::fflush(nullptr);
      ::_exit(exit_code_);
    }
  }
  return exit_code_;
}

}  // namespace

std::string DefaultWorkerId(const RunnerOptions& options) {
  return options.cpu ? HostName() + "/cpu"
                     : fmt::format("{}/gpu{}", HostName(), std::max(0, options.gpu));
}

int RunWorker(const WorkerOptions& options, std::unique_ptr<UnitRunner> runner,
              WorkerSignals& signals) {
  Daemon daemon(options, std::move(runner), signals);
  try {
    return daemon.Run();
  } catch (const std::exception& e) {
    spdlog::error("worker: {}", e.what());
    return kExitFailure;
  }
}

}  // namespace ttc::worker
