// `ttc bench`: the paper's speed protocol on the engine. For each batch size B, one random prompt
// of --prompt-len tokens is prefilled once (timed apart), its state is forked into B slots, and the
// B sequences decode --gen-len tokens in lockstep (fixed length, no stop ids), each step what
// engine/generate does: the forward plus a temperature-1 draw per row on the backend, the drawn ids
// fed back (pipelined where Generate pipelines). Prints seconds, tokens/s, achieved GB/s and the
// fraction of two rooflines of engine-perf.md §1.3 on measured H100 figures (3.0 TB/s, 790 TF/s):
// every row reading the prompt's KV itself (the paper's engines), and the prompt's KV read once per
// step (§1.4's right-hand figures: what an engine that shares the prefix, as ttc's does, can
// reach). With --db it stores the step-time table ("step" rows) and the paper rows. --config offers
// the six configurations of engine-perf.md §1.1 with random bf16 weights, so it runs without
// downloads.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "engine/config.h"
#include "engine/model.h"
#include "store/store.h"
#include "tools/cli/command.h"
#ifdef TTC_HAVE_CUDA_BACKEND
#include "engine/cuda/cuda_backend.h"
#endif

namespace ttc::cli {

namespace {

constexpr double kMeasuredBandwidth = 3.0e12;  // B/s, D2D copy on our H100 (engine-perf.md §1.5)
constexpr double kMeasuredFlops = 790e12;      // bf16 dense GEMM, same source

constexpr const char* kRope =
    R"("rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})";

std::string LlamaJson(int d, int layers, int heads, int hd) {
  return fmt::format(
      R"({{"architectures": ["LlamaForCausalLM"], "hidden_size": {}, "intermediate_size": 8192,
          "num_attention_heads": {}, "num_key_value_heads": 8, "head_dim": {}, "num_hidden_layers": {},
          "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "vocab_size": 128256, "bos_token_id": 128000,
          "eos_token_id": 128001, {}}})",
      d, heads, hd, layers, kRope);
}

// The six configurations of engine-perf.md §1.1. MambaInLlama's attention-layer positions are not
// published (the counts 4/16 and 6/28 are inferred there); evenly spaced positions are used, which
// does not change the cost of a step.
Result<engine::ModelConfig> NamedConfig(const std::string& name) {
  if (name == "llama-3.2-1b") return engine::ParseModelConfig(LlamaJson(2048, 16, 32, 64));
  if (name == "llama-3.2-3b") return engine::ParseModelConfig(LlamaJson(3072, 28, 24, 128));
  if (name == "mambainllama-1b") {
    return engine::ParseModelConfig(LlamaJson(2048, 16, 32, 64),
                                    R"({"d_model": 2048, "ssm_cfg": {"expand": 1},
        "rms_norm_eps": 1e-5, "d_inner": 2048, "d_xb": 512, "intermediate_size": 8192, "n_layer": 16,
        "attn_layers": [1, 5, 9, 13]})");
  }
  if (name == "mambainllama-3b") {
    return engine::ParseModelConfig(LlamaJson(3072, 28, 24, 128),
                                    R"({"d_model": 3072, "ssm_cfg": {"expand": 1},
        "rms_norm_eps": 1e-5, "d_inner": 3072, "d_xb": 1024, "intermediate_size": 8192, "n_layer": 28,
        "attn_layers": [2, 7, 12, 17, 22, 27]})");
  }
  auto llamba = [](int d, int layers) {
    return fmt::format(
        R"({{"model_type": "llamba", "vocab_size": 128256, "tie_embeddings": true, "pad_vocab_size_multiple": 8,
            "lm_head_bias": false, "d_model": {}, "n_layer": {}, "resid_dropout": 0.0, "norm_epsilon": 1e-5,
            "mlp_cfg": {{"intermediate_size": 8192, "bias": false, "act_fn": "silu"}},
            "ssm_cfg": {{"d_state": 64, "n_v_heads": 32, "n_qk_heads": 32, "expand": 1, "chunk_size": 128,
                        "activation": "identity", "bias": false}}}})",
        d, layers);
  };
  if (name == "llamba-1b") return engine::ParseModelConfig(llamba(2048, 16));
  if (name == "llamba-3b") return engine::ParseModelConfig(llamba(3072, 28));
  return InvalidArgument(
      "bench: unknown --config '{}' (llama-3.2-1b, llama-3.2-3b, mambainllama-1b, mambainllama-3b, "
      "llamba-1b, "
      "llamba-3b)",
      name);
}

