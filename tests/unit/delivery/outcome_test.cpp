// Retry schedule and per-recipient outcomes with injected time and jitter.
#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "delivery/delivery.hpp"
#include "test_util.hpp"

namespace sg::delivery {
namespace {

using spool::RecipientState;
using testing::envelope_with;
using testing::reply;
using testing::ScriptedRng;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr double kAlmostOne = 0.999999999;
constexpr std::int64_t kDay = 86400;

std::int64_t delay(int attempts, double u, const RetryPolicy& policy = {}) {
  ScriptedRng rng({u});
  return next_attempt(attempts, kNow, rng, policy) - kNow;
}

TEST(Retry, FirstRetryIsWithinAMinute) {
  EXPECT_EQ(delay(1, 0.0), 30);
  EXPECT_EQ(delay(1, kAlmostOne), 60);
  EXPECT_EQ(delay(1, 0.5), 45);
  EXPECT_EQ(delay(0, 0.0), 30);  // < 1 counts as the first
  EXPECT_EQ(delay(-7, kAlmostOne), 60);
}

TEST(Retry, WindowDoublesUntilTheCapAndKeepsItsSpreadThere) {
  EXPECT_EQ(delay(2, 0.0), 60);
  EXPECT_EQ(delay(2, kAlmostOne), 120);
  EXPECT_EQ(delay(3, 0.0), 120);
  EXPECT_EQ(delay(6, kAlmostOne), 1920);
  EXPECT_EQ(delay(7, 0.0), 1800);  // 1920..3840 capped: half the cap .. the cap
  EXPECT_EQ(delay(7, kAlmostOne), 3600);
  EXPECT_EQ(delay(1000000, 0.0), 1800);
  EXPECT_EQ(delay(1000000, kAlmostOne), 3600);
  std::int64_t previous = 0;
  for (int n = 1; n < 40; ++n) {
    EXPECT_GE(delay(n, 0.0), previous) << n;
    EXPECT_LE(delay(n, kAlmostOne), 3600) << n;
    previous = delay(n, 0.0);
  }
}

TEST(Retry, PolicyIsConfigurableAndRepairedWhenNonsensical) {
  RetryPolicy p{.first_min = seconds{10}, .first_max = seconds{20}, .cap = seconds{100}};
  EXPECT_EQ(delay(1, 0.0, p), 10);
  EXPECT_EQ(delay(3, kAlmostOne, p), 80);
  EXPECT_EQ(delay(4, 0.0, p), 50);
  EXPECT_EQ(delay(4, kAlmostOne, p), 100);
  RetryPolicy broken{.first_min = seconds{0}, .first_max = seconds{-5}, .cap = seconds{-1}};
  EXPECT_EQ(delay(1, 0.0, broken), 1);
  EXPECT_EQ(delay(50, kAlmostOne, broken), 1);
  RetryPolicy huge{.cap = seconds{std::numeric_limits<std::int64_t>::max()}};
  ScriptedRng rng({kAlmostOne});
  EXPECT_GT(next_attempt(500, kNow, rng, huge), kNow);  // saturates, no overflow
}

TEST(Retry, OutOfRangeRandomValuesAreClamped) {
  EXPECT_EQ(delay(1, -3.0), 30);
  EXPECT_EQ(delay(1, 7.0), 60);
  EXPECT_EQ(delay(1, std::numeric_limits<double>::quiet_NaN()), 30);
}

TEST(Retry, SodiumJitterSpreadsOverTheWindow) {
  SodiumRng rng;
  std::set<std::int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    const std::int64_t d = next_attempt(1, kNow, rng) - kNow;
    ASSERT_GE(d, 30);
    ASSERT_LE(d, 60);
    seen.insert(d);
  }
  EXPECT_GT(seen.size(), 10u);
}

TEST(Retry, ExpiresExactlyAtTheLifetime) {
  EXPECT_FALSE(expired(kNow, kNow + 5 * kDay - 1));
  EXPECT_TRUE(expired(kNow, kNow + 5 * kDay));
  EXPECT_FALSE(expired(kNow, kNow - 10));
  RetryPolicy p{.max_lifetime = seconds{60}};
  EXPECT_TRUE(expired(kNow, kNow + 60, p));
  EXPECT_FALSE(
      expired(std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()));
  EXPECT_TRUE(
      expired(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()));
}

TEST(UpstreamId, ReadsSesPostfixAndEximStyles) {
  EXPECT_EQ(parse_upstream_id(reply("250 Ok 0100018f2c1b4c7e-9d1a2b3c-0000-000000")),
            "0100018f2c1b4c7e-9d1a2b3c-0000-000000");
  EXPECT_EQ(parse_upstream_id(reply("250 2.0.0 Ok <abc123@ses>")), "abc123@ses");
  EXPECT_EQ(parse_upstream_id(reply("250 2.0.0 Ok: queued as 4BqXyZ1k2")), "4BqXyZ1k2");
  EXPECT_EQ(parse_upstream_id(reply("250 OK id=1r2abc-000Abc-12")), "1r2abc-000Abc-12");
  EXPECT_EQ(parse_upstream_id(reply("250 OK")), "");
  EXPECT_EQ(parse_upstream_id(reply("250 Ok queued")), "");
  EXPECT_EQ(parse_upstream_id(reply("550 Ok 12345")), "");
  EXPECT_EQ(parse_upstream_id(reply("250 Ok " + std::string(200, '7'))), "");
}

TEST(Outcome, TwoXxDeliversAndRecordsTheId) {
  spool::Recipient r{.address = "bob@example.net"};
  ScriptedRng rng({0.0});
  EXPECT_EQ(apply_rcpt_reply(r, reply("250 Ok 0100abc-1"), kNow, {}, rng), Outcome::delivered);
  EXPECT_EQ(r.state, RecipientState::delivered);
  EXPECT_EQ(r.upstream_id, "0100abc-1");
  EXPECT_EQ(r.last_reply, "250 Ok 0100abc-1");
  // Never touched again.
  EXPECT_EQ(apply_rcpt_reply(r, reply("550 no"), kNow, {}, rng), Outcome::unchanged);
  EXPECT_EQ(apply_no_reply(r, "lost", kNow, {}, rng), Outcome::unchanged);
  EXPECT_EQ(r.state, RecipientState::delivered);
  EXPECT_EQ(r.last_reply, "250 Ok 0100abc-1");
}

TEST(Outcome, FourXxDefersWithBackoffAndFiveXxFails) {
  spool::Recipient r{.address = "bob@example.net"};
  ScriptedRng rng({0.0});
  EXPECT_EQ(apply_rcpt_reply(r, reply("451 4.3.0 try later"), kNow, {}, rng), Outcome::deferred);
  EXPECT_EQ(r.state, RecipientState::deferred);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.next_attempt, kNow + 30);
  EXPECT_EQ(apply_rcpt_reply(r, reply("421 closing"), kNow + 30, {}, rng), Outcome::deferred);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.next_attempt, kNow + 30 + 60);
  EXPECT_EQ(apply_rcpt_reply(r, reply("550 5.1.1 unknown user"), kNow + 90, {}, rng),
            Outcome::failed);
  EXPECT_EQ(r.state, RecipientState::failed);
  EXPECT_EQ(r.last_reply, "550 5.1.1 unknown user");
}

