#include "policy/rate.hpp"

#include <nlohmann/json.hpp>

namespace sg::policy {
namespace {

using Bucket = RateCounters::Bucket;
using Series = RateCounters::Series;

constexpr std::int64_t kMinute = 60, kHour = 3600, kDay = 86400;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Adds to the bucket at `at`; buckets are kept sorted (a clock step back
// inserts in the middle).
void add(std::deque<Bucket>& buckets, std::int64_t at, std::uint64_t recipients) {
  auto it = buckets.end();
  while (it != buckets.begin() && std::prev(it)->at > at) --it;
  if (it != buckets.begin() && std::prev(it)->at == at) {
    --it;
  } else {
    it = buckets.insert(it, Bucket{at, 0, 0});
  }
  it->messages += 1;
  it->recipients += recipients;
}

void drop_before(std::deque<Bucket>& buckets, std::int64_t cutoff) {
  while (!buckets.empty() && buckets.front().at < cutoff) buckets.pop_front();
}

void prune_series(Series& s, std::int64_t now) {
  drop_before(s.seconds, now - kMinute + 1);
  drop_before(s.minutes, floor_div(now - kDay + 1, kMinute));
}

void sum_from(const std::deque<Bucket>& buckets, std::int64_t from, std::uint64_t& messages,
              std::uint64_t& recipients) {
  for (auto it = buckets.rbegin(); it != buckets.rend() && it->at >= from; ++it) {
    messages += it->messages;
    recipients += it->recipients;
  }
}

nlohmann::json buckets_json(const std::deque<Bucket>& buckets) {
  auto out = nlohmann::json::array();
  for (const auto& b : buckets) out.push_back({b.at, b.messages, b.recipients});
  return out;
}

bool read_buckets(const nlohmann::json& j, std::deque<Bucket>& out) {
  if (!j.is_array()) return false;
  for (const auto& b : j) {
    if (!b.is_array() || b.size() != 3 || !b[0].is_number_integer() || !b[1].is_number_unsigned() ||
        !b[2].is_number_unsigned())
      return false;
    Bucket bucket{b[0].get<std::int64_t>(), b[1].get<std::uint64_t>(), b[2].get<std::uint64_t>()};
    if (!out.empty() && out.back().at >= bucket.at) return false;  // must ascend
    out.push_back(bucket);
  }
  return true;
}

}  // namespace

void RateCounters::record(std::string_view identity, std::size_t recipients, std::int64_t now) {
  auto it = series_.find(identity);
  if (it == series_.end()) it = series_.emplace(std::string(identity), Series{}).first;
  add(it->second.seconds, now, recipients);
  add(it->second.minutes, floor_div(now, kMinute), recipients);
  prune_series(it->second, now);
}

Counts RateCounters::counts(std::string_view identity, std::int64_t now) const {
  Counts c;
  auto it = series_.find(identity);
  if (it == series_.end()) return c;
  const Series& s = it->second;
  sum_from(s.seconds, now - kMinute + 1, c.messages.minute, c.recipients.minute);
  sum_from(s.minutes, floor_div(now - kHour + 1, kMinute), c.messages.hour, c.recipients.hour);
  sum_from(s.minutes, floor_div(now - kDay + 1, kMinute), c.messages.day, c.recipients.day);
  return c;
}

void RateCounters::prune(std::int64_t now) {
  for (auto it = series_.begin(); it != series_.end();) {
    prune_series(it->second, now);
    if (it->second.seconds.empty() && it->second.minutes.empty())
      it = series_.erase(it);
    else
      ++it;
  }
}

void RateCounters::forget(std::string_view identity) {
  if (auto it = series_.find(identity); it != series_.end()) series_.erase(it);
}

std::string RateCounters::to_json() const {
  nlohmann::json ids = nlohmann::json::object();
  for (const auto& [name, s] : series_)
    ids[name] = {{"seconds", buckets_json(s.seconds)}, {"minutes", buckets_json(s.minutes)}};
  return nlohmann::json{{"version", 1}, {"identities", ids}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<RateCounters> RateCounters::from_json(std::string_view text) {
  auto corrupt = [](std::string_view why) {
    return make_error(Errc::corrupt, "rate counters: " + std::string(why));
  };
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("not a JSON object");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer()) return corrupt("no version");
  if (version->get<std::int64_t>() != 1)
    return make_error(Errc::unsupported, "rate counters: unsupported version " + version->dump());
  auto ids = j.find("identities");
  if (ids == j.end() || !ids->is_object()) return corrupt("no identities object");
  RateCounters out;
  for (const auto& [name, value] : ids->items()) {
    Series s;
    if (!value.is_object() || !value.contains("seconds") || !value.contains("minutes") ||
        !read_buckets(value["seconds"], s.seconds) || !read_buckets(value["minutes"], s.minutes))
      return corrupt("bad entry for identity \"" + name.substr(0, 64) + "\"");
    out.series_.emplace(name, std::move(s));
  }
  return out;
}

}  // namespace sg::policy