// Bytes and FLOPs of one decode step at mean context `ctx` (engine-perf.md §1.3; bf16 weights,
// KV and state as that table assumes), and the roofline time on the measured H100 figures, with
// every row reading its whole context (kv_bytes) or the first `shared` positions, which all rows
// share, read once (kv_shared_bytes).
struct StepCost {
  double gemm_bytes = 0, gemm_flops = 0, kv_bytes = 0, kv_shared_bytes = 0, attn_flops = 0,
         state_bytes = 0;
  double total_bytes() const { return gemm_bytes + kv_bytes + state_bytes; }
  double roofline_s(bool shared_prefix = false) const {
    const double kv = shared_prefix ? kv_shared_bytes : kv_bytes;
    return std::max(gemm_flops / kMeasuredFlops, gemm_bytes / kMeasuredBandwidth) +
           std::max(attn_flops / kMeasuredFlops, kv / kMeasuredBandwidth) +
           state_bytes / kMeasuredBandwidth;
  }
};

StepCost CostOf(const engine::ModelConfig& c, int64_t params, int64_t B, double ctx,
                double shared) {
  StepCost s;
  const double d = static_cast<double>(c.hidden_size),
               ffn = static_cast<double>(c.intermediate_size);
  double act_per_token = 0;
  for (engine::MixerKind k : c.layer_mixers) {
    if (k == engine::MixerKind::kAttention) {
      act_per_token += 12 * d + 2 * ffn;
      const double per_position = 2.0 * c.num_kv_heads * c.head_dim * 2;
      s.kv_bytes += B * ctx * per_position;
      s.kv_shared_bytes += (shared + B * (ctx - shared)) * per_position;
      s.attn_flops += 4.0 * c.num_heads * c.head_dim * ctx * B;
    } else {
      act_per_token += 10 * d + static_cast<double>(c.in_proj_rows(k)) + 2 * ffn;
      const bool mamba1 = k == engine::MixerKind::kMamba1Mil || k == engine::MixerKind::kMamba1;
      const double ssm = mamba1 ? c.d_inner * c.d_state : c.ssm_heads * c.ssm_head_dim * c.d_state;
      const double conv = static_cast<double>(c.conv_channels(k)) * c.d_conv;
      s.state_bytes += 2.0 * B * (ssm + conv) * 2;
    }
  }
  s.gemm_bytes = 2.0 * params + B * act_per_token * 2 + 2.0 * B * c.vocab_size * 4;
  s.gemm_flops = 2.0 * B * params;
  return s;
}

// Batch sizes 1..kMaxBatch, comma-separated; empty on anything else.
constexpr int kMaxBatch = 1 << 20;
std::vector<int> ParseBatches(const std::string& s) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    int v = 0;
    const char* first = s.data() + pos;
    const char* last = s.data() + comma;
    const auto [end, ec] = std::from_chars(first, last, v);
    if (first == last || ec != std::errc() || end != last || v < 1 || v > kMaxBatch) return {};
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

struct BenchArgs {
  std::string model, config, batches = "1,16,64,256,512", json, db, backend, label,
                             pipeline = "auto", state_dtype = "f32";
  bool random_weights = false;
  int prompt_len = 512, gen_len = 512, threads = 0, warmup_steps = 2;
  uint64_t seed = 1;
};

int BenchFail(const Status& st) {
  std::cerr << "bench: " << st.ToString() << "\n";
  return kExitFailure;
}

