// Internal to monitor/detect: the bounded containers behind the detectors'
// windows: Ring (counts per minute or hour), RecentSet (recipient hashes seen
// in the last minutes) and Senders (an identity's known envelope senders).
// Not a public header; included by detect_state.hpp only.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "monitor/detect_lru.hpp"

namespace sg::monitor::detail {

constexpr std::int64_t kNone = INT64_MIN;

// Counts per time unit (minute or hour) for the last N units; unit u lives
// in slot u mod N. Adding to a unit older than the window is ignored. The
// sum of the whole window is kept as the ring moves (checked on every event).
template <std::size_t N>
struct Ring {
  std::array<std::uint32_t, N> v{};
  std::int64_t head = kNone;  // newest unit
  std::uint64_t total = 0;    // sum of v

  static std::size_t slot(std::int64_t u) {
    if (u >= 0) return static_cast<std::size_t>(u % std::int64_t(N));  // times are clamped >= 0
    return static_cast<std::size_t>(((u % std::int64_t(N)) + std::int64_t(N)) % std::int64_t(N));
  }
  void advance(std::int64_t u) {
    if (head == kNone || u - head >= std::int64_t(N)) {
      v.fill(0);
      total = 0;
      head = u;
      return;
    }
    for (; head < u;) {
      std::uint32_t& x = v[slot(++head)];
      total -= x;
      x = 0;
    }
  }
  void add(std::int64_t u, std::uint32_t n) {
    advance(u);
    if (u <= head - std::int64_t(N)) return;
    std::uint32_t& x = v[slot(u)];
    std::uint32_t old = x;
    x = n > UINT32_MAX - x ? UINT32_MAX : x + n;
    total += x - old;
  }
  // Units in (head - count, head].
  std::uint64_t sum(std::size_t count = N) const {
    if (head == kNone) return 0;
    if (count >= N) return total;
    std::uint64_t s = 0;
    for (std::size_t i = 0; i < count; ++i) s += v[slot(head - std::int64_t(i))];
    return s;
  }
  std::uint32_t at(std::int64_t u) const {
    if (head == kNone || u > head || u <= head - std::int64_t(N)) return 0;
    return v[slot(u)];
  }
};

// A set of 64-bit keys, each with the (never decreasing) time it was last
// touched. Nodes are linked oldest first, so expiring old keys costs only
// the keys that go; lookup is an open-addressing table of node indices
// (linear probing, at most half full, shrunk when mostly empty so memory
// follows the live size).
class RecentSet {
 public:
  std::size_t size() const { return size_; }
  // Refreshes key to `stamp` (>= every stamp so far); false when absent.
  bool refresh(std::uint64_t key, std::int64_t stamp) {
    if (table_.empty()) return false;
    std::size_t i = find(key);
    if (table_[i] == kEmpty) return false;
    std::uint32_t n = table_[i];
    nodes_[n].stamp = stamp;
    unlink(n);
    link_last(n);
    return true;
  }
  // Adds an absent key.
  void insert(std::uint64_t key, std::int64_t stamp) {
    if ((size_ + 1) * 2 > table_.size()) rebuild(std::max<std::size_t>(16, table_.size() * 2));
    std::uint32_t n;
    if (free_ != kEmpty) {
      n = free_;
      free_ = nodes_[n].next;
    } else {
      n = static_cast<std::uint32_t>(nodes_.size());
      nodes_.emplace_back();
    }
    nodes_[n].key = key;
    nodes_[n].stamp = stamp;
    link_last(n);
    table_[find(key)] = n;
    ++size_;
  }
  // Removes the keys last touched before `oldest_kept`; returns how many.
  std::size_t expire(std::int64_t oldest_kept) {
    std::size_t gone = 0;
    while (first_ != kEmpty && nodes_[first_].stamp < oldest_kept) {
      std::uint32_t n = first_;
      erase_slot(find(nodes_[n].key));
      unlink(n);
      nodes_[n].next = free_;
      free_ = n;
      --size_;
      ++gone;
    }
    if (size_ == 0 && table_.size() <= 64) {
      // Kept for the next keys: most sets empty and refill every few minutes.
      nodes_.clear();
      std::fill(table_.begin(), table_.end(), kEmpty);
      first_ = last_ = free_ = kEmpty;
    } else if (size_ == 0) {
      *this = RecentSet();
    } else if (table_.size() > 64 && size_ * 8 < table_.size()) {
      rebuild(table_.size() / 4);
    }
    return gone;
  }

