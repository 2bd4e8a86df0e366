#include "policy/decision.hpp"

#include "smtp/message_headers.hpp"

namespace sg::policy {
namespace {

using Action = Verdict::Action;

Verdict reject(int code, std::string enhanced, std::string text, std::string rule) {
  return Verdict{Action::reject, code, std::move(enhanced), std::move(text), std::move(rule)};
}

std::string quoted_address(std::string_view a) {
  // Built with append rather than operator+: g++ 12 warns (-Wrestrict, a
  // known false positive) on "<" + std::string.
  std::string out = "<";
  out += printable(a);
  out += '>';
  return out;
}

std::string per(const char* window) {
  return std::string(" per ") + window;
}

// Applies on_limit to a limit that was hit.
Verdict limited(const Identity& id, std::string text, std::string rule) {
  switch (id.on_limit) {
    case config::OnLimit::hold:
      return Verdict{Action::hold, 250, "2.0.0", "held: " + text, std::move(rule)};
    case config::OnLimit::reject:
      return reject(550, "5.7.1", std::move(text), std::move(rule));
    case config::OnLimit::defer:
      break;
  }
  return Verdict{Action::defer, 451, "4.7.1", std::move(text), std::move(rule)};
}

// Checks every address of the header fields called `field`.
std::optional<Verdict> check_header(const Identity& id, std::string_view message,
                                    std::string_view field, bool required) {
  const std::string rule = field == "From" ? "header_from" : "header_sender";
  const auto values = smtp::header_values(message, field);
  if (values.empty() && !required) return std::nullopt;
  if (values.size() != 1)
    return reject(550, "5.7.1",
                  "message must have exactly one " + std::string(field) +
                      ": header field, it has " + std::to_string(values.size()),
                  rule);
  const auto addresses = smtp::parse_address_list(values[0]);
  if (addresses.empty())
    return reject(550, "5.7.1", "no address in the " + std::string(field) + ": header", rule);
  for (const auto& a : addresses) {
    if (!any_matches(id.sender_patterns, a))
      return reject(550, "5.7.1",
                    "header " + std::string(field) + ": " + quoted_address(a) +
                        " not allowed for identity " + id.name,
                    rule);
  }
  return std::nullopt;
}

}  // namespace

Verdict check_sender(const Identity* identity, std::string_view sender) {
  if (identity == nullptr) return reject(530, "5.7.0", "Authentication required", "no_identity");
  if (identity->sender_patterns.empty())
    return reject(550, "5.7.1", "identity " + identity->name + " may not send (no allowed_senders)",
                  "allowed_senders");
  if (!any_matches(identity->sender_patterns, sender))
    return reject(
        550, "5.7.1",
        "sender " + quoted_address(sender) + " not allowed for identity " + identity->name,
        "allowed_senders");
  return Verdict{Action::accept, 250, "2.1.0", "sender " + quoted_address(sender) + " ok", ""};
}

Verdict check_recipient(const Identity* identity, std::size_t recipients_so_far) {
  if (identity == nullptr)
    return reject(550, "5.7.1", "relay denied: authenticate first", "no_identity");
  if (recipients_so_far >= identity->max_recipients)
    return Verdict{Action::defer, 452, "4.5.3",
                   "too many recipients (at most " + std::to_string(identity->max_recipients) +
                       " per message for identity " + identity->name + ")",
                   "max_recipients"};
  return Verdict{Action::accept, 250, "2.1.5", "recipient ok", ""};
}

Verdict check_rate(const Identity& id, std::size_t recipients, const RateCounters& counters,
                   std::int64_t now) {
  const Counts c = counters.counts(id.name, now);
  using config::RateLimit;
  struct Window {
    const char* name;
    std::uint32_t RateLimit::*limit;
    std::uint64_t WindowCounts::*count;
  };
  static constexpr Window kWindows[] = {{"minute", &RateLimit::per_minute, &WindowCounts::minute},
                                        {"hour", &RateLimit::per_hour, &WindowCounts::hour},
                                        {"day", &RateLimit::per_day, &WindowCounts::day}};
  for (const auto& w : kWindows) {
    const std::uint32_t limit = id.recipients.*w.limit;
    if (limit != 0 && recipients > limit)
      return reject(550, "5.7.1",
                    "message has " + std::to_string(recipients) + " recipients, more than the " +
                        std::to_string(limit) + " recipients" + per(w.name) + " allowed",
                    std::string("recipient_rate.per_") + w.name);
  }
  for (const auto& w : kWindows) {
    const std::uint32_t limit = id.messages.*w.limit;
    if (limit != 0 && c.messages.*w.count + 1 > limit)
      return limited(id, "rate limit: " + std::to_string(limit) + " messages" + per(w.name),
                     std::string("rate.per_") + w.name);
  }
  for (const auto& w : kWindows) {
    const std::uint32_t limit = id.recipients.*w.limit;
    if (limit != 0 && c.recipients.*w.count + recipients > limit)
      return limited(id, "rate limit: " + std::to_string(limit) + " recipients" + per(w.name),
                     std::string("recipient_rate.per_") + w.name);
  }
  return Verdict{Action::accept, 250, "2.0.0", "ok", ""};
}

Verdict check_message(const Identity& id, std::string_view envelope_sender,
                      std::string_view message, std::size_t size, std::size_t recipients,
                      const RateCounters& counters, std::int64_t now) {
  if (id.max_message_size != 0 && size > id.max_message_size)
    return reject(552, "5.3.4",
                  "message size " + std::to_string(size) + " exceeds the limit of " +
                      std::to_string(id.max_message_size) + " for identity " + id.name,
                  "max_message_size");
  if (recipients > id.max_recipients)
    return reject(550, "5.5.3",
                  "too many recipients (at most " + std::to_string(id.max_recipients) + ")",
                  "max_recipients");
  if (Verdict s = check_sender(&id, envelope_sender); !s.accepted()) return s;
  if (auto v = check_header(id, message, "From", true)) return *v;
  if (auto v = check_header(id, message, "Sender", false)) return *v;
  Verdict v = check_rate(id, recipients, counters, now);
  if (v.action != Action::accept || !id.exim) return v;
  const config::RateLimit& per = id.submitter_messages;
  if (per.per_minute == 0 && per.per_hour == 0 && per.per_day == 0) return v;
  std::string submitter = trusted_submitter(id, message);
  if (submitter.empty()) return v;
  // The same windows as the identity's own, counted under the submitter's key.
  Identity one = id;
  one.name = submitter_key(id, submitter);
  one.messages = per;
  one.recipients = {};
  Verdict s = check_rate(one, recipients, counters, now);
  if (s.action == Action::accept) return v;
  s.text = "submitter " + submitter + ": " + s.text;
  s.rule = "submitter_" + s.rule;
  return s;
}

std::string trusted_submitter(const Identity& identity, std::string_view message) {
  if (!identity.exim) return {};
  auto values = smtp::header_values(message, smtp::kSubmitterHeader);
  if (values.empty()) return {};
  std::string_view v = values.front();
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  std::string out;
  for (char c : v.substr(0, 200)) {
    auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  return out;
}

std::string submitter_key(const Identity& identity, std::string_view submitter) {
  return identity.name + "/" + std::string(submitter);
}

}  // namespace sg::policy
