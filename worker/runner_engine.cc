// The engine-backed UnitRunner (see worker/runner.h).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <thread>

#include "engine/chat.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/score.h"
#include "engine/tokenizer.h"
#include "experiments/prompt.h"
#include "worker/runner.h"

namespace ttc::worker {

namespace {

int64_t PhysicalMemoryBytes() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

// Errors that mean the accelerator itself is unusable (sticky CUDA errors); the worker exits so the
// scheduler can place it elsewhere. On the CPU backend there are none.
bool IsDeviceError(const Status& st, bool cpu) {
  if (cpu || st.ok()) return false;
  const std::string& m = st.message();
  for (const char* needle :
       {"illegal address", "ECC", "unspecified launch failure", "device-side assert", "CUDA error",
        "cudaError", "Xid", "device not ready", "uncorrectable"}) {
    if (m.find(needle) != std::string::npos) return true;
  }
  return false;
}

class EngineRunner : public UnitRunner {
 public:
  explicit EngineRunner(const RunnerOptions& options) : options_(options) {}

  RunOutcome Run(const protocol::Assign& unit, const RunHooks& hooks) override {
    Status st = EnsureModel(unit);
    if (!st.ok())
      return {st.WithContext("loading " + unit.model_path), IsDeviceError(st, options_.cpu)};
    st = unit.kind == "score" ? RunScore(unit, hooks) : RunGenerate(unit, hooks);
    return {st, IsDeviceError(st, options_.cpu)};
  }

  std::string loaded_model() const override { return model_ ? loaded_path_ : ""; }
  std::string device() const override {
    const int threads = options_.threads > 0
                            ? options_.threads
                            : static_cast<int>(std::thread::hardware_concurrency());
    return options_.cpu ? engine::CpuDeviceName(threads) : fmt::format("cuda:{}", options_.gpu);
  }
  int64_t memory_bytes() const override { return options_.cpu ? PhysicalMemoryBytes() : 0; }

 private:
  std::string ResolvePath(const std::string& path) const {
    std::filesystem::path p(path);
    if (p.is_relative() && !options_.models_dir.empty())
      p = std::filesystem::path(options_.models_dir) / p;
    return p.lexically_normal().string();
  }

  Status EnsureModel(const protocol::Assign& unit) {
    std::string path = ResolvePath(unit.model_path);
    std::string key = path + "|" + unit.model_options.dump();
    if (model_ && loaded_key_ == key) return Status::Ok();
    model_.reset();  // free the old model before loading the next one
    engine::ModelOptions mo;
    mo.backend = options_.cpu ? engine::BackendKind::kCpu : engine::BackendKind::kCuda;
    mo.threads = options_.threads;
    mo.device = std::max(0, options_.gpu);
    std::string rope = unit.model_options.value("rope", "auto");
    if (rope == "llama3") mo.rope_override = engine::RopeType::kLlama3;
    if (rope == "plain") mo.rope_override = engine::RopeType::kPlain;
    // Absent in units planned before the field existed: f32.
    TTC_ASSIGN_OR_RETURN(mo.state_dtype,
                         engine::ParseStateDType(unit.model_options.value("state_dtype", "f32")));
    // The grid's dtype: the precision of the weight matrices (engine::WeightDType; the CUDA backend
    // refuses all but bf16). The planner has always stored it; without it, the backend's own.
    if (const std::string dt = unit.model_options.value("dtype", ""); !dt.empty()) {
      TTC_ASSIGN_OR_RETURN(mo.weight_dtype, engine::ParseWeightDType(dt));
    }
    spdlog::info("loading model {} ({})", unit.model_name, path);
    TTC_ASSIGN_OR_RETURN(model_, engine::LoadModel(path, mo));
    if (model_->tokenizer() == nullptr) {
      model_.reset();
      return FailedPrecondition("{} has no tokenizer.json: the worker needs it to render prompts",
                                path);
    }
    loaded_key_ = key;
    loaded_path_ = unit.model_path;
    prm_template_.reset();
    return Status::Ok();
  }

