// Internal to monitor/detect: the per-subject state (its containers are in
// detect_windows.hpp and detect_lru.hpp). Not a public header; detect.cpp and
// detect_baseline.cpp only.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "monitor/detect.hpp"
#include "monitor/detect_lru.hpp"
#include "monitor/detect_windows.hpp"
#include "monitor/hash_index.hpp"

namespace sg::monitor::detail {

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
