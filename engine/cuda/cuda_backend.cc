// The CUDA backend (engine/backend.h on one GPU): bf16 weights for the GEMM matrices (cuBLAS,
// f32 accumulation and f32 output), f32 activations and recurrent state, bf16 KV cache. Every op is
// asynchronous on one stream; CopyToHost and the wait for a step's drawn ids (CollectDraws, also
// inside SampleRows) are the synchronisations.
// Decode steps that end in SampleRows are recorded as CUDA graphs and replayed (BeginForward). Ops
// have no error channel in the Backend interface, so a CUDA failure inside an op (a kernel fault,
// or the device running out of memory while a KV cache grows) prints what failed and aborts;
// callers avoid the latter by sizing batches with PlanCudaBatch (engine/cuda/cuda_backend.h).
#include "engine/cuda/cuda_backend.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/kernels.h"

namespace ttc::engine {

namespace {

using cuda::DevRow;
using cuda::DevSeq;

// Whether environment variable `name` is set to `value` (the A/B switches of the backend).
bool EnvIs(const char* name, const char* value) {
  const char* e = std::getenv(name);
  return e != nullptr && std::strcmp(e, value) == 0;
}

void Die(const char* what, const char* detail, const char* file, int line) {
  std::fprintf(stderr, "cuda backend: %s failed: %s (%s:%d)\n", what, detail, file, line);
  std::abort();
}
#define TTC_CU(x)                                                               \
  do {                                                                          \
    cudaError_t _e = (x);                                                       \
    if (_e != cudaSuccess) Die(#x, cudaGetErrorString(_e), __FILE__, __LINE__); \
  } while (0)
#define TTC_CUBLAS(x)                                                                        \
  do {                                                                                       \
    cublasStatus_t _e = (x);                                                                 \
    if (_e != CUBLAS_STATUS_SUCCESS) Die(#x, cublasGetStatusString(_e), __FILE__, __LINE__); \
  } while (0)

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    f = man ? NAN : INFINITY;
  } else {
    f = std::ldexp(static_cast<float>(man | 0x400u), static_cast<int>(exp) - 25);
  }
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u |= sign;
  std::memcpy(&f, &u, 4);
  return f;
}

float Bf16ToFloat(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

class CudaBackend;

class CudaWeight final : public Weight {
 public:
  CudaWeight(int64_t rows, int64_t cols) : Weight(rows, cols) {}
  ~CudaWeight() override {
    if (bf16) cudaFree(bf16);
    if (f32) cudaFree(f32);
  }
  uint16_t* bf16 = nullptr;  // GEMM matrices of bf16 checkpoints
  float* f32 = nullptr;      // everything else; created lazily from bf16 when an op needs floats
};

// --- Device memory of a forward, and recorded decode steps -------------------------------------
//
// A decode step can run eagerly (every op launches its kernels), be recorded into a CUDA graph
// (the ops launch into a capturing stream), or be replayed from its recording (the ops only upload
// their inputs; SampleRows launches the graph). Kernels of a recording keep every device address
// they were given, so activations and scratch of a recorded step come from one arena owned by the
// recording, and an upload buffer that moves makes every recording stale (the address epoch).

// Bumped whenever a buffer whose address recorded kernels may hold is reallocated.
std::atomic<uint64_t> g_address_epoch{0};

// Device buffers replaced while a recording was in progress: freed once the stream is idle
// (FreeRetired), not at once, because the recording's kernels have not run yet.
std::mutex g_retired_mu;
std::vector<void*> g_retired;
void Retire(void* p) {
  std::lock_guard<std::mutex> lock(g_retired_mu);
  g_retired.push_back(p);
}
bool HasRetired() {
  std::lock_guard<std::mutex> lock(g_retired_mu);
  return !g_retired.empty();
}
void FreeRetired() {
  std::lock_guard<std::mutex> lock(g_retired_mu);
  for (void* p : g_retired) cudaFree(p);
  g_retired.clear();
}

// Where the device memory of activations and op scratch comes from. An eager forward uses the
// stream-ordered pool. A forward being recorded takes it from its arena in call order (the graph
// keeps those addresses); the arena's size is the peak measured while the same forward ran eagerly
// just before. A replayed forward allocates nothing. In every mode the calls are followed as a bump
// allocator that releases in LIFO order, which is what the arena does, so that peak() of an eager
// forward is the arena its recording needs.
class StepMemory {
 public:
  enum class Mode { kEager, kCapture, kReplay };
  struct Block {
    void* p = nullptr;
    size_t off = 0, bytes = 0;
    uint64_t step = 0;
    bool pooled = false;
  };
  explicit StepMemory(cudaStream_t s) : stream_(s) {}

  Block Acquire(size_t bytes) {
    Block b{nullptr, top_, std::max<size_t>(bytes, 16), step_, false};
    top_ += Round(b.bytes);
    peak_ = std::max(peak_, top_);
    switch (mode_) {
      case Mode::kEager:
        TTC_CU(cudaMallocAsync(&b.p, b.bytes, stream_));
        b.pooled = true;
        break;
      case Mode::kCapture:
        if (b.off + Round(b.bytes) <= arena_bytes_) {
          b.p = arena_ + b.off;
        } else {
          // More than the eager run measured (an op sized by a value that moved by a step, e.g.
          // the split-KV count): a buffer of its own, freed with the recording.
          TTC_CU(cudaMalloc(&b.p, b.bytes));
          extra_->push_back(b.p);
        }
        break;
      case Mode::kReplay:
        break;
    }
    return b;
  }
  void Release(const Block& b) {
    if (b.pooled) cudaFreeAsync(b.p, stream_);
    if (b.step == step_ && b.off + Round(b.bytes) == top_) top_ = b.off;
  }
  // Starts a forward in `mode`; a recording gets its arena and the list for overflow buffers.
  void BeginStep(Mode mode, char* arena = nullptr, size_t arena_bytes = 0,
                 std::vector<void*>* extra = nullptr) {
    ++step_;
    top_ = peak_ = 0;
    mode_ = mode;
    arena_ = arena;
    arena_bytes_ = arena_bytes;
    extra_ = extra;
  }
  void EndStep() { BeginStep(Mode::kEager); }
  Mode mode() const { return mode_; }
  size_t peak() const { return peak_; }

 private:
  static size_t Round(size_t b) { return (b + 255) / 256 * 256; }
  cudaStream_t stream_;
  Mode mode_ = Mode::kEager;
  uint64_t step_ = 1;
  size_t top_ = 0, peak_ = 0;
  char* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::vector<void*>* extra_ = nullptr;
};

class CudaActivation final : public Activation {
 public:
  CudaActivation(int64_t rows, int64_t cols, StepMemory* mem)
      : Activation(rows, cols),
        mem_(mem),
        block_(
            mem->Acquire(static_cast<size_t>(std::max<int64_t>(1, rows * cols)) * sizeof(float))),
        data(static_cast<float*>(block_.p)) {}
  ~CudaActivation() override { mem_->Release(block_); }

 private:
  StepMemory* mem_;
  StepMemory::Block block_;

 public:
  float* const data;  // null in a replayed step (its ops launch nothing)
};

// Scratch memory for one op.
class Scratch {
 public:
  Scratch(StepMemory* mem, size_t bytes) : mem_(mem), block_(mem->Acquire(bytes)) {}
  ~Scratch() { mem_->Release(block_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(block_.p);
  }

 private:
  StepMemory* mem_;
  StepMemory::Block block_;
};

const CudaWeight& W(const Weight& w) { return static_cast<const CudaWeight&>(w); }
const CudaActivation& A(const Activation& a) { return static_cast<const CudaActivation&>(a); }
CudaActivation& A(Activation* a) { return *static_cast<CudaActivation*>(a); }

// How an upload runs: on the compute stream (eager and replayed steps: stream order puts it before
// the kernels, or before the graph launch, that read it), or, while a step is being recorded, on a
// side stream that the host waits for (the compute stream is capturing and must not carry host
// copies; the recording's first launch follows the capture).
struct UploadCtx {
  cudaStream_t stream = nullptr;
  cudaStream_t side = nullptr;
  uint64_t graph_step = 0;  // nonzero in a recorded or replayed step
};

// A device buffer that grows and keeps its contents' last host image, so that a batch description
// that did not change since the last op (every layer of one forward) is not uploaded again.
template <typename T>
class UploadCache {
 public:
  ~UploadCache() {
    if (dev_) cudaFree(dev_);
  }
  const T* Put(const std::vector<T>& v, const UploadCtx& ctx) {
    if (dev_ && v.size() == host_.size() &&
        std::memcmp(v.data(), host_.data(), v.size() * sizeof(T)) == 0) {
      return dev_;
    }
    if (ctx.graph_step != 0) {
      // Every kernel of a recorded step reads the buffer when the graph runs, after all uploads:
      // two different contents in one step would leave only the last one.
      if (written_step_ == ctx.graph_step) {
        std::fprintf(stderr,
                     "cuda backend: an upload changed twice within one recorded decode step "
                     "(set TTC_CUDA_GRAPHS=0 to run without CUDA graphs)\n");
        std::abort();
      }
      written_step_ = ctx.graph_step;
    }
    if (v.size() > cap_) {
      if (dev_) {
        if (ctx.graph_step != 0) {
          Retire(dev_);
        } else {
          TTC_CU(cudaStreamSynchronize(ctx.stream));
          cudaFree(dev_);
        }
      }
      cap_ = std::max<size_t>(v.size(), 2 * cap_);
      TTC_CU(cudaMalloc(reinterpret_cast<void**>(&dev_), cap_ * sizeof(T)));
      g_address_epoch.fetch_add(1);
    }
    host_ = v;
    // Pageable source: the call returns once the data is staged, so v may change afterwards.
    if (!v.empty()) {
      cudaStream_t s = ctx.side ? ctx.side : ctx.stream;
      TTC_CU(cudaMemcpyAsync(dev_, host_.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, s));
      if (ctx.side) TTC_CU(cudaStreamSynchronize(ctx.side));
    }
    return dev_;
  }

 private:
  T* dev_ = nullptr;
  size_t cap_ = 0;
  std::vector<T> host_;
  uint64_t written_step_ = 0;
};

// --- State
// -----------------------------------------------------------------------------------------

int64_t ConvChannels(const ModelConfig& c, MixerKind kind) {
  switch (kind) {
    case MixerKind::kAttention:
      return 0;
    case MixerKind::kMamba1Mil:
    case MixerKind::kMamba1:
      return c.d_inner;
    case MixerKind::kDiscreteMamba2:
    case MixerKind::kMamba2:
      return c.d_inner + 2 * c.ssm_groups * c.d_state;
  }
  return 0;
}

int64_t SsmElems(const ModelConfig& c, MixerKind kind) {
  if (kind == MixerKind::kAttention) return 0;
  if (kind == MixerKind::kMamba1Mil || kind == MixerKind::kMamba1) return c.d_inner * c.d_state;
  return c.ssm_heads * c.ssm_head_dim * c.d_state;
}

int64_t StateElementBytes(StateDType t) { return t == StateDType::kF32 ? 4 : 2; }
cuda::StateStore StoreOf(StateDType t) {
  switch (t) {
    case StateDType::kBf16:
      return cuda::StateStore::kBf16;
    case StateDType::kF16:
      return cuda::StateStore::kF16;
    case StateDType::kF32:
      break;
  }
  return cuda::StateStore::kF32;
}

// One sequence's recurrent state over all layers: the f32 conv window and the SSM state.
int64_t RecurrentBytesPerSequence(const ModelConfig& c, StateDType t) {
  int64_t bytes = 0;
  for (MixerKind k : c.layer_mixers)
    bytes += ConvChannels(c, k) * (c.d_conv - 1) * 4 + SsmElems(c, k) * StateElementBytes(t);
  return bytes;
}

// The KV of one prompt's first `len` positions in every attention layer, shared read-only by the
// slots forked from it (CopySlot), so the prompt is stored once and a decode step reads it once
// per row mostly from L2 instead of from each row's own copy. Freed (stream-ordered) with its last
// slot.
struct PrefixBlock {
  std::vector<uint16_t*> k, v;  // per layer (null for non-attention layers)
  int64_t len = 0;
  cudaStream_t stream = nullptr;
  ~PrefixBlock() {
    for (auto* p : k)
      if (p) cudaFreeAsync(p, stream);
    for (auto* p : v)
      if (p) cudaFreeAsync(p, stream);
  }
};

// The KV buffer capacity (positions) after growing a buffer of `cap` positions to hold `need`:
// at least 256, at least double, a multiple of 64 (so a sequence growing one token at a time
// reallocates O(log n) times). EnsureCapacity grows by it and the memory plan predicts with it.
int64_t GrownKvCapacity(int64_t cap, int64_t need) {
  if (cap >= need) return cap;
  const int64_t grown = std::max<int64_t>({need, 2 * cap, 256});
  return (grown + 63) / 64 * 64;
}

class CudaStateCache final : public StateCache {
 public:
  struct Layer {
    MixerKind kind = MixerKind::kAttention;
    int64_t kvw = 0;               // attention: KV width (num_kv_heads * head_dim)
    std::vector<uint16_t*> k, v;   // per slot, own positions [plen, plen + capacity)
    UploadCache<cuda::DevKv> dkv;  // device copy of the per-slot descriptors
    int64_t conv_per_slot = 0, ssm_per_slot = 0;
    float* conv = nullptr;  // [slots][d_conv-1][channels]
    char* ssm = nullptr;    // [slots][ssm_per_slot] elements of state_bytes_ bytes
  };

  // dtype: how the SSM state's elements are stored (StateElementBytes each).
  CudaStateCache(const ModelConfig& c, int num_slots, StateDType dtype, cudaStream_t s)
      : state_bytes_(StateElementBytes(dtype)), store_(StoreOf(dtype)), stream_(s) {
    layers_.resize(static_cast<size_t>(c.num_layers));
    for (int64_t l = 0; l < c.num_layers; ++l) {
      Layer& L = layers_[static_cast<size_t>(l)];
      L.kind = c.layer_mixers[static_cast<size_t>(l)];
      if (L.kind == MixerKind::kAttention) {
        L.kvw = c.num_kv_heads * c.head_dim;
        L.k.assign(static_cast<size_t>(num_slots), nullptr);
        L.v.assign(static_cast<size_t>(num_slots), nullptr);
        has_attention_ = true;
      } else {
        L.conv_per_slot = ConvChannels(c, L.kind) * (c.d_conv - 1);
        L.ssm_per_slot = SsmElems(c, L.kind);
        TTC_CU(
            cudaMalloc(reinterpret_cast<void**>(&L.conv),
                       static_cast<size_t>(std::max<int64_t>(1, L.conv_per_slot * num_slots)) * 4));
        TTC_CU(cudaMalloc(reinterpret_cast<void**>(&L.ssm),
                          static_cast<size_t>(L.ssm_per_slot * num_slots) * state_bytes_));
        TTC_CU(cudaMemsetAsync(L.conv, 0, static_cast<size_t>(L.conv_per_slot * num_slots) * 4, s));
        TTC_CU(cudaMemsetAsync(L.ssm, 0,
                               static_cast<size_t>(L.ssm_per_slot * num_slots) * state_bytes_, s));
      }
    }
    lengths_.assign(static_cast<size_t>(num_slots), 0);
    caps_.assign(static_cast<size_t>(num_slots), 0);
    prefix_.resize(static_cast<size_t>(num_slots));
  }
  ~CudaStateCache() override {
    prefix_.clear();
    cudaStreamSynchronize(stream_);
    for (auto& L : layers_) {
      for (auto* p : L.k) cudaFree(p);
      for (auto* p : L.v) cudaFree(p);
      if (L.conv) cudaFree(L.conv);
      if (L.ssm) cudaFree(L.ssm);
    }
  }

  int64_t state_bytes() const { return state_bytes_; }
  cuda::StateStore store() const { return store_; }

  int num_slots() const override { return static_cast<int>(lengths_.size()); }
  int64_t length(int slot) const override { return lengths_[static_cast<size_t>(slot)]; }
  void Reset(int slot) override {
    for (auto& L : layers_) {
      if (L.kind == MixerKind::kAttention) continue;
      TTC_CU(cudaMemsetAsync(L.conv + slot * L.conv_per_slot, 0,
                             static_cast<size_t>(L.conv_per_slot) * 4, stream_));
      TTC_CU(cudaMemsetAsync(L.ssm + slot * L.ssm_per_slot * state_bytes_, 0,
                             static_cast<size_t>(L.ssm_per_slot) * state_bytes_, stream_));
    }
    prefix_[static_cast<size_t>(slot)].reset();
    lengths_[static_cast<size_t>(slot)] = 0;
  }
  void CopySlot(int src, int dst) override {
    if (src == dst) return;
    const size_t s = static_cast<size_t>(src), d = static_cast<size_t>(dst);
    const int64_t len = lengths_[s];
    if (has_attention_ && len > 0) {
      // The fork shares src's first len positions: freeze them into a prefix block once, then
      // point dst (and src itself) at it; both append their own positions after it.
      if (!prefix_[s] || prefix_[s]->len != len) Freeze(src);
      prefix_[d] = prefix_[s];
    } else {
      prefix_[d].reset();
    }
    for (auto& L : layers_) {
      if (L.kind == MixerKind::kAttention) continue;
      TTC_CU(cudaMemcpyAsync(L.conv + dst * L.conv_per_slot, L.conv + src * L.conv_per_slot,
                             static_cast<size_t>(L.conv_per_slot) * 4, cudaMemcpyDeviceToDevice,
                             stream_));
      TTC_CU(cudaMemcpyAsync(
          L.ssm + dst * L.ssm_per_slot * state_bytes_, L.ssm + src * L.ssm_per_slot * state_bytes_,
          static_cast<size_t>(L.ssm_per_slot) * state_bytes_, cudaMemcpyDeviceToDevice, stream_));
    }
    lengths_[d] = len;
  }
  void Advance(int slot, int64_t n) override { lengths_[static_cast<size_t>(slot)] += n; }
  int64_t SlotBytes(int slot) const override {
    int64_t bytes = 0;
    for (const auto& L : layers_) {
      bytes += 2 * caps_[static_cast<size_t>(slot)] * L.kvw * 2 + L.conv_per_slot * 4 +
               L.ssm_per_slot * state_bytes_;
    }
    return bytes;
  }

  // Makes room for positions up to `need` (exclusive) in every attention layer of the slot's own
  // buffers (GrownKvCapacity).
  void EnsureCapacity(int slot, int64_t need) {
    const size_t s = static_cast<size_t>(slot);
    const int64_t own = need - Plen(slot);
    if (caps_[s] >= own) return;
    const int64_t cap = GrownKvCapacity(caps_[s], own);
    const int64_t used = lengths_[s] - Plen(slot);
    for (auto& L : layers_) {
      if (L.kind != MixerKind::kAttention) continue;
      for (auto* vec : {&L.k, &L.v}) {
        uint16_t* p = Alloc(slot, cap * L.kvw);
        uint16_t* old = (*vec)[s];
        if (old) {
          const size_t bytes = static_cast<size_t>(used * L.kvw) * 2;
          if (bytes) TTC_CU(cudaMemcpyAsync(p, old, bytes, cudaMemcpyDeviceToDevice, stream_));
          TTC_CU(cudaFreeAsync(old, stream_));
        }
        (*vec)[s] = p;
      }
    }
    caps_[s] = cap;
  }

  // The per-slot descriptors of one attention layer, on the device.
  const cuda::DevKv* Descriptors(int layer, const UploadCtx& ctx) {
    Layer& L = layers_[static_cast<size_t>(layer)];
    std::vector<cuda::DevKv>& v = scratch_;
    v.resize(lengths_.size());
    for (size_t s = 0; s < v.size(); ++s) {
      const PrefixBlock* pb = prefix_[s].get();
      v[s] = {pb ? pb->k[static_cast<size_t>(layer)] : nullptr,
              pb ? pb->v[static_cast<size_t>(layer)] : nullptr,
              L.k[s],
              L.v[s],
              static_cast<int32_t>(pb ? pb->len : 0),
              0};
    }
    return L.dkv.Put(v, ctx);
  }

  // The slot's shared prefix block (nullptr: none), the identity of the rows that share it.
  const void* PrefixId(int slot) const { return prefix_[static_cast<size_t>(slot)].get(); }
  int64_t PrefixLen(int slot) const { return Plen(slot); }

  Layer& layer(int l) { return layers_[static_cast<size_t>(l)]; }
  // Unique for the process (an address could be reused by a later cache): the key of the decode
  // recordings made on this cache, whose kernels hold its state buffers.
  uint64_t id() const { return id_; }

 private:
  int64_t Plen(int slot) const {
    const auto& p = prefix_[static_cast<size_t>(slot)];
    return p ? p->len : 0;
  }

  uint16_t* Alloc(int slot, int64_t elems) {
    uint16_t* p = nullptr;
    cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&p),
                                    static_cast<size_t>(std::max<int64_t>(1, elems)) * 2, stream_);
    if (e != cudaSuccess) {
      std::fprintf(stderr,
                   "cuda backend: out of device memory growing the KV cache of slot %d (%s); plan "
                   "the batch with PlanCudaBatch\n",
                   slot, cudaGetErrorString(e));
      std::abort();
    }
    return p;
  }

  // Moves the slot's positions [0, length) into a new prefix block (a copy when the slot already
  // had a shorter prefix of its own) and leaves the slot with empty own buffers after it.
  void Freeze(int slot) {
    const size_t s = static_cast<size_t>(slot);
    const int64_t len = lengths_[s], plen = Plen(slot);
    auto block = std::make_shared<PrefixBlock>();
    block->len = len;
    block->stream = stream_;
    block->k.assign(layers_.size(), nullptr);
    block->v.assign(layers_.size(), nullptr);
    for (size_t l = 0; l < layers_.size(); ++l) {
      Layer& L = layers_[l];
      if (L.kind != MixerKind::kAttention) continue;
      if (plen == 0) {
        // The slot's own buffers become the block (no copy); the slot starts fresh ones.
        block->k[l] = L.k[s];
        block->v[l] = L.v[s];
        L.k[s] = L.v[s] = nullptr;
      } else {
        const auto* old = prefix_[s].get();
        for (int kv = 0; kv < 2; ++kv) {
          uint16_t* dst = Alloc(slot, len * L.kvw);
          const uint16_t* pre = kv == 0 ? old->k[l] : old->v[l];
          uint16_t* own = kv == 0 ? L.k[s] : L.v[s];
          TTC_CU(cudaMemcpyAsync(dst, pre, static_cast<size_t>(plen * L.kvw) * 2,
                                 cudaMemcpyDeviceToDevice, stream_));
          if (len > plen) {
            TTC_CU(cudaMemcpyAsync(dst + plen * L.kvw, own,
                                   static_cast<size_t>((len - plen) * L.kvw) * 2,
                                   cudaMemcpyDeviceToDevice, stream_));
          }
          (kv == 0 ? block->k[l] : block->v[l]) = dst;
        }
      }
    }
    if (plen == 0) caps_[s] = 0;
    prefix_[s] = std::move(block);
  }

  static inline std::atomic<uint64_t> next_id_{1};
  const uint64_t id_ = next_id_.fetch_add(1);
  const int64_t state_bytes_;
  const cuda::StateStore store_;
  cudaStream_t stream_;
  std::vector<Layer> layers_;
  std::vector<int64_t> lengths_, caps_;  // caps_: own-buffer capacity in positions
  std::vector<std::shared_ptr<PrefixBlock>> prefix_;
  std::vector<cuda::DevKv> scratch_;
  bool has_attention_ = false;
};

// --- The backend
// -----------------------------------------------------------------------------------

// Per-op GPU time when TTC_CUDA_PROFILE is set (a performance tool, not a product path): each op
// is bracketed by two events; on destruction the backend prints total milliseconds and calls per
// op to stderr, longest first. Events are timed in batches so the stream never waits on the host.
class OpProfiler {
 public:
  explicit OpProfiler(cudaStream_t s)
      : stream_(s), on_(std::getenv("TTC_CUDA_PROFILE") != nullptr) {}
  ~OpProfiler() {
    if (!on_) return;
    Flush();
    std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(totals_.begin(),
                                                                         totals_.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
    double all = 0.0;
    for (const auto& r : rows) all += r.second.first;
    std::fprintf(stderr, "cuda profile (GPU ms by op, all %.3f ms):\n", all);
    for (const auto& r : rows) {
      std::fprintf(stderr, "  %-22s %10.3f ms %6.1f %% %9lld calls\n", r.first.c_str(),
                   r.second.first, 100.0 * r.second.first / std::max(all, 1e-9),
                   static_cast<long long>(r.second.second));
    }
    for (auto& e : free_) cudaEventDestroy(e);
  }
  bool on() const { return on_; }
  // Starts timing an op; Stop() ends the latest one.
  void Start(const char* name) {
    if (!on_) return;
    Pending p{name, Event(), Event()};
    cudaEventRecord(p.a, stream_);
    pending_.push_back(p);
  }
  void Stop() {
    if (!on_ || pending_.empty()) return;
    cudaEventRecord(pending_.back().b, stream_);
    if (pending_.size() >= 4096) Flush();
  }

 private:
  struct Pending {
    const char* name;
    cudaEvent_t a, b;
  };
  cudaEvent_t Event() {
    if (!free_.empty()) {
      cudaEvent_t e = free_.back();
      free_.pop_back();
      return e;
    }
    cudaEvent_t e;
    TTC_CU(cudaEventCreate(&e));
    return e;
  }
  void Flush() {
    cudaStreamSynchronize(stream_);
    for (auto& p : pending_) {
      float ms = 0.0f;
      cudaEventElapsedTime(&ms, p.a, p.b);
      auto& t = totals_[p.name];
      t.first += ms;
      t.second += 1;
      free_.push_back(p.a);
      free_.push_back(p.b);
    }
    pending_.clear();
  }
  cudaStream_t stream_;
  bool on_;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> free_;
  std::map<std::string, std::pair<double, int64_t>> totals_;
};

// Scoped op timing.
class OpScope {
 public:
  OpScope(OpProfiler& p, const char* name) : p_(p) { p_.Start(name); }
  ~OpScope() { p_.Stop(); }

