// Store API: round-trips of every entity, the lease queue (claim with affinity, renew, progress,
// complete, fail, expiry, release), fencing of late and duplicate results, grading, status counts,
// workers and bench tables.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/store/store_fixture.h"

namespace ttc::store::testing {
namespace {

TEST_F(StoreTest, NewFileIsAtLatestVersionInWalMode) {
  ASSERT_OK_AND_ASSIGN(int v, store_->SchemaVersion());
  EXPECT_EQ(v, LatestSchemaVersion());
  EXPECT_GE(LatestSchemaVersion(), 2);
  ASSERT_OK_AND_ASSIGN(CheckReport r, store_->Check());
  EXPECT_TRUE(r.ok()) << r.integrity;
  EXPECT_EQ(r.journal_mode, "wal");
  EXPECT_EQ(r.experiments, 0);
}

TEST_F(StoreTest, ExperimentModelsProblemsUnitsRoundTrip) {
  NewExperiment spec = SmallExperiment();
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(spec));
  EXPECT_GT(c.experiment_id, 0);
  ASSERT_EQ(c.model_ids.size(), 2u);
  ASSERT_EQ(c.unit_ids.size(), spec.units.size());

  // Read back through a second connection: what is committed is what the file holds.
  auto other = Reopen();
  ASSERT_NE(other, nullptr);
  ASSERT_OK_AND_ASSIGN(Experiment e, other->GetExperiment(c.experiment_id));
  EXPECT_EQ(e.name, "exp");
  EXPECT_EQ(e.grid_spec_json, spec.experiment.grid_spec_json);  // as submitted, spacing included
  EXPECT_EQ(e.dataset_fingerprint, "sha256:abc");
  EXPECT_EQ(e.seed, 0xFEDCBA9876543210ULL);
  EXPECT_EQ(e.state, ExperimentState::kActive);
  EXPECT_GT(e.created_at, 1.6e9);

  ASSERT_OK_AND_ASSIGN(std::vector<Model> models, other->ListModels(c.experiment_id));
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].id, c.model_ids[0]);
  EXPECT_EQ(models[0].name, "a");
  EXPECT_EQ(models[0].path, "/models/a");
  EXPECT_EQ(models[0].options_json, R"({"dtype":"bf16"})");
  EXPECT_EQ(models[1].name, "b");
  EXPECT_EQ(models[1].experiment_id, c.experiment_id);

  ASSERT_OK_AND_ASSIGN(std::vector<Problem> problems, other->ListProblems(c.experiment_id));
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].external_id, "p0");
  EXPECT_EQ(problems[0].question, "What is 0+1?");
  EXPECT_EQ(problems[0].gold_answer, "1");
  EXPECT_EQ(problems[0].extra_json, R"({"level":3})");
  ASSERT_OK_AND_ASSIGN(Problem p2, other->GetProblem(c.experiment_id, 2));
  EXPECT_EQ(p2.gold_answer, "3");
  EXPECT_EQ(other->GetProblem(c.experiment_id, 3).status().code(), StatusCode::kNotFound);

  ASSERT_OK_AND_ASSIGN(std::vector<Unit> units, other->ListUnits({c.experiment_id}));
  ASSERT_EQ(units.size(), spec.units.size());
  const Unit& last = units.back();
  EXPECT_EQ(last.id, c.unit_ids.back());
  EXPECT_EQ(last.kind, UnitKind::kGenerate);
  EXPECT_EQ(last.model_name, "b");
  EXPECT_EQ(last.model_id, c.model_ids[1]);
  EXPECT_EQ(last.problem_indices, (std::vector<int>{0, 2}));
  EXPECT_EQ(last.sample_begin, 4);
  EXPECT_EQ(last.sample_end, 6);
  EXPECT_EQ(last.ExpectedSamples(), 4);
  EXPECT_EQ(last.state, UnitState::kPending);
  EXPECT_EQ(last.attempt, 0);
  EXPECT_EQ(last.max_attempts, 3);
  EXPECT_EQ(units[1].seed, 1001u);
  EXPECT_EQ(units[1].order_key, 1);
  EXPECT_DOUBLE_EQ(units[1].temperature, 0.8);

  ASSERT_OK_AND_ASSIGN(std::vector<Experiment> all, other->ListExperiments());
  ASSERT_EQ(all.size(), 1u);
}

