// Store under several processes: a reader during a writer sees only whole transactions and never
// errors; many processes claiming at once never lease one unit twice; a writer killed (SIGKILL) in
// the middle of a write transaction leaves a consistent file with all or nothing of that
// transaction.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <thread>

#include "tests/store/store_fixture.h"

namespace ttc::store::testing {
namespace {

constexpr int kBatch = 50;

// Creates an experiment with one unit of `samples` samples and leases it to "writer"; returns the
// unit.
Unit OneBigUnit(Store& store, int samples) {
  NewExperiment spec = SmallExperiment();
  spec.units.resize(1);
  spec.units[0].sample_end = samples;
  auto c = store.CreateExperiment(spec);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  auto u = store.ClaimUnit({.worker_id = "writer", .now = 0, .lease_seconds = 1e9});
  EXPECT_TRUE(u.ok() && u->has_value());
  return **u;
}

// Child process body: never returns. Exit code 0 on success.
[[noreturn]] void WriterChild(const std::string& path, const Unit& u, int batches, int ready_fd) {
  auto store = Store::Open(path);
  if (!store.ok()) _exit(10);
  for (int b = 0; b < batches; ++b) {
    std::vector<Sample> batch;
    for (int i = 0; i < kBatch; ++i) batch.push_back(MakeSample(u, 0, b * kBatch + i, u.attempt));
    auto r = (*store)->InsertSamples(batch);
    if (!r.ok()) _exit(11);
    if (b == 0 && ready_fd >= 0) {
      char c = 'x';
      if (write(ready_fd, &c, 1) != 1) _exit(12);
    }
  }
  _exit(0);
}

TEST_F(StoreTest, ReaderDuringWriterSeesWholeTransactions) {
  constexpr int kBatches = 120;
  Unit u = OneBigUnit(*store_, kBatches * kBatch);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    WriterChild(path_, u, kBatches, fds[1]);
  }
  close(fds[1]);
  char c;
  ASSERT_EQ(read(fds[0], &c, 1), 1);  // the writer has committed its first batch
  close(fds[0]);

