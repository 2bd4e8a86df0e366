// Parsing the deliverer's status file (monitor.hpp: DelivererStatus). The
// file is written by a process of the service user, like the receiver, so
// it is untrusted: bounded size and nesting, checked types, clamped numbers,
// at most kMaxUpstreams entries, bounded strings. Pure; never throws.
#include <algorithm>
#include <cmath>

#include "monitor/monitor.hpp"

namespace sg::monitor {
namespace {

constexpr std::size_t kMaxUpstreams = 64;
constexpr std::size_t kMaxName = 128, kMaxError = 512;
constexpr int kMaxDepth = 8;  // the real file has 3 levels

}  // namespace

namespace {

std::int64_t integer(const nlohmann::json& j, const char* key, std::int64_t max) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  double d = it->get<double>();
  if (!std::isfinite(d) || d <= 0) return 0;
  return d >= double(max) ? max : static_cast<std::int64_t>(d);
}

double rate(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  double d = it->get<double>();
  return std::isfinite(d) && d > 0 ? std::min(d, 1e6) : 0;
}

// One line of printable text (a reply from the upstream may hold anything).
std::string text(const nlohmann::json& j, const char* key, std::size_t max) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  const auto& s = it->get_ref<const std::string&>();
  std::string out;
  for (char c : s.substr(0, max)) out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  return out;
}

}  // namespace

Result<std::vector<UpstreamSessions>> parse_deliverer_status(std::string_view input) {
  auto bad = [](const std::string& why) {
    return make_error(Errc::corrupt, "deliverer status: " + why);
  };
  if (input.size() > kDelivererStatusMaxSize) return bad("too large");
  if (!json_nesting_within(input, kMaxDepth)) return bad("nested too deeply");
  auto j = nlohmann::json::parse(input.begin(), input.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto list = j.find("upstreams");
  if (list == j.end() || !list->is_array()) return bad("no \"upstreams\" array");
  if (list->size() > kMaxUpstreams) return bad("too many upstreams");
  constexpr std::int64_t kMaxCount = 1'000'000, kMaxTime = std::int64_t(1) << 40;
  std::vector<UpstreamSessions> out;
  for (const auto& u : *list) {
    if (!u.is_object()) return bad("an upstream is not an object");
    UpstreamSessions s;
    s.name = text(u, "name", kMaxName);
    if (s.name.empty()) return bad("an upstream has no name");
    s.open = integer(u, "sessions_open", kMaxCount);
    s.busy = integer(u, "sessions_busy", kMaxCount);
    s.max = integer(u, "max_connections", kMaxCount);
    s.send_rate_limit = rate(u, "send_rate_now");
    s.last_error = text(u, "last_error", kMaxError);
    s.last_error_at = integer(u, "last_error_at", kMaxTime);
    s.paused_until = integer(u, "paused_until", kMaxTime);
    s.credential = text(u, "credential", kMaxName);
    s.credential_version = integer(u, "credential_version", kMaxTime);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace sg::monitor