TEST_F(StoreTest, CreateExperimentIsAllOrNothing) {
  NewExperiment spec = SmallExperiment();
  spec.units.back().model_name = "missing";
  auto r = store_->CreateExperiment(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("missing"), std::string::npos) << r.status().message();
  // Nothing of the failed experiment stayed behind.
  ASSERT_OK_AND_ASSIGN(CheckReport rep, store_->Check());
  EXPECT_EQ(rep.experiments, 0);
  EXPECT_EQ(rep.units, 0);

  NewExperiment bad = SmallExperiment();
  bad.units[0].problem_indices = {7};
  EXPECT_EQ(store_->CreateExperiment(bad).status().code(), StatusCode::kInvalidArgument);
  bad = SmallExperiment();
  bad.experiment.grid_spec_json = "{not json";
  EXPECT_EQ(store_->CreateExperiment(bad).status().code(), StatusCode::kInvalidArgument);
  bad = SmallExperiment();
  bad.models[1].name = "a";
  EXPECT_EQ(store_->CreateExperiment(bad).status().code(), StatusCode::kInvalidArgument);
  bad = SmallExperiment();
  bad.problems[1].index = 5;
  EXPECT_EQ(store_->CreateExperiment(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, ClaimPrefersHeldModelThenOrderKey) {
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(SmallExperiment()));
  ClaimOptions opt;
  opt.worker_id = "w1";
  opt.now = 1000;
  opt.lease_seconds = 60;
  opt.preferred_models = {"b"};
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> u, store_->ClaimUnit(opt));
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->model_name, "b");  // affinity beats the lower order keys of model a
  EXPECT_EQ(u->order_key, 3);
  EXPECT_EQ(u->state, UnitState::kLeased);
  EXPECT_EQ(u->worker_id, "w1");
  EXPECT_EQ(u->attempt, 1);
  EXPECT_DOUBLE_EQ(u->lease_expires_at, 1060);

  opt.worker_id = "w2";
  opt.preferred_models = {"zzz"};
  ASSERT_OK_AND_ASSIGN(u, store_->ClaimUnit(opt));
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->model_name, "a");  // no affinity: lowest order key
  EXPECT_EQ(u->order_key, 0);

  opt.preferred_models = {};
  opt.allowed_models = {"b"};
  ASSERT_OK_AND_ASSIGN(u, store_->ClaimUnit(opt));
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->model_name, "b");
  EXPECT_EQ(u->order_key, 4);

  opt.kinds = {UnitKind::kScore};
  opt.allowed_models = {};
  ASSERT_OK_AND_ASSIGN(u, store_->ClaimUnit(opt));
  EXPECT_FALSE(u.has_value());  // no score units

  opt.kinds = {UnitKind::kGenerate};
  int claimed = 3;
  while (true) {
    ASSERT_OK_AND_ASSIGN(u, store_->ClaimUnit(opt));
    if (!u) break;
    ++claimed;
  }
  EXPECT_EQ(claimed, 7);
  ASSERT_OK_AND_ASSIGN(ExperimentStatus st, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(st.units_leased, 7);
  EXPECT_EQ(st.units_pending, 0);
}

