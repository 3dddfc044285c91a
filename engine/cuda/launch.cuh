// Kernel launches of the CUDA backend with programmatic dependent launch (PDL, sm_90).
//
// Why: a decode step is a chain of a few hundred kernels, each of which waits, in plain stream
// order, for the previous one to drain and flush before its own grid is even launched. With PDL
// (the launch attribute cudaLaunchAttributeProgrammaticStreamSerialization) the next grid is
// launched and its blocks made resident while the previous grid's last blocks still run; each
// block then waits on `griddepcontrol.wait` until the previous grid has completed and its memory
// is visible. So the results are those of stream order; only the launch gap is hidden.
//
// The contract that keeps this exact: every kernel of this backend starts with PdlGate(), before
// any global memory access (the one exception: PdlPrefetchL2Rows of weights, a hint that reads
// nothing into the kernel), and every launch goes through Launch() (a source test checks both:
// tests/cuda/cuda_source_test.cc). A kernel launched with the attribute that did not wait could
// run ahead of its predecessor; and because a gated kernel lets its own dependents launch at once
// (`griddepcontrol.launch_dependents`), each kernel's wait is what orders it after everything
// before it, transitively. Kernels not launched with the attribute (cuBLAS's GEMMs) are fully
// stream-ordered as before.
//
// The attribute is set only under TTC_CUDA_PDL=1 (its first A/B found no gain; cuda_backend.cc);
// otherwise launches are in plain stream order. The setting is process-wide
// (SetProgrammaticLaunch), read by each backend when it is created.
//
// Thread-safety: Launch() may be called from any thread; the setting is an atomic.
// OncePerDevice() (below) is how kernels set up their per-device attributes.
#pragma once

#include <cuda_runtime.h>

#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "engine/cuda/kernels.h"

namespace ttc::engine::cuda {

// The first statement of every kernel of this backend (see above).
__device__ __forceinline__ void PdlGate() {
#if defined(__CUDA_ARCH__)
#if __CUDA_ARCH__ < 900
#error "the CUDA backend is built for sm_90: Launch() sets the PDL attribute, so PdlGate must wait"
#endif
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The one thing a kernel may do before its PdlGate(): ask L2 for the first `bytes_per_row` bytes of
// `rows` rows `pitch` bytes apart (128-byte lines spread over the block's threads), for memory no
// kernel writes (the weights), so that the fetch overlaps the previous kernel instead of
// following it. A prefetch is a hint: it reads into L2 only, touches no register or shared memory
// and has no effect on results. Callers keep the rows in bounds and the amount within what L2
// holds for the CTAs resident at once.
__device__ __forceinline__ void PdlPrefetchL2Rows(const void* base, int rows, int64_t pitch,
                                                  int bytes_per_row) {
  const int lines = (bytes_per_row + 127) >> 7;
  const char* p = static_cast<const char*>(base);
  for (int i = static_cast<int>(threadIdx.x); i < rows * lines; i += static_cast<int>(blockDim.x)) {
    const int r = i / lines, l = i - r * lines;
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p + r * pitch + (l << 7)));
  }
}

// Launch() keeps a failed launch's error (NoteLaunchError) for the launcher's check, which takes
// it with TakeLaunchError: that error if one was noted, else the runtime's last error (both are
// cleared).
void NoteLaunchError(cudaError_t e);
cudaError_t TakeLaunchError();

// The launch attribute that makes a grid run as thread-block clusters of `x` blocks along x.
inline cudaLaunchAttribute ClusterAttribute(unsigned x) {
  cudaLaunchAttribute a{};
  a.id = cudaLaunchAttributeClusterDimension;
  a.val.clusterDim.x = x;
  a.val.clusterDim.y = 1;
  a.val.clusterDim.z = 1;
  return a;
}

// The devices OncePerDevice() keeps results for; a device past them gets R{} (nothing set up).
inline constexpr int kMaxDevices = 64;

// Runs `set_up` (cudaFuncSetAttribute, occupancy queries) once for the current device and returns
// its result, the same one on every later call for that device. Why not a function-local static:
// a kernel's attributes belong to the device's context, so a static would set them up on the
// first device a process uses and leave every other device at the defaults (a launch with more
// than 48 KB of dynamic shared memory then fails there). Each lambda type has its own results,
// which is why `set_up` must be a lambda written at the call site: two functions of one
// signature would share theirs (a function pointer's type is all the template sees).
// Thread-safe: a mutex per call site; `set_up` runs under it.
template <typename F>
auto OncePerDevice(F set_up) -> decltype(set_up()) {
  static_assert(std::is_class_v<F>, "pass a lambda: results are kept per lambda type");
  using R = decltype(set_up());
  static std::mutex mu;
  static std::optional<R> results[kMaxDevices];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) {
    cudaGetLastError();
    return R{};
  }
  std::lock_guard<std::mutex> lock(mu);
  if (!results[dev]) results[dev] = set_up();
  return *results[dev];
}

// Launch() and LaunchCluster(): clusters of `cluster_x` blocks (0: no cluster attribute), plus the
// PDL attribute while ProgrammaticLaunch() is on.
template <typename... KernelArgs, typename... Args>
void LaunchWith(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                unsigned cluster_x, Args&&... args) {
  cudaLaunchAttribute attrs[2];
  unsigned n = 0;
  if (cluster_x > 0) attrs[n++] = ClusterAttribute(cluster_x);
  if (ProgrammaticLaunch()) {
    attrs[n] = cudaLaunchAttribute{};
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cfg.attrs = attrs;
  cfg.numAttrs = n;
  const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
  if (e != cudaSuccess) NoteLaunchError(e);
}

template <typename... KernelArgs, typename... Args>
void Launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
            Args&&... args) {
  LaunchWith(kernel, grid, block, smem, s, 0u, std::forward<Args>(args)...);
}

// Launch() for a kernel that runs as thread-block clusters of `cluster_x` blocks along x.
template <typename... KernelArgs, typename... Args>
void LaunchCluster(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t s, unsigned cluster_x, Args&&... args) {
  LaunchWith(kernel, grid, block, smem, s, cluster_x, std::forward<Args>(args)...);
}

}  // namespace ttc::engine::cuda
