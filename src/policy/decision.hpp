// The policy decisions the receiver asks for at MAIL, RCPT and end of DATA.
// Pure functions of (identity, envelope, message, counters, now).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/identity.hpp"
#include "policy/rate.hpp"

namespace sg::policy {

// An SMTP answer plus the rule behind it (for the audit log; "" when
// accepted). Texts quote addresses only through printable() and never
// contain secrets.
struct Verdict {
  enum class Action { accept, hold, defer, reject };
  Action action = Action::accept;
  int code = 250;
  std::string enhanced;  // "2.1.0", "5.7.1", ...
  std::string text;
  std::string rule;

  bool accepted() const { return action == Action::accept || action == Action::hold; }
};

// MAIL FROM. `sender` is the reverse-path without <> ("" = null sender,
// which needs "<>" in allowed_senders). No identity: 530 5.7.0.
Verdict check_sender(const Identity* identity, std::string_view sender);

// RCPT TO, before the recipient is added. No identity: 550 5.7.1 relay
// denied; max_recipients reached: 452 4.5.3 (the client sends the rest in
// another transaction).
Verdict check_recipient(const Identity* identity, std::size_t recipients_so_far);

// The rate limits for one more message with `recipients` recipients; an
// identity's on_limit turns a hit into defer (451 4.7.1), hold (250, into
// the hold queue) or reject (550 5.7.1). A message that could never fit a
// recipient limit is rejected whatever on_limit says. Also useful at MAIL
// (recipients = 0) to defer before the client sends data.
Verdict check_rate(const Identity& identity, std::size_t recipients, const RateCounters& counters,
                   std::int64_t now);

// End of DATA: size (identity limit; the relay applies its own default),
// recipient count, header From/Sender against allowed_senders (SES judges
// the header From: exactly one From field, every address in it allowed; a
// Sender field, if any, likewise), then check_rate. Record the message with
// RateCounters::record only once it is accepted (held messages do not
// count, so the flow resumes when the window moves on).
// The submitter an Exim identity names in its X-Smtpguard-Submitter header
// (the first one, unfolded and trimmed; bytes outside printable ASCII become
// '?'; at most 200 characters). Empty for any other identity, whose copy of
// the header is not trusted (the deliverer strips it in any case).
std::string trusted_submitter(const Identity& identity, std::string_view message);

// Rate counters key of one submitter: "NAME/SUBMITTER".
std::string submitter_key(const Identity& identity, std::string_view submitter);

// check_message also applies identity.submitter_messages to the message's
// trusted submitter, if any (rule "submitter_rate.per_...").
Verdict check_message(const Identity& identity, std::string_view envelope_sender,
                      std::string_view message, std::size_t size, std::size_t recipients,
                      const RateCounters& counters, std::int64_t now);

}  // namespace sg::policy
