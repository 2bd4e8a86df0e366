// The detectors (see detect.hpp for what each one watches). Everything is
// driven by event times and tick(now); nothing here reads a clock.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "base/text.hpp"
#include "monitor/detect_state.hpp"

namespace sg::monitor {
namespace {

using detail::address_hash;
using detail::assign_lower;
using detail::IdentityState;
using detail::kNone;
using detail::Outcomes;
using State = Detectors::State;
using Act = config::DetectAction;

constexpr std::int64_t kMaxTime = 100'000'000'000;  // as in detect_event.cpp
constexpr std::int64_t kRearm = 600;                // an action fires again after 10 quiet minutes
constexpr std::int64_t kDistinctMinutes = 10;
constexpr std::size_t kMaxSenderLength = 254;         // RFC 5321 path limit; longer is not stored
constexpr std::size_t kMaxRecipients = 4096;          // per identity; beyond: each counts as new
constexpr std::size_t kMaxRecipientsTotal = 1 << 20;  // over all identities (~50 MB)
constexpr float kAlpha = 0.3f;                        // weight of today in the per-hour EWMA
constexpr std::int64_t kMaxBackfillHours = 24 * 8;    // silent hours learned as 0, at most this

// Client text in one-line messages: no control bytes, ASCII only (so JSON
// and logs never see invalid UTF-8 from us), bounded.
constexpr OneLineOptions kPrintable{.max = 120, .ascii_only = true, .control = '?'};

void append_printable(std::string& out, std::string_view s) {
  append_one_line(out, s, kPrintable);
}

std::string printable(std::string_view s, std::size_t max = kPrintable.max) {
  OneLineOptions o = kPrintable;
  o.max = max;
  return one_line(s, o);
}

std::int64_t clamp_time(std::int64_t t) {
  return std::clamp<std::int64_t>(t, 0, kMaxTime);
}

// What fire() needs to know before deciding whether an action is new.
struct Fire {
  std::string_view detector;  // "rate", "recipients", ...
  Act action;
  Scope scope;
  std::string_view subject;
  Severity severity;
  std::int64_t until = 0;  // block: end of the block
};

std::int64_t deadline(const State::Active& a) {
  return a.action.until > 0 ? a.action.until : a.last_true + kRearm;
}

// Records an action unless the same (detector, scope, subject) is active, in
// which case only refreshes it. While a condition holds every event re-checks
// it, so that path builds nothing: the key goes into a reused buffer and the
// Action and its message are made only when the action fires.
template <class MakeMessage>
void fire(State& st, std::vector<Action>& out, const Fire& f, std::int64_t now,
          MakeMessage&& make_message, detail::ActiveRef* ref = nullptr) {
  if (ref != nullptr && ref->entry != nullptr && ref->epoch == st.active_epoch) {
    ref->entry->last_true = std::max(ref->entry->last_true, now);
    return;
  }
  std::string& key = st.key;
  key.assign(f.detector);
  key += '\n';
  key += to_string(f.scope);
  key += '\n';
  const std::size_t subject_at = key.size();
  append_printable(key, f.subject);
  auto it = st.active.find(std::string_view(key));
  if (it != st.active.end()) {
    it->second.last_true = std::max(it->second.last_true, now);
    if (ref != nullptr) {
      *ref = {&it->second, st.active_epoch};
      it->second.referenced = true;
    }
    return;
  }
  Action a{std::string(f.detector),
           f.action,
           f.scope,
           key.substr(subject_at),
           f.severity,
           {},
           now,
           f.until};
  a.message = printable(make_message(), 300);
  if (a.severity == Severity::warning && a.action != Act::alert) a.severity = Severity::critical;
  // Bounded like everything else; past the bound an action is still
  // reported, only not deduplicated.
  if (st.active.size() < 4 * std::size_t(st.config.max_subjects) + 64) {
    State::Active entry{a, now};
    st.next_expiry = std::min(st.next_expiry, deadline(entry));
    auto added = st.active.emplace(key, std::move(entry)).first;
    if (ref != nullptr) {
      *ref = {&added->second, st.active_epoch};
      added->second.referenced = true;
    }
  }
  out.push_back(std::move(a));
}

// Ends actions whose block is over or whose condition has been false for
// kRearm seconds; walks the table only when one may be due.
void expire(State& st, std::int64_t now) {
  if (now < st.next_expiry) return;
  std::int64_t next = INT64_MAX;
  for (auto it = st.active.begin(); it != st.active.end();) {
    std::int64_t due = deadline(it->second);
    if (now >= due) {
      if (it->second.referenced) ++st.active_epoch;
      it = st.active.erase(it);
    } else {
      next = std::min(next, due);
      ++it;
    }
  }
  st.next_expiry = next;
}

void learn_sample(detail::Slot& s, float messages, float distinct) {
  if (s.samples == 0) {
    s.messages = messages;
    s.distinct = distinct;
  } else {
    s.messages = kAlpha * messages + (1 - kAlpha) * s.messages;
    s.distinct = kAlpha * distinct + (1 - kAlpha) * s.distinct;
  }
  s.samples = std::min<std::uint32_t>(s.samples + 1, 1'000'000);
}

// Closes the hours before `hour`: the hour being learned gives its busiest
// values (capped by the limit if a detector fired), silent hours give 0.
void roll_hour(IdentityState& id, std::int64_t hour) {
  if (id.hour == kNone) id.hour = hour;
  if (hour <= id.hour) return;
  float m = id.cap_messages >= 0 ? std::min(id.peak_messages, id.cap_messages) : id.peak_messages;
  float d = id.cap_distinct >= 0 ? std::min(id.peak_distinct, id.cap_distinct) : id.peak_distinct;
  learn_sample(id.baseline[static_cast<std::size_t>(id.hour % 24)], m, d);
  std::int64_t silent = std::min(hour - id.hour - 1, kMaxBackfillHours);
  for (std::int64_t h = hour - silent; h < hour; ++h)
    learn_sample(id.baseline[static_cast<std::size_t>(h % 24)], 0, 0);
  id.hour = hour;
  id.learned_at = kNone;
  id.peak_messages = id.peak_distinct = 0;
  id.cap_messages = id.cap_distinct = -1;
}

// A limit and why it is what it is; the reason is text only when an
// action fires (it is computed on every event).
struct Limit {
  enum class From { hard, learned, floor };
  double value;
  From from;
  std::uint32_t hard, floor;
  double factor;
  float learned;
  std::string why() const {
    switch (from) {
      case From::hard:
        return fmt::format("hard limit {}", hard);
      case From::learned:
        return fmt::format("{} x usual {:.1f}", factor, learned);
      case From::floor:
        break;
    }
    return fmt::format("floor {}", floor);
  }
};

// max(floor, factor x learned) but at most hard; learned is the largest of
// this hour of day and its neighbours (mail an hour late is still usual).
// Both learned values are found at once and kept for the hour (the rate
// and recipients checks of every submission need them).
Limit limit_for(IdentityState& id, std::int64_t now, bool messages, std::uint32_t floor,
                double factor, std::uint32_t hard) {
  if (id.learned_at != now / 3600) {
    auto h = static_cast<std::size_t>((now / 3600) % 24);
    float m = 0, d = 0;
    for (std::size_t k : {(h + 23) % 24, h, (h + 1) % 24}) {
      if (id.baseline[k].samples > 0) {
        m = std::max(m, id.baseline[k].messages);
        d = std::max(d, id.baseline[k].distinct);
      }
    }
    id.learned_at = now / 3600;
    id.learned_messages = m;
    id.learned_distinct = d;
  }
  float learned = messages ? id.learned_messages : id.learned_distinct;
  double scaled = factor * learned;
  if (hard < floor || (hard < scaled))
    return {double(hard), Limit::From::hard, hard, floor, factor, learned};
  if (scaled > floor) return {scaled, Limit::From::learned, hard, floor, factor, learned};
  return {double(floor), Limit::From::floor, hard, floor, factor, learned};
}

class Engine {
 public:
  Engine(State& st, std::vector<Action>& out, std::int64_t now, Detectors::IdentityHint& hint)
      : st_(st), out_(out), now_(now), hint_(hint) {}