 private:
  OpProfiler& p_;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, std::string name, int sm_count, StateDType state_dtype)
      : device_(device), name_(std::move(name)), sm_count_(sm_count), state_dtype_(state_dtype) {
    TTC_CU(cudaSetDevice(device));
    // TTC_CUDA_PDL=1: kernels overlap their launch with the previous kernel's tail. Off by
    // default: its first A/B (H200, session 17) was neutral at B=256/512 (Llama-1B B=256 1.370 vs
    // 1.366 s, MambaInLlama-3B B=512 4.527 vs 4.510, Llama-3B B=512 5.553 vs 5.586), and the same
    // table's B=1 cells of the 3B SSM models were 14 % slower than session 11's for a reason not
    // yet isolated; PDL is one of the candidates there.
    cuda::SetProgrammaticLaunch(EnvIs("TTC_CUDA_PDL", "1"));
    TTC_CU(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    TTC_CUBLAS(cublasCreate(&blas_));
    TTC_CUBLAS(cublasSetStream(blas_, stream_));
    TTC_CUBLAS(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
    // A workspace of our own (after SetStream, which resets it), so that recording a decode step
    // never makes cuBLAS allocate one inside the capture.
    TTC_CU(cudaMalloc(&blas_ws_, kBlasWorkspace));
    TTC_CUBLAS(cublasSetWorkspace(blas_, blas_ws_, kBlasWorkspace));
    TTC_CU(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
    mem_ = std::make_unique<StepMemory>(stream_);
    // Keep freed stream-ordered memory in the pool: activations are allocated every forward.
    cudaMemPool_t pool;
    TTC_CU(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t threshold = UINT64_MAX;
    TTC_CU(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    prof_ = std::make_unique<OpProfiler>(stream_);
    // Decode steps are recorded and replayed as CUDA graphs unless TTC_CUDA_GRAPHS=0 (for A/B
    // measurements) or the per-op profiler is on (it times each op with events and syncs).
    graphs_on_ = !prof_->on() && !EnvIs("TTC_CUDA_GRAPHS", "0");
    const char* k = std::getenv("TTC_CUDA_SPLITK");
    split_k_ = k == nullptr ? 1 : std::atoi(k);
    const char* r = std::getenv("TTC_CUDA_GEMV_ROWS");
    gemv_rows_ =
        r == nullptr ? kGemvRows : std::clamp<int64_t>(std::atoll(r), 0, cuda::kGemvMaxRows);
    // How many rows still get the hi/lo split input (TTC_CUDA_SPLIT_ROWS=0..1024): the A/B of
    // what the split's second half of rows and its summing kernel cost at small batches.
    const char* sr = std::getenv("TTC_CUDA_SPLIT_ROWS");
    split_rows_ = sr == nullptr ? kSplitRows : std::clamp<int64_t>(std::atoll(sr), 0, 1024);
    // The skinny kernel's rows: TTC_CUDA_SKINNY_ROWS=0..64 (TTC_CUDA_SKINNY=0: 0).
    const char* sk = std::getenv("TTC_CUDA_SKINNY_ROWS");
    if (EnvIs("TTC_CUDA_SKINNY", "0")) {
      skinny_rows_ = 0;
    } else if (sk != nullptr) {
      skinny_rows_ = std::clamp<int64_t>(std::atoll(sk), 0, cuda::kSkinnyMaxRows);
    }
    sample_full_ = std::getenv("TTC_CUDA_SAMPLE_FULL") != nullptr;
    // Draws over at least this many logits rows take the split sampler (cuda::SampleUsesSplit;
    // 0, the default, never: not yet measured against the cluster kernel).
    const char* ss = std::getenv("TTC_CUDA_SAMPLE_SPLIT_ROWS");
    sample_split_rows_ = ss == nullptr ? 0 : std::max<int64_t>(0, std::atoll(ss));
    fused_input_ = !EnvIs("TTC_CUDA_FUSED_INPUT", "0");
    // On by default since the tile kernel (call Q in docs/perf/cuda.md); TTC_CUDA_CASCADE=0 makes
    // every row walk its prefix itself (A/B measurements).
    cascade_on_ = !EnvIs("TTC_CUDA_CASCADE", "0");
  }
  ~CudaBackend() override {
    prof_.reset();
    cudaStreamSynchronize(stream_);
    graphs_.clear();
    cudaStreamSynchronize(stream_);
    FreeRetired();
    if (side_) cudaStreamDestroy(side_);
    if (lt_ws_) cudaFree(lt_ws_);
    if (lt_) cublasLtDestroy(lt_);
    if (d_ids_out_) cudaFree(d_ids_out_);
    for (int i = 0; i < kRing; ++i) {
      if (h_ring_[i]) cudaFreeHost(h_ring_[i]);
      if (ring_ev_[i]) cudaEventDestroy(ring_ev_[i]);
    }
    if (bf16_scratch_) cudaFree(bf16_scratch_);
    cublasDestroy(blas_);
    if (blas_ws_) cudaFree(blas_ws_);
    cudaStreamDestroy(stream_);
  }
  std::string name() const override { return name_; }

  Result<std::unique_ptr<Weight>> Upload(std::span<const HostMatrix> blocks) override {
    if (blocks.empty()) return InvalidArgument("cuda backend: upload of no blocks");
    int64_t rows = 0;
    const int64_t cols = blocks[0].cols;
    bool all_bf16 = true;
    for (const auto& b : blocks) {
      if (b.cols != cols || b.rows < 0 || cols <= 0) {
        return InvalidArgument("cuda backend: blocks of [{}, {}] and [{}, {}] cannot be stacked",
                               blocks[0].rows, cols, b.rows, b.cols);
      }
      rows += b.rows;
      all_bf16 = all_bf16 && b.dtype == HostDType::kBF16;
    }
    auto w = std::make_unique<CudaWeight>(rows, cols);
    // Same rule as the CPU backend: bf16 matrices used by GEMMs stay bf16; small tensors become
    // f32.
    const bool keep_bf16 = all_bf16 && rows >= 64 && cols > 64;
    const size_t total = static_cast<size_t>(rows * cols);
    if (keep_bf16) {
      cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&w->bf16), total * 2);
      if (e != cudaSuccess) {
        return Unavailable("cuda backend: cannot allocate {} bytes for a [{}, {}] weight: {}",
                           total * 2, rows, cols, cudaGetErrorString(e));
      }
      size_t off = 0;
      for (const auto& b : blocks) {
        const size_t n = static_cast<size_t>(b.rows * b.cols);
        TTC_CU(cudaMemcpy(w->bf16 + off, b.data, n * 2, cudaMemcpyHostToDevice));
        off += n;
      }
    } else {
      std::vector<float> host(total);
      size_t off = 0;
      for (const auto& b : blocks) {
        const size_t n = static_cast<size_t>(b.rows * b.cols);
        const auto* bytes = static_cast<const std::byte*>(b.data);
        for (size_t i = 0; i < n; ++i) {
          if (b.dtype == HostDType::kF32) {
            std::memcpy(&host[off + i], bytes + 4 * i, 4);
          } else {
            uint16_t v;
            std::memcpy(&v, bytes + 2 * i, 2);
            host[off + i] = b.dtype == HostDType::kBF16 ? Bf16ToFloat(v) : HalfToFloat(v);
          }
        }
        off += n;
      }
      cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&w->f32), total * 4);
      if (e != cudaSuccess) {
        return Unavailable("cuda backend: cannot allocate {} bytes for a [{}, {}] weight: {}",
                           total * 4, rows, cols, cudaGetErrorString(e));
      }
      TTC_CU(cudaMemcpy(w->f32, host.data(), total * 4, cudaMemcpyHostToDevice));
    }
    return std::unique_ptr<Weight>(std::move(w));
  }

  Status StateHealth() const override {
    if (overflow_ == nullptr || *static_cast<volatile unsigned*>(overflow_) == 0) {
      return Status::Ok();
    }
    return FailedPrecondition(
        "cuda backend: the f16 recurrent state overflowed: an SSM state value went past +-65504 "
        "and was saturated, so the logits no longer follow the model; use --state-dtype bf16 or "
        "f32 (a grid's state_dtype) for this model");
  }

  std::unique_ptr<Activation> NewActivation(int64_t rows, int64_t cols) override {
    return std::make_unique<CudaActivation>(rows, cols, mem_.get());
  }

  Result<std::unique_ptr<StateCache>> NewStateCache(const ModelConfig& config,
                                                    int num_slots) override {
    if (num_slots <= 0) return InvalidArgument("cuda backend: state cache needs at least one slot");
    const int64_t fixed = RecurrentBytesPerSequence(config, state_dtype_);
    if (state_dtype_ == StateDType::kF16 && fixed > 0) {
      if (overflow_ == nullptr) overflow_ = cuda::ArmStateOverflowWord();
      if (overflow_ == nullptr) {
        return Unavailable(
            "cuda backend: the f16 state's overflow word cannot be mapped (cudaHostAlloc), so a "
            "saturated state would go unnoticed; use --state-dtype bf16 or f32");
      }
      // The word is the process's; a fresh state starts at zero, so earlier saturations (this
      // backend's or another's) say nothing about it. Kernels still queued on an older state
      // could set it after the reset (a false report) or before it (a lost one): drain them
      // first. Caches without a recurrent state (attention-only models, a Llama PRM beside the
      // generator) leave the word alone. Two live f16 SSM caches in one process share it.
      TTC_CU(cudaStreamSynchronize(stream_));
      *static_cast<volatile unsigned*>(overflow_) = 0;
    }
    size_t free_b = 0, total_b = 0;
    TTC_CU(cudaMemGetInfo(&free_b, &total_b));
    if (fixed * num_slots > static_cast<int64_t>(free_b)) {
      return InvalidArgument(
          "cuda backend: {} slots need {:.2f} GB of SSM/conv state but only {:.2f} GB of device "
          "memory is free "
          "(at most {} slots)",
          num_slots, fixed * num_slots / 1e9, free_b / 1e9,
          fixed > 0 ? static_cast<int64_t>(free_b) / fixed : 0);
    }
    return std::unique_ptr<StateCache>(
        std::make_unique<CudaStateCache>(config, num_slots, state_dtype_, stream_));
  }

  void Embed(const Weight& table, std::span<const int32_t> ids, Activation* out) override {
    OpScope op_scope(*prof_, "embed");
    const auto& t = W(table);
    std::vector<int32_t> v(ids.begin(), ids.end());
    const int32_t* d_ids = ids_.Put(v, Up());
    if (Replaying()) return;
    cuda::LaunchEmbed(t.bf16, t.bf16 ? nullptr : t.f32, d_ids, static_cast<int64_t>(ids.size()),
                      t.cols(), A(out).data, stream_);
  }

  void RmsNorm(const Activation& x, const Weight& w, float eps, Activation* out) override {
    RmsNormInto(x, w, eps, out, /*bf16_consumer=*/false);
  }

  void MatMul(const Activation& x, const Weight& w, Activation* out, bool accumulate) override {
    OpScope op_scope(*prof_, w.rows() > 32768 ? "matmul_head" : "matmul");
    if (Replaying(/*keep_prepared=*/true)) return;
    Gemm(A(x).data, x.cols(), x.rows(), x.cols(), W(w), A(out).data, out->cols(), accumulate);
  }

  void SwiGlu(const Activation& gate_up, Activation* out) override {
    SwiGluInto(gate_up, out, /*bf16_consumer=*/false);
  }

  // The scratch between the two ops is read by this GEMM alone: where the GEMM reads the bf16 copy
  // the producer writes (GemmInputFor), the producer skips the f32 one, a third of RmsNorm's and
  // SwiGlu's traffic.
  void RmsNormMatMul(const Activation& x, const Weight& norm, float eps, const Weight& w,
                     Activation* scratch, Activation* out, bool accumulate) override {
    RmsNormInto(x, norm, eps, scratch, W(w).bf16 != nullptr);
    MatMul(*scratch, w, out, accumulate);
  }
  void SwiGluMatMul(const Activation& gate_up, const Weight& w, Activation* scratch,
                    Activation* out, bool accumulate) override {
    SwiGluInto(gate_up, scratch, W(w).bf16 != nullptr);
    MatMul(*scratch, w, out, accumulate);
  }

  void GatherRows(const Activation& x, std::span<const int64_t> rows, Activation* out) override {
    OpScope op_scope(*prof_, "gather");
    std::vector<int64_t> v(rows.begin(), rows.end());
    const int64_t* d = gather_.Put(v, Up());
    if (Replaying()) return;
    cuda::LaunchGatherRows(A(x).data, d, static_cast<int64_t>(rows.size()), x.cols(), A(out).data,
                           stream_);
  }

  void CopyToHost(const Activation& x, std::span<float> out) override {
    OpScope op_scope(*prof_, "copy_to_host");
    if (mem_->mode() != StepMemory::Mode::kEager) {
      std::fprintf(stderr, "cuda backend: CopyToHost inside a recorded decode step\n");
      std::abort();
    }
    TTC_CU(cudaMemcpyAsync(out.data(), A(x).data, out.size() * sizeof(float),
                           cudaMemcpyDeviceToHost, stream_));
    TTC_CU(cudaStreamSynchronize(stream_));
  }

  void SampleRows(const Activation& logits, const SamplingParams& params,
                  std::span<const SampleKey> keys, std::span<int32_t> out) override {
    SampleRowsAsync(logits, params, keys);  // (the model lets no other draws be pending here)
    CollectDraws(out);
  }

  // The draws go to d_ids_out_ (the next step's EmbedDraws reads them there) and are copied to a
  // pinned ring slot behind an event; CollectDraws waits for that event only. So the host can
  // prepare and launch the next step while this one runs.
  void SampleRowsAsync(const Activation& logits, const SamplingParams& params,
                       std::span<const SampleKey> keys) override {
    OpScope op_scope(*prof_, "sample");
    const int64_t draws = static_cast<int64_t>(keys.size());
    if (draws == 0) return;
    const int64_t V = logits.cols();
    const int64_t per_row = std::max<int64_t>(1, draws / std::max<int64_t>(1, logits.rows()));
    std::vector<cuda::DevSampleKey> k(keys.size());
    for (size_t i = 0; i < keys.size(); ++i)
      k[i] = {keys[i].seed, keys[i].sample_index, keys[i].step};
    const cuda::DevSampleKey* d_keys = keys_.Put(k, Up());
    EnsureIdsOut(draws);
    const StepMemory::Mode mode = mem_->mode();
    if (mode == StepMemory::Mode::kReplay) {
      ++ops_;
      if (ops_ != graph_->ops || g_address_epoch.load() != graph_->epoch) {
        std::fprintf(stderr,
                     "cuda backend: a replayed decode step did not match its recording (%lld ops "
                     "vs %lld, or a buffer moved); set TTC_CUDA_GRAPHS=0 to run without graphs\n",
                     static_cast<long long>(ops_), static_cast<long long>(graph_->ops));
        std::abort();
      }
      TTC_CU(cudaGraphLaunch(graph_->exec, stream_));
      ++replays_;
    } else {
      ++ops_;
      cuda::DevSampling sp{params.temperature, params.top_k, params.top_p, params.greedy,
                           sample_full_};
      sp.split = sample_split_rows_ > 0 && logits.rows() >= sample_split_rows_;
      if (cuda::SampleUsesSplit(sp, V, A(logits).data, logits.rows())) ++split_samples_;
      Scratch probs(mem_.get(), cuda::SampleScratchBytes(sp, V, draws, per_row, A(logits).data));
      cuda::LaunchSample(A(logits).data, draws, per_row, V, sp, d_keys, probs.as<float>(),
                         d_ids_out_, stream_);
      if (mode == StepMemory::Mode::kCapture) FinishCapture();
    }
    if (measure_peak_) eager_peak_ = mem_->peak();
    mem_->EndStep();
    graph_ = nullptr;
    const int slot = ring_next_;
    ring_next_ = (ring_next_ + 1) % kRing;
    TTC_CU(cudaMemcpyAsync(h_ring_[slot], d_ids_out_, static_cast<size_t>(draws) * 4,
                           cudaMemcpyDeviceToHost, stream_));
    TTC_CU(cudaEventRecord(ring_ev_[slot], stream_));
    pending_.push_back({slot, draws});
  }

  void CollectDraws(std::span<int32_t> out) override {
    const Pending p = pending_.front();
    pending_.pop_front();
    TTC_CU(cudaEventSynchronize(ring_ev_[p.slot]));
    std::memcpy(out.data(), h_ring_[p.slot],
                static_cast<size_t>(std::min<int64_t>(p.draws, std::ssize(out))) * 4);
  }

  void EmbedDraws(const Weight& table, std::span<const int64_t> draw_rows,
                  Activation* out) override {
    OpScope op_scope(*prof_, "embed");
    const auto& t = W(table);
    std::vector<int32_t> v(draw_rows.begin(), draw_rows.end());
    const int32_t* d_map = draw_map_.Put(v, Up());
    if (Replaying()) return;
    cuda::LaunchEmbed(t.bf16, t.bf16 ? nullptr : t.f32, d_ids_out_, static_cast<int64_t>(v.size()),
                      t.cols(), A(out).data, stream_, d_map, t.rows());
  }

  bool PrefersPipelinedDecode() const override { return true; }
  // A PRM conversation of a few hundred tokens leaves most SMs idle in its GEMMs and pays the
  // forward's launches and host round trip alone; 4096 rows fill every GEMM's tiles.
  int64_t PrefillBatchTokens() const override { return 4096; }

  // Decode steps as CUDA graphs. A step's shape (state cache, rows, sampling) is run eagerly the
  // first time, recorded the second time in a row, and replayed from then on; the last kMaxGraphs
  // recordings are kept (a generate's batch shrinks as samples finish, and each size is a shape).
  void BeginForward(StateCache* state, const BatchLayout& batch, const SamplingParams* sample,
                    int64_t draws, bool tokens_from_draws) override {
    ++forwards_;
    mem_->EndStep();
    graph_ = nullptr;
    ops_ = 0;
    measure_peak_ = false;
    prepared_ = {};
    // Once per forward, for both the recording key and the cascade's tasks.
    prefix_groups_.clear();
    if (cascade_on_ && DecodeOnly(batch)) {
      prefix_groups_ = PrefixGroups(*static_cast<CudaStateCache*>(state), batch);
    }
    if (!graphs_on_ || sample == nullptr) return;
    const int64_t M = static_cast<int64_t>(batch.seqs.size());
    if (!DecodeOnly(batch) || draws != M) return;
    auto* st = static_cast<CudaStateCache*>(state);
    const GraphKey key{st->id(), M, *sample, PrefixLayout(prefix_groups_), tokens_from_draws};
    // The step's KV growth (stream-ordered allocations and copies) happens here, outside any
    // recording; the ops then find the capacity in place.
    for (const auto& s : batch.seqs) st->EnsureCapacity(s.slot, s.start_pos + s.num_tokens);
    EnsureIdsOut(draws);
    // Freeing retired buffers and stale recordings waits for the stream; a step with neither does
    // not, so that a pipelined decode launches it while the previous step still runs.
    const uint64_t epoch = g_address_epoch.load();
    auto stale = [&](const std::unique_ptr<StepGraph>& g) {
      return g->epoch != epoch || g->key.state != key.state;
    };
    if (HasRetired() || std::any_of(graphs_.begin(), graphs_.end(), stale)) {
      TTC_CU(cudaStreamSynchronize(stream_));
      FreeRetired();
      std::erase_if(graphs_, stale);
    }
    ++graph_step_;
    for (auto& g : graphs_) {
      if (g->key == key) {
        graph_ = g.get();
        graph_->last_use = graph_step_;
        mem_->BeginStep(StepMemory::Mode::kReplay);
        return;
      }
    }
    if (!(key == last_key_)) {
      last_key_ = key;
      eager_peak_ = 0;
    }
    if (eager_peak_ == 0) {  // first step of this shape: run it eagerly and measure its memory
      measure_peak_ = true;
      mem_->BeginStep(StepMemory::Mode::kEager);
      return;
    }
    if (graphs_.size() >= kMaxGraphs) {
      TTC_CU(cudaStreamSynchronize(stream_));  // the evicted recording may still be running
      auto lru = std::min_element(graphs_.begin(), graphs_.end(), [](const auto& a, const auto& b) {
        return a->last_use < b->last_use;
      });
      graphs_.erase(lru);
    }
    auto g = std::make_unique<StepGraph>();
    g->key = key;
    g->stream = stream_;
    g->last_use = graph_step_;
    g->arena_bytes = eager_peak_ + (size_t{1} << 20);
    if (cudaMallocAsync(reinterpret_cast<void**>(&g->arena), g->arena_bytes, stream_) !=
        cudaSuccess) {
      cudaGetLastError();
      measure_peak_ = true;  // no room for another step's activations: stay eager
      mem_->BeginStep(StepMemory::Mode::kEager);
      return;
    }
    TTC_CU(cudaStreamSynchronize(stream_));
    graph_ = g.get();
    graphs_.push_back(std::move(g));
    mem_->BeginStep(StepMemory::Mode::kCapture, graph_->arena, graph_->arena_bytes, &graph_->extra);
    TTC_CU(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  }

  void Attention(StateCache* state, int layer, const Activation& qkv, const BatchLayout& batch,
                 const AttentionSpec& spec, Activation* out) override {
    OpScope op_scope(*prof_, "attention");
    auto* st = static_cast<CudaStateCache*>(state);
    const int64_t M = qkv.rows();
    std::vector<DevRow> rows;
    rows.reserve(static_cast<size_t>(M));
    for (const auto& s : batch.seqs) {
      st->EnsureCapacity(s.slot, s.start_pos + s.num_tokens);
      for (int64_t t = 0; t < s.num_tokens; ++t)
        rows.push_back({s.slot, static_cast<int32_t>(s.start_pos + t)});
    }
    const cuda::DevKv* dkv = st->Descriptors(layer, Up());
    const DevRow* d_rows = rows_.Put(rows, Up());
    const float* d_freq = freq_.Put(spec.inv_freq, Up());
    const int H = static_cast<int>(spec.num_heads), Hkv = static_cast<int>(spec.num_kv_heads),
              hd = static_cast<int>(spec.head_dim);
    // Rows that share a prompt prefix walk it together (cascade) when that reads each prefix at
    // most half as often as the rows would (unless TTC_CUDA_CASCADE=0).
    const int G = H / Hkv;
    const bool pow2 = hd == 32 || hd == 64 || hd == 128;
    int tasks = 0;
    // prefix_groups_ is this forward's, made by BeginForward: one group per row when the cascade is
    // on and the forward decodes only, empty otherwise.
    if (pow2 && G <= cuda::kPrefixTaskRows && !prefix_groups_.empty() &&
        prefix_groups_.size() == batch.seqs.size()) {
      // The same for every attention layer of a forward: planned by its first one.
      if (task_plan_.forward != forwards_ ||
          task_plan_.rows_per_task != cuda::PrefixRowsPerTask(G)) {
        task_plan_.forward = forwards_;
        task_plan_.rows_per_task = cuda::PrefixRowsPerTask(G);
        int n = PrefixTasks(prefix_groups_, task_plan_.rows_per_task, &task_rows_);
        if (2 * static_cast<int64_t>(n) > M) n = 0;
        for (const auto& r : rows)  // the prefix kernel walks whole prefixes
          if (r.pos + 1 < st->PrefixLen(r.slot)) n = 0;
        task_plan_.tasks = n;
      }
      tasks = task_plan_.tasks;
    }
    const int32_t* d_tasks = tasks > 0 ? tasks_.Put(task_rows_, Up()) : nullptr;
    if (Replaying()) return;
    Scratch q(mem_.get(), static_cast<size_t>(M * H * hd) * 4);
    cuda::LaunchRopeAppend(A(qkv).data, M, d_rows, d_freq, H, Hkv, hd, q.as<float>(), dkv, stream_);
    // Split-KV when blocks cannot fill the GPU (cuda::AttentionRanges for the own positions,
    // cuda::PrefixRanges for the prefixes). A recorded step keeps these counts; any count is
    // correct for the later steps it replays.
    int64_t max_own = 1, max_plen = 1;
    for (const auto& r : rows) {
      const int64_t plen = tasks > 0 ? st->PrefixLen(r.slot) : 0;
      max_own = std::max<int64_t>(max_own, r.pos + 1 - plen);
      max_plen = std::max<int64_t>(max_plen, plen);
    }
    const int splits = cuda::AttentionRanges(M * Hkv, max_own, sm_count_);
    cuda::PrefixPlan plan;
    if (tasks > 0) {
      plan = {d_tasks, tasks, cuda::PrefixRanges(int64_t{tasks} * Hkv, max_plen, sm_count_)};
    }
    const int total = splits + (tasks > 0 ? plan.chunks : 0);
    if (tasks > 0) ++cascades_;
    Scratch part_o(mem_.get(), total > 1 ? static_cast<size_t>(M * H * total * hd) * 4 : 16);
    Scratch part_ml(mem_.get(), total > 1 ? static_cast<size_t>(M * H * total * 2) * 4 : 16);
    // The O projection that follows reads the attention's bf16 copy of out, written where the
    // output is normalised, instead of converting out in a kernel of its own (the last
    // F32ToBf16Kernel of a Llama layer: 63 µs of a Llama-1B B=256 step, call AP).
    bool split = false;
    uint16_t* gemm_in = GemmInputFor(A(out).data, M, H * hd, &split, /*only=*/false);
    cuda::LaunchAttention(q.as<float>(), M, d_rows, dkv, H, Hkv, hd, A(out).data, splits,
                          part_o.as<float>(), part_ml.as<float>(), stream_, cuda::AttnKernel::kAuto,
                          tasks > 0 ? &plan : nullptr, gemm_in, split);
  }

  static bool DecodeOnly(const BatchLayout& batch) {
    for (const auto& s : batch.seqs)
      if (s.num_tokens != 1) return false;
    return !batch.seqs.empty();
  }

  // The group of each row of a decode batch (one token per sequence): rows whose slots read the
  // same prefix block share a number, numbered in order of first appearance.
  static std::vector<int32_t> PrefixGroups(const CudaStateCache& st, const BatchLayout& batch) {
    std::unordered_map<const void*, int32_t> index;
    std::vector<int32_t> group;
    group.reserve(batch.seqs.size());
    for (const auto& s : batch.seqs) {
      const auto next = static_cast<int32_t>(index.size());
      group.push_back(index.try_emplace(st.PrefixId(s.slot), next).first->second);
    }
    return group;
  }

  // The cascade's tasks (cuda::PrefixPlan's layout in *out): each group's rows in batch order, cut
  // into tasks of up to rows_per_task rows; returns the count.
  static int PrefixTasks(const std::vector<int32_t>& group, int rows_per_task,
                         std::vector<int32_t>* out) {
    std::vector<std::vector<int32_t>> rows;
    for (size_t r = 0; r < group.size(); ++r) {
      if (static_cast<size_t>(group[r]) == rows.size()) rows.emplace_back();
      rows[static_cast<size_t>(group[r])].push_back(static_cast<int32_t>(r));
    }
    out->clear();
    int tasks = 0;
    for (const auto& g : rows) {
      for (size_t i = 0; i < g.size(); i += static_cast<size_t>(rows_per_task)) {
        const size_t n = std::min(g.size() - i, static_cast<size_t>(rows_per_task));
        out->insert(out->end(), g.begin() + static_cast<std::ptrdiff_t>(i),
                    g.begin() + static_cast<std::ptrdiff_t>(i + n));
        out->insert(out->end(), cuda::kPrefixTaskRows - n, -1);
        ++tasks;
      }
    }
    return tasks;
  }

  // A hash of PrefixGroups: equal layouts make the same cascade tasks, so a recorded step's launch
  // shapes fit every step with its key.
  static uint64_t PrefixLayout(const std::vector<int32_t>& groups) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the rows' group numbers
    for (int32_t g : groups) h = (h ^ static_cast<uint64_t>(g)) * 1099511628211ull;
    return h;
  }

  int64_t PlanMaxSequences(const ModelConfig& config, int64_t prompt_len, int64_t max_new_tokens,
                           int64_t prompts) override {
    // Memory this backend freed sits in the stream-ordered pool and counts as used to the driver:
    // hand it back first so that the plan sees it.
    if (cudaStreamSynchronize(stream_) != cudaSuccess) return 0;
    graphs_.clear();  // their arenas hold a step's activations each
    if (cudaStreamSynchronize(stream_) != cudaSuccess) return 0;
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceGetDefaultMemPool(&pool, device_) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
    auto plan = PlanCudaBatch(config, prompt_len + max_new_tokens, device_, prompt_len, prompts,
                              state_dtype_);
    return plan.ok() ? plan->max_batch : 0;
  }

  void Mamba1(StateCache* state, int layer, const Activation& proj, const BatchLayout& batch,
              const Mamba1Spec& spec, const Mamba1Weights& w, Activation* out) override {
    OpScope op_scope(*prof_, "mamba1");
    auto* st = static_cast<CudaStateCache*>(state);
    auto& L = st->layer(layer);
    const int64_t di = spec.d_inner, N = spec.d_state, R = spec.dt_rank, K = spec.d_conv,
                  dxb = spec.d_xb;
    const bool mil = spec.kind == MixerKind::kMamba1Mil;
    const int64_t M = proj.rows(), ldp = proj.cols();
    const float* p = A(proj).data;
    int nseq = 0;
    const DevSeq* seqs = Seqs(batch, &nseq);
    if (Replaying()) return;
    Scratch xc(mem_.get(), static_cast<size_t>(M * di) * 4);
    cuda::LaunchCausalConv(p, ldp, mil ? di : 0, mil ? N : 0, mil ? di / dxb : 1, di,
                           static_cast<int>(K), F32(*w.conv_w), w.conv_b ? F32(*w.conv_b) : nullptr,
                           true, seqs, nseq, L.conv, xc.as<float>(), stream_);
    Scratch xdbc(mem_.get(), mil ? 16 : static_cast<size_t>(M * (R + 2 * N)) * 4);
    if (!mil) Gemm(xc.as<float>(), di, M, di, W(*w.x_proj), xdbc.as<float>(), R + 2 * N, false);
    Scratch dt(mem_.get(), static_cast<size_t>(M * di) * 4);
    if (mil) {
      Gemm(p + 2 * di + 2 * dxb, ldp, M, R, W(*w.dt_w), dt.as<float>(), di, false);
    } else {
      Gemm(xdbc.as<float>(), R + 2 * N, M, R, W(*w.dt_w), dt.as<float>(), di, false);
    }
    cuda::Mamba1ScanArgs a{p,
                           ldp,
                           xc.as<float>(),
                           dt.as<float>(),
                           F32(*w.dt_b),
                           F32(*w.A),
                           F32(*w.D),
                           mil ? nullptr : xdbc.as<float>(),
                           R,
                           di,
                           N,
                           dxb,
                           mil,
                           L.ssm,
                           st->store(),
                           M > nseq,
                           A(out).data,
                           static_cast<int>(sm_count_)};
    // The out_proj GEMM that follows reads the scan's bf16 copy of out (after the dt and x_proj
    // GEMMs above, which reset the prepared input), instead of converting out in a kernel of its
    // own: F32ToBf16Kernel took 2.2 % of a MambaInLlama-3B B=512 step (call AP).
    a.gemm_in = GemmInputFor(a.out, M, di, &a.split, /*only=*/false);
    a.rows = M;
    cuda::LaunchMamba1Scan(a, seqs, nseq, stream_);
  }

  void Ssd(StateCache* state, int layer, const Activation& proj, const BatchLayout& batch,
           const SsdSpec& spec, const SsdWeights& w, Activation* out) override {
    OpScope op_scope(*prof_, "ssd");
    auto* st = static_cast<CudaStateCache*>(state);
    auto& L = st->layer(layer);
    const int64_t di = spec.d_inner, N = spec.d_state, K = spec.d_conv, H = spec.heads,
                  P = spec.head_dim, G = spec.groups;
    const bool llamba = spec.kind == MixerKind::kDiscreteMamba2;
    const int64_t C = di + 2 * G * N;
    const int64_t xbc_off = llamba ? 0 : di, z_off = llamba ? C : 0,
                  dt_off = llamba ? C + di : di + C;
    const int64_t M = proj.rows(), ldp = proj.cols();
    const float* p = A(proj).data;
    int nseq = 0;
    const DevSeq* seqs = Seqs(batch, &nseq);
    if (Replaying()) return;
    Scratch xbc(mem_.get(), static_cast<size_t>(M * C) * 4);
    cuda::LaunchCausalConv(p, ldp, xbc_off, 0, 1, C, static_cast<int>(K), F32(*w.conv_w),
                           w.conv_b ? F32(*w.conv_b) : nullptr, !llamba, seqs, nseq, L.conv,
                           xbc.as<float>(), stream_);
    Scratch y(mem_.get(), static_cast<size_t>(M * di) * 4);
    cuda::SsdScanArgs a{p,
                        ldp,
                        dt_off,
                        xbc.as<float>(),
                        di,
                        N,
                        H,
                        P,
                        G,
                        llamba,
                        F32(*w.D),
                        llamba ? nullptr : F32(*w.dt_bias),
                        llamba ? nullptr : F32(*w.A),
                        spec.dt_min,
                        spec.dt_max,
                        L.ssm,
                        st->store(),
                        M > nseq,
                        y.as<float>()};
    cuda::LaunchSsdScan(a, seqs, nseq, stream_);
    if (llamba) {
      bool split = false;  // as in Mamba1: the out_proj GEMM reads the gate's bf16 copy
      uint16_t* gemm_in = GemmInputFor(A(out).data, M, di, &split, /*only=*/false);
      cuda::LaunchLlambaGate(y.as<float>(), p, ldp, z_off, F32(*w.z_bias), M, di, A(out).data,
                             stream_, gemm_in, split);
    } else {
      cuda::LaunchMamba2GateNorm(y.as<float>(), p, ldp, z_off, F32(*w.norm_w), spec.norm_eps, M, di,
                                 G, A(out).data, stream_);
    }
  }

 private:
  // out[m * ldo + n] (+)= sum_k x[m * ldx + k] * w[n, k]. bf16 weights run on tensor cores with f32
  // accumulation. While the GEMM is memory-bound (M <= kSplitRows: the weight read dominates and
  // twice the FLOPs are free) x is split into bf16 hi + lo halves stacked along M, one GEMM reads
  // the weights once for both, and the halves are summed: the result is as exact as an f32-input
  // GEMM on bf16 weights. Above that x is rounded to bf16 (one rounding, 2^-9 relative). f32
  // weights: a plain f32 SGEMM.
  static constexpr int64_t kSplitRows = 128;
  // Up to how many rows the f32 GEMV replaces cuBLAS by default. Measured on the H200 (Llama-1B
  // decode step, ms, GEMV vs cuBLAS): 1 row 1.52 vs 2.09, 2 rows 1.69 vs 2.08, 4 rows 2.14 vs 2.05,
  // 8 rows 3.14 vs 2.18 (each lane reads every input row per weight load).
  static constexpr int64_t kGemvRows = 3;
  // Up to how many rows the skinny kernel replaces cuBLAS (and the halves' sum) by default. Its
  // first measurement (H200, session 17, table at B=1/16/64/256/512 with it on up to 64 rows): the
  // B=16 cells -7 to +3 % against session 11, the B=64 cells 36-53 % slower (Llama-1B 1.021 ->
  // 1.434 s). At 64 rows the split input makes 128 mma rows per weight tile, as many input bytes
  // per stage as weight bytes, on 8 warps per SM: no longer a weight stream. 17-63 rows are
  // unmeasured; until the A/B (TTC_CUDA_SKINNY_ROWS) places the crossover, cuBLAS keeps them.
  static constexpr int64_t kSkinnyRows = 16;
  void Gemm(const float* x, int64_t ldx, int64_t M, int64_t K, const CudaWeight& w, float* out,
            int64_t ldo, bool accumulate) {
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f, zero = 0.0f;
    const int64_t N = w.rows();
    const Prepared prepared = prepared_;
    prepared_ = {};
    if (w.bf16) {
      // Small batches: one f32 kernel that streams the weights.
      if (M <= gemv_rows_ &&
          cuda::LaunchGemv(w.bf16, N, K, x, ldx, M, out, ldo, accumulate, stream_)) {
        return;
      }
      const bool split = M <= split_rows_;
      const int64_t rows = split ? 2 * M : M;
      // The producer of x (RmsNorm, SwiGlu) may have written this input already (GemmInputFor).
      const bool ready = prepared.x == x && prepared.M == M && prepared.K == K && ldx == K &&
                         prepared.split == split;
      if (prepared.x == x && prepared.only && !ready) {
        Die("Gemm", "its input has no f32 rows and no bf16 copy of this shape", __FILE__, __LINE__);
      }
      Bf16Scratch(static_cast<size_t>(rows * K));
      if (!ready) {
        if (split) {
          cuda::LaunchSplitBf16(x, ldx, M, K, bf16_scratch_, stream_);
        } else {
          cuda::LaunchF32ToBf16(x, ldx, M, K, bf16_scratch_, stream_);
        }
      }
      // Decode batches of 4-16 rows: one kernel that streams the weights and sums the split halves
      // in its accumulators (no [2M, N] scratch, no summing kernel).
      if (M <= skinny_rows_ && cuda::LaunchSkinnyGemm(w.bf16, N, K, bf16_scratch_, M, split, out,
                                                      ldo, accumulate, stream_)) {
        return;
      }
      const int parts = SplitKParts(N, rows, K);
      if (parts > 1) {
        // Split-K: the K slices as a strided batch (parts x the thread blocks of a narrow GEMM),
        // then one kernel sums the partial products (and the halves) into out.
        const int64_t ks = K / parts;
        Scratch y(mem_.get(), static_cast<size_t>(parts * rows * N) * 4);
        TTC_CUBLAS(cublasGemmStridedBatchedEx(
            blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(rows),
            static_cast<int>(ks), &alpha, w.bf16, CUDA_R_16BF, static_cast<int>(K), ks,
            bf16_scratch_, CUDA_R_16BF, static_cast<int>(K), ks, &zero, y.as<float>(), CUDA_R_32F,
            static_cast<int>(N), rows * N, parts, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        cuda::LaunchSumParts(y.as<float>(), parts, M, split, N, out, ldo, accumulate, stream_);
        return;
      }
      if (split) {
        Scratch y(mem_.get(), static_cast<size_t>(rows * N) * 4);
        Bf16Gemm(w.bf16, bf16_scratch_, y.as<float>(), N, rows, K, N, zero);
        cuda::LaunchSumParts(y.as<float>(), 1, M, true, N, out, ldo, accumulate, stream_);
        return;
      }
      Bf16Gemm(w.bf16, bf16_scratch_, out, N, M, K, ldo, beta);
    } else {
      TTC_CUBLAS(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N),
                             static_cast<int>(M), static_cast<int>(K), &alpha, w.f32,
                             static_cast<int>(K), x, static_cast<int>(ldx), &beta, out,
                             static_cast<int>(ldo)));
    }
  }

  // out[M, N] (ldo) = x[M, K] (bf16) * w[N, K]^T (bf16) + beta * out, f32 accumulation and output.
  // By default cublasGemmEx with cuBLAS's heuristic. With TTC_CUDA_GEMM_TUNE=1 the first eager GEMM
  // of each (N, K, ldo, beta != 0, M rounded up to a power of two) times cublasLt candidates on
  // the real operands (into a scratch output): the heuristic's first 8 (TTC_CUDA_GEMM_TUNE=wide:
  // 64) and the first 8's split-K variants. It keeps the fastest for that bucket, and recorded
  // decode steps use it too (a bucket first met while recording uses cublasGemmEx: no timing can
  // run inside a capture; each batch size's first decode step runs eagerly, so its GEMMs are
  // tuned before the recording). A candidate that refuses a later M of its bucket falls back to
  // cublasGemmEx.
  void Bf16Gemm(const uint16_t* w, const uint16_t* x, float* out, int64_t N, int64_t M, int64_t K,
                int64_t ldo, float beta) {
    const float alpha = 1.0f;
    if (tune_ > 0 && LtGemm(w, x, out, N, M, K, ldo, beta,
                            /*may_tune=*/mem_->mode() == StepMemory::Mode::kEager))
      return;
    TTC_CUBLAS(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N),
                            static_cast<int>(M), static_cast<int>(K), &alpha, w, CUDA_R_16BF,
                            static_cast<int>(K), x, CUDA_R_16BF, static_cast<int>(K), &beta, out,
                            CUDA_R_32F, static_cast<int>(ldo), CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
  }

  struct LtPlan {
    bool ok = false;
    cublasLtMatmulAlgo_t algo{};
  };

  bool LtGemm(const uint16_t* w, const uint16_t* x, float* out, int64_t N, int64_t M, int64_t K,
              int64_t ldo, float beta, bool may_tune) {
    int64_t bucket = 16;
    while (bucket < M) bucket *= 2;
    const auto key = std::make_tuple(N, K, ldo, beta != 0.0f, bucket);
    if (!may_tune && lt_plans_.find(key) == lt_plans_.end()) return false;
    if (!lt_) {
      if (cublasLtCreate(&lt_) != CUBLAS_STATUS_SUCCESS) return false;
      TTC_CU(cudaMalloc(&lt_ws_, kLtWorkspace));
    }
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
    cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, K, N, K);
    cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, K, M, K);
    cublasLtMatrixLayoutCreate(&c, CUDA_R_32F, N, M, ldo);
    const float alpha = 1.0f;
    auto found = lt_plans_.find(key);
    if (found == lt_plans_.end()) {
      LtPlan plan;
      cublasLtMatmulPreference_t pref = nullptr;
      cublasLtMatmulPreferenceCreate(&pref);
      const size_t ws = kLtWorkspace;
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                           sizeof(ws));
      cublasLtMatmulHeuristicResult_t heur[64];
      int nh = 0;
      if (cublasLtMatmulAlgoGetHeuristic(lt_, op, a, b, c, c, pref, tune_, heur, &nh) !=
          CUBLAS_STATUS_SUCCESS) {
        nh = 0;
      }
      // Each candidate as the heuristic gives it, and split along K in 2, 4 and 8 parts where the
      // algorithm allows it: at decode sizes (M <= 512, N of a few thousand) the default tiles give
      // fewer thread blocks than SMs, and only a K split fills the GPU.
      std::vector<cublasLtMatmulAlgo_t> cand;
      for (int i = 0; i < nh; ++i) {
        cand.push_back(heur[i].algo);
        if (i >= 8) continue;  // split-K variants of the first 8 only (the tuning's time)
        int32_t splitk = 0;
        uint32_t schemes = 0;
        size_t wr = 0;
        if (cublasLtMatmulAlgoCapGetAttribute(&heur[i].algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT,
                                              &splitk, sizeof(splitk),
                                              &wr) != CUBLAS_STATUS_SUCCESS ||
            splitk == 0 ||
            cublasLtMatmulAlgoCapGetAttribute(&heur[i].algo,
                                              CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes,
                                              sizeof(schemes), &wr) != CUBLAS_STATUS_SUCCESS) {
          continue;
        }
        // A separate reduction in f32 keeps the sum order fixed (deterministic results).
        const uint32_t scheme = (schemes & CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE)
                                    ? CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE
                                    : CUBLASLT_REDUCTION_SCHEME_INPLACE;
        if ((schemes & scheme) == 0) continue;
        for (int32_t parts : {2, 4, 8}) {
          cublasLtMatmulAlgo_t alg = heur[i].algo;
          cublasLtMatmulHeuristicResult_t check{};
          if (cublasLtMatmulAlgoConfigSetAttribute(&alg, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &parts,
                                                   sizeof(parts)) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulAlgoConfigSetAttribute(&alg, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                                   &scheme,
                                                   sizeof(scheme)) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulAlgoCheck(lt_, op, a, b, c, c, &alg, &check) == CUBLAS_STATUS_SUCCESS &&
              check.workspaceSize <= kLtWorkspace) {
            cand.push_back(alg);
          }
        }
      }
      const int n = static_cast<int>(cand.size());
      if (n > 0) {
        Scratch tmp(mem_.get(), static_cast<size_t>(ldo * M) * 4);
        cudaEvent_t e0, e1;
        TTC_CU(cudaEventCreate(&e0));
        TTC_CU(cudaEventCreate(&e1));
        const float zero = 0.0f;
        // Milliseconds per launch over `reps` launches after one untimed; < 0 if refused.
        auto time = [&](const cublasLtMatmulAlgo_t& algo, int reps) -> float {
          auto run = [&] {
            return cublasLtMatmul(lt_, op, &alpha, w, a, x, b, &zero, tmp.as<float>(), c,
                                  tmp.as<float>(), c, &algo, lt_ws_, kLtWorkspace, stream_);
          };
          if (run() != CUBLAS_STATUS_SUCCESS) return -1.0f;
          TTC_CU(cudaEventRecord(e0, stream_));
          for (int r = 0; r < reps; ++r) run();
          TTC_CU(cudaEventRecord(e1, stream_));
          TTC_CU(cudaEventSynchronize(e1));
          float ms = 0.0f;
          cudaEventElapsedTime(&ms, e0, e1);
          return ms / static_cast<float>(reps);
        };
        // Every candidate screened with 3 launches, the 4 fastest timed again with 10 (a few
        // microseconds' GEMM at decode sizes is easily misranked by one short look).
        std::vector<std::pair<float, int>> screened;
        for (int i = 0; i < n; ++i) {
          const float ms = time(cand[i], 3);
          if (ms >= 0.0f) screened.emplace_back(ms, i);
        }
        std::sort(screened.begin(), screened.end());
        float best = 1e30f;
        for (size_t j = 0; j < screened.size() && j < 4; ++j) {
          const float ms = time(cand[screened[j].second], 10);
          if (ms >= 0.0f && ms < best) {
            best = ms;
            plan.ok = true;
            plan.algo = cand[screened[j].second];
          }
        }
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
      }
      cublasLtMatmulPreferenceDestroy(pref);
      found = lt_plans_.emplace(key, plan).first;
    }
    bool done = false;
    if (found->second.ok) {
      done = cublasLtMatmul(lt_, op, &alpha, w, a, x, b, &beta, out, c, out, c, &found->second.algo,
                            lt_ws_, kLtWorkspace, stream_) == CUBLAS_STATUS_SUCCESS;
    }
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatmulDescDestroy(op);
    return done;
  }