  auto reader = Reopen({.read_only = true});
  ASSERT_NE(reader, nullptr);
  int64_t last = 0;
  int reads = 0;
  int status = 0;
  bool writer_done = false;
  while (!writer_done) {
    writer_done = waitpid(pid, &status, WNOHANG) == pid;
    ASSERT_OK_AND_ASSIGN(ExperimentStatus st, reader->GetExperimentStatus(u.experiment_id));
    EXPECT_EQ(st.samples % kBatch, 0) << "a reader saw part of a transaction";
    EXPECT_GE(st.samples, last) << "a reader went back in time";
    last = st.samples;
    ++reads;
  }
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ASSERT_OK_AND_ASSIGN(ExperimentStatus st, reader->GetExperimentStatus(u.experiment_id));
  EXPECT_EQ(st.samples, kBatches * kBatch);
  EXPECT_GT(reads, 1);
}

TEST_F(StoreTest, ConcurrentClaimersNeverShareAUnit) {
  NewExperiment spec = SmallExperiment();
  spec.units.clear();
  for (int i = 0; i < 120; ++i) {
    Unit x;
    x.model_name = i % 2 ? "a" : "b";
    x.problem_indices = {i % 3};
    x.sample_begin = i;
    x.sample_end = i + 1;
    x.order_key = i;
    spec.units.push_back(x);
  }
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(spec));
  constexpr int kProcs = 4;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = Store::Open(path_);
      if (!s.ok()) _exit(10);
      std::string me = "w" + std::to_string(p);
      while (true) {
        auto u =
            (*s)->ClaimUnit({.worker_id = me, .now = 0, .preferred_models = {p % 2 ? "a" : "b"}});
        if (!u.ok()) _exit(11);
        if (!u->has_value()) break;
        const Unit& unit = **u;
        auto r = (*s)->InsertSample(
            MakeSample(unit, unit.problem_indices[0], unit.sample_begin, unit.attempt));
        if (!r.ok() || r->outcome != InsertOutcome::kInserted) _exit(12);
        if (!(*s)->CompleteUnit(unit.id, me, unit.attempt).ok()) _exit(13);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Unit> units, store_->ListUnits({c.experiment_id}));
  for (const Unit& u : units) {
    EXPECT_EQ(u.state, UnitState::kDone);
    EXPECT_EQ(u.attempt, 1) << "unit " << u.id << " was claimed more than once";
  }
  ASSERT_OK_AND_ASSIGN(ExperimentStatus st, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(st.samples, 120);
}

TEST(StoreProcesses, ConcurrentFirstOpensCreateTheSchemaOnce) {
  // Several processes open a file that does not exist yet at the same moment: exactly one creates
  // the schema, the others wait on the write lock, see the migrated file and go on.
  ttc::testing::TempDir dir;
  const std::string path = (dir / "fresh.db").string();
  constexpr int kProcs = 4;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = Store::Open(path);
      if (!s.ok()) {
        std::fprintf(stderr, "child %d: %s\n", p, s.status().ToString().c_str());
        _exit(10);
      }
      if (!(*s)->CreateExperiment(SmallExperiment("exp" + std::to_string(p))).ok()) _exit(11);
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  auto s = Store::Open(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_OK_AND_ASSIGN(CheckReport rep, (*s)->Check());
  EXPECT_TRUE(rep.ok()) << rep.integrity;
  EXPECT_EQ(rep.experiments, kProcs);
  EXPECT_EQ(rep.schema_version, LatestSchemaVersion());
}

TEST_F(StoreTest, KilledWriterLeavesConsistentFile) {
  // The child runs one long write transaction (many batches inside RunInTransaction) and is killed
  // inside it, after telling us it is mid-transaction; a second child commits batches in a loop and
  // is killed at a random moment. Afterwards: integrity ok, nothing of the open transaction, whole
  // batches of the committed ones.
  Unit u = OneBigUnit(*store_, 1'000'000);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    auto store = Store::Open(path_);
    if (!store.ok()) _exit(10);
    Status st = (*store)->RunInTransaction([&]() -> Status {
      for (int b = 0;; ++b) {
        std::vector<Sample> batch;
        for (int i = 0; i < kBatch; ++i)
          batch.push_back(MakeSample(u, 0, (b * kBatch + i) % 1'000'000, 1));
        auto r = (*store)->InsertSamples(batch);
        if (!r.ok()) return r.status();
        if (b == 20) {
          char c = 'x';
          if (write(fds[1], &c, 1) != 1) _exit(12);
        }
      }
    });
    _exit(st.ok() ? 0 : 11);
  }
  close(fds[1]);
  char c;
  ASSERT_EQ(read(fds[0], &c, 1), 1);
  close(fds[0]);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));

  {
    auto fresh = Reopen();
    ASSERT_NE(fresh, nullptr);
    ASSERT_OK_AND_ASSIGN(CheckReport rep, fresh->Check());
    EXPECT_TRUE(rep.ok()) << rep.integrity;
    EXPECT_EQ(rep.samples, 0) << "part of a killed transaction survived";
  }

  // Now kill a writer that commits batch after batch, at some moment inside its run.
  ASSERT_EQ(pipe(fds), 0);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    WriterChild(path_, u, 1'000'000 / kBatch, fds[1]);
  }
  close(fds[1]);
  ASSERT_EQ(read(fds[0], &c, 1), 1);  // first batch committed; kill somewhere in the following ones
  close(fds[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(20 + std::random_device()() % 80));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  auto fresh = Reopen();
  ASSERT_NE(fresh, nullptr);
  ASSERT_OK_AND_ASSIGN(CheckReport rep, fresh->Check());
  EXPECT_TRUE(rep.ok()) << rep.integrity;
  EXPECT_EQ(rep.samples % kBatch, 0) << rep.samples;
  EXPECT_GT(rep.samples, 0);
  // The queue state is intact: the surviving samples are exactly the ones no longer missing.
  ASSERT_OK_AND_ASSIGN(std::vector<SampleKey> missing, fresh->MissingSamples(u.id));
  EXPECT_EQ(static_cast<int64_t>(missing.size()), 1'000'000 - rep.samples);
}

}  // namespace
}  // namespace ttc::store::testing