  // The event's identity (hint_ is its hint); `submission` says which of
  // its lines to ask for before reading any.
  IdentityState& identity(std::string_view name, bool submission) {
    using Place = detail::LruTable<IdentityState>::Place;
    Place place{hint_.table, hint_.index, hint_.generation};
    if (IdentityState* known = st_.identities.at(place, hint_.hash)) {
      prefetch(*known, submission);
      roll_hour(*known, now_ / 3600);
      return *known;
    }
    bool created = false;
    auto evict = [&](const IdentityState& gone) {
      st_.tracked_recipients -= std::min(st_.tracked_recipients, gone.recipients.size());
    };
    auto& id = st_.identities.touch(name, hint_.hash, created, evict, &place);
    hint_.table = place.table;
    hint_.index = place.index;
    hint_.generation = place.generation;
    if (created) id.first_seen = now_;
    roll_hour(id, now_ / 3600);
    return id;
  }

  // An identity's state is cold by its next event (hundreds of others come
  // between): ask for the lines the event reads all at once, rather than one
  // miss after the other as the checks reach them.
  void prefetch(const IdentityState& id, bool submission) {
    const char* p = reinterpret_cast<const char*>(&id);
    const char* end = submission ? reinterpret_cast<const char*>(&id.baseline) : p + 1;
    for (const char* at = p; at < end; at += 64) __builtin_prefetch(at);
    if (submission) {
      const auto h = static_cast<std::size_t>((now_ / 3600) % 24);
      __builtin_prefetch(&id.baseline[(h + 23) % 24]);
      __builtin_prefetch(&id.baseline[(h + 1) % 24]);
    } else {
      const auto* o = reinterpret_cast<const char*>(&id.outcomes);
      for (const char* at = o; at < o + sizeof(Outcomes); at += 64) __builtin_prefetch(at);
    }
  }

