// event_from_audit on audit lines as the relay writes them (copied from
// relay runs of the interop tests, SMTPGUARD_KEEP_TEST_DIRS=1, file
// STATE/audit.jsonl), plus lines it must ignore.
#include <gtest/gtest.h>

#include "monitor/detect.hpp"

namespace sg::monitor {
namespace {

std::optional<Event> from(std::string_view line) {
  return event_from_audit(nlohmann::json::parse(line));
}

TEST(EventFromAudit, ReceivedAndDelivered) {
  auto e = from(
      R"({"event":"received","id":"1k19j3jbe8gy8kwd","identity":"bench","mail_from":"a@bench.example","peer":"127.0.0.1","recipients":1,"rule":"","size":100137,"submitter":"","time":1795831173,"verdict":"accept"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::received);
  EXPECT_EQ(e->time, 1795831173);
  EXPECT_EQ(e->identity, "bench");
  EXPECT_EQ(e->sender, "a@bench.example");
  EXPECT_EQ(e->remote, "127.0.0.1");
  EXPECT_EQ(e->recipient_count, 1u);
  EXPECT_TRUE(e->recipients.empty());

  e = from(
      R"({"credential":"","event":"delivered","id":"1k19j3jbe8gy8kwd","identity":"bench","recipient":"b@x.example","time":1795831173,"upstream":"sink","upstream_id":""})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::delivered);
  EXPECT_EQ(e->identity, "bench");
  EXPECT_EQ(e->upstream, "sink");
  EXPECT_EQ(e->recipients, std::vector<std::string>{"b@x.example"});
  EXPECT_EQ(e->recipient_count, 1u);
}

TEST(EventFromAudit, HeldBySubmissionAndByOperator) {
  auto e = from(
      R"({"event":"held","id":"1","identity":"app","mail_from":"a@b","peer":"uid 33","recipients":2,"rule":"paused","size":10,"submitter":"","time":5,"verdict":"hold"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::held);
  EXPECT_EQ(e->remote, "uid:33");
  EXPECT_EQ(e->rule, "paused");
  EXPECT_EQ(e->recipient_count, 2u);
  EXPECT_FALSE(from(R"({"by":"operator","event":"held","id":"1","time":5})"));
}

TEST(EventFromAudit, FailuresAndUpstreamTrouble) {
  auto e = from(
      R"({"event":"bounced","id":"1","identity":"app","recipient":"x@y","upstream":"ses","reply":"550 5.1.1 no such user","dsn":true,"time":9})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::bounced);
  EXPECT_EQ(e->rule, "550 5.1.1 no such user");
  e = from(
      R"({"event":"deferred","id":"1","identity":"app","recipient":"x@y","upstream":"ses","reply":"451 later","next_attempt":20,"time":9})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::deferred);

  e = from(R"({"event":"auth_failed","peer":"192.0.2.9","username":"admin","time":9})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::auth_failed);
  EXPECT_EQ(e->remote, "192.0.2.9");
  EXPECT_EQ(e->identity, "");  // the username tried is not an identity

  e = from(
      R"({"event":"throttled","upstream":"ses","reply":"454 Throttling failure: Maximum sending rate exceeded.","time":9})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::throttled);
  EXPECT_EQ(e->upstream, "ses");
  e = from(
      R"({"event":"throttled","upstream":"ses","reply":"454 Throttling failure: Daily message quota exceeded.","time":9})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::quota_exceeded);
  e = from(
      R"({"event":"alert","kind":"throttled_daily_quota","upstream":"ses","reply":"454 Throttling failure: Daily message quota exceeded.","hint":"...","until":100,"time":9})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::quota_exceeded);

  e = from(
      R"({"event":"refused","stage":"rcpt","identity":"app","peer":"127.0.0.1","mail_from":"a@b","recipients":1,"code":550,"rule":"sender.not_allowed","time":9})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EventKind::refused);
  EXPECT_EQ(e->rule, "sender.not_allowed");
}

TEST(EventFromAudit, IgnoresWhatFeedsNoDetector) {
  for (std::string_view line : {
           R"({"event":"config_reloaded","source":"/etc/smtpguard.toml","time":1})",
           R"({"event":"paused","by":"operator","time":1})",
           R"({"event":"alert","detector":"rate","kind":"throttled_daily_quota","time":1})",
           R"({"event":"received","time":"1","identity":"a"})",
           R"({"event":"received","time":1.5,"identity":"a"})",
           R"({"event":"received","time":1})",
           R"({"time":1})",
           R"([1,2])",
           R"("received")",
           R"({"event":7,"time":1})",
       })
    EXPECT_FALSE(from(line)) << line;
}

TEST(EventFromAudit, WildFieldsAreBounded) {
  nlohmann::json line = {{"event", "received"},
                         {"time", -50},
                         {"identity", std::string(5000, 'i')},
                         {"mail_from", std::string(600, 'a') + "\xC3\xA9"},
                         {"recipients", 5'000'000'000ull}};
  auto e = event_from_audit(line);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->time, 0);
  EXPECT_LE(e->identity.size(), 512u);
  EXPECT_EQ(e->recipient_count, 1'000'000u);
  // A list of recipients is taken when present.
  line["recipients"] = {"a@x", 5, "b@x"};
  e = event_from_audit(line);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->recipients, (std::vector<std::string>{"a@x", "b@x"}));
  EXPECT_EQ(e->recipient_count, 2u);
  // Cut strings stay valid UTF-8.
  line["mail_from"] = std::string(511, 'a') + "\xC3\xA9";
  e = event_from_audit(line);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sender, std::string(511, 'a'));
}

}  // namespace
}  // namespace sg::monitor
