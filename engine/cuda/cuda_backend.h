// The CUDA backend's extras beyond engine/backend.h: device queries and batch memory planning for
// callers that want to size a batch before creating state (the backend itself is created through
// CreateBackend / CreateCudaBackend). No CUDA type appears here. Only compiled when TTC_CUDA is on
// (TTC_HAVE_CUDA_BACKEND defined). Thread-safety: the functions are safe to call from any thread;
// they query the driver and allocate nothing.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "engine/backend.h"
#include "engine/config.h"

namespace ttc::engine {

struct CudaDeviceInfo {
  std::string name;
  int64_t total_bytes = 0;
  int64_t free_bytes = 0;
  int sm_count = 0;
  int compute_major = 0, compute_minor = 0;
};

// Number of usable CUDA devices; 0 when there is none or no driver (never an error).
int CudaDeviceCount();
Result<CudaDeviceInfo> QueryCudaDevice(int device);

// Device bytes one sequence of `context_len` positions costs on the CUDA backend: bf16 KV cache of
// the attention layers for its own positions (the first `shared_prefix` of them live in its
// prompt's shared prefix block, see CudaPrefixBytes), f32 conv state and the SSM state (f32 or
// bf16 per `state_dtype`) of the SSM layers, and
// the f32 activations and logits row of a decode step. KV buffers grow by doubling from 256
// positions, so the rounded-up capacity is what is planned.
int64_t CudaBytesPerSequence(const ModelConfig& config, int64_t context_len,
                             int64_t shared_prefix = 0, StateDType state_dtype = StateDType::kF32);
// Device bytes of one prompt's shared KV prefix (prompt_len positions, rounded up like the buffer
// the prefill filled).
int64_t CudaPrefixBytes(const ModelConfig& config, int64_t prompt_len);

struct CudaBatchPlan {
  int64_t free_bytes = 0;     // free device memory at planning time (weights already loaded)
  int64_t reserve_bytes = 0;  // kept back for cuBLAS workspaces, prefill activations, fragmentation
  int64_t per_sequence_bytes = 0;
  int64_t prefix_bytes = 0;  // all prompts' shared prefixes together
  int64_t max_batch = 0;     // largest batch of sequences that fits
};
// The largest batch that fits in the device's free memory now, for sequences of context_len
// positions whose first shared_prefix positions are shared by the sequences of each of `prompts`
// prompts. Errors: no device.
Result<CudaBatchPlan> PlanCudaBatch(const ModelConfig& config, int64_t context_len, int device,
                                    int64_t shared_prefix = 0, int64_t prompts = 0,
                                    StateDType state_dtype = StateDType::kF32);

// Decode steps this backend recorded as CUDA graphs, and replays of those recordings (zeros for a
// backend that is not the CUDA one). Recording is on unless TTC_CUDA_GRAPHS=0 or TTC_CUDA_PROFILE
// is set; see Backend::BeginForward.
// Also the attention ops launched with the shared-prefix cascade (eagerly or into a recording;
// off with TTC_CUDA_CASCADE=0, see cuda::PrefixPlan), and the draws launched on the split sampler
// (eagerly or into a recording; TTC_CUDA_SAMPLE_SPLIT_ROWS, see cuda::SampleUsesSplit).
struct CudaGraphCounts {
  int64_t captures = 0;
  int64_t replays = 0;
  int64_t cascades = 0;
  int64_t split_samples = 0;
};
CudaGraphCounts GetCudaGraphCounts(const Backend& backend);

}  // namespace ttc::engine
