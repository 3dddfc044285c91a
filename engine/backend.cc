#include "engine/backend.h"

#include <fmt/format.h>
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

void Backend::SampleRowsAsync(const Activation& logits, const SamplingParams& params,
                              std::span<const SampleKey> keys) {
  last_draws_.assign(keys.size(), 0);
  SampleRows(logits, params, keys, last_draws_);
  pending_draws_.push_back(last_draws_);
}

void Backend::CollectDraws(std::span<int32_t> out) {
  // Model::CollectSample checks that a call is pending and that out has its size.
  std::copy(pending_draws_.front().begin(), pending_draws_.front().end(), out.begin());
  pending_draws_.pop_front();
}

void Backend::EmbedDraws(const Weight& table, std::span<const int64_t> draw_rows, Activation* out) {
  std::vector<int32_t> ids(draw_rows.size());
  for (size_t r = 0; r < draw_rows.size(); ++r)
    ids[r] = last_draws_[static_cast<size_t>(draw_rows[r])];
  Embed(table, ids, out);
}

std::string CpuDeviceName(int threads) {
  return fmt::format("cpu ({} thread{})", threads, threads == 1 ? "" : "s");
}

std::string_view StateDTypeName(StateDType t) {
  switch (t) {
    case StateDType::kF32:
      return "f32";
    case StateDType::kBf16:
      return "bf16";
    case StateDType::kF16:
      return "f16";
  }
  return "?";
}

Result<StateDType> ParseStateDType(std::string_view name) {
  for (StateDType t : {StateDType::kF32, StateDType::kBf16, StateDType::kF16}) {
    if (name == StateDTypeName(t)) return t;
  }
  return InvalidArgument("unknown state dtype '{}' (expected f32, bf16 or f16)", name);
}

Result<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options) {
  switch (options.kind) {
    case BackendKind::kCpu:
      if (options.state_dtype != StateDType::kF32) {
        return InvalidArgument(
            "the CPU backend keeps the recurrent state in f32; state dtype {} needs the CUDA "
            "backend",
            StateDTypeName(options.state_dtype));
      }
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
