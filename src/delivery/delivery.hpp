// delivery: the deliverer's pure decision rules (issue 4), sans-I/O.
//  - Retry schedule: exponential backoff with jitter from an injected Rng,
//    queue lifetime (RetryPolicy, next_attempt, expired).
//  - Per-recipient outcomes: upstream replies -> spool::Recipient state
//    (delivered with the upstream id / deferred with backoff / failed), which
//    recipients are due, when a message is finished. A recipient that is
//    delivered or failed is never touched again, so a partial success never
//    resends to recipients that already got the message.
//  - SES specifics: 50-recipient transactions, throttling and quota actions,
//    and a token bucket for max_send_rate shared by an upstream's sessions.
//  - Bounces: RFC 3464 multipart/report DSNs and the never-bounce rules.
//  - Schedule: which queued message is due when, and which are being
//    delivered (the deliverer's in-memory view of the queue).
//  - Header edits on the message data: X-SES-CONFIGURATION-SET /
//    X-SES-MESSAGE-TAGS, and stripping the submitter header.
// No sockets, clocks or files: every time is a parameter (unix seconds for
// schedules, any monotonic seconds for the token bucket), randomness comes
// from an Rng the caller passes.
// Trust: reply texts, addresses and message headers are untrusted (they come
// from the network, from local clients, or from spool files). They are
// sanitised before they go into a generated header (no CR/LF/control bytes,
// lines < 998 octets); nothing here parses them into more than a status code
// and an id. Errors: none are reported; bad input degrades to a safe default
// (no upstream id, Status 5.0.0, a retry) and never throws (except
// std::bad_alloc) or aborts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ses/ses.hpp"
#include "smtp/message_headers.hpp"
#include "smtp/reply.hpp"
#include "spool/spool.hpp"

