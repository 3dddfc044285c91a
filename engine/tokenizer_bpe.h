// Internal to the tokenizer (not a public API; exposed for tests and the benchmark): the hash
// tables and the two BPE merge loops. Both loops apply merges exactly as Hugging Face `tokenizers`
// does (lowest rank first, leftmost on ties); the quadratic one is faster on short words, the heap
// one keeps 10 MB pre-tokens linear-logarithmic. Tables are immutable after Build(): safe to read
// from many threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ttc::engine::internal {

uint64_t HashBytes(const char* p, size_t n);

// Open-addressing map from byte strings to ids.
class BytesMap {
 public:
  void Build(const std::vector<std::pair<std::string, int32_t>>& entries);
  // -1 when absent.
  int32_t Find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint64_t h = HashBytes(key.data(), key.size());
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.hash == h && s.len == key.size() && arena_.compare(s.off, s.len, key) == 0) return s.id;
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t off = 0;
    uint32_t len = 0;
    int32_t id = -1;
  };
  std::string arena_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// Open-addressing map from an id pair to (rank, merged id).
class PairMap {
 public:
  struct Value {
    int32_t rank;
    int32_t merged;
  };
  // Later entries for the same pair overwrite earlier ones (as Hugging Face's HashMap collect
  // does).
  void Build(const std::vector<std::pair<uint64_t, Value>>& entries);
  static uint64_t Key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  // nullptr when absent.
  const Value* Find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = Key(a, b);
    for (size_t i = Mix(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t Mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  struct Slot {
    uint64_t key = kEmpty;
    Value value{0, 0};
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// Merges the symbols in place (lowest rank first, leftmost on ties). O(n^2); for short words.
void BpeMergeQuadratic(const PairMap& merges, std::vector<int32_t>* symbols);
// The same result with a binary heap and a linked list. O(n log n) but cache-hostile on megabyte
// words.
void BpeMergeHeap(const PairMap& merges, std::vector<int32_t>* symbols);
// The same result again, processing one rank at a time over position buckets: near-linear memory
// access on long words. Falls back to BpeMergeHeap when a merge creates a pair of lower rank than
// the one being applied (never the case in a trained merge list, but a file could say so).
void BpeMergeBuckets(const PairMap& merges, std::vector<int32_t>* symbols);

}  // namespace ttc::engine::internal
