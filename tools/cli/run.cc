// `ttc run GRID`: everything on one machine. Starts `ttc coordinator` on a loopback port with the
// SQLite file, submits the grid (re-running the same command resumes the same experiment), starts
// one worker per GPU (or CPU workers) as child processes, shows live progress (one updating line on
// a terminal, plain lines otherwise), and at the end prints a summary table (the reports module
// renders the full report with `ttc report`). Children's logs go to DB.log. SIGINT/SIGTERM stop
// everything cleanly; the next run continues where this one stopped.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "common/version.h"
#include "coordinator/client.h"
#include "experiments/grid.h"
#if __has_include("reports/report.h")
#include "reports/report.h"
#define TTC_RUN_HAS_REPORTS 1
#endif
#include "store/store.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

std::atomic<int> g_interrupts{0};
void OnInterrupt(int) { g_interrupts.fetch_add(1); }

struct RunOptions {
  std::string grid;
  std::string db;
  int workers = 0;
  bool cpu = false;
  int threads = 0;
  int heartbeat_ms = 1000;
  double lease_s = 120;
  double stall_s = 600;
  bool keep_going = false;
};

// Forks and execs this same binary with `args`; stdout/stderr go to log_fd.
pid_t Spawn(const std::vector<std::string>& args, int log_fd) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::dup2(log_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
  // Children stop on our signal, not on the terminal's Ctrl-C: we drain them in order.
  ::setpgid(0, 0);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  ::_exit(127);
}

bool Alive(pid_t pid, int* status) {
  if (pid <= 0) return false;
  pid_t r = ::waitpid(pid, status, WNOHANG);
  return r == 0;
}