// Decodes `b` sequences forked from one prefilled prompt for gen_len steps; returns seconds. Each
// step is what Generate does: the forward plus a temperature-1 draw per row on the backend, the
// drawn ids fed back, pipelined where Generate pipelines (engine::DecodePipeline: each step is
// launched with the previous step's draws still on the backend, and collected one step later);
// stop tokens are ignored (fixed length).
Result<double> RunChunk(engine::Model& model, int b, const std::vector<int32_t>& prompt,
                        int gen_len, bool pipelined, double* prefill_s) {
  using Clock = std::chrono::steady_clock;
  const int64_t L = static_cast<int64_t>(prompt.size());
  const engine::SamplingParams sampling{.temperature = 1.0f};
  TTC_ASSIGN_OR_RETURN(auto state, model.NewState(b + 1));
  auto t0 = Clock::now();
  std::vector<engine::SampleKey> keys(static_cast<size_t>(b));
  for (int s = 0; s < b; ++s) keys[static_cast<size_t>(s)] = {1, static_cast<uint64_t>(s), 0};
  std::vector<int32_t> tokens(static_cast<size_t>(b));
  std::vector<int64_t> last = {L - 1};
  TTC_RETURN_IF_ERROR(model.ForwardSample(state.get(), engine::BatchLayout{{{b, 0, L}}}, prompt,
                                          last, sampling, keys, tokens));
  for (int s = 0; s < b; ++s) state->CopySlot(b, s);
  *prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  engine::BatchLayout batch;
  std::vector<int32_t> next(static_cast<size_t>(b));
  std::vector<int64_t> rows(static_cast<size_t>(b));
  for (int s = 0; s < b; ++s) rows[static_cast<size_t>(s)] = s;
  auto t1 = Clock::now();
  for (int step = 0; step < gen_len; ++step) {
    batch.seqs.clear();
    for (int s = 0; s < b; ++s) {
      batch.seqs.push_back({s, L + step, 1});
      keys[static_cast<size_t>(s)].step = static_cast<uint64_t>(step + 1);
    }
    if (!pipelined) {
      TTC_RETURN_IF_ERROR(
          model.ForwardSample(state.get(), batch, tokens, rows, sampling, keys, next));
      tokens.swap(next);
      continue;
    }
    // Row s takes draw s of the previous step (the first step: the prefill's draws, on the host).
    if (step == 0) {
      TTC_RETURN_IF_ERROR(
          model.ForwardSampleAsync(state.get(), batch, tokens, {}, rows, sampling, keys));
    } else {
      TTC_RETURN_IF_ERROR(
          model.ForwardSampleAsync(state.get(), batch, {}, rows, rows, sampling, keys));
      TTC_RETURN_IF_ERROR(model.CollectSample(next));
    }
  }
  if (pipelined) TTC_RETURN_IF_ERROR(model.CollectSample(next));
  return std::chrono::duration<double>(Clock::now() - t1).count();
}