  Result<std::vector<int32_t>> EncodePrompt(const protocol::Assign& unit,
                                            const protocol::GenerateItem& item) {
    const engine::Tokenizer& tok = *model_->tokenizer();
    if (unit.chat_template == "none") {
      std::vector<experiments::PromptMessage> msgs;
      for (const auto& m : item.messages) msgs.push_back({m.role, m.content});
      engine::EncodeOptions eo;
      eo.recognize_special = false;
      eo.add_bos = tok.bos_id().has_value();
      return tok.Encode(experiments::PlainPromptText(msgs), eo);
    }
    TTC_ASSIGN_OR_RETURN(engine::ChatTemplate tmpl, engine::ParseChatTemplate(unit.chat_template));
    engine::ChatOptions co;
    co.chat_template = tmpl;
    if (!unit.date.empty()) co.date = unit.date;
    co.add_generation_prompt = true;
    std::vector<engine::ChatMessage> msgs;
    for (const auto& m : item.messages) msgs.push_back({m.role, m.content});
    return engine::EncodeChat(tok, msgs, co);
  }

  Status RunGenerate(const protocol::Assign& unit, const RunHooks& hooks) {
    // Contiguous runs of the requested sample indices become prompt requests (a retry may ask for a
    // sparse set).
    struct Run {
      size_t item;
      int64_t first;
      int count;
    };
    std::vector<Run> runs;
    std::vector<std::vector<int32_t>> prompt_ids(unit.items.size());
    for (size_t i = 0; i < unit.items.size(); ++i) {
      TTC_ASSIGN_OR_RETURN(prompt_ids[i], EncodePrompt(unit, unit.items[i]));
      std::vector<int64_t> idx = unit.items[i].sample_indices;
      std::sort(idx.begin(), idx.end());
      idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
      for (size_t k = 0; k < idx.size();) {
        size_t j = k + 1;
        while (j < idx.size() && idx[j] == idx[j - 1] + 1) ++j;
        runs.push_back({i, idx[k], static_cast<int>(j - k)});
        k = j;
      }
    }
    int max_batch = unit.model_options.value("max_batch", 0);
    if (max_batch <= 0) max_batch = 1 << 30;
    // Memory plan of a device backend: never more sequences in one batch than fit now (larger
    // units run as several batches), and a clear error when not even one does.
    {
      int64_t longest = 0;
      for (const auto& ids : prompt_ids) longest = std::max<int64_t>(longest, ids.size());
      const int64_t new_tokens = std::max<int64_t>(1, unit.max_new_tokens);
      const int64_t fit = model_->backend().PlanMaxSequences(
          model_->config(), longest, new_tokens, static_cast<int64_t>(unit.items.size()));
      if (fit == 0) {
        return FailedPrecondition(
            "model {}: not even one sequence of {} prompt + {} new tokens fits in the free "
            "memory of {}",
            unit.model_name, longest, new_tokens, device());
      }
      if (fit > 0 && fit < max_batch) {
        spdlog::info(
            "{}: at most {} sequences of {} + {} tokens fit in device memory; batches split",
            unit.model_name, fit, longest, new_tokens);
        max_batch = static_cast<int>(std::min<int64_t>(fit, 1 << 30));
      }
    }
    engine::SamplingParams sp;
    sp.temperature = static_cast<float>(unit.temperature);
    sp.greedy = unit.temperature <= 0;
    sp.top_k = static_cast<int>(unit.top_k);
    sp.top_p = static_cast<float>(unit.top_p);
    size_t r = 0;
    int64_t split_offset = 0;  // part of runs[r] already scheduled
    while (r < runs.size()) {
      if (hooks.cancel && hooks.cancel->load()) return Unavailable("unit cancelled");
      engine::GenerateRequest req;
      req.sampling = sp;
      req.max_new_tokens = std::max<int64_t>(1, unit.max_new_tokens);
      std::vector<size_t> req_item;
      int in_batch = 0;
      while (r < runs.size() && in_batch < max_batch) {
        int left = runs[r].count - static_cast<int>(split_offset);
        int take = std::min(left, max_batch - in_batch);
        const auto& item = unit.items[runs[r].item];
        req.prompts.push_back(
            {prompt_ids[runs[r].item], item.seed, runs[r].first + split_offset, take});
        req_item.push_back(runs[r].item);
        in_batch += take;
        if (take == left) {
          ++r;
          split_offset = 0;
        } else {
          split_offset += take;
        }
      }
      // Progress per decode step (liveness for the coordinator, even while every sample of a
      // long unit is still running) and a prompt stop when the unit is cancelled or handed back.
      req.on_step = [&](int64_t drawn) {
        if (hooks.tokens) hooks.tokens->fetch_add(drawn);
        return !(hooks.cancel && hooks.cancel->load());
      };
      req.on_sample_done = [&](const engine::SampleResult& s) {
        protocol::SampleResult out;
        out.problem_index = unit.items[req_item[s.prompt_index]].problem_index;
        out.sample_index = s.sample_index;
        out.text = s.text;
        out.num_tokens = s.generated_tokens;
        out.finish_reason = engine::FinishReasonName(s.finish);
        out.prefill_s = s.prefill_s;
        out.decode_s = s.decode_s;
        out.steps = s.generated_tokens;
        out.extra = {{"prompt_tokens", s.prompt_tokens},
                     {"stop_id", s.stop_id},
                     {"batch", in_batch},
                     {"device", device()}};
        if (hooks.on_sample) hooks.on_sample(std::move(out));
      };
      TTC_ASSIGN_OR_RETURN(engine::GenerateResult result, engine::Generate(*model_, req));
      (void)result;
    }
    return Status::Ok();
  }

