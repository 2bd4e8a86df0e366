// SES transaction splitting, throttling actions and the send-rate bucket.
#include <gtest/gtest.h>

#include <limits>
#include <numeric>

#include "delivery/delivery.hpp"

namespace sg::delivery {
namespace {

TEST(Split, FiftyPerTransactionInOrder) {
  std::vector<std::size_t> due(120);
  std::iota(due.begin(), due.end(), 3);
  auto chunks = split_recipients(due);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].size(), 50u);
  EXPECT_EQ(chunks[1].size(), 50u);
  EXPECT_EQ(chunks[2].size(), 20u);
  std::vector<std::size_t> joined;
  for (auto& c : chunks) joined.insert(joined.end(), c.begin(), c.end());
  EXPECT_EQ(joined, due);
  EXPECT_EQ(split_recipients(std::vector<std::size_t>(50, 1)).size(), 1u);
  EXPECT_EQ(split_recipients(std::vector<std::size_t>(51, 1)).size(), 2u);
  EXPECT_TRUE(split_recipients({}).empty());
  EXPECT_EQ(split_recipients(due, 0).size(), 1u);
  EXPECT_EQ(split_recipients({1, 2, 3}, 1), (std::vector<std::vector<std::size_t>>{{1}, {2}, {3}}));
}

ThrottleAction action_for(int code, std::string_view text) {
  return on_reply(ses::classify_reply(code, text));
}

TEST(OnReply, RateThrottlingSlowsTheBucket) {
  ThrottleAction a = action_for(454, "Throttling failure: Maximum sending rate exceeded.");
  EXPECT_TRUE(a.slow_down);
  EXPECT_DOUBLE_EQ(a.slow_factor, 0.5);
  EXPECT_GT(a.slow_seconds, 0);
  EXPECT_EQ(a.pause_upstream, 0);
  EXPECT_FALSE(a.alert);
  ThrottleAction custom = on_reply(ses::classify_reply(454, "Maximum sending rate exceeded"), {},
                                   ThrottlePolicy{.rate_factor = 0.25, .rate_slow_seconds = 9});
  EXPECT_DOUBLE_EQ(custom.slow_factor, 0.25);
  EXPECT_DOUBLE_EQ(custom.slow_seconds, 9);
}

TEST(OnReply, DailyQuotaPausesTheUpstreamAndAlerts) {
  ThrottleAction a = action_for(454, "Throttling failure: Daily message quota exceeded.");
  EXPECT_EQ(a.pause_upstream, 3600);
  EXPECT_TRUE(a.alert);
  EXPECT_FALSE(a.bounce_allowed);
  EXPECT_FALSE(a.slow_down);
  EXPECT_FALSE(a.hint.empty());
  RetryPolicy hourly_is_too_often{.quota_retry = seconds{7200}};
  EXPECT_EQ(on_reply(ses::classify_reply(454, "Daily message quota exceeded"), hourly_is_too_often)
                .pause_upstream,
            7200);
}

TEST(OnReply, BadCredentialsPauseAlertAndNeverBounce) {
  ThrottleAction a = action_for(535, "Authentication Credentials Invalid");
  EXPECT_EQ(a.pause_upstream, 600);
  EXPECT_TRUE(a.alert);
  EXPECT_FALSE(a.bounce_allowed);
}

TEST(OnReply, SessionLimitReconnectsAndOrdinaryRepliesDoNothing) {
  EXPECT_TRUE(action_for(421, "Maximum SMTP session time exceeded").reconnect);
  for (auto [code, text] : {std::pair{250, "Ok"}, {451, "try later"}, {550, "no such user"}}) {
    ThrottleAction a = action_for(code, text);
    EXPECT_FALSE(a.slow_down || a.reconnect || a.alert || a.pause_upstream) << code;
    EXPECT_TRUE(a.bounce_allowed);
  }
}

