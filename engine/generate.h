// Generation: many samples per prompt, decoded in lockstep. Each prompt is prefilled once; its
// state (KV cache for attention layers, conv/SSM state for Mamba layers) is copied into one slot
// per sample; every decode step runs all live samples of all prompts as one batch; a sample stops
// on one of the stop ids or at max_new_tokens. Sample i's token at step t is drawn with the
// counter-based RNG keyed (prompt seed, i, t) (engine/sampler.h), so a sample's tokens do not
// depend on N, on the other prompts or on the batch it ran in (on the CPU backend they are
// bit-identical). Thread-safety: Generate uses the Model exclusively for the duration of the call
// (one call at a time per Model); the callback runs on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/model.h"
#include "engine/sampler.h"

namespace ttc::engine {

struct PromptRequest {
  std::vector<int32_t> prompt_ids;
  uint64_t seed = 0;
  int64_t first_sample_index =
      0;  // samples are first_sample_index .. first_sample_index + num_samples - 1
  int num_samples = 1;
};

enum class FinishReason { kStop, kLength };
const char* FinishReasonName(FinishReason reason);

struct SampleResult {
  int prompt_index = 0;         // index into GenerateRequest::prompts
  int64_t sample_index = 0;     // the RNG's sample index
  std::vector<int32_t> tokens;  // generated ids, without the stop id
  int32_t stop_id = -1;         // the stop id that ended the sample (kStop), else -1
  std::string text;  // Decode(tokens) when the model has a tokenizer and decode_text is on
  FinishReason finish = FinishReason::kLength;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // tokens.size() + (stop_id >= 0)
  double prefill_s = 0;          // its prompt's prefill time
  double decode_s = 0;           // from the first decode step of the request to this sample's end
};

struct GenerateTimings {
  double prefill_s = 0;         // all prompts' prefills (and state forks)
  double decode_s = 0;          // all decode steps (forward + sampling)
  int64_t steps = 0;            // decode steps (forward passes after prefill)
  std::vector<int> live_batch;  // rows of each decode step (pipelined: with the stopped ones)
  std::vector<double> step_s;   // wall time of each decode step (pipelined: between collections)
};

// kOn: each decode step is launched before the previous step's draws reach the host; the draws
// feed the next step on the backend and stops take effect one step late (a stopped sample's
// extra row is computed and discarded). The samples are the same either way. kAuto: on where the
// backend prefers it (Backend::PrefersPipelinedDecode: the CUDA backend, where the host's work
// per step then overlaps the GPU's), off on the CPU.
enum class DecodePipeline { kAuto, kOn, kOff };

struct GenerateRequest {
  std::vector<PromptRequest> prompts;
  DecodePipeline pipeline = DecodePipeline::kAuto;
  SamplingParams sampling;
  int64_t max_new_tokens = 256;
  std::optional<std::vector<int32_t>> stop_ids;  // unset: the model's (config / generation_config)
  bool decode_text = true;
  // Invoked as each sample finishes (in finishing order); the same object is also returned in the
  // result.
  std::function<void(const SampleResult&)> on_sample_done;
  // Invoked after every prefill (with the prompt's number of first draws) and every decode step
  // (with the live rows, one token each): progress as it happens, not only per finished sample.
  // Returning false stops generation: Generate returns kUnavailable ("cancelled"); samples that
  // finished before were already reported through on_sample_done.
  std::function<bool(int64_t tokens_drawn)> on_step;
};

struct GenerateResult {
  std::vector<SampleResult> samples;  // prompt order, then sample order
  GenerateTimings timings;
};

// Errors: empty prompt, token ids outside the vocabulary, invalid sampling parameters, num_samples
// < 1, max_new_tokens < 1, and any backend failure.
Result<GenerateResult> Generate(Model& model, const GenerateRequest& request);

}  // namespace ttc::engine
