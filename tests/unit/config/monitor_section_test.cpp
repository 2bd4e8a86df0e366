// [monitor] and [[alert]]: defaults, the example from issue 7, and errors
// that name the file, line and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"

namespace sg::config {
namespace {

using ::testing::HasSubstr;

std::string error_of(std::string_view text) {
  auto r = parse(text, "t.toml");
  return r ? std::string("(parsed)") : r.error().message;
}

TEST(MonitorSection, Defaults) {
  auto c = parse("[relay]\nstate_dir = \"/var/lib/sg\"\n", "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->monitor.listen, "127.0.0.1:9325");
  EXPECT_EQ(c->monitor.audit_log, "/var/lib/sg/audit.jsonl");
  EXPECT_EQ(c->monitor.audit_max_size, 100'000'000u);
  EXPECT_EQ(c->monitor.audit_keep, 10u);
  EXPECT_FALSE(c->monitor.audit_syslog);
  EXPECT_TRUE(c->alerts.empty());
}

TEST(MonitorSection, IssueExample) {
  auto c = parse(R"(
[monitor]
listen = "127.0.0.1:9325"          # metrics (/metrics) and status page (/)
audit_log = ""                     # default: STATE_DIR/audit.jsonl

[[alert]]
webhook = "http://127.0.0.1:8080/hook"
[[alert]]
exec = "/usr/local/bin/page-me"
syslog = true
email = "ops@example.com"
min_interval = "10m"
)",
                 "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->monitor.audit_log, "./smtpguard-state/audit.jsonl");
  ASSERT_EQ(c->alerts.size(), 2u);
  EXPECT_EQ(c->alerts[0].webhook, "http://127.0.0.1:8080/hook");
  EXPECT_EQ(c->alerts[0].min_interval_seconds, 300u);
  EXPECT_EQ(c->alerts[1].exec, "/usr/local/bin/page-me");
  EXPECT_TRUE(c->alerts[1].syslog);
  EXPECT_EQ(c->alerts[1].email, "ops@example.com");
  EXPECT_EQ(c->alerts[1].min_interval_seconds, 600u);
}

TEST(MonitorSection, EmptyListenDisablesAndSizesParse) {
  auto c = parse("[monitor]\nlisten = \"\"\naudit_max_size = \"1MB\"\naudit_keep = 3\n", "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->monitor.listen, "");
  EXPECT_EQ(c->monitor.audit_max_size, 1'000'000u);
  EXPECT_EQ(c->monitor.audit_keep, 3u);
  auto never = parse("[monitor]\naudit_max_size = 0\n", "t.toml");
  ASSERT_TRUE(never);
  EXPECT_EQ(never->monitor.audit_max_size, 0u);
}

TEST(MonitorSection, Errors) {
  EXPECT_THAT(error_of("[monitor]\nlisten = \"0.0.0.0:9325\"\n"),
              HasSubstr("t.toml:2:10: monitor.listen: must be a loopback address"));
  EXPECT_THAT(error_of("[monitor]\nlisten = \"nope\"\n"), HasSubstr("monitor.listen"));
  EXPECT_THAT(error_of("[monitor]\naudit_max_size = 100\n"),
              HasSubstr("monitor.audit_max_size: expected at least 4096 bytes"));
  EXPECT_THAT(error_of("[monitor]\naudit_keep = 0\n"), HasSubstr("monitor.audit_keep"));
  EXPECT_THAT(error_of("[monitor]\nlisen = \"127.0.0.1:1\"\n"), HasSubstr("listen"));
}

TEST(AlertSection, Errors) {
  EXPECT_THAT(error_of("[[alert]]\nmin_interval = \"5m\"\n"),
              HasSubstr("names no sink: set webhook, exec, syslog = true or email"));
  EXPECT_THAT(error_of("[[alert]]\nwebhook = \"ftp://x\"\n"),
              HasSubstr("t.toml:2:11: alert[0].webhook: expected an http:// or https:// URL"));
  EXPECT_THAT(error_of("[[alert]]\nexec = \"page-me\"\n"),
              HasSubstr("alert[0].exec: expected an absolute path"));
  EXPECT_THAT(error_of("[[alert]]\nemail = \"ops\"\n"), HasSubstr("alert[0].email"));
  EXPECT_THAT(error_of("[[alert]]\nsyslog = \"yes\"\n"), HasSubstr("expected true or false"));
  EXPECT_THAT(error_of("[[alert]]\nsyslog = true\nemail_upstream = \"x\"\n"),
              HasSubstr("set only together with email"));
  EXPECT_THAT(error_of("[[alert]]\nemail = \"a@b.c\"\nemail_upstream = \"x\"\n"),
              HasSubstr("alert[0].email_upstream: no [upstream.x] is configured"));
  EXPECT_THAT(error_of("[alert]\nsyslog = true\n"), HasSubstr("expected an array of tables"));
}

}  // namespace
}  // namespace sg::config
