// Internal to monitor/detect: the per-subject state and its bounded
// containers. Not a public header; detect.cpp and detect_baseline.cpp only.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "monitor/detect.hpp"

namespace sg::monitor::detail {

constexpr std::int64_t kNone = INT64_MIN;

// Counts per time unit (minute or hour) for the last N units; unit u lives
// in slot u mod N. Adding to a unit older than the window is ignored.
template <std::size_t N>
struct Ring {
  std::array<std::uint32_t, N> v{};
  std::int64_t head = kNone;  // newest unit

  static std::size_t slot(std::int64_t u) {
    return static_cast<std::size_t>(((u % std::int64_t(N)) + std::int64_t(N)) % std::int64_t(N));
  }
  void advance(std::int64_t u) {
    if (head == kNone || u - head >= std::int64_t(N)) {
      v.fill(0);
      head = u;
      return;
    }
    for (; head < u;) v[slot(++head)] = 0;
  }
  void add(std::int64_t u, std::uint32_t n) {
    advance(u);
    if (u <= head - std::int64_t(N)) return;
    std::uint32_t& x = v[slot(u)];
    x = n > UINT32_MAX - x ? UINT32_MAX : x + n;
  }
  // Units in (head - count, head].
  std::uint64_t sum(std::size_t count = N) const {
    std::uint64_t s = 0;
    if (head == kNone) return 0;
    for (std::size_t i = 0; i < count && i < N; ++i) s += v[slot(head - std::int64_t(i))];
    return s;
  }
  std::uint32_t at(std::int64_t u) const {
    if (head == kNone || u > head || u <= head - std::int64_t(N)) return 0;
    return v[slot(u)];
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

struct Outcomes {  // delivery outcomes per hour, last 24 hours
  Ring<24> delivered, deferred, bounced;
  // All three slide together, so sums cover the same 24 hours.
  void advance(std::int64_t hour) {
    delivered.advance(hour);
    deferred.advance(hour);
    bounced.advance(hour);
  }
};

struct IdentityState {
  std::int64_t first_seen = 0;
  std::array<Slot, 24> baseline{};
  Ring<2> messages;  // per minute; the sliding minute weighs the previous one
  // Distinct recipients: address hash -> minute last seen (within 10 min),
  // and per minute how many entered the set (or overflowed the caps).
  std::unordered_map<std::uint64_t, std::int64_t> recipients;
  Ring<10> distinct;
  // The hour being learned: its busiest values, and the limit in force if a
  // detector fired (then only up to the limit is learned, so an attack does
  // not raise tomorrow's limit by more than the factor).
  std::int64_t hour = kNone;
  float peak_messages = 0, peak_distinct = 0;
  float cap_messages = -1, cap_distinct = -1;  // -1: not flagged this hour
  std::vector<std::string> senders;            // most recent last
  Outcomes outcomes;
};

struct UpstreamState {
  Outcomes outcomes;
};

struct RemoteState {
  std::deque<std::int64_t> failures;  // times of the latest AUTH failures
};

// A map with a size cap that evicts the least recently touched entry.
template <class S>
class LruTable {
 public:
  explicit LruTable(std::size_t cap) : cap_(cap == 0 ? 1 : cap) {}
  // The entry for key, created (evicting if full) when absent. `evicted`
  // receives the entry thrown out, if any.
  template <class OnEvict>
  S& touch(const std::string& key, bool& created, OnEvict&& on_evict) {
    auto it = index_.find(key);
    created = it == index_.end();
    if (!created) {
      order_.splice(order_.end(), order_, it->second);
      return it->second->second;
    }
    if (index_.size() >= cap_) {
      on_evict(order_.front().second);
      index_.erase(order_.front().first);
      order_.pop_front();
    }
    order_.emplace_back(key, S{});
    index_.emplace(key, std::prev(order_.end()));
    return order_.back().second;
  }
  std::size_t size() const { return index_.size(); }
  void clear() {
    index_.clear();
    order_.clear();
  }
  // Least recently touched first.
  const std::list<std::pair<std::string, S>>& entries() const { return order_; }

 private:
  std::size_t cap_;
  std::list<std::pair<std::string, S>> order_;
  std::unordered_map<std::string, typename std::list<std::pair<std::string, S>>::iterator> index_;
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
  struct Active {
    Action action;
    std::int64_t last_true = 0;  // the condition was last seen true then
  };
  std::map<std::string, Active> active;  // key: detector, scope, subject
  std::int64_t now = 0;
  std::int64_t last_expiry_minute = detail::kNone;
};

}  // namespace sg::monitor
