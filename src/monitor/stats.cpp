// Counting audit lines: what the metrics and the status page show.
#include <algorithm>
#include <cctype>

#include "monitor/monitor.hpp"

namespace sg::monitor {
namespace {

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "451 4.3.0 ..." -> "4xx"; a reply the relay made up itself (connection
// refused, timeout: no code) -> "local".
std::string reply_class(std::string_view reply) {
  if (reply.size() >= 3 && reply[0] >= '2' && reply[0] <= '5' &&
      std::isdigit(static_cast<unsigned char>(reply[1])) &&
      std::isdigit(static_cast<unsigned char>(reply[2])) &&
      (reply.size() == 3 || reply[3] == ' ' || reply[3] == '-'))
    return std::string(1, reply[0]) + "xx";
  return "local";
}

}  // namespace

void Stats::observe_line(std::string_view line) {
  ++lines;
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("event") || !j["event"].is_string()) {
    ++unparsed;
    return;
  }
  observe(j);
}

void Stats::observe(const nlohmann::json& e) {
  const std::string event = str(e, "event");
  std::int64_t time = 0;
  if (auto it = e.find("time"); it != e.end() && it->is_number_integer())
    time = it->get<std::int64_t>();
  last_time = std::max(last_time, time);
  const std::string identity = str(e, "identity");
  const std::string upstream = str(e, "upstream");

  if (event == "received" || (event == "held" && !e.contains("by"))) {
    // "held" with "by" is an operator's `queue hold` of mail already counted.
    auto& c = identities[identity];
    ++(event == "received" ? c.received : c.held);
    ++submitted_per_minute[identity][time / 60];
  } else if (event == "refused") {
    ++identities[identity].refused;
  } else if (event == "auth_failed") {
    ++auth_failures;
  } else if (event == "delivered" || event == "deferred" || event == "bounced") {
    auto& c = routes[{identity, upstream}];
    auto& i = identities[identity];
    if (event == "delivered") {
      ++c.delivered;
      ++i.delivered;
      ++reply_classes[{upstream, "2xx"}];
      ++delivered_per_second[upstream][time];
    } else {
      ++(event == "deferred" ? c.deferred : c.bounced);
      ++(event == "deferred" ? i.deferred : i.bounced);
      ++reply_classes[{upstream, reply_class(str(e, "reply"))}];
    }
  } else if (event == "throttled") {
    ++throttled[upstream];
  } else if (event == "alert") {
    std::string kind = str(e, "kind");
    ++alerts[kind];
    AlertRecord a{time, kind, "", ""};
    for (const char* key : {"subject", "identity", "upstream", "peer"})
      if (a.subject.empty()) a.subject = str(e, key);
    for (const char* key : {"reason", "hint", "reply", "action"})
      if (a.detail.empty()) a.detail = str(e, key);
    recent_alerts.push_back(std::move(a));
    while (recent_alerts.size() > kRecentAlerts) recent_alerts.pop_front();
  }
}

void Stats::prune(std::int64_t now) {
  for (auto& [name, minutes] : submitted_per_minute)
    minutes.erase(minutes.begin(), minutes.lower_bound(now / 60 - 60));
  for (auto& [name, seconds] : delivered_per_second)
    seconds.erase(seconds.begin(), seconds.lower_bound(now - 60));
}

double Stats::send_rate(const std::string& upstream, std::int64_t now) const {
  auto it = delivered_per_second.find(upstream);
  if (it == delivered_per_second.end()) return 0;
  std::uint64_t n = 0;
  for (auto s = it->second.lower_bound(now - 59); s != it->second.end() && s->first <= now; ++s)
    n += s->second;
  return static_cast<double>(n) / 60.0;
}

}  // namespace sg::monitor