TEST(Outcome, ThrottlingQuotaAndCredentialsDeferWithoutCountingAnAttempt) {
  ScriptedRng rng({0.0});
  spool::Recipient rate{.address = "a@x"}, quota{.address = "b@x"}, creds{.address = "c@x"},
      auth_required{.address = "d@x"};
  apply_rcpt_reply(rate, reply("454 Throttling failure: Maximum sending rate exceeded."), kNow, {},
                   rng);
  apply_rcpt_reply(quota, reply("454 Throttling failure: Daily message quota exceeded."), kNow, {},
                   rng);
  EXPECT_EQ(apply_rcpt_reply(creds, reply("535 Authentication Credentials Invalid"), kNow, {}, rng),
            Outcome::deferred);
  apply_rcpt_reply(auth_required, reply("530 5.7.0 Authentication required"), kNow, {}, rng);
  EXPECT_EQ(rate.next_attempt, kNow + 5);
  EXPECT_EQ(quota.next_attempt, kNow + 3600);
  EXPECT_EQ(creds.next_attempt, kNow + 600);
  EXPECT_EQ(auth_required.state, RecipientState::deferred);
  for (const auto* r : {&rate, &quota, &creds, &auth_required}) {
    EXPECT_EQ(r->attempts, 0) << r->address;
    EXPECT_EQ(r->state, RecipientState::deferred) << r->address;
  }
  EXPECT_EQ(rng.calls(), 0u);
}

