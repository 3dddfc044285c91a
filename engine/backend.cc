#include "engine/backend.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace ttc::engine {

int64_t BatchLayout::total_rows() const {
  int64_t n = 0;
  for (const auto& s : seqs) n += s.num_tokens;
  return n;
}

int64_t BatchLayout::row_offset(size_t seq) const {
  int64_t n = 0;
  for (size_t i = 0; i < seq && i < seqs.size(); ++i) n += seqs[i].num_tokens;
  return n;
}

void Backend::SampleRows(const Activation& logits, const SamplingParams& params,
                         std::span<const SampleKey> keys, std::span<int32_t> out) {
  const int64_t rows = logits.rows(), V = logits.cols();
  const int64_t draws = static_cast<int64_t>(keys.size());
  const int64_t per_row = std::max<int64_t>(1, draws / std::max<int64_t>(1, rows));
  std::vector<float>& host = sample_host_;
  host.resize(static_cast<size_t>(rows * V));
  CopyToHost(logits, host);
  const int threads = draws >= 4 ? std::max(1, omp_get_max_threads()) : 1;
  std::vector<SamplerScratch>& scratch = sample_scratch_;
  if (scratch.size() < static_cast<size_t>(threads)) scratch.resize(static_cast<size_t>(threads));
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < draws; ++i) {
    const SampleKey& k = keys[static_cast<size_t>(i)];
    const int64_t r = i / per_row;
    out[static_cast<size_t>(i)] =
        SampleToken(std::span(host.data() + r * V, static_cast<size_t>(V)), params, k.seed,
                    k.sample_index, k.step, &scratch[static_cast<size_t>(omp_get_thread_num())]);
  }
}

Result<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options) {
  switch (options.kind) {
    case BackendKind::kCpu:
      return CreateCpuBackend(options.threads);
    case BackendKind::kCuda:
#ifdef TTC_HAVE_CUDA_BACKEND
      return CreateCudaBackend(options);
#else
      return Unimplemented(
          "the CUDA backend is not compiled into this build (configure with TTC_CUDA=ON)");
#endif
  }
  return InvalidArgument("unknown backend kind");
}

}  // namespace ttc::engine
