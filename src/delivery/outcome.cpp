// Retry schedule and per-recipient outcomes.
#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/text.hpp"
#include "delivery/delivery.hpp"
#include "delivery/internal.hpp"

namespace sg::delivery {
namespace {

using spool::Recipient;
using spool::RecipientState;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::size_t kMaxReason = 512;
constexpr std::size_t kMaxUpstreamId = 128;

std::int64_t add_saturating(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out))
    return b > 0 ? kMax : std::numeric_limits<std::int64_t>::min();
  return out;
}

bool is_2xx(int code) {
  return code >= 200 && code <= 299;
}

bool done(const Recipient& rcpt) {
  return rcpt.state == RecipientState::delivered || rcpt.state == RecipientState::failed;
}

std::int64_t deadline(const spool::Envelope& envelope, const RetryPolicy& policy) {
  return add_saturating(envelope.received_at, policy.max_lifetime.count());
}

// The token after `pos`: printable ASCII without spaces, <> stripped.
std::string token_at(std::string_view text, std::size_t pos) {
  while (pos < text.size() && text[pos] == ' ') ++pos;
  std::size_t end = pos;
  while (end < text.size() && text[end] > 0x20 && text[end] < 0x7f) ++end;
  std::string_view token = text.substr(pos, end - pos);
  if (token.size() >= 2 && token.front() == '<' && token.back() == '>')
    token = token.substr(1, token.size() - 2);
  while (!token.empty() && (token.back() == ',' || token.back() == ';' || token.back() == '.'))
    token.remove_suffix(1);
  if (token.empty() || token.size() > kMaxUpstreamId) return {};
  if (token.find_first_of("<>") != std::string_view::npos) return {};
  return std::string(token);
}

std::string upstream_id_in(std::string_view line) {
  const std::string lower = to_lower(line);
  if (std::size_t at = lower.find("queued as "); at != std::string::npos)
    return token_at(line, at + 10);
  if (std::size_t at = lower.find("id=");
      at != std::string::npos && (at == 0 || lower[at - 1] == ' '))
    return token_at(line, at + 3);
  if (lower.starts_with("ok ")) {
    // SES: "Ok 0100018f...-000000"; require a digit so "OK queued" is no id.
    std::string id = token_at(line, 3);
    if (id.find_first_of("0123456789") != std::string::npos) return id;
  }
  return {};
}

void defer(Recipient& rcpt, const Deferral& how, std::int64_t now, const RetryPolicy& policy,
           Rng& rng) {
  rcpt.state = RecipientState::deferred;
  if (how.delay) {
    rcpt.next_attempt = add_saturating(now, std::max<std::int64_t>(*how.delay, 0));
  } else {
    if (rcpt.attempts < std::numeric_limits<int>::max()) ++rcpt.attempts;
    rcpt.next_attempt = next_attempt(rcpt.attempts, now, rng, policy);
  }
}

// After a deferral inside a transaction: fail at the end of the lifetime,
// else never schedule past it (the last try happens at the deadline).
Outcome settle(spool::Envelope& envelope, std::size_t index, Outcome outcome, bool never_fail,
               std::int64_t now, const RetryPolicy& policy) {
  Recipient& rcpt = envelope.recipients[index];
  if (outcome != Outcome::deferred || never_fail) return outcome;
  if (expired(envelope.received_at, now, policy)) {
    rcpt.state = RecipientState::failed;
    return Outcome::failed;
  }
  rcpt.next_attempt = std::min(rcpt.next_attempt, deadline(envelope, policy));
  return outcome;
}

void record(Changes& changes, std::size_t index, Outcome outcome) {
  switch (outcome) {
    case Outcome::delivered:
      changes.delivered.push_back(index);
      break;
    case Outcome::deferred:
      changes.deferred.push_back(index);
      break;
    case Outcome::failed:
      changes.failed.push_back(index);
      break;
    case Outcome::unchanged:
      break;
  }
}

}  // namespace

