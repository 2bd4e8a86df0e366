// GET /: the status page. One HTML document with inline CSS and an inline
// SVG chart; no scripts, no external assets (it must work on an air-gapped
// host and in headless Chromium). Pure: snapshot in, text out.
#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "monitor/monitor.hpp"

namespace sg::monitor {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string clock_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:02}:{:02} UTC", tm.tm_hour, tm.tm_min);
}

std::string duration(std::int64_t seconds) {
  if (seconds < 120) return fmt::format("{} s", seconds);
  if (seconds < 7200) return fmt::format("{} min", seconds / 60);
  if (seconds < 172800) return fmt::format("{} h", seconds / 3600);
  return fmt::format("{} days", seconds / 86400);
}

// Messages submitted per minute and identity over the last hour: one
// polyline per identity, a circle per minute with a tooltip (<title>).
void chart(std::string& out, const Snapshot& s) {
  constexpr int W = 720, H = 240, L = 40, R = 10, T = 10, B = 30;
  const std::int64_t last = s.now / 60, first = last - 59;
  std::uint32_t peak = 1;
  for (const auto& [id, minutes] : s.stats.submitted_per_minute)
    for (auto it = minutes.lower_bound(first); it != minutes.end() && it->first <= last; ++it)
      peak = std::max(peak, it->second);
  auto x = [&](std::int64_t minute) { return L + (minute - first) * (W - L - R) / 59.0; };
  auto y = [&](std::uint32_t n) { return T + (H - T - B) * (1.0 - double(n) / peak); };
  fmt::format_to(std::back_inserter(out),
                 "<svg id=\"rate-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
                 "height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"messages per "
                 "minute and identity, last hour\">\n",
                 W, H, W, H);
  fmt::format_to(std::back_inserter(out),
                 "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" class=\"axis\"/>"
                 "<line x1=\"{0}\" y1=\"{3}\" x2=\"{0}\" y2=\"{1}\" class=\"axis\"/>\n"
                 "<text x=\"{4}\" y=\"{5}\" text-anchor=\"end\">{6}</text>"
                 "<text x=\"{4}\" y=\"{1}\" text-anchor=\"end\">0</text>\n"
                 "<text x=\"{0}\" y=\"{7}\">{8}</text>"
                 "<text x=\"{2}\" y=\"{7}\" text-anchor=\"end\">{9}</text>\n",
                 L, H - B, W - R, T, L - 4, T + 10, peak, H - 10, clock_time(first * 60),
                 clock_time(last * 60));
  std::size_t color = 0;
  for (const auto& [id, minutes] : s.stats.submitted_per_minute) {
    const char* c = kColors[color++ % std::size(kColors)];
    std::string points, dots;
    for (std::int64_t m = first; m <= last; ++m) {
      auto it = minutes.find(m);
      std::uint32_t n = it == minutes.end() ? 0 : it->second;
      fmt::format_to(std::back_inserter(points), "{:.1f},{:.1f} ", x(m), y(n));
      if (n > 0)
        fmt::format_to(std::back_inserter(dots),
                       "<circle class=\"point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\" "
                       "data-identity=\"{}\" data-count=\"{}\"><title>{} at {}: {} "
                       "messages</title></circle>\n",
                       x(m), y(n), c, escape_html(id), n, escape_html(id), clock_time(m * 60), n);
    }
    fmt::format_to(std::back_inserter(out),
                   "<polyline class=\"series\" data-identity=\"{}\" fill=\"none\" stroke=\"{}\" "
                   "stroke-width=\"2\" points=\"{}\"/>\n{}",
                   escape_html(id), c, points, dots);
  }
  out += "</svg>\n<p class=\"legend\">";
  color = 0;
  for (const auto& [id, minutes] : s.stats.submitted_per_minute)
    fmt::format_to(std::back_inserter(out), "<span style=\"color:{}\">&#9632;</span> {} ",
                   kColors[color++ % std::size(kColors)],
                   id.empty() ? "(no identity)" : escape_html(id));
  out += "</p>\n";
}