TEST(Outcome, NoReplyCountsAsFourXxWithASanitisedReason) {
  spool::Recipient r{.address = "bob@example.net"};
  ScriptedRng rng({kAlmostOne});
  EXPECT_EQ(apply_no_reply(r, "connect failed\r\nX-Injected: 1", kNow, {}, rng), Outcome::deferred);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.next_attempt, kNow + 60);
  EXPECT_EQ(r.last_reply.find_first_of("\r\n"), std::string::npos);
  EXPECT_NE(r.last_reply.find("connect failed"), std::string::npos);
}

// A transaction where the first recipient is accepted, the second refused
// for good and the third for now; the server accepts the data.
Transaction mixed_transaction() {
  Transaction t;
  t.recipients = {0, 1, 2};
  t.rcpt_replies = {reply("250 2.1.5 Ok"), reply("550 5.1.1 no such user"),
                    reply("451 4.7.1 greylisted")};
  t.final_reply = reply("250 Ok 0100-ses-id-1");
  return t;
}

TEST(Transaction, PartialSuccessNeverResendsToDeliveredRecipients) {
  auto e = envelope_with({"a@x", "b@x", "c@x"}, kNow);
  ScriptedRng rng({0.0});
  Changes c = apply_transaction(e, mixed_transaction(), kNow, {}, rng);
  EXPECT_EQ(c.delivered, std::vector<std::size_t>{0});
  EXPECT_EQ(c.failed, std::vector<std::size_t>{1});
  EXPECT_EQ(c.deferred, std::vector<std::size_t>{2});
  EXPECT_EQ(e.recipients[0].upstream_id, "0100-ses-id-1");
  EXPECT_EQ(e.recipients[1].state, RecipientState::failed);
  EXPECT_FALSE(finished(e));
  EXPECT_TRUE(recipients_due(e, kNow).empty());
  EXPECT_EQ(next_wakeup(e), kNow + 30);
  EXPECT_EQ(recipients_due(e, kNow + 30), std::vector<std::size_t>{2});

  Transaction retry;
  retry.recipients = recipients_due(e, kNow + 30);
  retry.rcpt_replies = {reply("250 Ok")};
  retry.final_reply = reply("250 Ok 0100-ses-id-2");
  c = apply_transaction(e, retry, kNow + 30, {}, rng);
  EXPECT_EQ(c.delivered, std::vector<std::size_t>{2});
  EXPECT_EQ(e.recipients[0].upstream_id, "0100-ses-id-1");
  EXPECT_EQ(e.recipients[2].upstream_id, "0100-ses-id-2");
  EXPECT_TRUE(finished(e));
  EXPECT_EQ(next_wakeup(e), std::nullopt);
}

