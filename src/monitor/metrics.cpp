// GET /metrics: the Prometheus text exposition format 0.0.4. Pure.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "monitor/monitor.hpp"

namespace sg::monitor {
namespace {

using Labels = std::vector<std::pair<const char*, std::string>>;

class Writer {
 public:
  // HELP and TYPE once per metric family, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP smtpguard_{} {}\n# TYPE smtpguard_{} {}\n",
                   name, help, name, type);
  }
  void sample(std::string_view name, const Labels& labels, double value) {
    out_ += "smtpguard_";
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i) out_ += ',';
        out_ += labels[i].first;
        out_ += "=\"";
        out_ += escape_label_value(labels[i].second);
        out_ += '"';
      }
      out_ += '}';
    }
    if (std::isinf(value))  // the exposition format spells it +Inf / -Inf
      out_ += value > 0 ? " +Inf\n" : " -Inf\n";
    else
      fmt::format_to(std::back_inserter(out_), " {}\n", value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::int64_t age_days(std::int64_t since, std::int64_t now) {
  return since > 0 && now > since ? (now - since) / 86400 : 0;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string render_metrics(const Snapshot& s) {
  Writer w;
  const Stats& st = s.stats;
  struct PerIdentity {
    const char* name;
    std::uint64_t EventCounts::*field;
    const char* help;
  };
  for (const PerIdentity& m :
       {PerIdentity{"messages_received_total", &EventCounts::received,
                    "Messages accepted for delivery, per local identity."},
        PerIdentity{"messages_refused_total", &EventCounts::refused,
                    "Submissions refused by policy, per local identity (\"\" when unknown)."},
        PerIdentity{"messages_held_total", &EventCounts::held,
                    "Messages put in the hold queue at submission, per local identity."}}) {
    w.family(m.name, "counter", m.help);
    for (const auto& [identity, c] : st.identities)
      w.sample(m.name, {{"identity", identity}}, static_cast<double>(c.*m.field));
  }
  for (const PerIdentity& m :
       {PerIdentity{"recipients_delivered_total", &EventCounts::delivered,
                    "Recipients accepted by the upstream, per identity and upstream."},
        PerIdentity{"recipients_deferred_total", &EventCounts::deferred,
                    "Recipient delivery attempts deferred for a retry, per identity and upstream."},
        PerIdentity{"recipients_bounced_total", &EventCounts::bounced,
                    "Recipients that failed for good, per identity and upstream."}}) {
    w.family(m.name, "counter", m.help);
    for (const auto& [key, c] : st.routes)
      w.sample(m.name, {{"identity", key.first}, {"upstream", key.second}},
               static_cast<double>(c.*m.field));
  }
  w.family("upstream_replies_total", "counter",
           "Replies to delivery attempts by class (2xx, 4xx, 5xx; local: no reply).");
  for (const auto& [key, n] : st.reply_classes)
    w.sample("upstream_replies_total", {{"upstream", key.first}, {"class", key.second}},
             static_cast<double>(n));
  w.family("ses_throttling_events_total", "counter",
           "Upstream replies saying the sending rate was exceeded.");
  for (const auto& [upstream, n] : st.throttled)
    w.sample("ses_throttling_events_total", {{"upstream", upstream}}, static_cast<double>(n));
  w.family("alerts_total", "counter", "Alerts raised (audit events \"alert\"), per kind.");
  for (const auto& [kind, n] : st.alerts)
    w.sample("alerts_total", {{"kind", kind}}, static_cast<double>(n));
  w.family("auth_failures_total", "counter", "Failed SMTP AUTH attempts by local clients.");
  w.sample("auth_failures_total", {}, static_cast<double>(st.auth_failures));

  w.family("queue_messages", "gauge", "Messages in the spool (ready: waiting for delivery).");
  w.sample("queue_messages", {{"queue", "ready"}}, static_cast<double>(s.queue.ready));
  w.sample("queue_messages", {{"queue", "held"}}, static_cast<double>(s.queue.held));
  w.family("queue_in_flight_messages", "gauge", "Messages being delivered right now.");
  w.sample("queue_in_flight_messages", {}, static_cast<double>(s.queue.in_flight));
  w.family("queue_oldest_age_seconds", "gauge", "Age of the oldest message (0: queue empty).");
  for (auto [queue, oldest] :
       {std::pair{"ready", s.queue.oldest_ready}, std::pair{"held", s.queue.oldest_held}})
    w.sample("queue_oldest_age_seconds", {{"queue", queue}},
             oldest > 0 && s.now > oldest ? static_cast<double>(s.now - oldest) : 0.0);
  w.family("paused", "gauge", "1 while the global kill switch is on (smtpguard pause).");
  w.sample("paused", {}, s.paused ? 1 : 0);

  w.family("upstream_send_rate", "gauge",
           "Recipients per second delivered through the upstream over the last minute.");
  for (const auto& u : s.upstreams)
    w.sample("upstream_send_rate", {{"upstream", u.name}}, st.send_rate(u.name, s.now));
  w.family("upstream_max_send_rate", "gauge",
           "The upstream's configured sending quota in messages per second (0: no limit).");
  for (const auto& u : s.upstreams)
    w.sample("upstream_max_send_rate", {{"upstream", u.name}}, u.max_send_rate);
  // From the deliverer's status file; only upstreams of the configuration
  // (the file is untrusted), and nothing when it is missing or stale.
  w.family("deliverer_status_age_seconds", "gauge",
           "Seconds since the deliverer wrote its status file (+Inf: no file); over 30 its "
           "upstream session gauges are not shown.");
  w.sample("deliverer_status_age_seconds", {},
           s.deliverer.exists ? static_cast<double>(s.deliverer.age)
                              : std::numeric_limits<double>::infinity());
  std::vector<std::pair<const UpstreamInfo*, const UpstreamSessions*>> live;
  if (s.deliverer.valid)
    for (const auto& u : s.upstreams)
      for (const auto& d : s.deliverer.upstreams)
        if (d.name == u.name) {
          live.emplace_back(&u, &d);
          break;
        }
  w.family("upstream_sessions", "gauge",
           "Upstream SMTP sessions of the deliverer (open: connected; busy: in a transaction).");
  for (const auto& [u, d] : live) {
    w.sample("upstream_sessions", {{"upstream", u->name}, {"state", "open"}},
             static_cast<double>(d->open));
    w.sample("upstream_sessions", {{"upstream", u->name}, {"state", "busy"}},
             static_cast<double>(d->busy));
  }
  w.family("upstream_max_sessions", "gauge",
           "Sessions the deliverer may open to the upstream (max_connections; 0: it carries no "
           "mail).");
  for (const auto& [u, d] : live)
    w.sample("upstream_max_sessions", {{"upstream", u->name}}, static_cast<double>(d->max));
  w.family("upstream_send_rate_limit", "gauge",
           "The deliverer's sending rate limit now in recipients per second: max_send_rate, "
           "lowered for a while after throttling replies (0: no limit).");
  for (const auto& [u, d] : live)
    w.sample("upstream_send_rate_limit", {{"upstream", u->name}}, d->send_rate_limit);
  w.family("upstream_last_error_timestamp_seconds", "gauge",
           "Unix time of the upstream's last error (connection, TLS, AUTH or a 4xx/5xx reply; "
           "0: none since the deliverer started).");
  for (const auto& [u, d] : live)
    w.sample("upstream_last_error_timestamp_seconds", {{"upstream", u->name}},
             static_cast<double>(d->last_error_at));
  w.family("upstream_credential_version_timestamp_seconds", "gauge",
           "When the credential the deliverer uses was sealed or last rotated (unix time); "
           "older than the vault's after a rotation until the deliverer restarts.");
  for (const auto& [u, d] : live)
    if (!d->credential.empty())
      w.sample("upstream_credential_version_timestamp_seconds",
               {{"upstream", u->name}, {"credential", d->credential}},
               static_cast<double>(d->credential_version));
  w.family("credential_age_days", "gauge",
           "Days since the vault credential was sealed or last rotated.");
  for (const auto& c : s.credentials)
    w.sample("credential_age_days", {{"credential", c.name}},
             static_cast<double>(age_days(c.since, s.now)));

  w.family("anomaly_detectors_running", "gauge", "1 when the anomaly detectors are running.");
  w.sample("anomaly_detectors_running", {}, s.detectors_running ? 1 : 0);
  w.family("anomaly_active", "gauge",
           "1 for each detector action in force (alert, hold, pause, block).");
  for (const auto& a : s.actions)
    w.sample("anomaly_active",
             {{"detector", a.detector}, {"subject", a.subject}, {"action", a.action}}, 1);

  w.family("audit_lines_total", "counter", "Audit log lines read by the monitor.");
  w.sample("audit_lines_total", {}, static_cast<double>(st.lines));
  w.family("audit_unparsed_lines_total", "counter",
           "Audit log lines that were not a JSON object with an event.");
  w.sample("audit_unparsed_lines_total", {}, static_cast<double>(st.unparsed));
  return w.take();
}

}  // namespace sg::monitor