int RunBench(const BenchArgs& a) {
  if (a.model.empty() == a.config.empty())
    return UsageError("bench: give exactly one of --model and --config");
  if (a.prompt_len < 1 || a.gen_len < 1)
    return UsageError("bench: --prompt-len and --gen-len must be >= 1");
  if (a.warmup_steps < 0) return UsageError("bench: --warmup-steps must be >= 0");
  if (a.pipeline != "auto" && a.pipeline != "on" && a.pipeline != "off")
    return UsageError("bench: --pipeline must be auto, on or off");
  const std::vector<int> batches = ParseBatches(a.batches);
  if (batches.empty())
    return UsageError(
        fmt::format("bench: --batch '{}' must be a comma-separated list of integers from 1 to {}",
                    a.batches, kMaxBatch));
  engine::ModelOptions opts;
  opts.threads = a.threads;
  opts.load_tokenizer = false;
  std::string backend = a.backend;
  if (backend.empty()) {
#ifdef TTC_HAVE_CUDA_BACKEND
    backend = engine::CudaDeviceCount() > 0 ? "cuda" : "cpu";
#else
    backend = "cpu";
#endif
  }
  if (backend == "cuda") {
    opts.backend = engine::BackendKind::kCuda;
  } else if (backend != "cpu") {
    return UsageError("bench: --backend must be cpu or cuda");
  }
  auto state_dtype = engine::ParseStateDType(a.state_dtype);
  if (!state_dtype.ok())
    return UsageError("bench: --state-dtype: " + state_dtype.status().message());
  opts.state_dtype = *state_dtype;

  // The outputs are checked before the measurement, so that a bad path fails now and not after
  // minutes of benchmarking (appending nothing leaves an existing file as it is).
  if (!a.json.empty() && !std::ofstream(a.json, std::ios::app)) {
    return BenchFail(IoError("--json {}: cannot open for writing", a.json));
  }
  std::unique_ptr<store::Store> db;
  if (!a.db.empty()) {
    auto st = store::Store::Open(a.db);
    if (!st.ok()) return BenchFail(st.status());
    db = std::move(st).value();
  }

  std::unique_ptr<engine::Model> model;
  std::string label = a.label;
  if (!a.config.empty()) {
    auto config = NamedConfig(a.config);
    if (!config.ok()) return UsageError(config.status().message());
    auto m = engine::RandomModel(*config, a.seed, opts);
    if (!m.ok()) return BenchFail(m.status());
    model = std::move(m).value();
    if (label.empty()) label = a.config;
  } else if (a.random_weights) {
    auto config = engine::LoadModelConfig(a.model);
    if (!config.ok()) return BenchFail(config.status());
    auto m = engine::RandomModel(*config, a.seed, opts);
    if (!m.ok()) return BenchFail(m.status());
    model = std::move(m).value();
  } else {
    auto m = engine::LoadModel(a.model, opts);
    if (!m.ok()) return BenchFail(m.status());
    model = std::move(m).value();
  }
  if (label.empty()) label = std::filesystem::path(a.model).filename().string();
  const auto& cfg = model->config();
  std::cout << "model: " << model->Describe() << "\n";
  const bool pipelined =
      a.pipeline == "on" || (a.pipeline == "auto" && model->backend().PrefersPipelinedDecode());
  std::cout << fmt::format(
      "protocol: prompt {} tokens prefilled once and forked, {} decode steps per batch{}, "
      "prefill excluded; roofline: engine-perf.md 1.3 at 3.0 TB/s, 790 TF/s (H100), every row "
      "reading the prompt's KV (\"roofline s\") or the prompt's KV read once per step "
      "(\"shared s\")\n",
      a.prompt_len, a.gen_len, pipelined ? " (pipelined)" : "");
  std::string device = model->backend().name();

  std::mt19937_64 rng(a.seed);
  std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_len));
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(cfg.vocab_size));

  const double ctx = a.prompt_len + (a.gen_len - 1) / 2.0;
  std::cout << fmt::format("{:>6} {:>9} {:>11} {:>9} {:>9} {:>11} {:>8} {:>9} {:>9} {:>7}  {}\n",
                           "batch", "seconds", "tokens/s", "ms/step", "GB/s", "roofline s",
                           "of roof", "shared s", "of shared", "prefill", "note");
  nlohmann::json rows = nlohmann::json::array();
  std::vector<store::BenchRow> db_rows;
  std::set<int> warmed;  // batch shapes that had their warm-up steps
  for (int B : batches) {
    int chunk = B;
    std::string note;
#ifdef TTC_HAVE_CUDA_BACKEND
    if (opts.backend == engine::BackendKind::kCuda) {
      // Every sequence of the batch forks from the one prompt: its positions are shared.
      auto plan = engine::PlanCudaBatch(cfg, a.prompt_len + a.gen_len, opts.device, a.prompt_len, 1,
                                        opts.state_dtype);
      if (!plan.ok()) return BenchFail(plan.status());
      if (plan->max_batch < 1) {
        return BenchFail(InvalidArgument(
            "not even one sequence of {} tokens fits in {:.1f} GB free device memory",
            a.prompt_len + a.gen_len, plan->free_bytes / 1e9));
      }
      if (B > plan->max_batch) {
        chunk = static_cast<int>(plan->max_batch);
        note = fmt::format("split: {} fit ({:.1f} MB/seq, {:.1f} GB free)", chunk,
                           plan->per_sequence_bytes / 1e6, plan->free_bytes / 1e9);
      }
    }
#endif
    double seconds = 0, prefill = 0;
    for (int done = 0; done < B; done += chunk) {
      const int b = std::min(chunk, B - done);
      double p = 0;
      if (a.warmup_steps > 0 && warmed.insert(b).second) {
        // Untimed, once per batch shape: its first steps load its kernels (CUDA lazy loading,
        // cuBLAS's heuristics) and warm the allocator; the timed chunk starts from a fresh prefill.
        double ignored = 0;
        auto w =
            RunChunk(*model, b, prompt, std::min(a.warmup_steps, a.gen_len), pipelined, &ignored);
        if (!w.ok()) return BenchFail(w.status());
      }
      auto s = RunChunk(*model, b, prompt, a.gen_len, pipelined, &p);
      if (!s.ok()) return BenchFail(s.status());
      seconds += *s;
      prefill += p;
    }
    const StepCost cost = CostOf(cfg, model->parameter_count(), B, ctx, a.prompt_len);
    const double step_s = seconds / a.gen_len;
    const double roof_s = cost.roofline_s() * a.gen_len;
    const double shared_s = cost.roofline_s(/*shared_prefix=*/true) * a.gen_len;
    const double gbs = cost.total_bytes() / step_s / 1e9;
    const double tps = static_cast<double>(B) * a.gen_len / seconds;
    std::cout << fmt::format(
        "{:>6} {:>9.3f} {:>11.0f} {:>9.3f} {:>9.0f} {:>11.3f} {:>7.0f}% {:>9.3f} {:>8.0f}% "
        "{:>7.3f} "
        " {}\n",
        B, seconds, tps, step_s * 1e3, gbs, roof_s, 100 * roof_s / seconds, shared_s,
        100 * shared_s / seconds, prefill, note);
    std::cout.flush();
    rows.push_back({{"model", label},
                    {"device", device},
                    {"batch", B},
                    {"prompt_len", a.prompt_len},
                    {"gen_len", a.gen_len},
                    {"seconds", seconds},
                    {"tokens_per_s", tps},
                    {"step_s", step_s},
                    {"achieved_gbs", gbs},
                    {"roofline_s", roof_s},
                    {"fraction_of_roofline", roof_s / seconds},
                    {"roofline_shared_s", shared_s},
                    {"fraction_of_shared_roofline", shared_s / seconds},
                    {"prefill_s", prefill},
                    {"state_dtype", std::string(engine::StateDTypeName(opts.state_dtype))},
                    {"note", note}});
    const std::string extra = rows.back().dump();
    db_rows.push_back({.table = "paper",
                       .model = label,
                       .device = device,
                       .batch = B,
                       .prompt_len = a.prompt_len,
                       .context_len = a.prompt_len + a.gen_len,
                       .gen_len = a.gen_len,
                       .step_s = step_s,
                       .total_s = seconds,
                       .extra_json = extra});
    db_rows.push_back({.table = "step",
                       .model = label,
                       .device = device,
                       .batch = B,
                       .prompt_len = a.prompt_len,
                       .context_len = static_cast<int>(std::lround(ctx)),
                       .gen_len = a.gen_len,
                       .step_s = step_s,
                       .total_s = 0,
                       .extra_json = extra});
  }
  if (!a.json.empty()) {
    // Written next to the target and renamed over it: a failed write leaves the old file.
    const std::string tmp = a.json + ".tmp";
    {
      std::ofstream out(tmp);
      out << rows.dump(2) << "\n";
      out.flush();
      if (!out) return BenchFail(IoError("--json {}: cannot write", tmp));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, a.json, ec);
    if (ec) return BenchFail(IoError("--json {}: {}", a.json, ec.message()));
  }
  if (db) {
    auto ids = db->InsertBenchRows(db_rows);
    if (!ids.ok()) return BenchFail(ids.status());
    std::cout << "stored " << ids->size() << " bench rows in " << a.db << "\n";
  }
  return kExitOk;
}