namespace sg::delivery {

using seconds = std::chrono::seconds;

// ---------------------------------------------------------------- retries

// Source of jitter. Tests pass a fixed sequence; the deliverer a SodiumRng.
class Rng {
 public:
  virtual ~Rng() = default;
  virtual double unit() = 0;  // uniform in [0, 1); out-of-range values are clamped
};

// libsodium's CSPRNG (thread-safe, no state).
class SodiumRng final : public Rng {
 public:
  double unit() override;
};

struct RetryPolicy {
  seconds first_min{30};  // delay after the first failure is in [first_min, first_max]
  seconds first_max{60};
  seconds cap{3600};                // no backoff delay is longer than this
  seconds max_lifetime{5 * 86400};  // a recipient still undelivered this long after arrival fails
  // Deferrals that are not the recipient's fault and count no attempt:
  seconds rate_throttle_retry{5};  // SES "Maximum sending rate exceeded"
  seconds quota_retry{3600};       // SES daily quota: retried hourly until the window moves on
  seconds credentials_retry{600};  // 530/535: our credential problem; never bounced
};

// Unix time of the next try after `attempts_so_far` failed attempts (the one
// just made included; values < 1 count as 1). The delay window doubles with
// every attempt, [first_min, first_max] * 2^(attempts-1), until it reaches
// `cap`; there it stays [cap * first_min / first_max, cap] so retries of
// many messages keep spreading out. A policy with first_min > first_max or
// non-positive values is repaired (first_min..first_max >= 1 s).
std::int64_t next_attempt(int attempts_so_far, std::int64_t now, Rng& rng,
                          const RetryPolicy& policy = {});

// True once `now` is at or past received_at + max_lifetime.
bool expired(std::int64_t received_at, std::int64_t now, const RetryPolicy& policy = {});

// ---------------------------------------------------------------- outcomes

// What a reply did to one recipient.
enum class Outcome { delivered, deferred, failed, unchanged };

// The id SES (or another server) gave the message in its 250 reply to DATA:
// "250 Ok <id>" (SES, with or without <>), "250 2.0.0 Ok: queued as <id>"
// (Postfix), "250 OK id=<id>" (Exim). Empty when there is none. The id is
// limited to printable ASCII without spaces and at most 128 octets.
std::string parse_upstream_id(const smtp::Reply& reply);

// How a non-2xx reply defers: `delay` seconds when it is not the
// recipient's fault (throttling, quota, credentials), nullopt for ordinary
// backoff. `never_fail` marks our credential problems.
struct Deferral {
  std::optional<std::int64_t> delay;
  bool never_fail = false;
};
Deferral deferral_for(const smtp::Reply& reply, const RetryPolicy& policy);

// Applies one upstream reply for `rcpt` (its RCPT reply when that failed,
// else the reply to DATA): 2xx -> delivered (upstream_id from the reply),
// 4xx -> deferred (attempts + 1, next_attempt by the backoff), 5xx -> failed.
// Replies that are not the recipient's fault defer without counting an
// attempt (see deferral_for): SES rate throttling (now + rate_throttle_retry),
// the daily quota (now + quota_retry) and our own credential problems (530,
// 535; now + credentials_retry; never failed, not even at end of lifetime).
// Codes that are not final replies count as 4xx. last_reply gets
// reply.to_string(). A recipient already delivered or failed is left as it
// is (Outcome::unchanged). Lifetime is enforced by apply_transaction,
// apply_connection_failure and expire_overdue, which know the arrival time.
Outcome apply_rcpt_reply(spool::Recipient& rcpt, const smtp::Reply& reply, std::int64_t now,
                         const RetryPolicy& policy, Rng& rng);

// A try without any reply (connect failure, timeout, connection lost):
// counts as 4xx. `reason` (sanitised) becomes last_reply.
Outcome apply_no_reply(spool::Recipient& rcpt, std::string_view reason, std::int64_t now,
                       const RetryPolicy& policy, Rng& rng);

// One upstream transaction as smtp::ClientSession reported it.
struct Transaction {
  // Envelope indices of the recipients sent, in RCPT order: ClientSession's
  // RecipientResult index i is recipients[i].
  std::vector<std::size_t> recipients;
  // Per position in `recipients`; nullopt if no RecipientResult arrived.
  std::vector<std::optional<smtp::Reply>> rcpt_replies;
  // MessageDone's reply (the DATA reply, or the failing MAIL/RCPT reply);
  // nullopt when the session failed or the connection broke first.
  std::optional<smtp::Reply> final_reply;
  // Why the session broke when there is no final_reply ("connection lost",
  // the Failed event's message...); used as last_reply.
  std::string connection_error;
};

// Recipients (envelope indices) that changed in one call.
struct Changes {
  std::vector<std::size_t> delivered, deferred, failed;
};

// Applies a transaction to the envelope. Per recipient: a failed RCPT reply
// decides alone; a recipient accepted at RCPT gets the final reply; one with
// no reply gets the final reply if it was a failure, else counts as a
// connection failure (the server never accepted it, so a retry cannot
// duplicate). A 503 RCPT reply counts as no reply: with PIPELINING it only
// echoes a failed MAIL FROM, which ClientSession reports as the final reply.
// When ClientSession ends with a Failed event instead of MessageDone (421,
// connection lost), leave final_reply empty and put the error message in
// connection_error: the recipients are retried. A deferred recipient whose lifetime is over fails
// instead, and no retry is scheduled past the end of the lifetime. Indices out of range are
// ignored. `failed` lists what a DSN must now report.
Changes apply_transaction(spool::Envelope& envelope, const Transaction& transaction,
                          std::int64_t now, const RetryPolicy& policy, Rng& rng);

// A connection-level failure before any transaction: every due recipient is
// deferred as by a 4xx (or fails if its lifetime is over).
Changes apply_connection_failure(spool::Envelope& envelope, std::string_view reason,
                                 std::int64_t now, const RetryPolicy& policy, Rng& rng);

// Pushes every recipient not yet delivered or failed to `until` (if later
// than its current next_attempt) without counting an attempt: for daily
// quota and credential trouble, which are not the recipient's fault. Never
// fails a recipient. Returns the indices changed.
std::vector<std::size_t> defer_all(spool::Envelope& envelope, std::int64_t until,
                                   std::string_view reason);

// Fails every pending/deferred recipient whose lifetime is over (last_reply
// kept, or set to "message expired in queue" if empty).
Changes expire_overdue(spool::Envelope& envelope, std::int64_t now, const RetryPolicy& policy = {});

// Envelope indices to try now: pending, or deferred with next_attempt <= now.
std::vector<std::size_t> recipients_due(const spool::Envelope& envelope, std::int64_t now);

// Every recipient delivered or failed (true for no recipients).
bool finished(const spool::Envelope& envelope);

// When the message next has a recipient due: the earliest next_attempt of
// the recipients not yet delivered or failed (a pending one is due at its
// next_attempt, normally 0, i.e. now); nullopt when the message is finished.
std::optional<std::int64_t> next_wakeup(const spool::Envelope& envelope);

// ---------------------------------------------------------------- SES

inline constexpr std::size_t kSesMaxRecipientsPerTransaction = 50;

// `due` in order, cut into chunks of at most max_per_transaction (0 = no limit).
std::vector<std::vector<std::size_t>> split_recipients(
    const std::vector<std::size_t>& due,
    std::size_t max_per_transaction = kSesMaxRecipientsPerTransaction);

struct ThrottlePolicy {
  double rate_factor = 0.5;       // throttled_rate: bucket rate multiplier...
  double rate_slow_seconds = 60;  // ...for this long (repeated throttles compound)
};

// What the deliverer does with an upstream after a classified reply. The
// affected recipients themselves are already deferred by apply_* (see
// deferral_for); this is about the upstream.
struct ThrottleAction {
  bool slow_down = false;  // TokenBucket::slow_down(slow_factor, now, slow_seconds)
  double slow_factor = 1;
  double slow_seconds = 0;
  // > 0: send nothing on this upstream until now + pause_upstream; messages
  // waiting for it are deferred to then without counting an attempt
  // (defer_all). Repeated while the condition lasts.
  std::int64_t pause_upstream = 0;
  bool reconnect = false;      // close this session and open a new one
  bool alert = false;          // raise an alert event with `hint`
  bool bounce_allowed = true;  // false: the reply is ours to fix, never the sender's
  std::string hint;            // one line for the operator (from the classification)
};

// throttled_rate -> slow the bucket down; throttled_daily_quota -> pause the
// upstream for quota_retry (so it is retried hourly until the 24 h window
// moves on) and alert; bad_credentials -> pause for credentials_retry and
// alert, never bounce; session_limit -> reconnect; anything else: no action
// (the reply's code decides each recipient's fate through apply_*).
ThrottleAction on_reply(const ses::Classification& classification, const RetryPolicy& retry = {},
                        const ThrottlePolicy& throttle = {});

// Token bucket for an upstream's max_send_rate, shared by all its sessions
// (not thread-safe: one owner, or the caller locks). Times are seconds on
// any monotonic clock; a time earlier than the last one seen counts as that
// last one. rate_per_s <= 0 (or not finite) means no limit.
class TokenBucket {
 public:
  TokenBucket(double rate_per_s, double burst);  // starts full; burst < 1 counts as 1