double SodiumRng::unit() {
  if (sodium_init() < 0) return 0.5;  // cannot happen once main initialised sodium
  std::uint64_t bits = 0;
  randombytes_buf(&bits, sizeof bits);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

std::int64_t next_attempt(int attempts_so_far, std::int64_t now, Rng& rng,
                          const RetryPolicy& policy) {
  const std::int64_t first_lo = std::max<std::int64_t>(policy.first_min.count(), 1);
  const std::int64_t first_hi = std::max<std::int64_t>(policy.first_max.count(), first_lo);
  const std::int64_t cap = std::max<std::int64_t>(policy.cap.count(), 1);
  std::int64_t lo = first_lo, hi = first_hi;
  for (int i = 1; i < attempts_so_far && hi < cap; ++i) {
    if (hi > kMax / 2) {
      hi = kMax;
      break;
    }
    lo *= 2;
    hi *= 2;
  }
  if (hi > cap) {  // keep the first window's relative spread at the cap
    hi = cap;
    lo = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(static_cast<double>(cap) * static_cast<double>(first_lo) /
                                     static_cast<double>(first_hi)));
  }
  double u = rng.unit();
  if (!(u >= 0)) u = 0;  // NaN too
  if (u >= 1) u = std::nextafter(1.0, 0.0);
  const double span = static_cast<double>(hi - lo) + 1;
  const std::int64_t delay = std::min(hi, lo + static_cast<std::int64_t>(u * span));
  return add_saturating(now, delay);
}

bool expired(std::int64_t received_at, std::int64_t now, const RetryPolicy& policy) {
  std::int64_t age = 0;
  if (__builtin_sub_overflow(now, received_at, &age)) return now > received_at;
  return age >= policy.max_lifetime.count();
}

std::string parse_upstream_id(const smtp::Reply& reply) {
  if (!is_2xx(reply.code)) return {};
  for (const std::string& line : reply.lines) {
    std::string_view text = line;
    if (smtp::parse_enhanced_status(text, reply.code)) {
      const std::size_t space = text.find(' ');
      text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    }
    std::string id = upstream_id_in(trim(text));
    if (!id.empty()) return id;
  }
  return {};
}

Deferral deferral_for(const smtp::Reply& reply, const RetryPolicy& policy) {
  const ses::Classification c = ses::classify_reply(reply.code, reply.text());
  if (c.cls == ses::ReplyClass::throttled_rate) return {policy.rate_throttle_retry.count(), false};
  if (c.cls == ses::ReplyClass::throttled_daily_quota) return {policy.quota_retry.count(), false};
  if (c.cls == ses::ReplyClass::bad_credentials || detail::is_credential_problem(reply.code))
    return {policy.credentials_retry.count(), true};
  return {};
}

Outcome apply_rcpt_reply(Recipient& rcpt, const smtp::Reply& reply, std::int64_t now,
                         const RetryPolicy& policy, Rng& rng) {
  if (done(rcpt)) return Outcome::unchanged;
  rcpt.last_reply = reply.to_string();
  if (is_2xx(reply.code)) {
    rcpt.state = RecipientState::delivered;
    rcpt.upstream_id = parse_upstream_id(reply);
    return Outcome::delivered;
  }
  const Deferral how = deferral_for(reply, policy);
  if (reply.code >= 500 && reply.code <= 599 && !how.delay) {
    rcpt.state = RecipientState::failed;
    return Outcome::failed;
  }
  defer(rcpt, how, now, policy, rng);
  return Outcome::deferred;
}

Outcome apply_no_reply(Recipient& rcpt, std::string_view reason, std::int64_t now,
                       const RetryPolicy& policy, Rng& rng) {
  if (done(rcpt)) return Outcome::unchanged;
  rcpt.last_reply = reason.empty() ? std::string("connection failed without a reply")
                                   : detail::printable(reason, kMaxReason);
  defer(rcpt, Deferral{}, now, policy, rng);
  return Outcome::deferred;
}