  // The shape of a decode step that has a recording.
  struct GraphKey {
    uint64_t state = 0;  // CudaStateCache::id()
    int64_t rows = 0;    // sequences, one token and one draw each
    SamplingParams sampling;
    uint64_t prefixes = 0;  // PrefixLayout: which rows share a prompt prefix (the cascade's tasks)
    bool from_draws = false;  // tokens embedded from the previous draws (EmbedDraws)
    bool operator==(const GraphKey& o) const {
      return state == o.state && rows == o.rows && prefixes == o.prefixes &&
             from_draws == o.from_draws && sampling.temperature == o.sampling.temperature &&
             sampling.top_k == o.sampling.top_k && sampling.top_p == o.sampling.top_p &&
             sampling.greedy == o.sampling.greedy;
    }
  };
  // One recorded decode step: the graph, the arena of its activations and scratch, and the
  // address epoch it was recorded in.
  struct StepGraph {
    GraphKey key;
    cudaGraphExec_t exec = nullptr;
    cudaStream_t stream = nullptr;
    char* arena = nullptr;
    size_t arena_bytes = 0;
    std::vector<void*> extra;
    uint64_t epoch = 0, last_use = 0;
    int64_t ops = 0;
    // Destroyed only while the stream is idle (BeginForward synchronises first).
    ~StepGraph() {
      if (exec) cudaGraphExecDestroy(exec);
      if (arena) cudaFreeAsync(arena, stream);
      for (void* p : extra) cudaFree(p);
    }
  };
  static constexpr size_t kMaxGraphs = 2;