// Waits up to `seconds` for the child to exit; SIGKILL after that.
int Reap(pid_t pid, double seconds) {
  int status = 0;
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

int CountGpus() {
  if (!kCudaEnabled) return 0;
  int n = 0;
  for (int i = 0; i < 64; ++i) {
    if (std::filesystem::exists("/dev/nvidia" + std::to_string(i))) ++n;
  }
  return n;
}

// Per (model, temperature): samples, accuracy, coverage (a problem with at least one correct
// sample), tokens.
void PrintSummary(const std::string& db, int64_t experiment_id) {
  store::OpenOptions oo;
  oo.read_only = true;
  oo.create_if_missing = false;
  auto st = store::Store::Open(db, oo);
  if (!st.ok()) {
    std::cerr << "summary: " << st.status().message() << "\n";
    return;
  }
  auto models = (*st)->ListModels(experiment_id);
  if (!models.ok()) return;
  std::map<int64_t, std::string> names;
  for (const auto& m : *models) names[m.id] = m.name;
  struct Agg {
    int64_t samples = 0, graded = 0, correct = 0, tokens = 0;
    double decode_s = 0;
    std::map<int, bool> problem_solved;
  };
  std::map<std::pair<std::string, double>, Agg> agg;
  Status s = (*st)->ForEachSample({.experiment_id = experiment_id}, [&](const store::Sample& x) {
    Agg& a = agg[{names[x.model_id], x.temperature}];
    ++a.samples;
    a.tokens += x.num_tokens;
    a.decode_s += x.decode_s;
    bool ok = x.correct.value_or(false);
    if (x.correct) ++a.graded;
    if (ok) ++a.correct;
    a.problem_solved[x.problem_index] = a.problem_solved[x.problem_index] || ok;
    return Status::Ok();
  });
  if (!s.ok()) {
    std::cerr << "summary: " << s.message() << "\n";
    return;
  }
  std::cout << fmt::format("\n{:<20} {:>6} {:>9} {:>9} {:>10} {:>12} {:>11}\n", "MODEL", "TEMP",
                           "SAMPLES", "ACCURACY", "COVERAGE", "TOKENS", "TOKENS/SAMPLE");
  for (const auto& [key, a] : agg) {
    int64_t solved = 0;
    for (const auto& [p, ok] : a.problem_solved) solved += ok;
    std::cout << fmt::format(
        "{:<20} {:>6.2f} {:>9} {:>8.1f}% {:>9.1f}% {:>12} {:>11.1f}\n", key.first.substr(0, 20),
        key.second, a.samples, a.graded ? 100.0 * a.correct / a.graded : 0.0,
        a.problem_solved.empty() ? 0.0 : 100.0 * solved / a.problem_solved.size(), a.tokens,
        a.samples ? static_cast<double>(a.tokens) / a.samples : 0.0);
  }
  std::cout << "(accuracy: mean over samples; coverage: problems with at least one correct sample, "
               "over all N)\n";
}

int RunAll(const RunOptions& o) {
  auto grid = experiments::LoadGridSpec(o.grid);
  if (!grid.ok()) {
    std::cerr << "error: " << o.grid << " is not a valid grid:\n"
              << grid.status().message() << "\n";
    return kExitUsage;
  }
  // Which workers the grid's models need (experiments::ModelWorkers).
  bool any_cpu = false, all_cpu = true;
  std::string needs_cuda;
  for (const auto& [name, kind] : experiments::GridWorkers(*grid)) {
    any_cpu = any_cpu || kind == experiments::WorkerKind::kCpu;
    all_cpu = all_cpu && kind == experiments::WorkerKind::kCpu;
    if (needs_cuda.empty() && kind == experiments::WorkerKind::kGpu) needs_cuda = name;
  }
  const int gpus = o.cpu || all_cpu ? 0 : CountGpus();
  if (gpus == 0 && !needs_cuda.empty()) {
    std::cerr << "error: model '" << needs_cuda << "' of " << o.grid
              << " needs CUDA workers (backend cuda, or a state_dtype other than f32), and this "
                 "run has no GPU"
              << (o.cpu ? " (--cpu)" : "") << "\n";
    return kExitUsage;
  }
  std::string db = o.db.empty() ? grid->name + ".ttc.db" : o.db;
  std::string log_path = db + ".log";
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0) {
    std::cerr << "error: cannot open " << log_path << ": " << std::strerror(errno) << "\n";
    return kExitFailure;
  }
  std::string tmp =
      (std::filesystem::temp_directory_path() / ("ttc-run-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(tmp);
  std::string endpoint_file = tmp + "/endpoint";

  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  pid_t coord =
      Spawn({"ttc", "coordinator", "--db", db, "--listen", "tcp://127.0.0.1:*", "--endpoint-file",
             endpoint_file, "--heartbeat-ms", std::to_string(o.heartbeat_ms), "--lease-s",
             fmt::format("{}", o.lease_s), "--stall-s", fmt::format("{}", o.stall_s)},
            log_fd);
  std::string endpoint;
  int status = 0;
  for (int i = 0; i < 600 && endpoint.empty(); ++i) {
    std::ifstream in(endpoint_file);
    std::getline(in, endpoint);
    if (!endpoint.empty()) break;
    if (!Alive(coord, &status)) {
      std::cerr << "error: the coordinator exited at start (see " << log_path << ")\n";
      return kExitFailure;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (endpoint.empty()) {
    std::cerr << "error: the coordinator did not start listening (see " << log_path << ")\n";
    ::kill(coord, SIGKILL);
    Reap(coord, 1);
    return kExitFailure;
  }
  coordinator::ClientOptions client;
  client.endpoint = endpoint;
  client.timeout_ms = 30000;  // submit loads the dataset and plans: give it time
  std::ifstream in(o.grid);
  std::stringstream text;
  text << in.rdbuf();
  protocol::ClientRequest req;
  req.type = protocol::kSubmitType;
  req.grid = nlohmann::json::parse(text.str(), nullptr, false);
  req.base_dir = std::filesystem::absolute(o.grid).parent_path().string();
  auto submitted = coordinator::Call(client, req);
  if (!submitted.ok()) {
    std::cerr << "error: " << submitted.status().message() << "\n";
    ::kill(coord, SIGTERM);
    Reap(coord, 5);
    return kExitFailure;
  }
  int64_t exp = (*submitted)["experiment_id"].get<int64_t>();
  bool resumed = submitted->value("existing", false);
  std::cout << (resumed ? "resuming" : "started") << " experiment " << exp << " '" << grid->name
            << "' in " << db << " (logs: " << log_path << ")\n";

  // Workers: one per GPU (plus one CPU worker when a model asks for the CPU backend), else CPU
  // workers sharing the cores.
  int n = o.workers > 0 ? o.workers : (gpus > 0 ? gpus + (any_cpu ? 1 : 0) : 1);
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const int cpu_workers = std::max(1, n - gpus);
  int threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(hw) / cpu_workers);
  std::vector<pid_t> workers;
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> args = {"ttc",    "worker",         "--coordinator",
                                     endpoint, "--heartbeat-ms", std::to_string(o.heartbeat_ms)};
    if (gpus > 0 && i < gpus) {
      args.insert(args.end(), {"--gpu", std::to_string(i)});
    } else {
      args.insert(args.end(), {"--cpu", "--threads", std::to_string(threads), "--name",
                               "w" + std::to_string(i)});
    }
    workers.push_back(Spawn(args, log_fd));
  }

  bool tty = ::isatty(STDOUT_FILENO);
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  std::string last_line;
  int rc = kExitOk;
  client.timeout_ms = 5000;
  std::string final_state;
  while (true) {
    if (g_interrupts.load() > 0) {
      std::cout << (tty ? "\n" : "")
                << "interrupted: stopping workers (run the same command again to resume)\n";
      rc = kExitFailure;
      break;
    }
    if (!Alive(coord, &status)) {
      std::cerr << (tty ? "\n" : "") << "error: the coordinator exited (see " << log_path << ")\n";
      coord = -1;
      rc = kExitFailure;
      break;
    }
    int alive = 0;
    for (pid_t& w : workers) {
      if (w > 0 && Alive(w, &status)) {
        ++alive;
      } else if (w > 0) {
        std::cerr << (tty ? "\n" : "") << "warning: worker pid " << w << " exited with "
                  << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << " (see " << log_path
                  << ")\n";
        w = -1;
      }
    }
    if (alive == 0) {
      std::cerr << "error: no worker left\n";
      rc = kExitFailure;
      break;
    }
    protocol::ClientRequest sreq;
    sreq.type = protocol::kStatusType;
    sreq.experiment_id = exp;
    auto st = coordinator::Call(client, sreq);
    if (st.ok() && (*st)["experiments"].is_array() && !(*st)["experiments"].empty()) {
      const auto& e = (*st)["experiments"][0];
      std::string line = coordinator::FormatProgressLine(e);
      auto now = std::chrono::steady_clock::now();
      if (tty) {
        std::cout << "\r\033[K" << line << std::flush;
      } else if (line != last_line && now - last_print > std::chrono::seconds(5)) {
        std::cout << line << std::endl;
        last_print = now;
      }
      last_line = line;
      final_state = e.value("state", "");
      if (final_state != "active") {
        if (tty) std::cout << "\n";
        if (!tty) std::cout << line << std::endl;
        if (e.contains("failed_units") && !e["failed_units"].empty()) {
          for (const auto& f : e["failed_units"]) {
            std::cout << "failed unit " << f.value("unit", 0) << " (" << f.value("model", "")
                      << "): " << f.value("error", "") << "\n";
          }
          rc = kExitFailure;
        }
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 500));
  }
  // Drain workers first (they hand back or finish), then stop the coordinator.
  for (pid_t w : workers) {
    if (w > 0) ::kill(w, SIGTERM);
  }
  for (pid_t w : workers) {
    if (w > 0) Reap(w, 15);
  }
  if (coord > 0) {
    ::kill(coord, SIGTERM);
    Reap(coord, 10);
  }
  std::filesystem::remove_all(tmp);
  ::close(log_fd);
  if (final_state == "done" || final_state == "cancelled") {
    std::cout << "experiment " << exp << " " << final_state << "\n";
    bool reported = false;
#ifdef TTC_RUN_HAS_REPORTS
    // The full report (tables on the terminal; CSV, JSON, SVG and HTML next to the database).
    reports::ReportOptions ro;
    ro.db_path = db;
    ro.experiment_id = exp;
    ro.out_dir = db + ".report";
    Status rs = reports::WriteReport(ro);
    if (rs.ok()) {
      reported = true;
      std::cout << "report written to " << ro.out_dir.string() << "/ (later: ttc list --db " << db
                << "; ttc report " << exp << " --db " << db << ")\n";
    } else {
      std::cerr << "report: " << rs.ToString() << " (summary below instead)\n";
    }
#endif
    if (!reported) PrintSummary(db, exp);
  }
  return rc;
}

void RegisterRun(CLI::App& app, CommandTable& table) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub =
      AddCommand(app, table, "run",
                 "Run a grid on this machine: coordinator + one worker per GPU (or CPU), resumable",
                 [o] { return RunAll(*o); });
  sub->add_option("grid", o->grid, "Grid spec (JSON)")->required()->check(CLI::ExistingFile);
  sub->add_option("--db", o->db, "SQLite file (default <grid name>.ttc.db); re-running resumes it");
  sub->add_option("--workers", o->workers,
                  "Number of workers (default: one per GPU, else 1 CPU worker)");
  sub->add_flag("--cpu", o->cpu, "Use CPU workers even when GPUs are present");
  sub->add_option("--threads", o->threads, "CPU threads per CPU worker (default: cores / workers)");
  sub->add_option("--heartbeat-ms", o->heartbeat_ms, "Heartbeat interval")->capture_default_str();
  sub->add_option("--lease-s", o->lease_s, "Unit lease length")->capture_default_str();
  sub->add_option("--stall-s", o->stall_s, "Seconds without progress before a unit is taken back")
      ->capture_default_str();
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderRun, RegisterRun);

}  // namespace ttc::cli