  bool try_take(double now_s);           // takes one token if there is one
  double wait_time(double now_s) const;  // seconds until try_take can succeed (0: now)
  // After throttling: the rate is multiplied by `factor` (0 < factor <= 1;
  // repeated calls compound, never below kMinFactor) until now_s +
  // for_seconds, and the tokens on hand are dropped.
  void slow_down(double factor, double now_s, double for_seconds);

  double rate() const { return rate_; }
  double effective_rate(double now_s) const;  // rate() while not slowed down
  static constexpr double kMinFactor = 1.0 / 64;

 private:
  double tokens_at(double now_s) const;

  double rate_, burst_;
  double tokens_;
  double last_ = 0;
  bool started_ = false;
  double factor_ = 1;
  double slow_until_ = 0;
};

// ---------------------------------------------------------------- bounces

// Whether a failure of this message may be reported to its sender: not for
// the null sender (never bounce a bounce), not when the message is itself a
// DSN (Content-Type multipart/report; report-type=delivery-status) or
// auto-submitted (Auto-Submitted other than "no"). `message` is the data or
// just its header section; empty skips the header checks.
bool should_bounce(const spool::Envelope& envelope, std::string_view message = {});

// RFC 3464 delivery status notification for `failed_rcpts` (envelope
// indices; out-of-range ones are skipped) to be sent with MAIL FROM:<> to
// envelope.mail_from. Headers: From MAILER-DAEMON@reporting_mta, To the
// sender, Subject "Undelivered Mail Returned to Sender", Date and
// Message-ID from `now`, Auto-Submitted: auto-replied; body: a text/plain
// explanation, a message/delivery-status part (Reporting-MTA, Arrival-Date,
// per recipient Final-Recipient, Action: failed, Status from the last
// reply's 5.x.y code, or 5.0.0 for a 5xx without one, or 5.4.7 for a
// recipient that expired after 4xx/connection failures; Diagnostic-Code
// "smtp; <reply>" when last_reply is an SMTP reply) and a
// text/rfc822-headers part with `original_headers` (the header section is
// taken if a whole message is passed). CRLF line ends, every line < 998
// octets, non-ASCII and control bytes of untrusted text replaced by '?'.
// `boundary` should be random (1..70 characters of [A-Za-z0-9'()+_,-./:=?]
// and space, not ending in space); other characters are replaced.
std::string make_dsn(const spool::Envelope& envelope, std::span<const std::size_t> failed_rcpts,
                     std::string_view original_headers, std::string_view reporting_mta,
                     std::int64_t now, std::string_view boundary);

// "Tue, 01 Jan 2030 00:00:00 +0000" for unix seconds (clamped to 1970..9999).
std::string rfc5322_date(std::int64_t unix_seconds);

// ---------------------------------------------------------------- schedule

// The deliverer's view of the queue: each known message id has a time (unix
// seconds) when it is next due; take() hands out due ids, earliest first,
// and marks them busy until finish(). A busy id is never handed out twice,
// which is what keeps two upstream sessions from sending the same message.
class Schedule {
 public:
  // A new id (from a notification or a rescan) is due at `due_at`; for a
  // known id the earlier of the two times wins (also when it is busy: it is
  // due again at that time once finished).
  void add(const std::string& id, std::int64_t due_at);
  // The id due earliest with due time <= now, marked busy; nullopt if none.
  std::optional<std::string> take(std::int64_t now);
  // Done with a busy id: due again at `next` (nullopt: forget it). An add()
  // while it was busy may make it due earlier.
  void finish(const std::string& id, std::optional<std::int64_t> next);
  // Drops an id that is not busy (removed or held from outside); false if busy.
  bool forget(const std::string& id);
  // Every id that is not busy becomes due at `now` (queue flush); busy ones
  // are due at `now` when they finish.
  void make_all_due(std::int64_t now);