Changes apply_transaction(spool::Envelope& envelope, const Transaction& transaction,
                          std::int64_t now, const RetryPolicy& policy, Rng& rng) {
  Changes changes;
  std::vector<bool> seen(envelope.recipients.size(), false);
  const std::optional<smtp::Reply>& final_reply = transaction.final_reply;
  const std::string_view lost = transaction.connection_error.empty()
                                    ? std::string_view("connection lost before the server answered")
                                    : std::string_view(transaction.connection_error);
  for (std::size_t pos = 0; pos < transaction.recipients.size(); ++pos) {
    const std::size_t index = transaction.recipients[pos];
    if (index >= envelope.recipients.size() || seen[index]) continue;
    seen[index] = true;
    const std::optional<smtp::Reply>* rcpt_reply =
        pos < transaction.rcpt_replies.size() ? &transaction.rcpt_replies[pos] : nullptr;
    const smtp::Reply* decisive = nullptr;
    // 503 (bad sequence) to a pipelined RCPT only echoes a failed MAIL FROM,
    // whose reply is the final one: a 451 there must not become a bounce.
    if (rcpt_reply && rcpt_reply->has_value() && (*rcpt_reply)->code == 503) rcpt_reply = nullptr;
    if (rcpt_reply && rcpt_reply->has_value()) {
      decisive =
          is_2xx((*rcpt_reply)->code) ? (final_reply ? &*final_reply : nullptr) : &**rcpt_reply;
    } else if (final_reply && !is_2xx(final_reply->code)) {
      decisive = &*final_reply;
    }
    Recipient& rcpt = envelope.recipients[index];
    Outcome outcome;
    bool never_fail = false;
    if (decisive) {
      outcome = apply_rcpt_reply(rcpt, *decisive, now, policy, rng);
      never_fail = deferral_for(*decisive, policy).never_fail;
    } else {
      outcome = apply_no_reply(rcpt, lost, now, policy, rng);
    }
    record(changes, index, settle(envelope, index, outcome, never_fail, now, policy));
  }
  return changes;
}

Changes apply_connection_failure(spool::Envelope& envelope, std::string_view reason,
                                 std::int64_t now, const RetryPolicy& policy, Rng& rng) {
  Changes changes;
  for (std::size_t index : recipients_due(envelope, now)) {
    const Outcome outcome = apply_no_reply(envelope.recipients[index], reason, now, policy, rng);
    record(changes, index, settle(envelope, index, outcome, false, now, policy));
  }
  return changes;
}

std::vector<std::size_t> defer_all(spool::Envelope& envelope, std::int64_t until,
                                   std::string_view reason) {
  std::vector<std::size_t> changed;
  for (std::size_t i = 0; i < envelope.recipients.size(); ++i) {
    Recipient& rcpt = envelope.recipients[i];
    if (done(rcpt)) continue;
    rcpt.state = RecipientState::deferred;
    rcpt.next_attempt = std::max(rcpt.next_attempt, until);
    if (!reason.empty()) rcpt.last_reply = detail::printable(reason, kMaxReason);
    changed.push_back(i);
  }
  return changed;
}

Changes expire_overdue(spool::Envelope& envelope, std::int64_t now, const RetryPolicy& policy) {
  Changes changes;
  if (!expired(envelope.received_at, now, policy)) return changes;
  for (std::size_t i = 0; i < envelope.recipients.size(); ++i) {
    Recipient& rcpt = envelope.recipients[i];
    if (done(rcpt)) continue;
    const auto code = detail::reply_code_of(rcpt.last_reply);
    if (code && detail::is_credential_problem(*code)) continue;  // ours to fix, never bounced
    rcpt.state = RecipientState::failed;
    if (rcpt.last_reply.empty()) rcpt.last_reply = "message expired in queue";
    changes.failed.push_back(i);
  }
  return changes;
}

std::vector<std::size_t> recipients_due(const spool::Envelope& envelope, std::int64_t now) {
  std::vector<std::size_t> due;
  for (std::size_t i = 0; i < envelope.recipients.size(); ++i) {
    const Recipient& rcpt = envelope.recipients[i];
    if (rcpt.state == RecipientState::pending ||
        (rcpt.state == RecipientState::deferred && rcpt.next_attempt <= now))
      due.push_back(i);
  }
  return due;
}

bool finished(const spool::Envelope& envelope) {
  return std::all_of(envelope.recipients.begin(), envelope.recipients.end(), done);
}

std::optional<std::int64_t> next_wakeup(const spool::Envelope& envelope) {
  std::optional<std::int64_t> earliest;
  for (const Recipient& rcpt : envelope.recipients) {
    if (!done(rcpt))
      earliest = earliest ? std::min(*earliest, rcpt.next_attempt) : rcpt.next_attempt;
  }
  return earliest;
}

}  // namespace sg::delivery
