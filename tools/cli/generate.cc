// `ttc generate`: load a model folder (or its config with random weights) and sample N completions
// of one prompt on the engine, or dump prefill/decode logits for parity checks.
#include "engine/generate.h"

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/chat.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt, chat, system, prompt_ids;
  bool no_bos = false;
  std::string chat_template = "llama3-stock";
  std::string date = "26 Jul 2024";
  int n = 1;
  float temperature = 1.0f;
  int top_k = -1;
  float top_p = 1.0f;
  bool greedy = false;
  int64_t max_new_tokens = 128;
  uint64_t seed = 0;
  bool json = false;
  std::string dump_logits;
  int threads = 0;
  std::string backend = "cpu";
  std::string state_dtype = "f32";
  std::string dtype;  // empty: the backend's own (engine::WeightDType)
  std::string rope;
  int64_t random_weights = -1;
  std::string stop_ids;
};

Result<std::vector<int32_t>> ParseIdList(const std::string& text, const char* flag) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t start = item.find_first_not_of(" \t");
    if (start == std::string::npos) return InvalidArgument("{}: empty entry in '{}'", flag, text);
    try {
      size_t used = 0;
      long long v = std::stoll(item.substr(start), &used);
      if (item.find_first_not_of(" \t", start + used) != std::string::npos || v < 0 ||
          v > INT32_MAX) {
        return InvalidArgument("{}: '{}' is not a token id", flag, item);
      }
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      return InvalidArgument("{}: '{}' is not a token id", flag, item);
    }
  }
  return ids;
}

int Fail(const Status& st) {
  std::cerr << "ttc generate: " << st.ToString() << "\n";
  return kExitFailure;
}

Status DumpLogits(engine::Model& model, const std::vector<int32_t>& prompt, int64_t steps,
                  const std::string& path) {
  const int64_t V = model.config().vocab_size, L = static_cast<int64_t>(prompt.size());
  TTC_ASSIGN_OR_RETURN(auto state, model.NewState(1));
  std::vector<int64_t> rows(static_cast<size_t>(L));
  for (int64_t i = 0; i < L; ++i) rows[static_cast<size_t>(i)] = i;
  std::vector<float> prefill, logits;
  TTC_RETURN_IF_ERROR(model.Forward(state.get(), {{{0, 0, L}}}, prompt, rows, &prefill));
  std::vector<int64_t> ids;
  std::vector<float> decode;
  int32_t next = engine::Argmax(std::span(prefill.data() + (L - 1) * V, static_cast<size_t>(V)));
  const int64_t row0 = 0;
  for (int64_t i = 0; i < steps; ++i) {
    ids.push_back(next);
    TTC_RETURN_IF_ERROR(model.Forward(state.get(), {{{0, L + i, 1}}}, std::span(&next, 1),
                                      std::span(&row0, 1), &logits));
    decode.insert(decode.end(), logits.begin(), logits.end());
    next = engine::Argmax(logits);
  }
  std::vector<int64_t> prompt64(prompt.begin(), prompt.end());
  std::vector<engine::OwnedTensor> tensors;
  tensors.push_back(engine::MakeI64Tensor("prompt_ids", {L}, prompt64));
  tensors.push_back(engine::MakeF32Tensor("prefill_logits", {L, V}, prefill));
  tensors.push_back(engine::MakeI64Tensor("decode_ids", {steps}, ids));
  tensors.push_back(engine::MakeF32Tensor("decode_logits", {steps, V}, decode));
  return engine::WriteSafetensors(path, tensors, {{"producer", "ttc generate --dump-logits"}});
}