 private:
  static constexpr std::uint32_t kEmpty = UINT32_MAX;
  struct Node {
    std::uint64_t key = 0;
    std::int64_t stamp = 0;
    std::uint32_t prev = kEmpty, next = kEmpty;
  };

  std::size_t home(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ull) >> 32) & (table_.size() - 1);
  }
  // The slot holding key, or the empty slot where it would go.
  std::size_t find(std::uint64_t key) const {
    std::size_t mask = table_.size() - 1;
    for (std::size_t i = home(key);; i = (i + 1) & mask)
      if (table_[i] == kEmpty || nodes_[table_[i]].key == key) return i;
  }
  void erase_slot(std::size_t i) {
    erase_shifting(
        std::span(table_), i, kEmpty, [](std::uint32_t n) { return n == kEmpty; },
        [&](std::uint32_t n) { return home(nodes_[n].key); });
  }
  void unlink(std::uint32_t n) {
    Node& x = nodes_[n];
    (x.prev == kEmpty ? first_ : nodes_[x.prev].next) = x.next;
    (x.next == kEmpty ? last_ : nodes_[x.next].prev) = x.prev;
    x.prev = x.next = kEmpty;
  }
  void link_last(std::uint32_t n) {
    nodes_[n].prev = last_;
    nodes_[n].next = kEmpty;
    (last_ == kEmpty ? first_ : nodes_[last_].next) = n;
    last_ = n;
  }
  // New table of `slots` (a power of two); nodes compacted, order kept.
  void rebuild(std::size_t slots) {
    std::vector<Node> nodes;
    nodes.reserve(std::max(size_, slots / 4));
    for (std::uint32_t n = first_; n != kEmpty; n = nodes_[n].next) nodes.push_back(nodes_[n]);
    nodes_ = std::move(nodes);
    table_.assign(slots, kEmpty);
    free_ = kEmpty;
    first_ = last_ = kEmpty;
    auto count = static_cast<std::uint32_t>(nodes_.size());
    for (std::uint32_t n = 0; n < count; ++n) {
      nodes_[n].prev = n == 0 ? kEmpty : n - 1;
      nodes_[n].next = n + 1 == count ? kEmpty : n + 1;
      table_[find(nodes_[n].key)] = n;
    }
    if (count > 0) first_ = 0, last_ = count - 1;
  }

  std::vector<Node> nodes_;           // live nodes and the free list
  std::vector<std::uint32_t> table_;  // node index or kEmpty; size a power of two
  std::uint32_t first_ = kEmpty, last_ = kEmpty, free_ = kEmpty;
  std::size_t size_ = 0;
};

// The envelope senders an identity used, at most kMax, the least recently
// used forgotten first: entries linked in order of use, found through a
// small open-addressing table of entry indices, so neither a lookup nor
// using or replacing an entry walks the list.
class Senders {
 public:
  static constexpr std::size_t kMax = 64;
  struct Entry {
    std::uint64_t used = 0;  // larger is more recent (picks among duplicates)
    ShortText address;
  };