// The sessions and last error cells of one upstream, from the deliverer's
// status file (untrusted text: escaped).
void upstream_sessions(std::string& out, const Snapshot& s, const std::string& name) {
  const UpstreamSessions* d = nullptr;
  if (s.deliverer.valid)
    for (const auto& x : s.deliverer.upstreams)
      if (x.name == name) d = &x;
  if (!d) {
    out += "<td class=\"sessions\">-</td><td class=\"last-error\">-</td></tr>\n";
    return;
  }
  std::string error = "none";
  if (d->last_error_at > 0)
    error = fmt::format("{} ago: {}", duration(std::max<std::int64_t>(0, s.now - d->last_error_at)),
                        escape_html(d->last_error));
  if (d->paused_until > s.now)
    error += fmt::format(" (waits until {})", clock_time(d->paused_until));
  fmt::format_to(std::back_inserter(out),
                 "<td class=\"sessions\" data-open=\"{0}\" data-busy=\"{1}\">{0} open, {1} busy "
                 "of {2}</td><td class=\"last-error\">{3}</td></tr>\n",
                 d->open, d->busy, d->max, error);
}

void counts_table(std::string& out, const Snapshot& s) {
  out +=
      "<table id=\"identities\"><tr><th>identity</th><th>received</th><th>refused</th>"
      "<th>held</th><th>delivered</th><th>deferred</th><th>bounced</th>"
      "<th>last hour</th></tr>\n";
  for (const auto& [id, c] : s.stats.identities) {
    std::uint64_t hour = 0;
    if (auto it = s.stats.submitted_per_minute.find(id); it != s.stats.submitted_per_minute.end())
      for (auto m = it->second.lower_bound(s.now / 60 - 59); m != it->second.end(); ++m)
        hour += m->second;
    fmt::format_to(std::back_inserter(out),
                   "<tr data-identity=\"{0}\"><td>{1}</td><td class=\"received\">{2}</td>"
                   "<td class=\"refused\">{3}</td><td class=\"held\">{4}</td>"
                   "<td class=\"delivered\">{5}</td><td class=\"deferred\">{6}</td>"
                   "<td class=\"bounced\">{7}</td><td>{8}</td></tr>\n",
                   escape_html(id), id.empty() ? "(no identity)" : escape_html(id), c.received,
                   c.refused, c.held, c.delivered, c.deferred, c.bounced, hour);
  }
  out += "</table>\n";
}

}  // namespace

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_status_page(const Snapshot& s) {
  std::string out = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>smtpguard status</title>
<meta http-equiv="refresh" content="30">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
td:first-child,th:first-child,td[colspan]{text-align:left}
.state{display:inline-block;padding:.2em .8em;border-radius:.3em;font-weight:bold}
.ok{background:#d4edda;color:#155724}.bad{background:#f8d7da;color:#721c24}
.warn{background:#fff3cd;color:#856404}
svg{background:#fff;border:1px solid #ccc}svg text{font-size:11px;fill:#555}
.axis{stroke:#888;stroke-width:1}
</style></head><body>
<h1>smtpguard</h1>
)";
  fmt::format_to(std::back_inserter(out),
                 "<p>Delivery: <span id=\"paused\" data-paused=\"{}\" class=\"state {}\">{}</span>"
                 " &middot; as of {}</p>\n",
                 s.paused ? 1 : 0, s.paused ? "bad" : "ok",
                 s.paused ? "PAUSED (smtpguard resume)" : "running", clock_time(s.now));

  out += "<h2>Queue</h2>\n";
  fmt::format_to(std::back_inserter(out),
                 "<table id=\"queue\"><tr><th>queue</th><th>messages</th><th>oldest</th></tr>\n"
                 "<tr><td>ready</td><td id=\"queue-ready\">{}</td><td>{}</td></tr>\n"
                 "<tr><td>held</td><td id=\"queue-held\">{}</td><td>{}</td></tr>\n"
                 "<tr><td>in flight</td><td id=\"queue-in-flight\">{}</td><td></td></tr></table>\n",
                 s.queue.ready, s.queue.oldest_ready ? duration(s.now - s.queue.oldest_ready) : "-",
                 s.queue.held, s.queue.oldest_held ? duration(s.now - s.queue.oldest_held) : "-",
                 s.queue.in_flight);

  out += "<h2>Messages per minute and identity, last hour</h2>\n";
  chart(out, s);
  out += "<h2>Identities</h2>\n";
  counts_table(out, s);

  out +=
      "<h2>Upstreams</h2>\n<table id=\"upstreams\"><tr><th>upstream</th><th>credential</th>"
      "<th>age</th><th>send rate</th><th>quota</th><th>throttled</th><th>sessions</th>"
      "<th>last error</th></tr>\n";
  for (const auto& u : s.upstreams) {
    std::string age = "-", cls;
    for (const auto& c : s.credentials)
      if (c.name == u.credential && c.since > 0) {
        std::int64_t days = (s.now - c.since) / 86400;
        age = fmt::format("{} days", days);
        cls = days >= s.rotation_max_days ? "bad" : days >= s.rotation_warn_days ? "warn" : "";
      }
    auto t = s.stats.throttled.find(u.name);
    fmt::format_to(std::back_inserter(out),
                   "<tr data-upstream=\"{}\"><td>{}</td><td>{}</td><td class=\"{}\">{}</td>"
                   "<td>{:.2f}/s</td><td>{}</td><td>{}</td>",
                   escape_html(u.name), escape_html(u.name), escape_html(u.credential), cls, age,
                   s.stats.send_rate(u.name, s.now),
                   u.max_send_rate > 0 ? fmt::format("{}/s", u.max_send_rate) : "none",
                   t == s.stats.throttled.end() ? 0 : t->second);
    upstream_sessions(out, s, u.name);
  }
  if (!s.deliverer.valid)
    fmt::format_to(std::back_inserter(out),
                   "<tr><td colspan=\"8\" id=\"deliverer-status\">sessions unknown: {}</td></tr>\n",
                   escape_html(s.deliverer.error));
  out +=
      "</table>\n<h2>Credentials</h2>\n<table id=\"credentials\"><tr><th>credential</th>"
      "<th>age (days)</th></tr>\n";
  for (const auto& c : s.credentials)
    fmt::format_to(std::back_inserter(out), "<tr><td>{}</td><td class=\"age\">{}</td></tr>\n",
                   escape_html(c.name), c.since > 0 ? (s.now - c.since) / 86400 : 0);
  out += "</table>\n";

  fmt::format_to(std::back_inserter(out),
                 "<h2>Alerts and actions</h2>\n<p>Held messages: <b id=\"held-count\">{}</b>"
                 " &middot; detectors: {}</p>\n",
                 s.queue.held, s.detectors_running ? "running" : "not running");
  const BaselineInfo& b = s.baselines;
  fmt::format_to(std::back_inserter(out),
                 "<p id=\"baselines\" data-loaded=\"{}\" data-skipped=\"{}\">Learned baselines: "
                 "{}</p>\n",
                 b.loaded ? 1 : 0, b.skipped,
                 b.loaded ? fmt::format("loaded at start (up to audit line {}; {} lines of the log "
                                        "were already in them)",
                                        b.position.seq, b.skipped)
                 : b.error.empty() ? std::string("learned since the monitor started")
                                   : "started afresh: " + escape_html(b.error));
  out +=
      "<table id=\"actions\"><tr><th>detector</th><th>subject</th><th>action</th>"
      "<th>since</th><th>reason</th></tr>\n";
  for (const auto& a : s.actions)
    fmt::format_to(
        std::back_inserter(out),
        "<tr class=\"bad\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        escape_html(a.detector), escape_html(a.subject), escape_html(a.action), clock_time(a.since),
        escape_html(a.reason));
  if (s.actions.empty()) out += "<tr><td colspan=\"5\">no detector action in force</td></tr>\n";
  out +=
      "</table>\n<table id=\"alerts\"><tr><th>time</th><th>alert</th><th>subject</th>"
      "<th>detail</th></tr>\n";
  for (auto it = s.stats.recent_alerts.rbegin(); it != s.stats.recent_alerts.rend(); ++it)
    fmt::format_to(std::back_inserter(out),
                   "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", clock_time(it->time),
                   escape_html(it->kind), escape_html(it->subject), escape_html(it->detail));
  if (s.stats.recent_alerts.empty()) out += "<tr><td colspan=\"4\">no alerts</td></tr>\n";
  out += "</table>\n<p><a href=\"/metrics\">metrics</a></p>\n</body></html>\n";
  return out;
}

}  // namespace sg::monitor