TEST_F(StoreTest, SamplesAreIdempotentAndFencedByAttempt) {
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(SmallExperiment()));
  ClaimOptions opt{.worker_id = "w1", .now = 100, .lease_seconds = 10};
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> u, store_->ClaimUnit(opt));
  ASSERT_TRUE(u);
  ASSERT_EQ(u->problem_indices, std::vector<int>{0});

  Sample s0 = MakeSample(*u, 0, 0, u->attempt);
  s0.correct = true;
  s0.extracted_answer = "1";
  ASSERT_OK_AND_ASSIGN(SampleInsertResult r, store_->InsertSample(s0));
  EXPECT_EQ(r.outcome, InsertOutcome::kInserted);
  ASSERT_GT(r.sample_id, 0);

  // The stored row is what was sent, with experiment, model and temperature taken from the unit.
  ASSERT_OK_AND_ASSIGN(Sample back, store_->GetSample(r.sample_id));
  EXPECT_EQ(back.experiment_id, c.experiment_id);
  EXPECT_EQ(back.model_id, u->model_id);
  EXPECT_DOUBLE_EQ(back.temperature, 0.8);
  EXPECT_EQ(back.text, s0.text);
  EXPECT_EQ(back.num_tokens, 10);
  EXPECT_EQ(back.finish_reason, "stop");
  EXPECT_EQ(back.extracted_answer, "1");
  EXPECT_EQ(back.correct, std::optional<bool>(true));
  EXPECT_DOUBLE_EQ(back.prefill_s, 0.01);
  EXPECT_DOUBLE_EQ(back.decode_s, 0.1);
  EXPECT_EQ(back.steps, 10);
  EXPECT_EQ(back.extra_json, R"({"top_p":1})");
  EXPECT_EQ(back.attempt, 1);

  // A duplicate (different text!) changes nothing and says so.
  Sample dup = s0;
  dup.text = "something else";
  ASSERT_OK_AND_ASSIGN(r, store_->InsertSample(dup));
  EXPECT_EQ(r.outcome, InsertOutcome::kDuplicate);
  ASSERT_OK_AND_ASSIGN(back, store_->GetSample(r.sample_id));
  EXPECT_EQ(back.text, s0.text);

  // Wrong attempt: stale, nothing stored.
  ASSERT_OK_AND_ASSIGN(r, store_->InsertSample(MakeSample(*u, 0, 1, u->attempt + 1)));
  EXPECT_EQ(r.outcome, InsertOutcome::kStale);
  EXPECT_EQ(r.sample_id, 0);

  // The lease expires and another worker takes the unit: the first worker's late results are stale.
  ASSERT_OK_AND_ASSIGN(std::vector<ExpiredLease> expired, store_->ExpireLeases(111));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].unit_id, u->id);
  EXPECT_EQ(expired[0].new_state, UnitState::kPending);
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> again,
                       store_->ClaimUnit({.worker_id = "w2", .now = 112}));
  ASSERT_TRUE(again);
  ASSERT_EQ(again->id, u->id);
  EXPECT_EQ(again->attempt, 2);
  ASSERT_OK_AND_ASSIGN(std::vector<SampleInsertResult> batch,
                       store_->InsertSamples({MakeSample(*u, 0, 1, 1), MakeSample(*u, 0, 1, 2),
                                              MakeSample(*u, 0, 0, 2)}));
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].outcome, InsertOutcome::kStale);
  EXPECT_EQ(batch[1].outcome, InsertOutcome::kInserted);
  EXPECT_EQ(batch[2].outcome,
            InsertOutcome::kDuplicate);  // kept from attempt 1: no regeneration needed

  // The retry only needs what is missing.
  ASSERT_OK_AND_ASSIGN(std::vector<SampleKey> missing, store_->MissingSamples(u->id));
  EXPECT_EQ(missing, (std::vector<SampleKey>{{0, 2}, {0, 3}}));

  // Out-of-unit samples are bad input and roll back the whole batch.
  auto bad = store_->InsertSamples({MakeSample(*u, 0, 2, 2), MakeSample(*u, 1, 0, 2)});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto bad_range = store_->InsertSample(MakeSample(*u, 0, 4, 2));
  EXPECT_EQ(bad_range.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_range.status().message().find("outside"), std::string::npos);
  Sample nowhere = MakeSample(*u, 0, 0, 2);
  nowhere.unit_id = 9999;
  EXPECT_EQ(store_->InsertSample(nowhere).status().code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(missing, store_->MissingSamples(u->id));
  EXPECT_EQ(missing.size(), 2u);  // sample (0, 2) of the failed batch was not kept

  // Completion is fenced and requires every sample.
  EXPECT_EQ(store_->CompleteUnit(u->id, "w2", 2).code(), StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(batch,
                       store_->InsertSamples({MakeSample(*u, 0, 2, 2), MakeSample(*u, 0, 3, 2)}));
  EXPECT_EQ(store_->CompleteUnit(u->id, "w1", 1).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->CompleteUnit(u->id, "w1", 2).code(), StatusCode::kFailedPrecondition);
  ASSERT_OK(store_->CompleteUnit(u->id, "w2", 2));
  ASSERT_OK_AND_ASSIGN(Unit done, store_->GetUnit(u->id));
  EXPECT_EQ(done.state, UnitState::kDone);
  // After completion everything is stale.
  ASSERT_OK_AND_ASSIGN(r, store_->InsertSample(MakeSample(*u, 0, 3, 2)));
  EXPECT_EQ(r.outcome, InsertOutcome::kStale);

  ASSERT_OK_AND_ASSIGN(ExperimentStatus st, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(st.samples, 4);
  EXPECT_EQ(st.units_done, 1);
  EXPECT_EQ(st.samples_graded, 1);
  EXPECT_EQ(st.samples_correct, 1);
  EXPECT_EQ(st.tokens, 10 + 11 + 12 + 13);
  EXPECT_EQ(st.samples_expected, 6 * 4 + 4);
}

TEST_F(StoreTest, LeaseRenewProgressFailAndExpiry) {
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(SmallExperiment()));
  ClaimOptions opt{.worker_id = "w1", .now = 0, .lease_seconds = 10};
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> u, store_->ClaimUnit(opt));
  ASSERT_TRUE(u);
  ASSERT_EQ(u->max_attempts, 2);

  EXPECT_EQ(store_->RenewLease(u->id, "w2", 1, 50).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RenewLease(u->id, "w1", 2, 50).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RenewLease(12345, "w1", 1, 50).code(), StatusCode::kNotFound);
  ASSERT_OK(store_->RenewLease(u->id, "w1", 1, 50));
  ASSERT_OK(store_->RecordProgress(u->id, "w1", 1, 321, 2, 20.0));
  ASSERT_OK_AND_ASSIGN(Unit v, store_->GetUnit(u->id));
  EXPECT_DOUBLE_EQ(v.lease_expires_at, 50);
  EXPECT_EQ(v.progress_tokens, 321);
  EXPECT_EQ(v.progress_samples, 2);
  EXPECT_DOUBLE_EQ(v.progress_at, 20);
  ASSERT_OK_AND_ASSIGN(ExperimentStatus st, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(st.in_flight_tokens, 321);

  // Not expired yet at 49; progress with a renewal moves the expiry.
  ASSERT_OK_AND_ASSIGN(std::vector<ExpiredLease> expired, store_->ExpireLeases(49));
  EXPECT_TRUE(expired.empty());
  ASSERT_OK(store_->RecordProgress(u->id, "w1", 1, 400, 3, 45.0, 80.0));
  ASSERT_OK_AND_ASSIGN(expired, store_->ExpireLeases(79));
  EXPECT_TRUE(expired.empty());

  // First failure: back to pending with the error; second (expiry) uses up max_attempts = 2:
  // failed.
  ASSERT_OK_AND_ASSIGN(UnitState next,
                       store_->FailUnit(u->id, "w1", 1, "CUDA error: out of memory"));
  EXPECT_EQ(next, UnitState::kPending);
  ASSERT_OK_AND_ASSIGN(v, store_->GetUnit(u->id));
  EXPECT_EQ(v.state, UnitState::kPending);
  EXPECT_EQ(v.attempts_used, 1);
  EXPECT_EQ(v.last_error, "CUDA error: out of memory");
  EXPECT_EQ(store_->FailUnit(u->id, "w1", 1, "again").status().code(),
            StatusCode::kFailedPrecondition);

  ASSERT_OK_AND_ASSIGN(std::optional<Unit> u2, store_->ClaimUnit({.worker_id = "w3", .now = 100}));
  ASSERT_TRUE(u2);
  ASSERT_EQ(u2->id, u->id);  // lowest order key again
  EXPECT_EQ(u2->attempt, 2);
  EXPECT_EQ(u2->progress_tokens, 0);  // progress is per attempt
  ASSERT_OK_AND_ASSIGN(expired, store_->ExpireLeases(500));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].worker_id, "w3");
  EXPECT_EQ(expired[0].attempt, 2);
  EXPECT_EQ(expired[0].new_state, UnitState::kFailed);
  ASSERT_OK_AND_ASSIGN(v, store_->GetUnit(u->id));
  EXPECT_EQ(v.state, UnitState::kFailed);
  EXPECT_EQ(v.attempts_used, 2);
  EXPECT_NE(v.last_error.find("expired"), std::string::npos) << v.last_error;
  ASSERT_OK_AND_ASSIGN(st, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(st.units_failed, 1);
  // A failed unit is never claimed again.
  ASSERT_OK_AND_ASSIGN(std::vector<Unit> failed,
                       store_->ListUnits({c.experiment_id, UnitState::kFailed}));
  ASSERT_EQ(failed.size(), 1u);
}

