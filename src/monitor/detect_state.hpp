// Internal to monitor/detect: the per-subject state and its bounded
// containers. Not a public header; detect.cpp and detect_baseline.cpp only.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "monitor/detect.hpp"
#include "monitor/hash_index.hpp"

namespace sg::monitor::detail {

constexpr std::int64_t kNone = INT64_MIN;

// ASCII A-Z -> a-z in the eight bytes of w (other bytes unchanged).
inline std::uint64_t lower8(std::uint64_t w) {
  constexpr std::uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  const std::uint64_t low7 = w & ~high;
  const std::uint64_t from_a = low7 + (0x80 - 'A') * ones;      // high bit: byte >= 'A'
  const std::uint64_t past_z = low7 + (0x80 - 'Z' - 1) * ones;  // high bit: byte > 'Z'
  const std::uint64_t upper = from_a & ~past_z & ~w & high;     // and an ASCII byte
  return w | (upper >> 2);                                      // 0x80 >> 2 == 0x20
}

// A hash of the ASCII-lower-cased bytes (addresses compare without case),
// eight bytes at a time.
inline std::uint64_t address_hash(std::string_view s) {
  return word_hash(s, 0x452821e638d01377ull, lower8);
}

// out = s lower-cased (ASCII), eight bytes at a time.
inline void assign_lower(std::string& out, std::string_view s) {
  out.resize(s.size());
  char* o = out.data();
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    w = lower8(w);
    std::memcpy(o + i, &w, 8);
  }
  for (; i < s.size(); ++i) {
    char c = s[i];
    o[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
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
  // Backward-shift deletion (as in RecentSet).
  void erase_slot(std::size_t i) {
    for (std::size_t j = i;;) {
      table_[i].index = kNil;
      for (;;) {
        j = (j + 1) % kSlots;
        if (table_[j].index == kNil) return;
        std::size_t k = table_[j].home;
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) break;
      }
      table_[i] = table_[j];
      i = j;
    }
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
// expiry, which bumps State::active_epoch when the entry went out with a
// shortcut to it, so a shortcut from an older epoch is not followed (and
// actions nobody holds a shortcut to, such as auth blocks, expire without
// voiding the others').
struct ActiveEntry {
  Action action;
  std::int64_t last_true = 0;  // the condition was last seen true then
  bool referenced = false;     // a shortcut to it was handed out
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
  // The learned values limit_for() takes at hour `learned_at` (epoch hours):
  // the baseline only changes in roll_hour, which sets learned_at to kNone.
  std::int64_t learned_at = kNone;
  float learned_messages = 0, learned_distinct = 0;
  Ring<2> messages;  // per minute; the sliding minute weighs the previous one
  // Distinct recipients: address hashes with the minute last seen (within
  // 10 min), and per minute how many entered the set (or overflowed the caps).
  Ring<10> distinct;
  RecentSet recipients;
  Senders senders;
  std::array<Slot, 24> baseline{};
  Outcomes outcomes;
  std::array<ActiveRef, 3> refs;  // rate, recipients, new_sender
};

struct UpstreamState {
  Outcomes outcomes;
};

struct RemoteState {
  std::deque<std::int64_t> failures;  // times of the latest AUTH failures
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
  std::vector<std::string_view> recipient_views;  // observe(Event): its recipients
};

}  // namespace sg::monitor