  std::size_t size() const { return entries_.size(); }
  // The least recently used entry equal to address (hash = address_hash(address));
  // duplicates only come from a loaded baseline. A slot keeps 16 bits of
  // its entry's hash and its home, so probing and deleting touch no entry
  // but a likely match.
  Entry* find(std::uint64_t hash, std::string_view address) {
    Entry* found = nullptr;
    const std::uint16_t tag = tag_of(hash);
    for (std::size_t i = home(hash); table_[i].index != kNil; i = (i + 1) % kSlots) {
      if (table_[i].tag != tag) continue;
      Entry& e = entries_[table_[i].index];
      if (e.address == address && (found == nullptr || e.used < found->used)) {
        found = &e;
        if (!dups_) break;
      }
    }
    return found;
  }
  void use(Entry& e) {
    auto n = static_cast<std::uint8_t>(&e - entries_.data());
    unlink(n);
    link_last(n);
  }
  // Adds address as the most recent, replacing the least recent when full.
  void add(std::uint64_t hash, std::string_view address) {
    std::uint8_t n = first_;
    if (entries_.size() >= kMax) {
      erase_slot(slot_of(n));
      unlink(n);
    } else {
      n = static_cast<std::uint8_t>(entries_.size());
      entries_.emplace_back();
    }
    Entry& e = entries_[n];
    e.address.assign(address);
    link_last(n);
    // The same address on the probe run (loaded twice): from then on find()
    // looks past the first match.
    const std::uint16_t tag = tag_of(hash);
    const auto h = static_cast<std::uint8_t>(home(hash));
    homes_[n] = h;
    std::size_t i = h;
    for (; table_[i].index != kNil; i = (i + 1) % kSlots)
      dups_ = dups_ || (table_[i].tag == tag && entries_[table_[i].index].address == address);
    table_[i] = {n, h, tag};
  }
  // Least recently used first.
  template <class F>
  void each(F&& f) const {
    for (std::uint8_t n = first_; n != kNil; n = links_[n].next) f(entries_[n]);
  }

 private:
  static constexpr std::uint8_t kNil = 255;
  static constexpr std::size_t kSlots = 2 * kMax;  // at most half full
  struct Slot {
    std::uint8_t index = kNil;
    std::uint8_t home = 0;  // home(hash of the entry)
    std::uint16_t tag = 0;  // tag_of(hash of the entry)
  };
  struct Link {
    std::uint8_t prev = kNil, next = kNil;
  };

  static std::size_t home(std::uint64_t hash) {
    return static_cast<std::size_t>((hash * 0x9e3779b97f4a7c15ull) >> 57);
  }
  static std::uint16_t tag_of(std::uint64_t hash) { return static_cast<std::uint16_t>(hash >> 48); }
  std::size_t slot_of(std::uint8_t n) const {
    std::size_t i = homes_[n];
    while (table_[i].index != n) i = (i + 1) % kSlots;
    return i;
  }
  void erase_slot(std::size_t i) {
    erase_shifting(
        std::span(table_), i, Slot{}, [](const Slot& s) { return s.index == kNil; },
        [](const Slot& s) { return std::size_t(s.home); });
  }
  // The recency links live apart from the entries (two bytes each), so
  // reordering touches no other entry.
  void unlink(std::uint8_t n) {
    Link& x = links_[n];
    (x.prev == kNil ? first_ : links_[x.prev].next) = x.next;
    (x.next == kNil ? last_ : links_[x.next].prev) = x.prev;
    x.prev = x.next = kNil;
  }
  void link_last(std::uint8_t n) {
    entries_[n].used = ++clock_;
    links_[n] = {last_, kNil};
    (last_ == kNil ? first_ : links_[last_].next) = n;
    last_ = n;
  }

  std::vector<Entry> entries_;
  std::uint64_t clock_ = 0;
  std::uint8_t first_ = kNil, last_ = kNil;
  bool dups_ = false;  // an address may be in twice
  std::array<Slot, kSlots> table_{};
  std::array<Link, kMax> links_{};
  std::array<std::uint8_t, kMax> homes_{};  // home slot of each entry
};

}  // namespace sg::monitor::detail
