// Internal to monitor/detect: ShortText (text kept inline when short) and
// LruTable, the capped map of subjects that evicts the least recently
// touched. Not a public header; included by detect_state.hpp only.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "monitor/hash_index.hpp"

namespace sg::monitor::detail {

// Text kept inline when short (most identity names and addresses), so
// comparing it reads the entry's own cache lines and nothing else.
class ShortText {
 public:
  static constexpr std::size_t kInline = 44;
  std::string_view view() const { return {size_ <= kInline ? small_ : big_.get(), size_}; }
  void assign(std::string_view s) {
    size_ = static_cast<std::uint32_t>(s.size());
    char* to = small_;
    if (s.size() > kInline) {
      if (big_cap_ < s.size()) {
        big_ = std::make_unique<char[]>(s.size());
        big_cap_ = s.size();
      }
      to = big_.get();
    }
    if (!s.empty()) std::memcpy(to, s.data(), s.size());
  }
  bool operator==(std::string_view s) const {
    return size_ == s.size() && (s.empty() || std::memcmp(view().data(), s.data(), s.size()) == 0);
  }

 private:
  std::uint32_t size_ = 0;
  char small_[kInline];
  std::unique_ptr<char[]> big_;  // longer text (never for names up to kInline)
  std::size_t big_cap_ = 0;
};

// A map with a size cap that evicts the least recently touched entry.
// Entries sit in a vector (an evicted one is reused in place), found
// through a HashIndex of name_hash, their names inline. Recency: every
// touch stamps the entry and appends (entry, stamp) to a queue; the least
// recently touched entry is the first queued pair whose stamp is still the
// entry's. So a touch writes only a compact stamp array and the queue's
// tail, and the queue is compacted (stale pairs dropped, order kept) when it
// gets long.
template <class S>
class LruTable {
 public:
  explicit LruTable(std::size_t cap) : cap_(cap == 0 ? 1 : cap), serial_(next_serial()) {}
  LruTable(LruTable&&) noexcept = default;
  LruTable& operator=(LruTable&&) noexcept = default;
  LruTable(const LruTable&) = delete;
  LruTable& operator=(const LruTable&) = delete;

  // The entry for key, created (evicting if full) when absent. `on_evict`
  // receives the entry thrown out, if any. References stay valid until the
  // next touch.
  template <class OnEvict>
  S& touch(std::string_view key, bool& created, OnEvict&& on_evict) {
    return touch(key, name_hash(key), created, on_evict);
  }
  // Where an entry is: its index, and its generation there (bumped when
  // the index is reused for another key). `table` tells tables apart.
  struct Place {
    std::uint64_t table = 0;
    std::uint32_t index = 0, generation = 0;
  };
  // The same with hash == name_hash(key) already known; `place`, if given,
  // is set to the entry's.
  template <class OnEvict>
  S& touch(std::string_view key, std::uint64_t hash, bool& created, OnEvict&& on_evict,
           Place* place = nullptr) {
    std::uint32_t n = index_.find(
        hash, [&](std::uint32_t i) { return entries_[i].hash == hash && entries_[i].key == key; });
    created = n == HashIndex::kNone;
    if (!created) {
      stamp(n);
      if (place != nullptr) *place = {serial_, n, generation_[n]};
      return entries_[n].value;
    }
    if (entries_.size() >= cap_) {
      n = oldest();
      Entry& old = entries_[n];
      on_evict(std::as_const(old.value));
      index_.erase(old.hash, n);
      old.key.assign(key);
      old.hash = hash;
      old.value = S{};
      ++generation_[n];  // places handed out for the old key are void
    } else {
      n = static_cast<std::uint32_t>(entries_.size());
      entries_.emplace_back();
      entries_.back().key.assign(key);
      entries_.back().hash = hash;
      used_.push_back(0);
      generation_.push_back(1);
    }
    stamp(n);
    index_.insert(hash, n);
    if (place != nullptr) *place = {serial_, n, generation_[n]};
    return entries_[n].value;
  }
  // The entry at a place touch() gave for a key of this hash, touched, if
  // it still holds that key; nullptr otherwise.
  S* at(const Place& p, std::uint64_t hash) {
    if (p.table != serial_ || p.index >= entries_.size() || generation_[p.index] != p.generation ||
        entries_[p.index].hash != hash)  // a place passed with another key's hash
      return nullptr;
    stamp(p.index);
    return &entries_[p.index].value;
  }
  std::size_t size() const { return entries_.size(); }
  // Calls f(key, value), least recently touched first.
  template <class F>
  void each(F&& f) const {
    for (std::size_t q = head_; q < queue_.size(); ++q) {
      const std::uint32_t n = queue_[q].index;
      if (used_[n] == queue_[q].used) f(entries_[n].key.view(), entries_[n].value);
    }
  }

 private:
  struct Entry {
    ShortText key;
    std::uint64_t hash = 0;  // next to the value: at() reads both
    S value{};
  };
  struct Queued {
    std::uint32_t index;
    std::uint64_t used;
  };

  void stamp(std::uint32_t n) {
    used_[n] = ++clock_;
    queue_.push_back({n, clock_});
    if (queue_.size() - head_ > 4 * entries_.size() + 256) compact();
  }
  // The least recently touched entry; its pair leaves the queue.
  std::uint32_t oldest() {
    for (;; ++head_) {
      const Queued& q = queue_[head_];
      if (used_[q.index] == q.used) return queue_[head_++].index;
    }
  }
  void compact() {
    std::size_t kept = 0;  // branch-free: live and stale pairs come in no order
    for (std::size_t q = head_; q < queue_.size(); ++q) {
      const Queued x = queue_[q];
      queue_[kept] = x;
      kept += used_[x.index] == x.used;
    }
    queue_.resize(kept);
    head_ = 0;
  }

  static std::uint64_t next_serial() {
    static std::atomic<std::uint64_t> last{0};
    return ++last;
  }

  std::size_t cap_;
  std::uint64_t serial_;  // unique per table made, so places of another table never match
  std::vector<Entry> entries_;
  std::vector<std::uint64_t> used_;  // stamp of each entry's last touch
  std::vector<std::uint32_t> generation_;
  std::vector<Queued> queue_;  // from head_: touches, oldest first (some stale)
  std::size_t head_ = 0;
  std::uint64_t clock_ = 0;
  HashIndex index_;
};

}  // namespace sg::monitor::detail
