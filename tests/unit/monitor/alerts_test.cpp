// Alert sinks: dedup per key, the burst budget, the suppressed count, and
// the documents webhooks and mail recipients get. Uses the exec sink with
// real programs (/bin/true, /bin/false, a script) rather than a stand-in.
#include "monitor/alerts.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sg::monitor {
namespace {

AlertEvent alert(std::string key, std::int64_t time) {
  AlertEvent a;
  a.key = std::move(key);
  a.severity = "critical";
  a.title = "identity shop held";
  a.detail = "212 messages in one minute\nline two";
  a.host = "web1";
  a.time = time;
  return a;
}

AlertSinks exec_sinks(const std::string& program, std::uint32_t min_interval = 300) {
  config::Alert a;
  a.exec = program;
  a.min_interval_seconds = min_interval;
  return AlertSinks({a}, {}, {});
}

TEST(AlertSinks, SameKeyIsDeduplicatedWithinMinInterval) {
  auto sinks = exec_sinks("/bin/true");
  auto first = sinks.send(alert("rate:shop", 1000));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].sent) << first[0].error;
  auto again = sinks.send(alert("rate:shop", 1100));
  EXPECT_TRUE(again[0].suppressed);
  EXPECT_FALSE(again[0].sent);
  auto other = sinks.send(alert("rate:blog", 1100));
  EXPECT_TRUE(other[0].sent);
  auto later = sinks.send(alert("rate:shop", 1300));
  EXPECT_TRUE(later[0].sent);
}

TEST(AlertSinks, BurstBudgetThenOnePerMinute) {
  auto sinks = exec_sinks("/bin/true");
  int sent = 0;
  for (int i = 0; i < 15; ++i)
    sent += sinks.send(alert("k" + std::to_string(i), 5000))[0].sent ? 1 : 0;
  EXPECT_EQ(sent, static_cast<int>(AlertSinks::kBurst));
  EXPECT_TRUE(sinks.send(alert("k99", 5030))[0].suppressed);
  EXPECT_TRUE(sinks.send(alert("k100", 5061))[0].sent);
}

TEST(AlertSinks, SuppressedCountReachesTheNextAlert) {
  auto dir = std::filesystem::temp_directory_path() / ("sg-alerts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto out = dir / "out.json";
  auto script = dir / "hook.sh";
  std::ofstream(script) << "#!/bin/sh\ncat > " << out.string() << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  auto sinks = exec_sinks(script.string());
  ASSERT_TRUE(sinks.send(alert("a", 100))[0].sent);
  EXPECT_TRUE(sinks.send(alert("a", 110))[0].suppressed);
  EXPECT_TRUE(sinks.send(alert("a", 120))[0].suppressed);
  ASSERT_TRUE(sinks.send(alert("b", 130))[0].sent);
  std::ifstream in(out);
  auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["suppressed"], 2);
  EXPECT_NE(doc["text"].get<std::string>().find("2 more alerts suppressed"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(AlertSinks, FailingProgramIsReportedAndNotCountedAsSent) {
  auto sinks = exec_sinks("/bin/false");
  auto o = sinks.send(alert("x", 1));
  EXPECT_FALSE(o[0].sent);
  EXPECT_EQ(o[0].error, "exited with status 1");
  auto missing = exec_sinks("/nonexistent/page-me").send(alert("x", 1));
  EXPECT_EQ(missing[0].error, "cannot run /nonexistent/page-me");
}

TEST(AlertDocuments, JsonHasSlackTextAndFields) {
  auto a = alert("rate:shop", 1700000000);
  a.fields = {{"detector", "rate"}, {"subject", "shop"}};
  auto j = alert_json(a, 0);
  EXPECT_EQ(j["text"], "[smtpguard web1] identity shop held");
  EXPECT_EQ(j["fields"]["detector"], "rate");
  EXPECT_EQ(j["suppressed"], 0);
}

TEST(AlertDocuments, EmailHeadersCannotBeForgedBySubjects) {
  auto a = alert("k", 1700000000);
  a.title = "evil\r\nBcc: victim@example.com \xc3\xa9";
  std::string m = alert_email(a, 0, "guard@example.com", "ops@example.com", "1.abc@web1");
  auto headers = m.substr(0, m.find("\r\n\r\n"));
  EXPECT_EQ(headers.find("\r\nBcc:"), std::string::npos);
  EXPECT_NE(headers.find("Subject: [smtpguard web1] evil  Bcc: victim@example.com ??"),
            std::string::npos);
  EXPECT_NE(headers.find("Date: Tue, 14 Nov 2023 22:13:20 +0000"), std::string::npos);
  // Every line ends in CRLF; no bare LF in the body.
  for (std::size_t i = 0; i < m.size(); ++i)
    if (m[i] == '\n') ASSERT_TRUE(i > 0 && m[i - 1] == '\r') << "bare LF at " << i;
}

}  // namespace
}  // namespace sg::monitor
