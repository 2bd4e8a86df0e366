// Internal to monitor/detect: the per-subject state and its bounded
// containers. Not a public header; detect.cpp and detect_baseline.cpp only.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "monitor/detect.hpp"

namespace sg::monitor::detail {

constexpr std::int64_t kNone = INT64_MIN;

// FNV-1a of the ASCII-lower-cased bytes (addresses compare without case).
inline std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 'A' && u <= 'Z') u = static_cast<unsigned char>(u - 'A' + 'a');
    h = (h ^ u) * 1099511628211ull;
  }
  return h;
}

// Counts per time unit (minute or hour) for the last N units; unit u lives
// in slot u mod N. Adding to a unit older than the window is ignored. The
// sum of the whole window is kept as the ring moves (checked on every event).
template <std::size_t N>
struct Ring {
  std::array<std::uint32_t, N> v{};
  std::int64_t head = kNone;  // newest unit
  std::uint64_t total = 0;    // sum of v

  static std::size_t slot(std::int64_t u) {
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
    if (size_ == 0 && !table_.empty()) {
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
  // Backward-shift deletion: later entries of the probe run move up so
  // every key stays reachable from its home slot.
  void erase_slot(std::size_t i) {
    std::size_t mask = table_.size() - 1;
    for (std::size_t j = i;;) {
      table_[i] = kEmpty;
      for (;;) {
        j = (j + 1) & mask;
        if (table_[j] == kEmpty) return;
        std::size_t k = home(nodes_[table_[j]].key);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) break;
      }
      table_[i] = table_[j];
      i = j;
    }
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
    std::uint64_t hash = 0;  // fnv1a(address)
    std::uint64_t used = 0;  // larger is more recent (picks among duplicates)
    std::string address;
    std::uint8_t prev = kNil, next = kNil;
  };

  std::size_t size() const { return entries_.size(); }
  // The least recently used entry equal to address (hash = fnv1a(address));
  // duplicates only come from a loaded baseline.
  Entry* find(std::uint64_t hash, std::string_view address) {
    Entry* found = nullptr;
    for (std::size_t i = home(hash); table_[i] != kNil; i = (i + 1) % kSlots) {
      Entry& e = entries_[table_[i]];
      if (e.hash == hash && e.address == address && (found == nullptr || e.used < found->used))
        found = &e;
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
    e.hash = hash;
    e.address.assign(address);
    link_last(n);
    std::size_t i = home(hash);
    while (table_[i] != kNil) i = (i + 1) % kSlots;
    table_[i] = n;
  }
  // Least recently used first.
  template <class F>
  void each(F&& f) const {
    for (std::uint8_t n = first_; n != kNil; n = entries_[n].next) f(entries_[n]);
  }

 private:
  static constexpr std::uint8_t kNil = 255;
  static constexpr std::size_t kSlots = 2 * kMax;  // at most half full

  static std::size_t home(std::uint64_t hash) {
    return static_cast<std::size_t>((hash * 0x9e3779b97f4a7c15ull) >> 57);
  }
  std::size_t slot_of(std::uint8_t n) const {
    std::size_t i = home(entries_[n].hash);
    while (table_[i] != n) i = (i + 1) % kSlots;
    return i;
  }
  // Backward-shift deletion (as in RecentSet).
  void erase_slot(std::size_t i) {
    for (std::size_t j = i;;) {
      table_[i] = kNil;
      for (;;) {
        j = (j + 1) % kSlots;
        if (table_[j] == kNil) return;
        std::size_t k = home(entries_[table_[j]].hash);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) break;
      }
      table_[i] = table_[j];
      i = j;
    }
  }
  void unlink(std::uint8_t n) {
    Entry& x = entries_[n];
    (x.prev == kNil ? first_ : entries_[x.prev].next) = x.next;
    (x.next == kNil ? last_ : entries_[x.next].prev) = x.prev;
    x.prev = x.next = kNil;
  }
  void link_last(std::uint8_t n) {
    entries_[n].used = ++clock_;
    entries_[n].prev = last_;
    entries_[n].next = kNil;
    (last_ == kNil ? first_ : entries_[last_].next) = n;
    last_ = n;
  }

  std::vector<Entry> entries_;
  std::uint64_t clock_ = 0;
  std::uint8_t first_ = kNil, last_ = kNil;
  std::array<std::uint8_t, kSlots> table_ = filled();
  static constexpr std::array<std::uint8_t, kSlots> filled() {
    std::array<std::uint8_t, kSlots> t{};
    t.fill(kNil);
    return t;
  }
};

// What an identity usually does at one hour of the day (UTC): EWMA of the
// busiest sliding minute and of the largest distinct-recipient count per
// 10 minutes, one sample per day.
struct Slot {
  float messages = 0;
  float distinct = 0;
  std::uint32_t samples = 0;
};

// An action in force (Detectors::State::active), and a subject's shortcut
// to it: while a condition holds, every event re-fires its action, and the
// shortcut spares building the key and looking it up. Entries only go in
// expiry, which bumps State::active_epoch, so a shortcut from an older
// epoch is not followed.
struct ActiveEntry {
  Action action;
  std::int64_t last_true = 0;  // the condition was last seen true then
};
struct ActiveRef {
  ActiveEntry* entry = nullptr;
  std::uint64_t epoch = 0;
};

struct Outcomes {  // delivery outcomes per hour, last 24 hours
  Ring<24> delivered, deferred, bounced;
  std::array<ActiveRef, 3> refs;  // bounces_high, bounces, deferrals
  // All three slide together, so sums cover the same 24 hours.
  void advance(std::int64_t hour) {
    delivered.advance(hour);
    deferred.advance(hour);
    bounced.advance(hour);
  }
};

// Fields in the order an event reads them: the identity is cold memory by
// the time its next event comes, so fewer cache lines touched is faster.
struct IdentityState {
  std::int64_t first_seen = 0;
  // The hour being learned: its busiest values, and the limit in force if a
  // detector fired (then only up to the limit is learned, so an attack does
  // not raise tomorrow's limit by more than the factor).
  std::int64_t hour = kNone;
  float peak_messages = 0, peak_distinct = 0;
  float cap_messages = -1, cap_distinct = -1;  // -1: not flagged this hour
  Ring<2> messages;  // per minute; the sliding minute weighs the previous one
  // Distinct recipients: address hashes with the minute last seen (within
  // 10 min), and per minute how many entered the set (or overflowed the caps).
  Ring<10> distinct;
  RecentSet recipients;
  Senders senders;
  std::array<Slot, 24> baseline{};
  Outcomes outcomes;
};

struct UpstreamState {
  Outcomes outcomes;
};

struct RemoteState {
  std::deque<std::int64_t> failures;  // times of the latest AUTH failures
};

// A map with a size cap that evicts the least recently touched entry. The
// index's keys view the names stored in the list's nodes (which never
// move), so finding an existing entry builds no string.
template <class S>
class LruTable {
 public:
  explicit LruTable(std::size_t cap) : cap_(cap == 0 ? 1 : cap) {}
  LruTable(LruTable&&) noexcept = default;
  LruTable& operator=(LruTable&&) noexcept = default;
  LruTable(const LruTable&) = delete;
  LruTable& operator=(const LruTable&) = delete;

