// alerts: tells the operator, through channels that do not depend on the
// relay under suspicion: a webhook (JSON POST with a Slack/Teams "text"
// field, libcurl), syslog/journal, a program run with the alert as JSON on
// stdin (no shell), and email through a second upstream or straight to the
// recipient's MX (port 25, opportunistic STARTTLS: see send_direct), never
// through the relay's own queue.
// Each alert has a key (detector + subject). A sink repeats the same key at
// most once per min_interval and sends at most kBurst alerts, then one per
// minute; what it suppresses is counted and named in the next one it sends.
// Input: alerts from our own detectors (subjects may be client-chosen
// addresses: JSON-escaped, and stripped of control characters for email
// headers and syslog). Errors: a sink that fails is reported in the
// outcome (and logged by the caller); nothing here throws or blocks longer
// than a sink's timeout (webhook 10 s, exec 30 s, email the upstream's; direct
// to MX 30 s a step, for at most 5 hosts, each tried twice when TLS fails).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/secret.hpp"
#include "config/config.hpp"

namespace sg::monitor {

struct AlertEvent {
  std::string key;       // dedup key, e.g. "rate:shop"
  std::string severity;  // "warning" | "critical"
  std::string title;     // one line: "identity shop held: 212 messages in 1 minute"
  std::string detail;    // a few lines for people
  std::string host;      // this machine's name
  std::int64_t time = 0;
  nlohmann::json fields;  // machine-readable extras (detector, subject, action, ...)
};

// The JSON document webhooks and exec'd programs receive.
nlohmann::json alert_json(const AlertEvent& alert, std::uint64_t suppressed);
// The RFC 5322 message an email sink sends (CRLF line ends).
std::string alert_email(const AlertEvent& alert, std::uint64_t suppressed, const std::string& from,
                        const std::string& to, const std::string& message_id);

// A login for an email_upstream, unsealed by the caller.
struct AlertLogin {
  std::string username;
  Secret password;
};

struct SinkOutcome {
  std::string sink;  // "webhook http://...", "syslog", "exec /path", "email ops@..."
  bool sent = false;
  bool suppressed = false;  // deduplicated or rate-limited, not attempted
  std::string error;        // when attempted and failed
};

class AlertSinks {
 public:
  static constexpr std::uint32_t kBurst = 10;

  // `logins` holds the credentials of the email_upstreams named in `alerts`.
  AlertSinks(std::vector<config::Alert> alerts, std::vector<config::Upstream> upstreams,
             std::map<std::string, AlertLogin> logins);
  ~AlertSinks();
  AlertSinks(const AlertSinks&) = delete;
  AlertSinks& operator=(const AlertSinks&) = delete;

  // Sends `alert` to every sink (blocking; call it off the event loop).
  std::vector<SinkOutcome> send(const AlertEvent& alert);
  bool empty() const { return sinks_.empty(); }

 private:
  struct Sink;
  std::vector<std::unique_ptr<Sink>> sinks_;
  std::vector<config::Upstream> upstreams_;
  std::map<std::string, AlertLogin> logins_;
};

// MX hosts of `domain`, most preferred first; the domain itself when it has
// no MX records (RFC 5321 5.1 implicit MX: its A/AAAA records). Errc::not_found
// for NXDOMAIN or a null MX (RFC 7505), Errc::temp_failure when the lookup
// itself fails (SERVFAIL, timeout, refused): no implicit MX then.
Result<std::vector<std::string>> lookup_mx(const std::string& domain);

}  // namespace sg::monitor
