#include "engine/backend.h"

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