  // The PRM's chat template: from the grid, or (auto) from the PRM's tokenizer_config.json
  // (evaluation.md §6.3).
  Result<engine::ChatTemplate> PrmTemplate(const protocol::Assign& unit) {
    if (unit.prm_chat_template != "auto" && !unit.prm_chat_template.empty()) {
      return engine::ParseChatTemplate(unit.prm_chat_template);
    }
    if (prm_template_) return *prm_template_;
    std::filesystem::path cfg =
        std::filesystem::path(ResolvePath(unit.model_path)) / "tokenizer_config.json";
    engine::ChatTemplate t = engine::ChatTemplate::kTokenizerConfig;
    if (std::filesystem::exists(cfg)) {
      TTC_ASSIGN_OR_RETURN(engine::TokenizerConfig tc, engine::LoadTokenizerConfig(cfg));
      if (tc.is_llama3_stock) t = engine::ChatTemplate::kLlama3Stock;
    }
    prm_template_ = t;
    return t;
  }

  Status RunScore(const protocol::Assign& unit, const RunHooks& hooks) {
    const engine::Tokenizer& tok = *model_->tokenizer();
    TTC_ASSIGN_OR_RETURN(engine::ChatTemplate tmpl, PrmTemplate(unit));
    engine::EncodeOptions plain;
    plain.recognize_special = false;
    TTC_ASSIGN_OR_RETURN(auto plus_ids, tok.Encode("+", plain));
    TTC_ASSIGN_OR_RETURN(auto minus_ids, tok.Encode("-", plain));
    if (plus_ids.empty() || minus_ids.empty())
      return FailedPrecondition("the PRM tokenizer cannot encode '+'/'-'");
    const int32_t plus = plus_ids.back();
    const int32_t minus = minus_ids.back();
    // Every item's request first, then the requests in batches of the backend's size
    // (engine::ScoreInBatches, Backend::PrefillBatchTokens): one forward over several samples'
    // conversations fills a GPU where one sample of a few hundred tokens cannot (issue 9: "PRM
    // scoring still fills the GPU"), and the conversations of one question, made adjacent here,
    // run their common beginning (the header and the question) once per batch.
    std::vector<size_t> order(unit.score_items.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return unit.score_items[a].problem_index < unit.score_items[b].problem_index;
    });
    std::vector<engine::ScoreRequest> reqs;
    reqs.reserve(unit.score_items.size());
    for (const size_t n : order) {
      const protocol::ScoreItem& item = unit.score_items[n];
      if (hooks.cancel && hooks.cancel->load()) return Unavailable("unit cancelled");
      // evaluation.md §6.2-6.3: steps split on "\n\n"; the first user turn is "question + ' ' +
      // step 1"; every assistant turn is "+"; no system prompt.
      std::vector<std::string> steps = SplitSteps(item.completion);
      std::vector<engine::ChatMessage> conv;
      for (size_t k = 0; k < steps.size(); ++k) {
        conv.push_back({"user", k == 0 ? item.question + " " + steps[0] : steps[k]});
        conv.push_back({"assistant", "+"});
      }
      engine::ChatOptions co;
      co.chat_template = tmpl;
      co.add_generation_prompt = false;
      TTC_ASSIGN_OR_RETURN(std::vector<int32_t> ids, engine::EncodeChat(tok, conv, co));
      // The score position of step k is the last token of the prefix that ends with the k-th
      // assistant header: every rendering is a prefix of the longer one, so one forward pass over
      // `ids` reads all of them (§6.4).
      engine::ScoreRequest req;
      req.token_ids = ids;
      req.candidate_ids = {plus, minus};
      engine::ChatOptions prefix_opts = co;
      prefix_opts.add_generation_prompt = true;
      for (size_t k = 0; k < steps.size(); ++k) {
        std::span<const engine::ChatMessage> head(conv.data(), 2 * k + 1);
        TTC_ASSIGN_OR_RETURN(std::vector<int32_t> prefix,
                             engine::EncodeChat(tok, head, prefix_opts));
        if (prefix.size() > ids.size() || !std::equal(prefix.begin(), prefix.end(), ids.begin())) {
          return Internal("sample {}: PRM rendering of step {} is not a prefix of the conversation",
                          item.sample_id, k);
        }
        req.queries.push_back({static_cast<int64_t>(prefix.size()) - 1, plus});
      }
      reqs.push_back(std::move(req));
    }
    auto forwards = engine::ScoreInBatches(
        *model_, reqs, model_->backend().PrefillBatchTokens(),
        [&](size_t i, engine::ScoreResult&& res) {
          protocol::ScoresResult out;
          out.sample_id = unit.score_items[order[i]].sample_id;
          for (size_t k = 0; k < reqs[i].queries.size(); ++k) {  // one query per step
            out.scores.push_back(engine::PlusProbability(res.candidate_logits[2 * k],
                                                         res.candidate_logits[2 * k + 1]));
          }
          if (hooks.tokens) hooks.tokens->fetch_add(static_cast<int64_t>(reqs[i].token_ids.size()));
          if (hooks.on_scores) hooks.on_scores(std::move(out));
        },
        [&] { return hooks.cancel && hooks.cancel->load(); });
    if (!forwards.ok()) {
      if (hooks.cancel && hooks.cancel->load()) return Unavailable("unit cancelled");
      return forwards.status().WithContext("PRM scoring");
    }
    return Status::Ok();
  }

  RunnerOptions options_;
  std::unique_ptr<engine::Model> model_;
  std::string loaded_key_;
  std::string loaded_path_;
  std::optional<engine::ChatTemplate> prm_template_;
};

}  // namespace

std::unique_ptr<UnitRunner> MakeEngineRunner(const RunnerOptions& options) {
  return std::make_unique<EngineRunner>(options);
}

}  // namespace ttc::worker