  // Counts the op; true when it must launch nothing (a replayed step: its recording will). Forgets
  // a prepared GEMM input unless the op is its consumer (MatMul).
  bool Replaying(bool keep_prepared = false) {
    ++ops_;
    if (!keep_prepared) prepared_ = {};
    return mem_->mode() == StepMemory::Mode::kReplay;
  }
  // Into how many K slices a GEMM of N outputs over `rows` bf16 rows is split: 1 (off) unless
  // TTC_CUDA_SPLITK=2|4|8 asks for it, and then only where cuBLAS has fewer 128 x 128 tiles than
  // SMs and the slices stay >= 512 long (a multiple of 64). Measured on the H200 (call I, Llama-1B,
  // ms/step at B=16/64/256/512): off 1.704/2.139/3.065/5.283, 2 slices 1.725/2.219/3.328/5.618,
  // 4 slices 1.696/2.251/3.208/5.492, 8 (only the K=8192 down projection qualifies)
  // 1.640/2.072/2.996/5.266; a rule picking 2-8 by tile count lost 4-5 % on Llama-3B and
  // MambaInLlama-3B. The gain is too small and too model-specific to be a default.
  int SplitKParts(int64_t N, int64_t rows, int64_t K) const {
    const int parts = split_k_;
    if (parts != 2 && parts != 4 && parts != 8) return 1;
    const int64_t tiles = ((N + 127) / 128) * ((rows + 127) / 128);
    if (tiles >= sm_count_ || rows > 4096) return 1;
    return K % (64 * parts) == 0 && K / parts >= 512 ? parts : 1;
  }
  // Room for `need` bf16 GEMM-input elements in bf16_scratch_.
  void Bf16Scratch(size_t need) {
    if (need <= bf16_cap_) return;
    if (bf16_scratch_) {
      if (mem_->mode() == StepMemory::Mode::kEager) {
        TTC_CU(cudaStreamSynchronize(stream_));
        cudaFree(bf16_scratch_);
      } else {
        Retire(bf16_scratch_);
      }
    }
    bf16_cap_ = std::max(need, 2 * bf16_cap_);
    TTC_CU(cudaMalloc(reinterpret_cast<void**>(&bf16_scratch_), bf16_cap_ * 2));
    g_address_epoch.fetch_add(1);
  }
  // A GEMM input written by the op that produces the activation `out` ([M, K], ld K) in the form
  // Gemm will want it (bf16, or hi/lo split up to kSplitRows rows), so the GEMM that reads `out`
  // next skips its conversion kernel; null when the GEMV will read the f32 rows instead. With
  // `only`, the producer writes that copy alone (no f32 rows): the caller guarantees that the next
  // op is a bf16 GEMM reading `out` (RmsNormMatMul, SwiGluMatMul), and Gemm checks it.
  uint16_t* GemmInputFor(const float* out, int64_t M, int64_t K, bool* split, bool only) {
    *split = false;
    if (!fused_input_ || M <= gemv_rows_) return nullptr;
    *split = M <= split_rows_;
    Bf16Scratch(static_cast<size_t>((*split ? 2 : 1) * M * K));
    prepared_ = {out, M, K, *split, only};
    return bf16_scratch_;
  }
  // RmsNorm and SwiGlu; bf16_consumer: the next op is a GEMM on bf16 weights reading `out`.
  void RmsNormInto(const Activation& x, const Weight& w, float eps, Activation* out,
                   bool bf16_consumer) {
    OpScope op_scope(*prof_, "rmsnorm");
    if (Replaying()) return;
    bool split = false;
    uint16_t* gemm_in = GemmInputFor(A(out).data, x.rows(), x.cols(), &split, bf16_consumer);
    cuda::LaunchRmsNorm(A(x).data, F32(w), eps, x.rows(), x.cols(),
                        gemm_in && bf16_consumer ? nullptr : A(out).data, stream_, gemm_in, split);
  }
  void SwiGluInto(const Activation& gate_up, Activation* out, bool bf16_consumer) {
    OpScope op_scope(*prof_, "swiglu");
    if (Replaying()) return;
    bool split = false;
    uint16_t* gemm_in =
        GemmInputFor(A(out).data, gate_up.rows(), out->cols(), &split, bf16_consumer);
    cuda::LaunchSwiGlu(A(gate_up).data, gate_up.rows(), out->cols(),
                       gemm_in && bf16_consumer ? nullptr : A(out).data, stream_, gemm_in, split);
  }
  UploadCtx Up() const {
    const auto mode = mem_->mode();
    return {stream_, mode == StepMemory::Mode::kCapture ? side_ : nullptr,
            mode == StepMemory::Mode::kEager ? 0 : graph_step_};
  }
  // Room for `draws` sampled ids on the device and in pinned host memory (grown outside any
  // recording: BeginForward calls it before capturing).
  // Grows the device draws buffer and the pinned ring, keeping their contents: the last draws are
  // the next pipelined step's tokens, and pending draws are still to be collected.
  void EnsureIdsOut(int64_t draws) {
    if (static_cast<size_t>(draws) <= ids_cap_) return;
    TTC_CU(cudaStreamSynchronize(stream_));
    const size_t old_cap = ids_cap_;
    ids_cap_ = std::max<size_t>(static_cast<size_t>(draws), 2 * ids_cap_);
    int32_t* d = nullptr;
    TTC_CU(cudaMalloc(reinterpret_cast<void**>(&d), ids_cap_ * 4));
    if (d_ids_out_) {
      TTC_CU(cudaMemcpy(d, d_ids_out_, old_cap * 4, cudaMemcpyDeviceToDevice));
      cudaFree(d_ids_out_);
    }
    d_ids_out_ = d;
    for (int i = 0; i < kRing; ++i) {
      int32_t* h = nullptr;
      TTC_CU(cudaMallocHost(reinterpret_cast<void**>(&h), ids_cap_ * 4));
      if (h_ring_[i]) {
        std::memcpy(h, h_ring_[i], old_cap * 4);
        cudaFreeHost(h_ring_[i]);
      } else {
        TTC_CU(cudaEventCreateWithFlags(&ring_ev_[i], cudaEventDisableTiming));
      }
      h_ring_[i] = h;
    }
    g_address_epoch.fetch_add(1);
  }
  // Ends the capture of graph_, instantiates it and launches it (the recorded step has not run
  // yet: capturing only records).
  void FinishCapture() {
    cudaGraph_t graph = nullptr;
    const cudaError_t e = cudaStreamEndCapture(stream_, &graph);
    if (e != cudaSuccess || graph == nullptr) {
      Die("recording a decode step (cudaStreamEndCapture)", cudaGetErrorString(e), __FILE__,
          __LINE__);
    }
    const cudaError_t ie = cudaGraphInstantiate(&graph_->exec, graph, 0);
    cudaGraphDestroy(graph);
    if (ie != cudaSuccess) {
      Die("instantiating a recorded decode step (set TTC_CUDA_GRAPHS=0 to run without graphs)",
          cudaGetErrorString(ie), __FILE__, __LINE__);
    }
    graph_->ops = ops_;
    graph_->epoch = g_address_epoch.load();
    TTC_CU(cudaGraphLaunch(graph_->exec, stream_));
    ++captures_;
  }