  void submission(const EventView& e) {
    IdentityState& id = identity(e.identity, true);
    rate(id, e.identity);
    new_sender(id, e);
    distinct(id, e);
  }

  void outcome(const EventView& e) {
    std::int64_t hour = now_ / 3600;
    auto count = [&](Outcomes& o) {
      auto& ring = e.kind == EventKind::delivered  ? o.delivered
                   : e.kind == EventKind::deferred ? o.deferred
                                                   : o.bounced;
      o.advance(hour);
      ring.add(hour, 1);
    };
    if (!e.identity.empty()) {
      IdentityState& id = identity(e.identity, false);
      count(id.outcomes);
      ratios(id.outcomes, Scope::identity, e.identity, st_.config.bounces.identity_action);
      distinct(id, e);
    }
    if (!e.upstream.empty()) {
      bool created = false;
      auto& up = st_.upstreams.touch(e.upstream, created, [](const auto&) {});
      count(up.outcomes);
      ratios(up.outcomes, Scope::upstream, e.upstream, st_.config.bounces.action);
    }
  }

  void throttled(const EventView& e) {
    if (!st_.config.throttle.enabled) return;
    bool quota = e.kind == EventKind::quota_exceeded;
    std::string_view subject = e.upstream.empty() ? std::string_view("(unknown)") : e.upstream;
    fire(st_, out_,
         {quota ? "quota" : "throttle", st_.config.throttle.action, Scope::upstream, subject,
          quota ? Severity::critical : Severity::warning},
         now_, [&] {
           return fmt::format("upstream {}: {}: {}", printable(subject),
                              quota ? "daily sending quota used up" : "sending rate throttled",
                              printable(e.rule));
         });
  }

  void auth_failed(const EventView& e) {
    const auto& c = st_.config.auth;
    if (!c.enabled || e.remote.empty() || e.remote == "unix socket") return;
    bool created = false;
    auto& r = st_.remotes.touch(e.remote, created, [](const auto&) {});
    r.failures.push_back(now_);
    while (!r.failures.empty() &&
           (r.failures.size() > c.max_failures || r.failures.front() <= now_ - c.window_seconds))
      r.failures.pop_front();
    if (r.failures.size() < c.max_failures) return;
    r.failures.clear();
    bool block = c.action == Act::block;
    fire(st_, out_,
         {"auth", c.action, Scope::remote, e.remote, Severity::warning,
          block ? now_ + c.block_seconds : 0},
         now_, [&] {
           return fmt::format("{}: {} failed AUTH attempts within {} s{}", printable(e.remote),
                              c.max_failures, c.window_seconds,
                              block ? fmt::format("; blocked for {} s", c.block_seconds) : "");
         });
  }