void RegisterBench(CLI::App& app, CommandTable& table) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = AddCommand(app, table, "bench",
                             "Decode-throughput benchmark (paper protocol, roofline fraction)",
                             [a] { return RunBench(*a); });
  sub->add_option("--model", a->model, "Model folder (real weights unless --random-weights)");
  sub->add_option(
      "--config", a->config,
      "Built-in configuration with random weights: llama-3.2-1b, llama-3.2-3b, mambainllama-1b, "
      "mambainllama-3b, llamba-1b, llamba-3b");
  sub->add_flag("--random-weights", a->random_weights,
                "With --model: random bf16 weights of its config");
  sub->add_option("--batch", a->batches, "Comma-separated batch sizes")->capture_default_str();
  sub->add_option("--prompt-len", a->prompt_len, "Prompt tokens")->capture_default_str();
  sub->add_option("--gen-len", a->gen_len, "Decode steps per batch")->capture_default_str();
  sub->add_option("--warmup-steps", a->warmup_steps,
                  "Untimed decode steps of each batch size before the timed run (0 = none)")
      ->capture_default_str();
  sub->add_option("--pipeline", a->pipeline,
                  "auto | on | off: launch each decode step before the previous step's draws "
                  "reach the host (auto: as Generate does, on for cuda)")
      ->capture_default_str();
  sub->add_option("--json", a->json, "Write the table as JSON to this file");
  sub->add_option("--db", a->db, "Store the paper and step tables in this ttc database");
  sub->add_option("--backend", a->backend, "cpu | cuda (default: cuda when a GPU is present)");
  sub->add_option("--state-dtype", a->state_dtype,
                  "SSM recurrent state between steps: f32 | bf16 | f16 (the 16-bit ones are "
                  "faster and less exact, f16 eight times closer than bf16 but failing past "
                  "+-65504; the roofline assumes 16 bits; they need the cuda backend)")
      ->capture_default_str();
  sub->add_option("--threads", a->threads, "CPU threads (0 = all)")->capture_default_str();
  sub->add_option("--seed", a->seed, "Seed of the random weights and prompt")
      ->capture_default_str();
  sub->add_option("--label", a->label,
                  "Model name stored with the rows (default: config or folder name)");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderBench, RegisterBench);

}  // namespace ttc::cli