 public:
  int64_t graph_captures() const { return captures_; }
  int64_t graph_replays() const { return replays_; }
  int64_t cascades() const { return cascades_; }
  int64_t split_samples() const { return split_samples_; }

 private:
  // The weight as f32 (converted once, on first use, when it was stored as bf16).
  const float* F32(const Weight& w) {
    auto& cw = const_cast<CudaWeight&>(W(w));
    if (!cw.f32) {
      const size_t n = static_cast<size_t>(cw.rows() * cw.cols());
      std::vector<uint16_t> h(n);
      TTC_CU(cudaMemcpy(h.data(), cw.bf16, n * 2, cudaMemcpyDeviceToHost));
      std::vector<float> f(n);
      for (size_t i = 0; i < n; ++i) f[i] = Bf16ToFloat(h[i]);
      TTC_CU(cudaMalloc(reinterpret_cast<void**>(&cw.f32), n * 4));
      TTC_CU(cudaMemcpy(cw.f32, f.data(), n * 4, cudaMemcpyHostToDevice));
    }
    return cw.f32;
  }

  const DevSeq* Seqs(const BatchLayout& batch, int* nseq) {
    std::vector<DevSeq> v;
    v.reserve(batch.seqs.size());
    int64_t row = 0;
    for (const auto& s : batch.seqs) {
      v.push_back({s.slot, static_cast<int32_t>(row), static_cast<int32_t>(s.num_tokens),
                   static_cast<int32_t>(s.start_pos)});
      row += s.num_tokens;
    }
    *nseq = static_cast<int>(v.size());
    return seqs_.Put(v, Up());
  }

