// Audit log lines -> detector Events, and the small to_string helpers.
// Lines come from our own relay processes, but the fields inside them
// (addresses, peer names, reply texts) come from clients and upstreams and
// the file may be damaged: every field is type-checked and length-capped,
// nothing throws.
#include <algorithm>
#include <cctype>

#include "monitor/detect.hpp"
#include "ses/ses.hpp"

namespace sg::monitor {
namespace {

constexpr std::size_t kMaxField = 512;              // longer client text is cut (memory bound)
constexpr std::int64_t kMaxTime = 100'000'000'000;  // year ~5100; keeps bucket math in range

std::string text_field(const nlohmann::json& line, const char* key) {
  auto it = line.find(key);
  if (it == line.end() || !it->is_string()) return {};
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() <= kMaxField) return s;
  // Cut at a character boundary: parsed JSON text is valid UTF-8, keep it so.
  std::size_t n = kMaxField;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// "uid 1000" (how the receiver describes a unix-socket peer) -> "uid:1000".
std::string remote_of(const nlohmann::json& line) {
  std::string peer = text_field(line, "peer");
  if (peer.rfind("uid ", 0) == 0) peer[3] = ':';
  return peer;
}

// A reply as the deliverer writes it ("454 Throttling failure: ...") ->
// its SES class.
ses::ReplyClass classify(const std::string& reply) {
  int code = 0;
  std::size_t i = 0;
  for (; i < reply.size() && i < 3 && std::isdigit(static_cast<unsigned char>(reply[i])); ++i)
    code = code * 10 + (reply[i] - '0');
  if (i != 3) return ses::ReplyClass::other;
  return ses::classify_reply(code, std::string_view(reply).substr(3)).cls;
}

}  // namespace

std::optional<Event> event_from_audit(const nlohmann::json& line) {
  if (!line.is_object()) return std::nullopt;
  auto time = line.find("time");
  auto name = line.find("event");
  if (time == line.end() || !time->is_number_integer() || name == line.end() || !name->is_string())
    return std::nullopt;
  const auto& event = name->get_ref<const std::string&>();

  Event e;
  e.time = std::clamp<std::int64_t>(
      time->is_number_unsigned()
          ? static_cast<std::int64_t>(std::min<std::uint64_t>(time->get<std::uint64_t>(), kMaxTime))
          : time->get<std::int64_t>(),
      0, kMaxTime);
  e.identity = text_field(line, "identity");
  e.upstream = text_field(line, "upstream");
  e.remote = remote_of(line);

  if (event == "received" || event == "held") {
    // An operator's `queue hold ID` is logged as "held" too, with "by" and
    // no identity: it is not a submission.
    if (line.contains("by") || e.identity.empty()) return std::nullopt;
    e.kind = event == "held" ? EventKind::held : EventKind::received;
    e.sender = text_field(line, "mail_from");
    e.rule = text_field(line, "rule");
    auto r = line.find("recipients");
    if (r != line.end() && r->is_number_unsigned()) {
      e.recipient_count =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(r->get<std::uint64_t>(), 1'000'000));
    } else if (r != line.end() && r->is_array()) {  // a list, should the relay log one
      for (const auto& a : *r) {
        if (e.recipients.size() >= 1000) break;
        if (a.is_string() && a.get_ref<const std::string&>().size() <= kMaxField)
          e.recipients.push_back(a.get<std::string>());
      }
    }
    e.recipient_count =
        std::max<std::uint32_t>(e.recipient_count, static_cast<std::uint32_t>(e.recipients.size()));
    return e;
  }
  if (event == "refused" || event == "connection_refused") {
    e.kind = EventKind::refused;
    e.sender = text_field(line, "mail_from");
    e.rule = text_field(line, "rule");
    return e;
  }
  if (event == "delivered" || event == "deferred" || event == "bounced") {
    e.kind = event == "delivered"  ? EventKind::delivered
             : event == "deferred" ? EventKind::deferred
                                   : EventKind::bounced;
    std::string rcpt = text_field(line, "recipient");
    if (!rcpt.empty()) e.recipients.push_back(std::move(rcpt));
    e.recipient_count = 1;
    e.rule = text_field(line, "reply");
    return e;
  }
  if (event == "auth_failed") {
    e.kind = EventKind::auth_failed;
    e.identity.clear();  // the username tried is the attacker's choice, not an identity
    return e;
  }
  if (event == "throttled") {
    e.rule = text_field(line, "reply");
    e.kind = classify(e.rule) == ses::ReplyClass::throttled_daily_quota ? EventKind::quota_exceeded
                                                                        : EventKind::throttled;
    return e;
  }
  // The deliverer's own alert when SES says the daily quota is used up. The
  // monitor's alerts (which carry "detector") must not feed back.
  if (event == "alert" && !line.contains("detector") &&
      text_field(line, "kind") == "throttled_daily_quota") {
    e.kind = EventKind::quota_exceeded;
    e.rule = text_field(line, "reply");
    return e;
  }
  return std::nullopt;
}

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::received:
      return "received";
    case EventKind::held:
      return "held";
    case EventKind::refused:
      return "refused";
    case EventKind::deferred:
      return "deferred";
    case EventKind::delivered:
      return "delivered";
    case EventKind::bounced:
      return "bounced";
    case EventKind::auth_failed:
      return "auth_failed";
    case EventKind::throttled:
      return "throttled";
    case EventKind::quota_exceeded:
      return "quota_exceeded";
  }
  return "unknown";
}

std::string_view to_string(Scope scope) {
  switch (scope) {
    case Scope::identity:
      return "identity";
    case Scope::upstream:
      return "upstream";
    case Scope::remote:
      return "remote";
  }
  return "unknown";
}

std::string_view to_string(Severity severity) {
  return severity == Severity::critical ? "critical" : "warning";
}

nlohmann::json to_json(const Action& a) {
  return {{"detector", a.detector},
          {"action", std::string(config::to_string(a.action))},
          {"scope", std::string(to_string(a.scope))},
          {"subject", a.subject},
          {"severity", std::string(to_string(a.severity))},
          {"message", a.message},
          {"time", a.time},
          {"until", a.until}};
}

}  // namespace sg::monitor