 private:
  void rate(IdentityState& id, std::string_view name) {
    std::int64_t minute = now_ / 60;
    id.messages.add(minute, 1);
    // Sliding minute: this minute plus the part of the previous one still
    // inside the last 60 seconds.
    double count =
        id.messages.at(minute) + id.messages.at(minute - 1) * double(60 - now_ % 60) / 60.0;
    id.peak_messages = std::max(id.peak_messages, float(count));
    const auto& c = st_.config.rate;
    if (!c.enabled) return;
    Limit lim = limit_for(id, now_, true, c.floor_per_minute, c.factor, c.hard_per_minute);
    if (count <= lim.value) return;
    id.cap_messages =
        id.cap_messages < 0 ? float(lim.value) : std::min(id.cap_messages, float(lim.value));
    fire(
        st_, out_, {"rate", c.action, Scope::identity, name, Severity::warning}, now_,
        [&] {
          return fmt::format("identity {}: {:.0f} messages in the last minute, above {:.0f} ({})",
                             printable(name), count, lim.value, lim.why());
        },
        &id.refs[0]);
  }

  void new_sender(IdentityState& id, const EventView& e) {
    if (e.sender.empty() || e.sender == "<>" || e.sender.size() > kMaxSenderLength) return;
    std::string& s = st_.text;  // lower-cased sender; stored only when new
    assign_lower(s, e.sender);
    const std::uint64_t h = address_hash(s);
    if (auto* known = id.senders.find(h, s)) {
      id.senders.use(*known);
      return;
    }
    const auto& c = st_.config.new_sender;
    if (c.enabled && now_ - id.first_seen >= std::int64_t(c.learning_seconds))
      fire(
          st_, out_, {"new_sender", c.action, Scope::identity, e.identity, Severity::warning}, now_,
          [&] {
            return fmt::format("identity {}: first mail from sender <{}>", printable(e.identity),
                               printable(s));
          },
          &id.refs[2]);
    id.senders.add(h, s);
  }

  void distinct(IdentityState& id, const EventView& e) {
    if (e.recipients.empty()) return;
    std::int64_t minute = std::max(now_ / 60, id.distinct.head == kNone ? 0 : id.distinct.head);
    if (id.distinct.head != kNone && minute > id.distinct.head) {
      // Forget addresses last seen 10 or more minutes ago.
      std::size_t gone = id.recipients.expire(minute - kDistinctMinutes + 1);
      st_.tracked_recipients -= std::min(st_.tracked_recipients, gone);
    }
    id.distinct.advance(minute);
    for (const auto& r : e.recipients) {
      std::uint64_t h = address_hash(r);
      if (id.recipients.refresh(h, minute)) continue;
      if (id.recipients.size() < kMaxRecipients && st_.tracked_recipients < kMaxRecipientsTotal) {
        id.recipients.insert(h, minute);
        ++st_.tracked_recipients;
      }
      id.distinct.add(minute, 1);  // new (or not tracked: counted as new)
    }
    double count = double(id.distinct.sum());
    id.peak_distinct = std::max(id.peak_distinct, float(count));
    const auto& c = st_.config.recipients;
    if (!c.enabled) return;
    Limit lim = limit_for(id, now_, false, c.floor_per_10min, c.factor, c.hard_per_10min);
    if (count <= lim.value) return;
    id.cap_distinct =
        id.cap_distinct < 0 ? float(lim.value) : std::min(id.cap_distinct, float(lim.value));
    fire(
        st_, out_, {"recipients", c.action, Scope::identity, e.identity, Severity::warning}, now_,
        [&] {
          return fmt::format(
              "identity {}: {:.0f} distinct recipients in 10 minutes, above {:.0f} ({})",
              printable(e.identity), count, lim.value, lim.why());
        },
        &id.refs[1]);
  }