  int device_;
  std::string name_;
  int64_t sm_count_ = 132;
  StateDType state_dtype_;
  unsigned* overflow_ = nullptr;  // cuda::ArmStateOverflowWord's, for an f16 state
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  uint16_t* bf16_scratch_ = nullptr;
  size_t bf16_cap_ = 0;
  // The GEMM input the last op wrote next to its f32 output (GemmInputFor).
  struct Prepared {
    const float* x = nullptr;
    int64_t M = 0, K = 0;
    bool split = false;
    bool only = false;  // x's f32 rows were not written
  };
  Prepared prepared_;
  UploadCache<int32_t> ids_;
  UploadCache<int64_t> gather_;
  UploadCache<DevRow> rows_;
  UploadCache<DevSeq> seqs_;
  UploadCache<float> freq_;
  UploadCache<cuda::DevSampleKey> keys_;
  UploadCache<int32_t> tasks_;
  UploadCache<int32_t> draw_map_;       // EmbedDraws' rows -> previous draws
  std::vector<int32_t> task_rows_;      // host image of the cascade's tasks (PrefixTasks)
  std::vector<int32_t> prefix_groups_;  // this forward's PrefixGroups (empty: no cascade)
  struct {
    uint64_t forward = 0;  // forwards_ when planned
    int rows_per_task = 0;
    int tasks = 0;  // 0: no cascade in this forward
  } task_plan_;
  uint64_t forwards_ = 0;  // BeginForward calls
  std::unique_ptr<OpProfiler> prof_;
  std::unique_ptr<StepMemory> mem_;
  static constexpr size_t kBlasWorkspace = size_t{32} << 20;
  void* blas_ws_ = nullptr;
  cudaStream_t side_ = nullptr;  // uploads while a step is being recorded
  // Switches for A/B measurements, read from the environment when the backend is created.
  bool graphs_on_ = true;              // TTC_CUDA_GRAPHS=0 turns the recordings off
  int split_k_ = 1;                    // TTC_CUDA_SPLITK=2|4|8 (SplitKParts)
  int64_t gemv_rows_ = kGemvRows;      // TTC_CUDA_GEMV_ROWS=0..16 (kGemvRows)
  int64_t split_rows_ = kSplitRows;    // TTC_CUDA_SPLIT_ROWS=0..1024 (kSplitRows)
  int64_t skinny_rows_ = kSkinnyRows;  // TTC_CUDA_SKINNY_ROWS=0..64; TTC_CUDA_SKINNY=0: 0
  bool sample_full_ = false;           // TTC_CUDA_SAMPLE_FULL=1: the sampler's general path always
  int64_t sample_split_rows_ = 0;      // TTC_CUDA_SAMPLE_SPLIT_ROWS=N: split sampler from N rows
  bool fused_input_ = true;            // TTC_CUDA_FUSED_INPUT=0: every GEMM converts its own input
  bool cascade_on_ = true;  // rows sharing a prefix walk it together (TTC_CUDA_CASCADE=0: off)
  // Decode-step recordings (BeginForward).
  std::vector<std::unique_ptr<StepGraph>> graphs_;
  StepGraph* graph_ = nullptr;  // the recording of the current step (capture or replay)
  GraphKey last_key_;
  size_t eager_peak_ = 0;      // peak step memory of the last eager run of last_key_
  bool measure_peak_ = false;  // this step runs last_key_ eagerly: SampleRows records its peak
  uint64_t graph_step_ = 0;
  int64_t ops_ = 0;
  int64_t captures_ = 0, replays_ = 0, cascades_ = 0, split_samples_ = 0;
  // cublasLt autotuning (TTC_CUDA_GEMM_TUNE=1 or wide, see Bf16Gemm): how many heuristic
  // candidates it times (0: off).
  static constexpr size_t kLtWorkspace = size_t{32} << 20;
  const int tune_ = [] {
    const char* e = std::getenv("TTC_CUDA_GEMM_TUNE");
    if (e == nullptr || std::strcmp(e, "0") == 0 || *e == '\0') return 0;
    return std::strcmp(e, "wide") == 0 ? 64 : 8;
  }();
  cublasLtHandle_t lt_ = nullptr;
  void* lt_ws_ = nullptr;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool, int64_t>, LtPlan> lt_plans_;
  int32_t* d_ids_out_ = nullptr;  // the last sampled ids, device side
  // Pinned host copies of the draws, one slot per SampleRowsAsync call (kRing > the pending
  // draws the model allows), each behind its event; pending_: uncollected, oldest first.
  static constexpr int kRing = Backend::kMaxPendingDraws + 1;
  int32_t* h_ring_[kRing] = {};
  cudaEvent_t ring_ev_[kRing] = {};
  int ring_next_ = 0;
  struct Pending {
    int slot;
    int64_t draws;
  };
  std::deque<Pending> pending_;
  size_t ids_cap_ = 0;
};

}  // namespace

int CudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

Result<CudaDeviceInfo> QueryCudaDevice(int device) {
  const int n = CudaDeviceCount();
  if (device < 0 || device >= n) {
    return FailedPrecondition("cuda: device {} does not exist ({} CUDA devices visible)", device,
                              n);
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess)
    return Internal("cuda: cannot query device {}", device);
  CudaDeviceInfo info;
  info.name = prop.name;
  info.sm_count = prop.multiProcessorCount;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  int prev = 0;
  cudaGetDevice(&prev);
  cudaSetDevice(device);
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  cudaSetDevice(prev);
  info.free_bytes = static_cast<int64_t>(free_b);
  info.total_bytes = static_cast<int64_t>(total_b);
  return info;
}

namespace {
// Capacity in positions of a sample's own KV buffer after it grew one token at a time to n
// positions (decode after the fork).
int64_t DecodeKvCapacity(int64_t n) {
  int64_t cap = 0;
  while (cap < n) cap = GrownKvCapacity(cap, cap + 1);
  return cap;
}
int64_t KvBytesPerPosition(const ModelConfig& c) {
  int64_t bytes = 0;
  for (MixerKind k : c.layer_mixers) {
    if (k == MixerKind::kAttention) bytes += 2 * c.num_kv_heads * c.head_dim * 2;
  }
  return bytes;
}
}  // namespace

