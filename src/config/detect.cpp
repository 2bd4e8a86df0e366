// [detect.*]: the anomaly detectors' switches, actions and thresholds.
//
// Why the defaults (no [detect] at all must stop the classic incident: an
// identity that usually sends a few messages an hour starts sending 200 a
// minute to distinct recipients; at most 50 may reach the upstream before
// its mail is held, and an alert must be out within 60 s):
//  - rate.floor_per_minute = 20: the usual identity's learned busiest
//    minute is 1-3 messages, so its limit is the floor; at 200/min the 21st
//    message (about 6 s into the burst) fires the hold. The monitor reads
//    the audit log about once a second, so a few more are accepted before
//    the hold is in place: about 25-30 in all, well under 50. A new identity
//    (nothing learned) is judged by the floor alone. 20/min is above what a
//    shop or a contact form sends; a newsletter learns its own level.
//  - rate.factor = 5: a learned identity is flagged at 5 x its usual
//    busiest minute at this hour of day (neighbour hours included), enough
//    margin for ordinary variation; hard_per_minute = 600 caps what any
//    learned baseline may allow (SES's default quota is 14/s = 840/min).
//  - recipients: 40 distinct addresses per 10 minutes catches the slower
//    spread (10 a minute to fresh addresses) that stays under the rate.
//  - new_sender alerts only after 7 days of learning (alert only: senders
//    change legitimately).
//  - bounces: SES reviews an account at 5% bounces; alert at 3%, pause at
//    8% (an identity: hold), only once 100 recipients were tried in 24 h so
//    two bounces out of ten do not stop anything. Deferrals alert at 20%.
//  - auth: 5 failures from one address within 10 minutes block it for an
//    hour (a typo or two never trips it; guessing does).
#include <limits>

#include "config/quote.hpp"
#include "config/sections.hpp"