TEST(TokenBucket, BurstThenSteadyRate) {
  TokenBucket b(2, 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.try_take(100)) << i;
  EXPECT_FALSE(b.try_take(100));
  EXPECT_DOUBLE_EQ(b.wait_time(100), 0.5);
  EXPECT_NEAR(b.wait_time(100.2), 0.3, 1e-9);
  EXPECT_FALSE(b.try_take(100.49));
  EXPECT_TRUE(b.try_take(100.5));
  EXPECT_FALSE(b.try_take(100.5));
  EXPECT_DOUBLE_EQ(b.wait_time(100.5), 0.5);
  // A long idle refills only up to the burst.
  int taken = 0;
  while (b.try_take(1000)) ++taken;
  EXPECT_EQ(taken, 3);
}

TEST(TokenBucket, LongRunThroughputMatchesTheRate) {
  TokenBucket b(14, 14);
  int taken = 0;
  for (int step = 0; step <= 10035; ++step)  // ~10 s in 1 ms steps (away from a token edge)
    if (b.try_take(step / 1000.0)) ++taken;
  EXPECT_EQ(taken, 14 + 140);
}

TEST(TokenBucket, WaitTimeIsExactlyWhenTheNextTokenComes) {
  TokenBucket b(3, 1);
  double now = 5;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(b.try_take(now)) << i;
    const double wait = b.wait_time(now);
    ASSERT_GT(wait, 0);
    EXPECT_FALSE(b.try_take(now + wait * 0.99));
    now += wait;
  }
  EXPECT_NEAR(now, 5 + 20.0 / 3, 1e-6);
}

TEST(TokenBucket, ZeroRateMeansNoLimit) {
  TokenBucket b(0, 1);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b.try_take(1));
  EXPECT_EQ(b.wait_time(1), 0);
  TokenBucket nan(std::numeric_limits<double>::quiet_NaN(), 1);
  EXPECT_TRUE(nan.try_take(1));
  EXPECT_TRUE(nan.try_take(1));
}

TEST(TokenBucket, SlowDownDropsTheBurstAndLowersTheRateForAWhile) {
  TokenBucket b(2, 10);
  b.slow_down(0.5, 50, 10);
  EXPECT_FALSE(b.try_take(50));
  EXPECT_DOUBLE_EQ(b.effective_rate(50), 1);
  EXPECT_DOUBLE_EQ(b.wait_time(50), 1);
  EXPECT_TRUE(b.try_take(51));
  EXPECT_DOUBLE_EQ(b.effective_rate(60), 2);  // over
  EXPECT_DOUBLE_EQ(b.rate(), 2);
}

TEST(TokenBucket, WaitSpansTheEndOfASlowDown) {
  TokenBucket b(2, 1);
  b.slow_down(0.25, 0, 1);  // 0.5 tokens/s for one second, then 2/s
  EXPECT_DOUBLE_EQ(b.wait_time(0), 1.25);
  EXPECT_FALSE(b.try_take(1.24));
  EXPECT_TRUE(b.try_take(1.25));
}

TEST(TokenBucket, RepeatedThrottlesCompoundButNotForever) {
  TokenBucket b(8, 1);
  b.slow_down(0.5, 0, 60);
  b.slow_down(0.5, 1, 60);
  EXPECT_DOUBLE_EQ(b.effective_rate(2), 2);
  for (int i = 0; i < 20; ++i) b.slow_down(0.5, 2, 60);
  EXPECT_DOUBLE_EQ(b.effective_rate(3), 8 * TokenBucket::kMinFactor);
  // After the slow period a new throttle starts from the full rate again.
  b.slow_down(0.5, 200, 10);
  EXPECT_DOUBLE_EQ(b.effective_rate(200), 4);
  b.slow_down(7, 201, 10);  // > 1 is no speed-up
  EXPECT_DOUBLE_EQ(b.effective_rate(201), 4);
}

TEST(TokenBucket, TimeGoingBackwardsGivesNothingExtra) {
  TokenBucket b(1, 1);
  EXPECT_TRUE(b.try_take(10));
  EXPECT_FALSE(b.try_take(5));
  EXPECT_DOUBLE_EQ(b.wait_time(5), 1);
  EXPECT_FALSE(b.try_take(10.5));
  EXPECT_TRUE(b.try_take(11));
}

}  // namespace
}  // namespace sg::delivery