int64_t CudaBytesPerSequence(const ModelConfig& c, int64_t context_len, int64_t shared_prefix,
                             StateDType state_dtype) {
  int64_t bytes =
      DecodeKvCapacity(std::max<int64_t>(1, context_len - shared_prefix)) * KvBytesPerPosition(c) +
      RecurrentBytesPerSequence(c, state_dtype);
  // The widest projection any layer kind can have (fields a family does not use are 0).
  const int64_t widest =
      std::max({c.hidden_size, 2 * c.intermediate_size, 2 * c.d_inner + 2 * c.d_xb + c.dt_rank,
                2 * c.d_inner + 2 * c.ssm_groups * c.d_state + c.ssm_heads,
                (c.num_heads + 2 * c.num_kv_heads) * c.head_dim});
  // Decode-step activations (a handful of rows of the widest width) and the f32 logits row.
  bytes += (8 * widest + 2 * c.vocab_size) * 4;
  return bytes;
}

int64_t CudaPrefixBytes(const ModelConfig& c, int64_t prompt_len) {
  // The prefill grows the prompt's buffer in one step; that buffer becomes the shared prefix.
  return prompt_len > 0 ? GrownKvCapacity(0, prompt_len) * KvBytesPerPosition(c) : 0;
}

Result<CudaBatchPlan> PlanCudaBatch(const ModelConfig& config, int64_t context_len, int device,
                                    int64_t shared_prefix, int64_t prompts,
                                    StateDType state_dtype) {
  TTC_ASSIGN_OR_RETURN(CudaDeviceInfo info, QueryCudaDevice(device));
  CudaBatchPlan plan;
  plan.free_bytes = info.free_bytes;
  plan.reserve_bytes = std::max<int64_t>(int64_t{1} << 30, info.total_bytes / 50);
  plan.per_sequence_bytes = CudaBytesPerSequence(config, context_len, shared_prefix, state_dtype);
  plan.prefix_bytes = std::max<int64_t>(0, prompts) * CudaPrefixBytes(config, shared_prefix);
  plan.max_batch = std::max<int64_t>(
      0, (plan.free_bytes - plan.reserve_bytes - plan.prefix_bytes) / plan.per_sequence_bytes);
  return plan;
}

CudaGraphCounts GetCudaGraphCounts(const Backend& backend) {
  const auto* cuda = dynamic_cast<const CudaBackend*>(&backend);
  if (cuda == nullptr) return {};
  return {cuda->graph_captures(), cuda->graph_replays(), cuda->cascades(), cuda->split_samples()};
}

Result<std::unique_ptr<Backend>> CreateCudaBackend(const BackendOptions& options) {
  TTC_ASSIGN_OR_RETURN(CudaDeviceInfo info, QueryCudaDevice(options.device));
  if (info.compute_major < 9) {
    return FailedPrecondition(
        "cuda: device {} ({}) has compute capability {}.{}; this build targets sm_90",
        options.device, info.name, info.compute_major, info.compute_minor);
  }
  return std::unique_ptr<Backend>(std::make_unique<CudaBackend>(
      options.device,
      fmt::format("cuda (device {}: {}, {} SMs{})", options.device, info.name, info.sm_count,
                  options.state_dtype == StateDType::kF32
                      ? ""
                      : fmt::format(", {} state", StateDTypeName(options.state_dtype))),
      info.sm_count, options.state_dtype));
}

}  // namespace ttc::engine