namespace sg::config {

std::string_view to_string(DetectAction action) {
  switch (action) {
    case DetectAction::alert:
      return "alert";
    case DetectAction::hold:
      return "hold";
    case DetectAction::pause:
      return "pause";
    case DetectAction::block:
      return "block";
  }
  return "alert";
}

namespace detail {
namespace {

void read_enabled(const TableReader& r, bool& out) {
  if (const toml::node* n = r.find("enabled")) {
    if (!n->is_boolean()) r.fail_at(*n, "enabled", "expected true or false, got " + describe(*n));
    out = n->as_boolean()->get();
  }
}

// `allowed` lists the actions that make sense for this detector, in order.
void read_action(const TableReader& r, std::string_view key,
                 std::initializer_list<DetectAction> allowed, DetectAction& out) {
  auto v = r.string(key);
  if (!v) return;
  std::string names;
  for (DetectAction a : allowed) {
    if (*v == to_string(a)) {
      out = a;
      return;
    }
    names += (names.empty() ? "\"" : ", \"") + std::string(to_string(a)) + "\"";
  }
  r.fail(key, "expected one of " + names + ", got " + in_quotes(*v));
}

void read_count(const TableReader& r, std::string_view key, std::uint32_t& out) {
  if (auto v = r.integer(key, 1, 1'000'000'000)) out = static_cast<std::uint32_t>(*v);
}

void read_factor(const TableReader& r, double& out) {
  if (auto v = r.number("factor", 1, "times the learned usual value")) {
    if (*v > 1000) r.fail("factor", "expected a number from 1 to 1000");
    out = *v;
  }
}

void read_ratio(const TableReader& r, std::string_view key, double& out) {
  if (auto v = r.number(key, 0, "a fraction, 0.03 = 3%")) {
    if (*v <= 0 || *v > 1) r.fail(key, "expected a fraction above 0 and at most 1 (0.03 = 3%)");
    out = *v;
  }
}

// "10m", "1h" or a number of seconds, from `min` s to `max` s.
void read_seconds(const TableReader& r, std::string_view key, std::uint64_t min, std::uint64_t max,
                  std::uint32_t& out) {
  const toml::node* node = r.find(key);
  if (node == nullptr) return;
  Result<std::uint64_t> seconds = make_error(Errc::config, "");
  if (node->is_integer() && node->as_integer()->get() >= 0)
    seconds = static_cast<std::uint64_t>(node->as_integer()->get());
  else if (node->is_string())
    seconds = parse_duration(node->as_string()->get());
  if (!seconds || *seconds < min || *seconds > max)
    r.fail_at(*node, key,
              "expected a duration such as \"10m\" or \"1h\" from " + std::to_string(min) +
                  " s to " + std::to_string(max / 86400) + " days, got " + describe(*node));
  out = static_cast<std::uint32_t>(*seconds);
}

void check_hard(const TableReader& r, std::string_view hard_key, std::uint32_t hard,
                std::string_view floor_key, std::uint32_t floor) {
  if (hard >= floor) return;
  if (r.has(hard_key))
    r.fail(hard_key,
           "must not be below " + std::string(floor_key) + " (" + std::to_string(floor) + ")");
  r.fail(floor_key,
         "must not be above " + std::string(hard_key) + " (" + std::to_string(hard) + ")");
}

using A = DetectAction;

// [detect.rate] and [detect.recipients]: a learned limit (factor x usual)
// kept between a floor and a hard cap.
void read_limit(const TableReader& r, std::string_view floor_key, std::string_view hard_key,
                bool& enabled, DetectAction& action, std::uint32_t& floor, double& factor,
                std::uint32_t& hard) {
  r.allow_only({"enabled", "action", floor_key, "factor", hard_key});
  read_enabled(r, enabled);
  read_action(r, "action", {A::alert, A::hold, A::pause}, action);
  read_count(r, floor_key, floor);
  read_factor(r, factor);
  read_count(r, hard_key, hard);
  check_hard(r, hard_key, hard, floor_key, floor);
}

}  // namespace

Detect read_detect(const TableReader& top) {
  top.allow_only(
      {"rate", "recipients", "new_sender", "bounces", "throttle", "auth", "max_subjects"});
  Detect d;
  auto sub = [&](std::string_view name) -> std::optional<TableReader> {
    const toml::table* t = top.table(name);
    if (t == nullptr) return std::nullopt;
    std::string path = "detect." + std::string(name);
    return TableReader(*t, path, "[" + path + "]", top.file());
  };
  if (auto r = sub("rate"))
    read_limit(*r, "floor_per_minute", "hard_per_minute", d.rate.enabled, d.rate.action,
               d.rate.floor_per_minute, d.rate.factor, d.rate.hard_per_minute);
  if (auto r = sub("recipients"))
    read_limit(*r, "floor_per_10min", "hard_per_10min", d.recipients.enabled, d.recipients.action,
               d.recipients.floor_per_10min, d.recipients.factor, d.recipients.hard_per_10min);
  if (auto r = sub("new_sender")) {
    r->allow_only({"enabled", "action", "learning"});
    read_enabled(*r, d.new_sender.enabled);
    read_action(*r, "action", {A::alert, A::hold, A::pause}, d.new_sender.action);
    read_seconds(*r, "learning", 0, 366ull * 86400, d.new_sender.learning_seconds);
  }
  if (auto r = sub("bounces")) {
    r->allow_only({"enabled", "action", "identity_action", "alert_ratio", "pause_ratio",
                   "deferral_alert_ratio", "min_volume"});
    read_enabled(*r, d.bounces.enabled);
    read_action(*r, "action", {A::alert, A::pause}, d.bounces.action);
    read_action(*r, "identity_action", {A::alert, A::hold, A::pause}, d.bounces.identity_action);
    read_ratio(*r, "alert_ratio", d.bounces.alert_ratio);
    read_ratio(*r, "pause_ratio", d.bounces.pause_ratio);
    read_ratio(*r, "deferral_alert_ratio", d.bounces.deferral_alert_ratio);
    read_count(*r, "min_volume", d.bounces.min_volume);
    if (d.bounces.pause_ratio < d.bounces.alert_ratio)
      r->fail(r->has("pause_ratio") ? "pause_ratio" : "alert_ratio",
              "pause_ratio must not be below alert_ratio");
  }
  if (auto r = sub("throttle")) {
    r->allow_only({"enabled", "action"});
    read_enabled(*r, d.throttle.enabled);
    read_action(*r, "action", {A::alert, A::pause}, d.throttle.action);
  }
  if (auto r = sub("auth")) {
    r->allow_only({"enabled", "action", "max_failures", "window", "block_for"});
    read_enabled(*r, d.auth.enabled);
    read_action(*r, "action", {A::alert, A::block}, d.auth.action);
    if (auto v = r->integer("max_failures", 1, 1000))
      d.auth.max_failures = static_cast<std::uint32_t>(*v);
    read_seconds(*r, "window", 1, 86400, d.auth.window_seconds);
    read_seconds(*r, "block_for", 1, 30ull * 86400, d.auth.block_seconds);
  }
  if (auto v = top.integer("max_subjects", 100, 10'000'000))
    d.max_subjects = static_cast<std::uint32_t>(*v);
  return d;
}

}  // namespace detail
}  // namespace sg::config