int RunGenerate(const GenerateArgs& a) {
  int sources = !a.prompt.empty() + !a.chat.empty() + !a.prompt_ids.empty();
  if (sources != 1)
    return UsageError("generate: give exactly one of --prompt, --chat, --prompt-ids");
  if (!a.system.empty() && a.chat.empty()) return UsageError("generate: --system needs --chat");
  if (a.n < 1) return UsageError("generate: -n must be at least 1");
  if (a.max_new_tokens < 1) return UsageError("generate: --max-new-tokens must be at least 1");

  engine::ModelOptions opts;
  opts.threads = a.threads;
  if (a.backend == "cuda") {
    opts.backend = engine::BackendKind::kCuda;
  } else if (a.backend != "cpu") {
    return UsageError("generate: --backend must be cpu or cuda");
  }
  auto state_dtype = engine::ParseStateDType(a.state_dtype);
  if (!state_dtype.ok())
    return UsageError("generate: --state-dtype: " + state_dtype.status().message());
  opts.state_dtype = *state_dtype;
  if (!a.dtype.empty()) {
    auto dtype = engine::ParseWeightDType(a.dtype);
    if (!dtype.ok()) return UsageError("generate: --dtype: " + dtype.status().message());
    opts.weight_dtype = *dtype;
  }
  if (a.rope == "plain") {
    opts.rope_override = engine::RopeType::kPlain;
  } else if (a.rope == "llama3") {
    opts.rope_override = engine::RopeType::kLlama3;
  } else if (!a.rope.empty()) {
    return UsageError("generate: --rope must be llama3 or plain");
  }
  engine::SamplingParams sampling;
  sampling.temperature = a.temperature;
  sampling.top_k = a.top_k;
  sampling.top_p = a.top_p;
  sampling.greedy = a.greedy;
  if (auto st = engine::ValidateSamplingParams(sampling); !st.ok())
    return UsageError("generate: " + st.message());

  std::unique_ptr<engine::Model> model;
  if (a.random_weights >= 0) {
    auto m = engine::RandomModelFromDir(a.model, static_cast<uint64_t>(a.random_weights), opts);
    if (!m.ok()) return Fail(m.status());
    model = std::move(m).value();
  } else {
    auto m = engine::LoadModel(a.model, opts);
    if (!m.ok()) return Fail(m.status());
    model = std::move(m).value();
  }
  const engine::Tokenizer* tok = model->tokenizer();

  std::vector<int32_t> prompt;
  if (!a.prompt_ids.empty()) {
    auto ids = ParseIdList(a.prompt_ids, "--prompt-ids");
    if (!ids.ok()) return UsageError("generate: " + ids.status().message());
    prompt = std::move(ids).value();
  } else {
    if (tok == nullptr) {
      return Fail(NotFound("{}: no tokenizer.json in the model folder; use --prompt-ids", a.model));
    }
    if (!a.prompt.empty()) {
      engine::EncodeOptions eo;
      eo.add_bos = !a.no_bos && tok->bos_id().has_value();
      auto ids = tok->Encode(a.prompt, eo);
      if (!ids.ok()) return Fail(ids.status());
      prompt = std::move(ids).value();
    } else {
      auto tmpl = engine::ParseChatTemplate(a.chat_template);
      if (!tmpl.ok()) return UsageError("generate: " + tmpl.status().message());
      std::vector<engine::ChatMessage> messages;
      if (!a.system.empty()) messages.push_back({"system", a.system});
      messages.push_back({"user", a.chat});
      engine::ChatOptions co;
      co.chat_template = *tmpl;
      co.date = a.date;
      auto ids = engine::EncodeChat(*tok, messages, co);
      if (!ids.ok()) return Fail(ids.status());
      prompt = std::move(ids).value();
    }
  }
  if (prompt.empty()) return UsageError("generate: the prompt has no tokens");

  if (!a.dump_logits.empty()) {
    auto st = DumpLogits(*model, prompt, a.max_new_tokens, a.dump_logits);
    if (!st.ok()) return Fail(st);
    if (!a.json)
      std::cout << "wrote " << a.dump_logits << "\n";
    else
      std::cout
          << nlohmann::json{{"dump_logits", a.dump_logits}, {"prompt_tokens", prompt.size()}}.dump()
          << "\n";
    return kExitOk;
  }

  engine::GenerateRequest req;
  req.prompts.push_back({prompt, a.seed, 0, a.n});
  req.sampling = sampling;
  req.max_new_tokens = a.max_new_tokens;
  if (!a.stop_ids.empty()) {
    auto ids = ParseIdList(a.stop_ids, "--stop-ids");
    if (!ids.ok()) return UsageError("generate: " + ids.status().message());
    req.stop_ids = std::move(ids).value();
  }
  auto res = engine::Generate(*model, req);
  if (!res.ok()) return Fail(res.status());
  const auto& t = res->timings;
  int64_t generated = 0;
  for (const auto& s : res->samples) generated += s.generated_tokens;
  const double tps =
      t.decode_s > 0
          ? static_cast<double>(generated - static_cast<int64_t>(res->samples.size())) / t.decode_s
          : 0.0;
  if (a.json) {
    nlohmann::json j;
    j["model"] = model->Describe();
    j["prompt_tokens"] = prompt.size();
    j["samples"] = nlohmann::json::array();
    for (const auto& s : res->samples) {
      nlohmann::json js = {{"index", s.sample_index},
                           {"tokens", s.tokens},
                           {"finish", engine::FinishReasonName(s.finish)},
                           {"generated_tokens", s.generated_tokens}};
      if (s.stop_id >= 0) js["stop_id"] = s.stop_id;
      if (tok) js["text"] = s.text;
      j["samples"].push_back(js);
    }
    j["timings"] = {{"prefill_s", t.prefill_s},
                    {"decode_s", t.decode_s},
                    {"steps", t.steps},
                    {"live_batch", t.live_batch},
                    {"decode_tokens_per_s", tps}};
    std::cout << j.dump() << "\n";
  } else {
    std::cerr << model->Describe() << "\n";
    for (const auto& s : res->samples) {
      std::cout << "--- sample " << s.sample_index << " (" << engine::FinishReasonName(s.finish)
                << ", " << s.generated_tokens << " tokens)\n";
      if (tok) {
        std::cout << s.text << "\n";
      } else {
        for (size_t i = 0; i < s.tokens.size(); ++i) std::cout << (i ? "," : "") << s.tokens[i];
        std::cout << "\n";
      }
    }
    std::cerr << fmt::format(
        "prompt {} tokens, prefill {:.3f} s, {} decode steps in {:.3f} s ({:.1f} tokens/s)\n",
        prompt.size(), t.prefill_s, t.steps, t.decode_s, tps);
  }
  return kExitOk;
}