TEST_F(StoreTest, ReleaseDoesNotCountAnAttempt) {
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(SmallExperiment()));
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> u, store_->ClaimUnit({.worker_id = "w1", .now = 0}));
  ASSERT_TRUE(u);
  ASSERT_OK(store_->ReleaseUnit(u->id, "w1", 1));
  ASSERT_OK_AND_ASSIGN(Unit v, store_->GetUnit(u->id));
  EXPECT_EQ(v.state, UnitState::kPending);
  EXPECT_EQ(v.attempts_used, 0);
  EXPECT_EQ(store_->ReleaseUnit(u->id, "w1", 1).code(), StatusCode::kFailedPrecondition);

  ASSERT_OK_AND_ASSIGN(u, store_->ClaimUnit({.worker_id = "w1", .now = 0}));
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> u2, store_->ClaimUnit({.worker_id = "w2", .now = 0}));
  ASSERT_OK_AND_ASSIGN(int64_t n, store_->ReleaseAllLeases());
  EXPECT_EQ(n, 2);
  ASSERT_OK_AND_ASSIGN(ExperimentStatus st, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(st.units_pending, 7);
  ASSERT_OK_AND_ASSIGN(v, store_->GetUnit(u->id));
  EXPECT_EQ(v.attempt, 2);  // the fencing token never goes back
  EXPECT_EQ(v.attempts_used, 0);
}