TEST(Transaction, DataFailureDecidesForAcceptedRecipientsOnly) {
  auto e = envelope_with({"a@x", "b@x", "c@x"}, kNow);
  ScriptedRng rng({0.0});
  Transaction t = mixed_transaction();
  t.final_reply = reply("554 5.6.0 Message rejected: bad content");
  Changes c = apply_transaction(e, t, kNow, {}, rng);
  EXPECT_EQ(c.failed, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(e.recipients[0].last_reply, "554 5.6.0 Message rejected: bad content");
  EXPECT_EQ(e.recipients[2].state, RecipientState::deferred);  // its own 451 decided

  auto e2 = envelope_with({"a@x", "b@x"}, kNow);
  Transaction t2;
  t2.recipients = {0, 1};
  t2.rcpt_replies = {reply("250 Ok"), reply("250 Ok")};
  t2.final_reply = reply("451 4.3.0 queue full");
  c = apply_transaction(e2, t2, kNow, {}, rng);
  EXPECT_EQ(c.deferred, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(e2.recipients[1].attempts, 1);
}

TEST(Transaction, MailFromRejectionAppliesToEveryRecipient) {
  auto e = envelope_with({"a@x", "b@x"}, kNow);
  ScriptedRng rng({0.0});
  Transaction t;
  t.recipients = {0, 1};
  t.final_reply = reply("554 Message rejected: Email address is not verified.");
  Changes c = apply_transaction(e, t, kNow, {}, rng);
  EXPECT_EQ(c.failed, (std::vector<std::size_t>{0, 1}));
}

TEST(Transaction, PipelinedTemporaryMailFromFailureIsNotABounce) {
  auto e = envelope_with({"a@x", "b@x"}, kNow);
  ScriptedRng rng({0.0});
  Transaction t;
  t.recipients = {0, 1};
  t.rcpt_replies = {reply("503 5.5.1 Error: need MAIL command"),
                    reply("503 5.5.1 Error: need MAIL command")};
  t.final_reply = reply("451 4.3.0 sender check failed, try later");
  Changes c = apply_transaction(e, t, kNow, {}, rng);
  EXPECT_EQ(c.deferred, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(e.recipients[0].last_reply, "451 4.3.0 sender check failed, try later");
  t.final_reply = reply("550 5.7.1 sender rejected");
  c = apply_transaction(e, t, kNow + 100, {}, rng);
  EXPECT_EQ(c.failed, (std::vector<std::size_t>{0, 1}));
}

TEST(Transaction, ConnectionLostBeforeDataEndDefersAndDeliversNothing) {
  auto e = envelope_with({"a@x", "b@x", "c@x"}, kNow);
  ScriptedRng rng({0.0});
  Transaction t;
  t.recipients = {0, 1, 2};
  t.rcpt_replies = {reply("250 Ok"), reply("550 5.1.1 unknown")};  // no reply for c
  t.connection_error = "connection reset by peer";
  Changes c = apply_transaction(e, t, kNow, {}, rng);
  EXPECT_EQ(c.deferred, (std::vector<std::size_t>{0, 2}));
  EXPECT_EQ(c.failed, std::vector<std::size_t>{1});
  EXPECT_TRUE(c.delivered.empty());
  EXPECT_EQ(e.recipients[0].last_reply, "connection reset by peer");
  EXPECT_EQ(e.recipients[2].attempts, 1);
}

TEST(Transaction, UnrepliedRecipientOfAnAcceptedMessageIsRetriedNotDelivered) {
  auto e = envelope_with({"a@x", "b@x"}, kNow);
  ScriptedRng rng({0.0});
  Transaction t;
  t.recipients = {0, 1};
  t.rcpt_replies = {reply("250 Ok")};
  t.final_reply = reply("250 Ok 42-abc");
  Changes c = apply_transaction(e, t, kNow, {}, rng);
  EXPECT_EQ(c.delivered, std::vector<std::size_t>{0});
  EXPECT_EQ(c.deferred, std::vector<std::size_t>{1});
}

TEST(Transaction, BadIndicesAreIgnoredAndDuplicatesCountOnce) {
  auto e = envelope_with({"a@x"}, kNow);
  ScriptedRng rng({0.0});
  Transaction t;
  t.recipients = {7, 0, 0};
  t.rcpt_replies = {reply("250 Ok"), reply("451 later"), reply("451 later")};
  t.final_reply = reply("250 Ok 1");
  Changes c = apply_transaction(e, t, kNow, {}, rng);
  EXPECT_EQ(c.deferred, std::vector<std::size_t>{0});
  EXPECT_EQ(e.recipients[0].attempts, 1);
}

TEST(Lifetime, TemporaryFailureAfterTheLifetimeFails) {
  auto e = envelope_with({"a@x", "b@x"}, kNow - 5 * kDay);
  ScriptedRng rng({0.0});
  Transaction t;
  t.recipients = {0, 1};
  t.rcpt_replies = {reply("451 4.4.1 no answer"), reply("535 Authentication Credentials Invalid")};
  Changes c = apply_transaction(e, t, kNow, {}, rng);
  EXPECT_EQ(c.failed, std::vector<std::size_t>{0});
  EXPECT_EQ(c.deferred, std::vector<std::size_t>{1});  // our credentials: never bounced
  EXPECT_EQ(e.recipients[0].last_reply, "451 4.4.1 no answer");
}

TEST(Lifetime, NoRetryIsScheduledPastTheDeadline) {
  const std::int64_t received = kNow - 5 * kDay + 10;
  auto e = envelope_with({"a@x"}, received);
  ScriptedRng rng({kAlmostOne});
  Changes c = apply_connection_failure(e, "connection refused", kNow, {}, rng);
  EXPECT_EQ(c.deferred, std::vector<std::size_t>{0});
  EXPECT_EQ(e.recipients[0].next_attempt, kNow + 10);
  c = apply_connection_failure(e, "connection refused", kNow + 10, {}, rng);
  EXPECT_EQ(c.failed, std::vector<std::size_t>{0});
}

TEST(Due, OnlyPendingAndDueDeferredRecipients) {
  auto e = envelope_with({"a@x", "b@x", "c@x", "d@x", "e@x"}, kNow);
  e.recipients[0].state = RecipientState::delivered;
  e.recipients[1].state = RecipientState::failed;
  e.recipients[2].state = RecipientState::deferred;
  e.recipients[2].next_attempt = kNow + 100;
  e.recipients[3].state = RecipientState::deferred;
  e.recipients[3].next_attempt = kNow;
  EXPECT_EQ(recipients_due(e, kNow), (std::vector<std::size_t>{3, 4}));
  EXPECT_EQ(recipients_due(e, kNow + 100), (std::vector<std::size_t>{2, 3, 4}));
  EXPECT_EQ(next_wakeup(e), 0);  // e@x is pending: due now
  EXPECT_FALSE(finished(e));
  EXPECT_TRUE(finished(envelope_with({}, kNow)));

  ScriptedRng rng({0.0});
  Changes c = apply_connection_failure(e, "timeout", kNow, {}, rng);
  EXPECT_EQ(c.deferred, (std::vector<std::size_t>{3, 4}));
  EXPECT_EQ(e.recipients[2].attempts, 0);  // not due: untouched
  EXPECT_EQ(e.recipients[0].state, RecipientState::delivered);
  EXPECT_EQ(next_wakeup(e), kNow + 30);
}

TEST(DeferAll, PushesLaterWithoutCountingAndNeverFails) {
  auto e = envelope_with({"a@x", "b@x", "c@x"}, kNow);
  e.recipients[0].state = RecipientState::delivered;
  e.recipients[2].state = RecipientState::deferred;
  e.recipients[2].next_attempt = kNow + 7200;
  e.recipients[2].attempts = 3;
  EXPECT_EQ(defer_all(e, kNow + 3600, "daily quota\r\n"), (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(e.recipients[1].state, RecipientState::deferred);
  EXPECT_EQ(e.recipients[1].next_attempt, kNow + 3600);
  EXPECT_EQ(e.recipients[2].next_attempt, kNow + 7200);  // never earlier
  EXPECT_EQ(e.recipients[2].attempts, 3);
  EXPECT_EQ(e.recipients[1].last_reply, "daily quota??");
  EXPECT_EQ(e.recipients[0].state, RecipientState::delivered);
}

TEST(ExpireOverdue, FailsWhatIsLeftExceptCredentialProblems) {
  auto e = envelope_with({"a@x", "b@x", "c@x"}, kNow);
  e.recipients[0].state = RecipientState::delivered;
  e.recipients[2].last_reply = "535 Authentication Credentials Invalid";
  EXPECT_TRUE(expire_overdue(e, kNow + 5 * kDay - 1).failed.empty());
  Changes c = expire_overdue(e, kNow + 5 * kDay);
  EXPECT_EQ(c.failed, std::vector<std::size_t>{1});
  EXPECT_EQ(e.recipients[1].last_reply, "message expired in queue");
  EXPECT_EQ(e.recipients[2].state, RecipientState::pending);
}

}  // namespace
}  // namespace sg::delivery
