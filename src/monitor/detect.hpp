// monitor/detect: anomaly detection over mail events, sans-I/O. No sockets,
// clocks or files: the caller feeds Events (from our audit log through
// event_from_audit, or from Exim's mainlog) and the current time, and gets
// back Actions to carry out (alert, hold an identity, pause everything,
// block an address for a time). The same code serves the relay's monitor
// and `smtpguard watch exim-log`.
//
// Detectors ([detect.*] in the configuration; defaults need no config):
//   rate        messages per sliding minute of one identity against its own
//               learned baseline (EWMA per hour of day of the busiest
//               minute), never below a floor (so a new identity is judged
//               by the floor) and never above a hard limit.
//   recipients  distinct recipient addresses per sliding 10 minutes of one
//               identity against its learned baseline, floor and hard limit.
//   new_sender  an envelope sender never seen before for the identity, once
//               the identity is past its learning period.
//   bounces     bounce and deferral ratios per identity and per upstream
//               over the last 24 hours, with a minimum volume.
//   throttle    SES throttling and quota replies per upstream.
//   auth        repeated AUTH failures from one remote (address or uid).
// Windows are rings of per-minute (rate, recipients, auth) or per-hour
// (bounces) buckets; the number of subjects tracked is capped and the least
// recently seen is evicted, so memory is bounded whatever the input.
//
// Trust: Events are untrusted (addresses and names come from SMTP clients
// or log files); nothing here throws on any input, sizes are bounded.
// Time: event times may go backwards a little (two processes write the
// audit log); older-than-window events only count where they still fit.
// Errors: event_from_audit returns nullopt for lines it does not use;
// from_json returns a Result error for a malformed or foreign baseline.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"

namespace sg::monitor {

enum class EventKind {
  received,        // accepted for delivery (counts toward rates)
  held,            // accepted into the hold queue (counts toward rates too)
  refused,         // refused by policy (rule says why)
  deferred,        // one recipient: temporary failure upstream
  delivered,       // one recipient: accepted upstream
  bounced,         // one recipient: failed for good
  auth_failed,     // a failed AUTH from `remote`
  throttled,       // upstream said: slow down (SES maximum sending rate)
  quota_exceeded,  // upstream said: daily quota used up
};
std::string_view to_string(EventKind kind);

struct Event {
  std::int64_t time = 0;  // unix seconds
  EventKind kind = EventKind::received;
  // Who sent: local identity, Exim authenticated user, "uid:N", script
  // directory... Empty when unknown (then identity detectors skip it).
  std::string identity;
  std::string upstream;  // delivered/deferred/bounced/throttled/quota_exceeded
  std::string sender;    // envelope sender (MAIL FROM), may be empty (<>)
  // Recipient addresses when known (delivery events: the one recipient).
  std::vector<std::string> recipients;
  // Number of recipients; at least recipients.size() (audit "received"
  // lines carry a count only).
  std::uint32_t recipient_count = 0;
  std::string remote;  // client address, or "uid:N" for the unix socket
  std::string rule;    // refusal rule, reply text or reply class
};

// An Event whose text lives elsewhere (the Exim log reader's line): the
// same fields as views, valid for the call they are passed to.
struct EventView {
  std::int64_t time = 0;
  EventKind kind = EventKind::received;
  std::string_view identity, upstream, sender, remote, rule;
  std::span<const std::string_view> recipients;
  std::uint32_t recipient_count = 0;  // at least recipients.size()
};

// One audit log line (parsed JSON) -> Event; nullopt for events that feed no
// detector (config_reloaded, paused, an operator's hold...) or for lines
// that are not objects with an integer "time" and a string "event".
std::optional<Event> event_from_audit(const nlohmann::json& line);

enum class Scope { identity, upstream, remote };
std::string_view to_string(Scope scope);

enum class Severity { warning, critical };
std::string_view to_string(Severity severity);

struct Action {
  std::string detector;  // "rate", "recipients", "new_sender", "bounces",
                         // "deferrals", "throttle", "auth"
  config::DetectAction action = config::DetectAction::alert;
  Scope scope = Scope::identity;
  std::string subject;  // identity name, upstream name or remote address
  Severity severity = Severity::warning;
  std::string message;     // one line for people, no secrets
  std::int64_t time = 0;   // when it fired
  std::int64_t until = 0;  // block: end of the block; otherwise 0
};

// {"detector","action","scope","subject","severity","message","time","until"}
nlohmann::json to_json(const Action& action);

class Detectors {
 public:
  explicit Detectors(config::Detect config = {});
  Detectors(Detectors&&) noexcept;
  Detectors& operator=(Detectors&&) noexcept;
  ~Detectors();

  // Feeds one event (its time is "now"); returns the actions that fire now.
  // A (detector, scope, subject) that has fired stays active, and does not
  // fire again, until its condition has been false for 10 minutes (a block:
  // until it ends) -- see tick().
  std::vector<Action> observe(const Event& event);
  // For a caller that sees the same identities again and again (the Exim
  // log reader): one hint per identity name, hash = name_hash(name)
  // (hash_index.hpp) set by the caller, the rest filled in here. The next
  // event of that identity then finds its state through the hint, without
  // hashing or comparing the name, as long as it is still there.
  struct IdentityHint {
    std::uint64_t hash = 0;
    std::uint64_t table = 0;
    std::uint32_t index = 0, generation = 0;
  };
  std::vector<Action> observe(const Event& event, IdentityHint& hint);
  // The same for an event given as views (nothing is copied but what is
  // kept: new names and senders); the actions are appended to `out`.
  void observe(const EventView& event, IdentityHint& hint, std::vector<Action>& out);

  // Advances time with no event: windows slide, hours are learned, expired
  // actions become inactive. Returns actions that fire because of time alone
  // (none today; kept so callers need not change when one does). Call it
  // about once a second; `now` may not go back.
  std::vector<Action> tick(std::int64_t now);

  // Currently active actions (for the status page and metrics).
  std::vector<Action> active() const;

  // Learned state worth keeping across restarts: per identity the per-hour
  // baselines, first-seen time and known senders. Bounded in size.
  nlohmann::json to_json() const;
  // Replaces the learned state; on error nothing changes.
  Result<void> from_json(const nlohmann::json& saved);

  // Subjects tracked now (identities + upstreams + remotes), for tests and
  // metrics.
  std::size_t tracked() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace sg::monitor