TEST_F(StoreTest, CancelMakesLateResultsStaleAndStopsClaims) {
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(SmallExperiment()));
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> u, store_->ClaimUnit({.worker_id = "w1", .now = 0}));
  ASSERT_TRUE(u);
  ASSERT_OK_AND_ASSIGN(int64_t n, store_->CancelExperiment(c.experiment_id));
  EXPECT_EQ(n, 7);
  ASSERT_OK_AND_ASSIGN(n, store_->CancelExperiment(c.experiment_id));
  EXPECT_EQ(n, 0);
  ASSERT_OK_AND_ASSIGN(Experiment e, store_->GetExperiment(c.experiment_id));
  EXPECT_EQ(e.state, ExperimentState::kCancelled);
  ASSERT_OK_AND_ASSIGN(SampleInsertResult r, store_->InsertSample(MakeSample(*u, 0, 0, 1)));
  EXPECT_EQ(r.outcome, InsertOutcome::kStale);
  EXPECT_EQ(store_->CompleteUnit(u->id, "w1", 1).code(), StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> none, store_->ClaimUnit({.worker_id = "w2", .now = 0}));
  EXPECT_FALSE(none);
  EXPECT_EQ(store_->CancelExperiment(424242).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->AddUnits(c.experiment_id, {}).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, ExperimentFinishesWhenNoWorkIsLeft) {
  NewExperiment spec = SmallExperiment();
  spec.units.resize(1);
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(spec));
  ASSERT_OK_AND_ASSIGN(bool finished, store_->FinishExperimentIfComplete(c.experiment_id));
  EXPECT_FALSE(finished);
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> u, store_->ClaimUnit({.worker_id = "w", .now = 0}));
  std::vector<Sample> samples;
  for (int i = 0; i < 4; ++i) samples.push_back(MakeSample(*u, 0, i, 1));
  ASSERT_OK_AND_ASSIGN(auto results, store_->InsertSamples(samples));
  ASSERT_OK(store_->CompleteUnit(u->id, "w", 1));
  ASSERT_OK_AND_ASSIGN(finished, store_->FinishExperimentIfComplete(c.experiment_id));
  EXPECT_TRUE(finished);
  ASSERT_OK_AND_ASSIGN(Experiment e, store_->GetExperiment(c.experiment_id));
  EXPECT_EQ(e.state, ExperimentState::kDone);
  EXPECT_EQ(store_->CancelExperiment(c.experiment_id).status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_OK(store_->SetExperimentState(c.experiment_id, ExperimentState::kActive));
  EXPECT_EQ(store_->SetExperimentState(777, ExperimentState::kDone).code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, GradingAndBulkReads) {
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(SmallExperiment()));
  std::vector<Id> ids;
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::optional<Unit> u, store_->ClaimUnit({.worker_id = "w", .now = 0}));
    if (!u) break;
    std::vector<Sample> batch;
    for (int p : u->problem_indices) {
      for (int i = u->sample_begin; i < u->sample_end; ++i)
        batch.push_back(MakeSample(*u, p, i, u->attempt));
    }
    // Deliver in reverse order: reads must come back sorted anyway.
    std::reverse(batch.begin(), batch.end());
    ASSERT_OK_AND_ASSIGN(auto res, store_->InsertSamples(batch));
    for (const auto& r : res) {
      ASSERT_EQ(r.outcome, InsertOutcome::kInserted);
      ids.push_back(r.sample_id);
    }
    ASSERT_OK(store_->CompleteUnit(u->id, "w", u->attempt));
  }
  ASSERT_EQ(ids.size(), 28u);
  std::vector<SampleGrade> grades;
  for (size_t i = 0; i < ids.size(); ++i) {
    grades.push_back({ids[i], "x" + std::to_string(i),
                      i % 3 == 0 ? std::optional<bool>(true) : std::optional<bool>(false)});
  }
  grades[5].correct.reset();
  ASSERT_OK(store_->UpdateGrades(grades));
  EXPECT_EQ(store_->UpdateGrades({{999999, "y", true}}).code(), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(ExperimentStatus st, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(st.samples, 28);
  EXPECT_EQ(st.samples_graded, 27);
  EXPECT_EQ(st.samples_correct, 10);
  // Re-grading adjusts the counters: one correct becomes wrong, one becomes ungraded, one ungraded
  // becomes right.
  ASSERT_OK(store_->UpdateGrades(
      {{ids[0], "z", false}, {ids[3], "", std::nullopt}, {ids[5], "w", true}}));
  ASSERT_OK_AND_ASSIGN(st, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(st.samples_graded, 27);
  EXPECT_EQ(st.samples_correct, 9);
  ASSERT_OK_AND_ASSIGN(Sample regraded, store_->GetSample(ids[0], false));
  EXPECT_EQ(regraded.extracted_answer, "z");
  EXPECT_EQ(regraded.correct, std::optional<bool>(false));
  EXPECT_TRUE(regraded.text.empty());
  ASSERT_OK(store_->UpdateGrades(
      {{ids[0], "x0", true}, {ids[3], "x3", true}, {ids[5], "x5", std::nullopt}}));

  auto reader = Reopen({.read_only = true});
  ASSERT_NE(reader, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<Sample> all,
                       reader->ListSamples({.experiment_id = c.experiment_id}));
  ASSERT_EQ(all.size(), 28u);
  for (size_t i = 1; i < all.size(); ++i) {
    auto key = [](const Sample& s) {
      return std::make_tuple(s.model_id, s.temperature, s.problem_index, s.sample_index);
    };
    EXPECT_LT(key(all[i - 1]), key(all[i]));
  }
  EXPECT_TRUE(all[0].text.empty());  // no text unless asked
  ASSERT_OK_AND_ASSIGN(std::vector<Sample> b_only,
                       reader->ListSamples({.experiment_id = c.experiment_id,
                                            .model_id = c.model_ids[1],
                                            .problem_index = 2,
                                            .include_text = true}));
  ASSERT_EQ(b_only.size(), 6u);  // samples 0-3 of the single unit, 4-5 of the two-problem unit
  EXPECT_EQ(b_only[5].sample_index, 5);
  EXPECT_EQ(b_only[5].text, "The answer is 7.");
  int64_t graded = 0, correct = 0;
  ASSERT_OK(reader->ForEachSample({.experiment_id = c.experiment_id}, [&](const Sample& s) {
    graded += s.correct.has_value();
    correct += s.correct.value_or(false);
    return Status::Ok();
  }));
  EXPECT_EQ(graded, 27);
  EXPECT_EQ(correct, 10);  // i % 3 == 0 for i in [0, 28): 10 values
  // A nested read of the same query inside the callback gets its own cursor.
  int outer = 0;
  ASSERT_OK(reader->ForEachSample({.experiment_id = c.experiment_id}, [&](const Sample&) {
    if (outer++ == 1) {
      auto inner = reader->ListSamples({.experiment_id = c.experiment_id});
      if (!inner.ok()) return inner.status();
      EXPECT_EQ(inner->size(), 28u);
    }
    return Status::Ok();
  }));
  EXPECT_EQ(outer, 28);
  // The callback can stop the stream.
  int seen = 0;
  Status stop = reader->ForEachSample({.experiment_id = c.experiment_id}, [&](const Sample&) {
    return ++seen == 3 ? Status(StatusCode::kInternal, "enough") : Status::Ok();
  });
  EXPECT_EQ(stop.message(), "enough");
  EXPECT_EQ(seen, 3);
  // A read-only store refuses writes.
  EXPECT_FALSE(reader->UpsertWorker({.id = "w"}).ok());
}

TEST_F(StoreTest, ScoreUnitsAndStepScores) {
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(SmallExperiment()));
  // Generate everything of model a, problem 0.
  ASSERT_OK_AND_ASSIGN(std::optional<Unit> g, store_->ClaimUnit({.worker_id = "w", .now = 0}));
  ASSERT_EQ(g->model_name, "a");
  std::vector<Sample> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(MakeSample(*g, 0, i, 1));
  ASSERT_OK_AND_ASSIGN(auto res, store_->InsertSamples(batch));
  ASSERT_OK(store_->CompleteUnit(g->id, "w", 1));

  Unit score;
  score.kind = UnitKind::kScore;
  score.model_name = "b";  // the reward model
  score.target_model_name = "a";
  score.temperature = 0.8;
  score.problem_indices = {0};
  score.sample_begin = 0;
  score.sample_end = 4;
  score.order_key = -1;
  ASSERT_OK_AND_ASSIGN(std::vector<Id> sids, store_->AddUnits(c.experiment_id, {score}));
  ASSERT_EQ(sids.size(), 1u);
  Unit bad = score;
  bad.target_model_name = "nope";
  EXPECT_EQ(store_->AddUnits(c.experiment_id, {bad}).status().code(), StatusCode::kInvalidArgument);

  ASSERT_OK_AND_ASSIGN(
      std::optional<Unit> s,
      store_->ClaimUnit({.worker_id = "prm", .now = 0, .kinds = {UnitKind::kScore}}));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->id, sids[0]);
  EXPECT_EQ(s->target_model_name, "a");
  EXPECT_EQ(s->target_model_id, c.model_ids[0]);
  ASSERT_OK_AND_ASSIGN(std::vector<Id> todo, store_->SamplesMissingScores(s->id));
  ASSERT_EQ(todo.size(), 4u);
  // A score unit produces no samples.
  EXPECT_EQ(store_->InsertSample(MakeSample(*s, 0, 0, 1)).status().code(),
            StatusCode::kInvalidArgument);

  ASSERT_OK_AND_ASSIGN(
      std::vector<InsertOutcome> out,
      store_->InsertStepScores(s->id, 1, {{todo[0], {0.9, 0.5, 0.25}}, {todo[1], {0.1}}}));
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kInserted, InsertOutcome::kInserted}));
  ASSERT_OK_AND_ASSIGN(out,
                       store_->InsertStepScores(s->id, 1, {{todo[0], {0.0}}, {todo[2], {0.7}}}));
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kDuplicate, InsertOutcome::kInserted}));
  ASSERT_OK_AND_ASSIGN(out, store_->InsertStepScores(s->id, 2, {{todo[3], {0.3}}}));
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kStale}));
  EXPECT_EQ(store_->InsertStepScores(s->id, 1, {{987654, {0.3}}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CompleteUnit(s->id, "prm", 1).code(), StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(out, store_->InsertStepScores(s->id, 1, {{todo[3], {0.3, 0.6}}}));
  ASSERT_OK(store_->CompleteUnit(s->id, "prm", 1));

  ASSERT_OK_AND_ASSIGN(std::vector<StepScore> scores, store_->ListStepScores(c.experiment_id));
  ASSERT_EQ(scores.size(), 7u);
  EXPECT_EQ(scores[0].sample_id, todo[0]);
  EXPECT_EQ(scores[0].step_index, 0);
  EXPECT_DOUBLE_EQ(scores[0].score, 0.9);
  EXPECT_EQ(scores[2].step_index, 2);
  EXPECT_DOUBLE_EQ(scores[2].score, 0.25);
}

TEST_F(StoreTest, WorkersRoundTripAndHeartbeat) {
  Worker w;
  w.id = "node1/GPU-1234";
  w.host = "node1";
  w.device = "NVIDIA H100 80GB HBM3";
  w.memory_bytes = int64_t{80} << 30;
  w.models_held = {"llama-1b", "llamba-1b"};
  w.state = WorkerState::kBusy;
  w.current_unit = 17;
  w.tokens_per_s = 1234.5;
  w.last_heartbeat = 1000;
  w.protocol_version = 3;
  ASSERT_OK(store_->UpsertWorker(w));
  ASSERT_OK_AND_ASSIGN(Worker back, store_->GetWorker(w.id));
  EXPECT_EQ(back.host, "node1");
  EXPECT_EQ(back.device, w.device);
  EXPECT_EQ(back.memory_bytes, w.memory_bytes);
  EXPECT_EQ(back.models_held, w.models_held);
  EXPECT_EQ(back.state, WorkerState::kBusy);
  EXPECT_EQ(back.current_unit, 17);
  EXPECT_DOUBLE_EQ(back.tokens_per_s, 1234.5);
  EXPECT_DOUBLE_EQ(back.last_heartbeat, 1000);
  EXPECT_EQ(back.protocol_version, 3);
  EXPECT_DOUBLE_EQ(back.first_seen, 1000);

  ASSERT_OK(store_->Heartbeat(
      w.id, {.state = WorkerState::kIdle, .current_unit = 0, .tokens_per_s = 0, .at = 1010}));
  ASSERT_OK_AND_ASSIGN(back, store_->GetWorker(w.id));
  EXPECT_EQ(back.state, WorkerState::kIdle);
  EXPECT_EQ(back.current_unit, 0);
  EXPECT_DOUBLE_EQ(back.last_heartbeat, 1010);
  EXPECT_EQ(back.models_held, w.models_held);
  ASSERT_OK(store_->Heartbeat(
      w.id,
      {.state = WorkerState::kLoading, .at = 1020, .models_held = std::vector<std::string>{}}));
  ASSERT_OK_AND_ASSIGN(back, store_->GetWorker(w.id));
  EXPECT_TRUE(back.models_held.empty());
  EXPECT_EQ(store_->Heartbeat("ghost", {.at = 1}).code(), StatusCode::kNotFound);

  // A reconnect re-registers: first_seen is kept.
  w.last_heartbeat = 2000;
  w.host = "node1b";
  ASSERT_OK(store_->UpsertWorker(w));
  Worker w2 = w;
  w2.id = "node2/cpu";
  w2.state = WorkerState::kDraining;
  ASSERT_OK(store_->UpsertWorker(w2));
  ASSERT_OK_AND_ASSIGN(std::vector<Worker> all, store_->ListWorkers());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, w.id);
  EXPECT_EQ(all[0].host, "node1b");
  EXPECT_DOUBLE_EQ(all[0].first_seen, 1000);
  EXPECT_EQ(all[1].state, WorkerState::kDraining);
  EXPECT_EQ(store_->GetWorker("ghost").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, BenchRowsRoundTrip) {
  std::vector<BenchRow> rows;
  for (int b : {4, 1, 2}) {
    BenchRow r;
    r.table = "paper";
    r.model = "llamba-1b";
    r.device = "H100";
    r.batch = b;
    r.prompt_len = 512;
    r.context_len = 1024;
    r.gen_len = 512;
    r.step_s = 0.001 * b;
    r.total_s = 0.5 * b;
    r.extra_json = R"({"engine":"cuda"})";
    rows.push_back(r);
  }
  rows.push_back(rows[0]);
  rows.back().table = "step";
  rows.back().created_at = 42;
  ASSERT_OK_AND_ASSIGN(std::vector<Id> ids, store_->InsertBenchRows(rows));
  ASSERT_EQ(ids.size(), 4u);
  ASSERT_OK_AND_ASSIGN(std::vector<BenchRow> paper, store_->ListBenchRows({.table = "paper"}));
  ASSERT_EQ(paper.size(), 3u);
  EXPECT_EQ(paper[0].batch, 1);
  EXPECT_EQ(paper[2].batch, 4);
  EXPECT_DOUBLE_EQ(paper[2].step_s, 0.004);
  EXPECT_DOUBLE_EQ(paper[2].total_s, 2.0);
  EXPECT_EQ(paper[2].prompt_len, 512);
  EXPECT_EQ(paper[2].context_len, 1024);
  EXPECT_EQ(paper[2].gen_len, 512);
  EXPECT_EQ(paper[2].extra_json, R"({"engine":"cuda"})");
  EXPECT_GT(paper[2].created_at, 1.6e9);
  ASSERT_OK_AND_ASSIGN(std::vector<BenchRow> step,
                       store_->ListBenchRows({.table = "step", .model = "llamba-1b"}));
  ASSERT_EQ(step.size(), 1u);
  EXPECT_DOUBLE_EQ(step[0].created_at, 42);
  ASSERT_OK_AND_ASSIGN(std::vector<BenchRow> none, store_->ListBenchRows({.device = "A100"}));
  EXPECT_TRUE(none.empty());
  rows[0].batch = 0;
  EXPECT_EQ(store_->InsertBenchRows(rows).status().code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(std::vector<BenchRow> all, store_->ListBenchRows({}));
  EXPECT_EQ(all.size(), 4u);  // the failed batch left nothing
}

TEST_F(StoreTest, RunInTransactionRollsBackEverything) {
  ASSERT_OK_AND_ASSIGN(CreatedExperiment c, store_->CreateExperiment(SmallExperiment()));
  Status st = store_->RunInTransaction([&]() -> Status {
    TTC_RETURN_IF_ERROR(store_->UpsertWorker({.id = "w"}));
    auto u = store_->ClaimUnit({.worker_id = "w", .now = 0});
    if (!u.ok()) return u.status();
    return Status(StatusCode::kInternal, "changed my mind");
  });
  EXPECT_EQ(st.message(), "changed my mind");
  EXPECT_EQ(store_->GetWorker("w").status().code(), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(ExperimentStatus es, store_->GetExperimentStatus(c.experiment_id));
  EXPECT_EQ(es.units_leased, 0);

  ASSERT_OK(store_->RunInTransaction([&]() -> Status {
    TTC_RETURN_IF_ERROR(store_->UpsertWorker({.id = "w"}));
    return store_->Heartbeat("w", {.state = WorkerState::kBusy, .at = 5});
  }));
  ASSERT_OK_AND_ASSIGN(Worker w, store_->GetWorker("w"));
  EXPECT_EQ(w.state, WorkerState::kBusy);
}

TEST(StoreNames, RoundTrip) {
  for (auto s : {UnitState::kPending, UnitState::kLeased, UnitState::kDone, UnitState::kFailed,
                 UnitState::kCancelled}) {
    EXPECT_EQ(ParseUnitState(Name(s)), s);
  }
  for (auto s : {WorkerState::kIdle, WorkerState::kLoading, WorkerState::kBusy,
                 WorkerState::kDraining, WorkerState::kOffline}) {
    EXPECT_EQ(ParseWorkerState(Name(s)), s);
  }
  for (auto s : {ExperimentState::kActive, ExperimentState::kCancelled, ExperimentState::kDone}) {
    EXPECT_EQ(ParseExperimentState(Name(s)), s);
  }
  EXPECT_EQ(ParseUnitKind("score"), UnitKind::kScore);
  EXPECT_FALSE(ParseUnitKind("bogus").has_value());
  EXPECT_STREQ(Name(InsertOutcome::kStale), "stale");
}

}  // namespace
}  // namespace ttc::store::testing
