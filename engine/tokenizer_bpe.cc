// Hash tables and BPE merge loops of the tokenizer.
#include "engine/tokenizer_bpe.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <queue>
#include <unordered_map>

namespace ttc::engine::internal {

uint64_t HashBytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  h = (h ^ v) * 0x94d049bb133111ebull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return h;
}

namespace {
size_t TableSize(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  return cap;
}
}  // namespace

void BytesMap::Build(const std::vector<std::pair<std::string, int32_t>>& entries) {
  const size_t cap = TableSize(entries.size());
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  arena_.clear();
  for (const auto& [key, id] : entries) {
    const uint64_t h = HashBytes(key.data(), key.size());
    size_t i = h & mask_;
    bool replaced = false;
    for (; slots_[i].id >= 0; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.hash == h && s.len == key.size() && arena_.compare(s.off, s.len, key) == 0) {
        s.id = id;
        replaced = true;
        break;
      }
    }
    if (replaced) continue;
    slots_[i] =
        Slot{h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), id};
    arena_.append(key);
  }
}

void PairMap::Build(const std::vector<std::pair<uint64_t, Value>>& entries) {
  const size_t cap = TableSize(entries.size());
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (const auto& [key, value] : entries) {
    size_t i = Mix(key) & mask_;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
    slots_[i].key = key;
    slots_[i].value = value;
  }
}

void BpeMergeQuadratic(const PairMap& merges, std::vector<int32_t>* symbols) {
  std::vector<int32_t>& s = *symbols;
  size_t n = s.size();
  if (n < 2) return;
  // rank[i] / merged[i] describe the pair (s[i], s[i+1]).
  thread_local std::vector<int32_t> rank, merged;
  rank.resize(n - 1);
  merged.resize(n - 1);
  auto look = [&](size_t i) {
    const PairMap::Value* v = merges.Find(s[i], s[i + 1]);
    rank[i] = v ? v->rank : INT_MAX;
    merged[i] = v ? v->merged : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) look(i);
  while (n > 1) {
    size_t best = 0;
    int32_t best_rank = rank[0];
    for (size_t i = 1; i + 1 < n; ++i) {
      if (rank[i] < best_rank) {
        best_rank = rank[i];
        best = i;
      }
    }
    if (best_rank == INT_MAX) break;
    s[best] = merged[best];
    s.erase(s.begin() + best + 1);
    rank.erase(rank.begin() + best);
    merged.erase(merged.begin() + best);
    --n;
    if (best > 0) look(best - 1);
    if (best + 1 < n) look(best);
  }
}

void BpeMergeHeap(const PairMap& merges, std::vector<int32_t>* symbols) {
  std::vector<int32_t>& s = *symbols;
  const size_t n = s.size();
  if (n < 2) return;
  struct Node {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Node> nodes(n);
  for (size_t i = 0; i < n; ++i) {
    nodes[i] =
        Node{s[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  }
  struct Entry {
    int32_t rank;
    int32_t pos;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Entry> storage;
  storage.reserve(n);
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap(std::greater<Entry>(),
                                                                           std::move(storage));
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const PairMap::Value* v = merges.Find(s[i], s[i + 1]))
      heap.push({v->rank, static_cast<int32_t>(i)});
  }
  while (!heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    Node& left = nodes[top.pos];
    if (left.id < 0 || left.next < 0) continue;
    Node& right = nodes[left.next];
    const PairMap::Value* v = merges.Find(left.id, right.id);
    if (v == nullptr || v->rank != top.rank)
      continue;  // stale: one side changed since it was pushed
    left.id = v->merged;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) nodes[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const PairMap::Value* pv = merges.Find(nodes[left.prev].id, left.id))
        heap.push({pv->rank, left.prev});
    }
    if (left.next >= 0) {
      if (const PairMap::Value* nv = merges.Find(left.id, nodes[left.next].id))
        heap.push({nv->rank, top.pos});
    }
  }
  s.clear();
  for (int32_t i = 0; i >= 0; i = nodes[i].next) s.push_back(nodes[i].id);
}

void BpeMergeBuckets(const PairMap& merges, std::vector<int32_t>* symbols) {
  std::vector<int32_t>& s = *symbols;
  const size_t n = s.size();
  if (n < 2) return;
  struct Node {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Node> nodes(n);
  for (size_t i = 0; i < n; ++i) {
    nodes[i] =
        Node{s[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  }
  // rank -> positions whose pair had that rank when pushed; a min-heap of the ranks that have a
  // bucket.
  std::unordered_map<int32_t, std::vector<int32_t>> buckets;
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<int32_t>> ranks;
  auto push = [&](int32_t rank, int32_t pos) {
    auto [it, fresh] = buckets.try_emplace(rank);
    if (fresh) ranks.push(rank);
    it->second.push_back(pos);
  };
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const PairMap::Value* v = merges.Find(s[i], s[i + 1]))
      push(v->rank, static_cast<int32_t>(i));
  }
  while (!ranks.empty()) {
    const int32_t rank = ranks.top();
    ranks.pop();
    std::vector<int32_t> positions = std::move(buckets[rank]);
    buckets.erase(rank);
    // Within one rank, HF pops positions in increasing order; a pair of the same rank cannot appear
    // while this rank is applied (the merged symbol differs from both halves), so sorting the
    // bucket once is exact.
    if (!std::is_sorted(positions.begin(), positions.end()))
      std::sort(positions.begin(), positions.end());
    for (int32_t pos : positions) {
      Node& left = nodes[pos];
      if (left.id < 0 || left.next < 0) continue;
      Node& right = nodes[left.next];
      const PairMap::Value* v = merges.Find(left.id, right.id);
      if (v == nullptr || v->rank != rank) continue;  // stale
      left.id = v->merged;
      right.id = -1;
      left.next = right.next;
      if (left.next >= 0) nodes[left.next].prev = pos;
      const PairMap::Value* pv =
          left.prev >= 0 ? merges.Find(nodes[left.prev].id, left.id) : nullptr;
      const PairMap::Value* nv =
          left.next >= 0 ? merges.Find(left.id, nodes[left.next].id) : nullptr;
      if ((pv && pv->rank < rank) || (nv && nv->rank < rank)) {
        BpeMergeHeap(merges,
                     symbols);  // out-of-order merge list: start over with the general algorithm
        return;
      }
      if (pv) push(pv->rank, left.prev);
      if (nv) push(nv->rank, pos);
    }
  }
  s.clear();
  for (int32_t i = 0; i >= 0; i = nodes[i].next) s.push_back(nodes[i].id);
}

}  // namespace ttc::engine::internal
