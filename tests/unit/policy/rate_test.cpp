// Sliding windows with injected time, and the JSON round trip.
#include "policy/rate.hpp"

#include <gtest/gtest.h>

namespace sg::policy {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000;  // not on a minute boundary

TEST(RateCounters, MinuteWindowIsExactToTheSecond) {
  RateCounters rc;
  rc.record("shop", 3, kT0);
  rc.record("shop", 2, kT0 + 30);
  Counts c = rc.counts("shop", kT0 + 59);
  EXPECT_EQ(c.messages.minute, 2u);
  EXPECT_EQ(c.recipients.minute, 5u);
  c = rc.counts("shop", kT0 + 60);  // the first event is now 60 s old
  EXPECT_EQ(c.messages.minute, 1u);
  EXPECT_EQ(c.recipients.minute, 2u);
  EXPECT_EQ(rc.counts("shop", kT0 + 90).messages.minute, 0u);
  EXPECT_EQ(rc.counts("other", kT0).messages.minute, 0u);
}

TEST(RateCounters, HourAndDayWindowsNeverUnderCountAndForgetWithinAMinute) {
  RateCounters rc;
  const std::int64_t start = (kT0 / 60) * 60;  // a minute boundary
  rc.record("a", 1, start + 10);
  // Still inside the hour window one second before it ends.
  EXPECT_EQ(rc.counts("a", start + 10 + 3599).messages.hour, 1u);
  // Past the exact hour: allowed to linger, but only until the minute ends.
  EXPECT_EQ(rc.counts("a", start + 3600 + 58).messages.hour, 1u);
  EXPECT_EQ(rc.counts("a", start + 3600 + 59).messages.hour, 0u);
  EXPECT_EQ(rc.counts("a", start + 3600 + 60).messages.day, 1u);
  EXPECT_EQ(rc.counts("a", start + 10 + 86399).messages.day, 1u);
  EXPECT_EQ(rc.counts("a", start + 86400 + 60).messages.day, 0u);
}

TEST(RateCounters, CountsAcrossBoundariesAndPrunesOldBuckets) {
  RateCounters rc;
  const std::int64_t day_start = (kT0 / 86400) * 86400;
  // One message at 23:59:59 and one at 00:00:00 the next day.
  rc.record("a", 1, day_start + 86399);
  rc.record("a", 4, day_start + 86400);
  Counts c = rc.counts("a", day_start + 86400);
  EXPECT_EQ(c.messages.minute, 2u);
  EXPECT_EQ(c.messages.hour, 2u);
  EXPECT_EQ(c.messages.day, 2u);
  EXPECT_EQ(c.recipients.day, 5u);
  // A day and a minute later, recording again drops both old buckets.
  rc.record("a", 1, day_start + 2 * 86400 + 61);
  c = rc.counts("a", day_start + 2 * 86400 + 61);
  EXPECT_EQ(c.messages.day, 1u);
  EXPECT_EQ(c.recipients.day, 1u);
  rc.prune(day_start + 4 * 86400);
  EXPECT_EQ(rc.to_json(), R"({"identities":{},"version":1})");
}

TEST(RateCounters, ClockSteppedBackStillCounts) {
  RateCounters rc;
  rc.record("a", 1, kT0 + 100);
  rc.record("a", 1, kT0);  // clock went back 100 s
  EXPECT_EQ(rc.counts("a", kT0).messages.minute, 2u);
  EXPECT_EQ(rc.counts("a", kT0 + 100).messages.minute, 1u);
}

TEST(RateCounters, JsonRoundTrip) {
  RateCounters rc;
  for (int i = 0; i < 50; ++i)
    rc.record(i % 2 ? "shop" : "blog", static_cast<std::size_t>(i), kT0 + i * 97);
  const std::int64_t now = kT0 + 50 * 97;
  auto back = RateCounters::from_json(rc.to_json());
  ASSERT_TRUE(back.ok()) << back.error().message;
  for (const char* id : {"shop", "blog"}) {
    Counts a = rc.counts(id, now), b = back->counts(id, now);
    EXPECT_EQ(a.messages.minute, b.messages.minute);
    EXPECT_EQ(a.messages.hour, b.messages.hour);
    EXPECT_EQ(a.messages.day, b.messages.day);
    EXPECT_EQ(a.recipients.day, b.recipients.day);
    EXPECT_EQ(a.recipients.hour, b.recipients.hour);
  }
  EXPECT_EQ(back->counts("shop", now).messages.day, 25u);
  EXPECT_EQ(back->to_json(), rc.to_json());
}

TEST(RateCounters, FromJsonRejectsDamage) {
  for (std::string_view bad :
       {"", "[]", "{}", R"({"version":2,"identities":{}})", R"({"version":1})",
        R"({"version":1,"identities":{"a":1}})",
        R"({"version":1,"identities":{"a":{"seconds":[[1,1]],"minutes":[]}}})",
        R"({"version":1,"identities":{"a":{"seconds":[[2,1,1],[1,1,1]],"minutes":[]}}})",
        R"({"version":1,"identities":{"a":{"seconds":[[1,-1,1]],"minutes":[]}}})",
        R"({"version":1,"identities":{"a":{"seconds":[]}}})"}) {
    auto r = RateCounters::from_json(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_EQ(RateCounters::from_json(R"({"version":2,"identities":{}})").error().code,
            Errc::unsupported);
}

}  // namespace
}  // namespace sg::policy