  void ratios(Outcomes& o, Scope scope, std::string_view subject, Act high_action) {
    const auto& c = st_.config.bounces;
    if (!c.enabled) return;
    double delivered = double(o.delivered.sum()), bounced = double(o.bounced.sum());
    double deferred = double(o.deferred.sum());
    auto who = [&] { return fmt::format("{} {}", to_string(scope), printable(subject)); };
    double final_count = delivered + bounced;
    if (final_count >= c.min_volume && final_count > 0) {
      double ratio = bounced / final_count;
      if (ratio >= c.pause_ratio)
        fire(
            st_, out_, {"bounces_high", high_action, scope, subject, Severity::critical}, now_,
            [&] {
              return fmt::format(
                  "{}: {:.1f}% of {:.0f} recipients bounced in 24 h (limit {:.1f}%; SES "
                  "reviews accounts at 5%)",
                  who(), 100 * ratio, final_count, 100 * c.pause_ratio);
            },
            &o.refs[0]);
      else if (ratio >= c.alert_ratio)
        fire(
            st_, out_, {"bounces", Act::alert, scope, subject, Severity::warning}, now_,
            [&] {
              return fmt::format(
                  "{}: {:.1f}% of {:.0f} recipients bounced in 24 h (alert at {:.1f}%)", who(),
                  100 * ratio, final_count, 100 * c.alert_ratio);
            },
            &o.refs[1]);
    }
    double attempts = final_count + deferred;
    if (attempts >= c.min_volume && attempts > 0 && deferred / attempts >= c.deferral_alert_ratio)
      fire(
          st_, out_, {"deferrals", Act::alert, scope, subject, Severity::warning}, now_,
          [&] {
            return fmt::format(
                "{}: {:.1f}% of {:.0f} delivery attempts deferred in 24 h (alert at "
                "{:.1f}%)",
                who(), 100 * deferred / attempts, attempts, 100 * c.deferral_alert_ratio);
          },
          &o.refs[2]);
  }

  State& st_;
  std::vector<Action>& out_;
  std::int64_t now_;
  Detectors::IdentityHint& hint_;
};

}  // namespace

Detectors::Detectors(config::Detect config) : state_(std::make_unique<State>(std::move(config))) {}
Detectors::Detectors(Detectors&&) noexcept = default;
Detectors& Detectors::operator=(Detectors&&) noexcept = default;
Detectors::~Detectors() = default;

std::vector<Action> Detectors::observe(const Event& event) {
  IdentityHint hint;
  hint.hash = name_hash(event.identity);
  return observe(event, hint);
}

std::vector<Action> Detectors::observe(const Event& event, IdentityHint& hint) {
  std::vector<std::string_view>& recipients = state_->recipient_views;
  recipients.assign(event.recipients.begin(), event.recipients.end());
  EventView view{event.time,   event.kind, event.identity, event.upstream,       event.sender,
                 event.remote, event.rule, recipients,     event.recipient_count};
  std::vector<Action> out;
  observe(view, hint, out);
  return out;
}

void Detectors::observe(const EventView& event, IdentityHint& hint, std::vector<Action>& out) {
  State& st = *state_;
  std::int64_t now = clamp_time(event.time);
  st.now = std::max(st.now, now);
  if (st.now / 60 != st.last_expiry_minute) {
    st.last_expiry_minute = st.now / 60;
    expire(st, st.now);
  }
  Engine engine(st, out, now, hint);
  switch (event.kind) {
    case EventKind::received:
    case EventKind::held:
      if (!event.identity.empty()) engine.submission(event);
      break;
    case EventKind::delivered:
    case EventKind::deferred:
    case EventKind::bounced:
      engine.outcome(event);
      break;
    case EventKind::auth_failed:
      engine.auth_failed(event);
      break;
    case EventKind::throttled:
    case EventKind::quota_exceeded:
      engine.throttled(event);
      break;
    case EventKind::refused:
      break;
  }
}

std::vector<Action> Detectors::tick(std::int64_t now) {
  State& st = *state_;
  st.now = std::max(st.now, clamp_time(now));
  st.last_expiry_minute = st.now / 60;
  expire(st, st.now);
  return {};
}

std::vector<Action> Detectors::active() const {
  std::vector<const std::pair<const std::string, State::Active>*> entries;
  entries.reserve(state_->active.size());
  for (const auto& entry : state_->active) entries.push_back(&entry);
  std::sort(entries.begin(), entries.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  std::vector<Action> out;
  out.reserve(entries.size());
  for (const auto* entry : entries) out.push_back(entry->second.action);
  return out;
}

std::size_t Detectors::tracked() const {
  return state_->identities.size() + state_->upstreams.size() + state_->remotes.size();
}

}  // namespace sg::monitor