  // The entry for key, created (evicting if full) when absent. `on_evict`
  // receives the entry thrown out, if any.
  template <class OnEvict>
  S& touch(std::string_view key, bool& created, OnEvict&& on_evict) {
    auto it = index_.find(key);
    created = it == index_.end();
    if (!created) {
      order_.splice(order_.end(), order_, it->second);
      return it->second->second;
    }
    if (index_.size() >= cap_) {
      on_evict(std::as_const(order_.front().second));
      index_.erase(std::string_view(order_.front().first));
      order_.pop_front();
    }
    order_.emplace_back(std::string(key), S{});
    index_.emplace(std::string_view(order_.back().first), std::prev(order_.end()));
    return order_.back().second;
  }
  std::size_t size() const { return index_.size(); }
  // Calls f(key, value), least recently touched first.
  template <class F>
  void each(F&& f) const {
    for (const auto& [key, value] : order_) f(key, value);
  }

 private:
  using List = std::list<std::pair<std::string, S>>;
  std::size_t cap_;
  List order_;
  std::unordered_map<std::string_view, typename List::iterator> index_;
};

struct TextHash {  // heterogeneous lookup: find a string_view without a string
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace sg::monitor::detail

namespace sg::monitor {

struct Detectors::State {
  explicit State(config::Detect c)
      : config(std::move(c)),
        identities(config.max_subjects),
        upstreams(config.max_subjects),
        remotes(config.max_subjects) {}
  config::Detect config;
  detail::LruTable<detail::IdentityState> identities;
  detail::LruTable<detail::UpstreamState> upstreams;
  detail::LruTable<detail::RemoteState> remotes;
  std::size_t tracked_recipients = 0;  // over all identities (global memory cap)
  using Active = detail::ActiveEntry;
  // key: detector, scope, subject (active() sorts by it)
  std::unordered_map<std::string, Active, detail::TextHash, std::equal_to<>> active;
  std::uint64_t active_epoch = 1;  // bumped when entries leave `active`
  // No active action ends before this (a lower bound: last_true only grows),
  // so expiry walks `active` only when something may be due.
  std::int64_t next_expiry = INT64_MAX;
  std::int64_t now = 0;
  std::int64_t last_expiry_minute = detail::kNone;
  std::string key, text;  // scratch buffers, reused so events allocate nothing
};

}  // namespace sg::monitor