  bool known(const std::string& id) const { return due_.count(id) || busy_.count(id); }
  bool busy(const std::string& id) const { return busy_.count(id) != 0; }
  std::optional<std::int64_t> next_due() const;   // earliest time among ids not busy
  std::size_t due_count(std::int64_t now) const;  // ids not busy and due by `now`
  std::size_t waiting() const { return due_.size(); }
  std::size_t in_progress() const { return busy_.size(); }
  std::vector<std::string> ids() const;  // every known id

 private:
  std::map<std::string, std::int64_t> due_;                  // not busy: id -> due time
  std::set<std::pair<std::int64_t, std::string>> order_;     // (due time, id) of due_
  std::map<std::string, std::optional<std::int64_t>> busy_;  // id -> due again (add while busy)
};

// ---------------------------------------------------------------- headers

using smtp::kSubmitterHeader;

// With a non-empty configuration_set: the data with any client-supplied
// X-SES-CONFIGURATION-SET and X-SES-MESSAGE-TAGS removed and, at the top,
// "X-SES-CONFIGURATION-SET: <set>" and (if identity is not empty)
// "X-SES-MESSAGE-TAGS: identity=<identity>", both limited to [A-Za-z0-9_-]
// (other bytes become '_'; set <= 64, tag value <= 256 characters); lines
// of whitespace before the first header field (which would fold into ours)
// are dropped. With an
// empty configuration_set the data is returned unchanged.
std::string add_ses_headers(std::string_view data, std::string_view configuration_set,
                            std::string_view identity);

// The data with every header field called `name` removed (folded lines
// included, body untouched); for the submitter header, which the relay
// trusts only when Exim set it. Data without such a field comes back as it
// went in, not copied.
std::string strip_header(std::string data, std::string_view name = kSubmitterHeader);

}  // namespace sg::delivery
