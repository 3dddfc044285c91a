// Device helpers for Hopper's bulk copies (cp.async.bulk, the 1-D form of the Tensor Memory
// Accelerator) completing on shared-memory mbarriers: the Mamba-1 decode kernel (kernels.cu) and
// the sampler's cluster kernel (sample_kernels.cu) stream their inputs into shared memory with
// them. sm_90 only. Each function is called by the threads its comment names; none keeps state.
#pragma once

#include <cstdint>

namespace ttc::engine::cuda {

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// One thread: `count` mbarriers at bar[0, count), each expecting one arrival per phase, made
// visible to the bulk copies (the block synchronises before anyone waits on them).
__device__ __forceinline__ void MbarInit(uint64_t* bar, int count) {
  for (int s = 0; s < count; ++s) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(SmemAddr(&bar[s])) : "memory");
  }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// Any thread: returns once `bar`'s phase of parity `parity` has completed.
__device__ __forceinline__ void MbarWait(uint64_t* bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 "
        "%0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(SmemAddr(bar)), "r"(parity)
        : "memory");
  }
}
// One thread: the one arrival of a phase, announcing the bytes its bulk copies will deliver.
__device__ __forceinline__ void MbarExpectTx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(SmemAddr(bar)),
               "r"(bytes)
               : "memory");
}
// One thread: `bytes` (multiple of 16, 16-byte aligned both sides) from global src to shared dst,
// completing on `bar` (whose phase expects them).
__device__ __forceinline__ void BulkCopy(void* dst, const void* src, uint32_t bytes,
                                         uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::
          "r"(SmemAddr(dst)),
      "l"(src), "r"(bytes), "r"(SmemAddr(bar))
      : "memory");
}

}  // namespace ttc::engine::cuda