void RegisterGenerate(CLI::App& app, CommandTable& table) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* sub =
      AddCommand(app, table, "generate", "Sample completions of a prompt from a model folder",
                 [a] { return RunGenerate(*a); });
  sub->add_option("--model", a->model, "Model folder (config.json, safetensors, tokenizer.json)")
      ->required();
  sub->add_option("--prompt", a->prompt, "Prompt text (BOS added when the tokenizer has one)");
  sub->add_option("--chat", a->chat, "User message, rendered with the chat template");
  sub->add_option("--system", a->system, "System message for --chat");
  sub->add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids");
  sub->add_flag("--no-bos", a->no_bos, "Do not prepend BOS to --prompt");
  sub->add_option("--chat-template", a->chat_template, "sal | llama3-stock | tokenizer-config")
      ->capture_default_str();
  sub->add_option("--date", a->date, "Date line of the chat template")->capture_default_str();
  sub->add_option("-n,--num-samples", a->n, "Samples")->capture_default_str();
  sub->add_option("--temperature", a->temperature, "Sampling temperature (0 = greedy)")
      ->capture_default_str();
  sub->add_option("--top-k", a->top_k, "Top-k (-1 = all)")->capture_default_str();
  sub->add_option("--top-p", a->top_p, "Nucleus mass")->capture_default_str();
  sub->add_flag("--greedy", a->greedy, "Argmax decoding");
  sub->add_option("--max-new-tokens", a->max_new_tokens, "Tokens per sample at most")
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "RNG seed (sample i uses key (seed, i, step))")
      ->capture_default_str();
  sub->add_option("--stop-ids", a->stop_ids, "Comma-separated stop ids (default: the model's)");
  sub->add_flag("--json", a->json, "Print JSON");
  sub->add_option(
      "--dump-logits", a->dump_logits,
      "Write prefill_logits, decode_logits, decode_ids (greedy, --max-new-tokens steps) to a "
      "safetensors file");
  sub->add_option("--threads", a->threads, "CPU threads (0 = all)")->capture_default_str();
  sub->add_option("--backend", a->backend, "cpu | cuda")->capture_default_str();
  sub->add_option("--state-dtype", a->state_dtype,
                  "SSM recurrent state between steps: f32 | bf16 | f16 (the 16-bit ones are "
                  "faster and less exact, f16 eight times closer than bf16 but failing past "
                  "+-65504; they need --backend cuda)")
      ->capture_default_str();
  sub->add_option(
      "--dtype", a->dtype,
      "Weight matrices: bf16 | f16 (rounded at load) | f32 (as stored; CPU only). "
      "Default: the backend's own (CPU as stored, CUDA bf16), as a grid's models[i].dtype");
  sub->add_option("--rope", a->rope, "Override the attention RoPE variant: llama3 | plain");
  sub->add_option(
      "--random-weights", a->random_weights,
      "Ignore the folder's weights: build its config.json with random weights from this seed");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderGenerate, RegisterGenerate);

}  // namespace ttc::cli
