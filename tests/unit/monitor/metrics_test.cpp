// Metrics and status page: counters from audit lines, the Prometheus text
// format (golden checks), the status page's content.
#include <gtest/gtest.h>

#include "monitor/monitor.hpp"

namespace sg::monitor {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

Stats from_lines(const std::vector<std::string>& lines) {
  Stats s;
  for (const auto& l : lines) s.observe_line(l);
  return s;
}

std::string line(std::string_view event, std::string_view fields, std::int64_t t = kNow - 30) {
  return "{\"time\":" + std::to_string(t) + ",\"event\":\"" + std::string(event) + "\"" +
         (fields.empty() ? "" : ",") + std::string(fields) + "}";
}

TEST(Stats, CountsEventsPerIdentityAndUpstream) {
  Stats s = from_lines({
      line("received", R"("identity":"shop","recipients":1,"prev":"ab12","seq":7)"),
      line("received", R"("identity":"shop")"),
      line("held", R"("identity":"shop","rule":"paused")"),
      line("held", R"("id":"x","by":"operator")"),  // an operator's hold: not a submission
      line("refused", R"("identity":"","rule":"auth")"),
      line("refused", R"("identity":"blog","rule":"sender")"),
      line("delivered", R"("identity":"shop","upstream":"ses","upstream_id":"0100")"),
      line("deferred", R"("identity":"shop","upstream":"ses","reply":"451 4.3.0 busy")"),
      line("bounced", R"("identity":"shop","upstream":"ses","reply":"550 5.1.1 no")"),
      line("deferred", R"("identity":"shop","upstream":"ses","reply":"connection refused")"),
      line("throttled", R"("upstream":"ses","reply":"454 Throttling")"),
      line("alert", R"("kind":"daily_quota","upstream":"ses","hint":"wait")"),
      line("auth_failed", R"("peer":"127.0.0.1")"),
      "not json",
      "[1,2]",
      R"({"event":3})",
  });
  EXPECT_EQ(s.lines, 16u);
  EXPECT_EQ(s.unparsed, 3u);
  EXPECT_EQ(s.identities["shop"].received, 2u);
  EXPECT_EQ(s.identities["shop"].held, 1u);
  EXPECT_EQ(s.identities["shop"].delivered, 1u);
  EXPECT_EQ(s.identities["shop"].deferred, 2u);
  EXPECT_EQ(s.identities["shop"].bounced, 1u);
  EXPECT_EQ(s.identities[""].refused, 1u);
  EXPECT_EQ(s.identities["blog"].refused, 1u);
  auto route = s.routes[{"shop", "ses"}];
  EXPECT_EQ(route.delivered, 1u);
  EXPECT_EQ(route.deferred, 2u);
  EXPECT_EQ(route.bounced, 1u);
  EXPECT_EQ((s.reply_classes[{"ses", "2xx"}]), 1u);
  EXPECT_EQ((s.reply_classes[{"ses", "4xx"}]), 1u);
  EXPECT_EQ((s.reply_classes[{"ses", "5xx"}]), 1u);
  EXPECT_EQ((s.reply_classes[{"ses", "local"}]), 1u);
  EXPECT_EQ(s.throttled["ses"], 1u);
  EXPECT_EQ(s.alerts["daily_quota"], 1u);
  ASSERT_EQ(s.recent_alerts.size(), 1u);
  EXPECT_EQ(s.recent_alerts[0].subject, "ses");
  EXPECT_EQ(s.recent_alerts[0].detail, "wait");
  EXPECT_EQ(s.auth_failures, 1u);
  EXPECT_EQ(s.submitted_per_minute["shop"][(kNow - 30) / 60], 3u);
}

TEST(Stats, SendRateAndPruning) {
  Stats s;
  for (int i = 0; i < 30; ++i)
    s.observe_line(line("delivered", R"("identity":"a","upstream":"ses")", kNow - i));
  s.observe_line(line("delivered", R"("identity":"a","upstream":"ses")", kNow - 600));
  s.observe_line(line("received", R"("identity":"a")", kNow - 7200));
  EXPECT_DOUBLE_EQ(s.send_rate("ses", kNow), 0.5);
  EXPECT_DOUBLE_EQ(s.send_rate("other", kNow), 0.0);
  s.prune(kNow);
  EXPECT_EQ(s.delivered_per_second["ses"].size(), 30u);
  EXPECT_TRUE(s.submitted_per_minute["a"].empty());
  EXPECT_EQ(s.identities["a"].received, 1u);  // counters are never pruned
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value("plain"), "plain");
}

TEST(Metrics, GoldenExposition) {
  Snapshot snap;
  snap.now = kNow;
  snap.stats = from_lines({line("received", R"("identity":"sh\"op\n")"),
                           line("delivered", R"("identity":"a","upstream":"ses")")});
  snap.queue = {3, 1, 0, kNow - 100, 0};
  snap.paused = true;
  snap.upstreams = {{"ses", "ses", 14}};
  snap.credentials = {{"ses", kNow - 10 * 86400 - 5}};
  snap.actions = {{"rate", "a", "hold", "too fast", kNow}};
  std::string m = render_metrics(snap);
  for (const char* expected : {
           "# HELP smtpguard_messages_received_total Messages accepted for delivery, per local "
           "identity.\n# TYPE smtpguard_messages_received_total counter\n",
           "smtpguard_messages_received_total{identity=\"sh\\\"op\\n\"} 1\n",
           "smtpguard_messages_received_total{identity=\"a\"} 0\n",
           "smtpguard_recipients_delivered_total{identity=\"a\",upstream=\"ses\"} 1\n",
           "smtpguard_upstream_replies_total{upstream=\"ses\",class=\"2xx\"} 1\n",
           "# TYPE smtpguard_queue_messages gauge\n",
           "smtpguard_queue_messages{queue=\"ready\"} 3\n",
           "smtpguard_queue_messages{queue=\"held\"} 1\n",
           "smtpguard_queue_oldest_age_seconds{queue=\"ready\"} 100\n",
           "smtpguard_queue_oldest_age_seconds{queue=\"held\"} 0\n",
           "smtpguard_paused 1\n",
           "smtpguard_upstream_max_send_rate{upstream=\"ses\"} 14\n",
           "smtpguard_upstream_send_rate{upstream=\"ses\"} 0.016666666666666666\n",
           "smtpguard_credential_age_days{credential=\"ses\"} 10\n",
           "smtpguard_anomaly_active{detector=\"rate\",subject=\"a\",action=\"hold\"} 1\n",
           "smtpguard_audit_lines_total 2\n",
       })
    EXPECT_NE(m.find(expected), std::string::npos) << expected << "\n---\n" << m;
  // Every sample line belongs to a family declared just before (HELP, TYPE),
  // counters end in _total, and the text ends with a newline.
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.back(), '\n');
  std::string family, type;
  std::size_t pos = 0;
  while (pos < m.size()) {
    std::size_t end = m.find('\n', pos);
    std::string l = m.substr(pos, end - pos);
    pos = end + 1;
    if (l.rfind("# HELP ", 0) == 0) {
      family = l.substr(7, l.find(' ', 7) - 7);
      continue;
    }
    if (l.rfind("# TYPE ", 0) == 0) {
      EXPECT_EQ(l.substr(7, family.size()), family);
      type = l.substr(8 + family.size());
      if (type == "counter") {
        EXPECT_EQ(family.substr(family.size() - 6), "_total") << family;
      }
      continue;
    }
    std::string name = l.substr(0, l.find_first_of("{ "));
    EXPECT_EQ(name, family) << l;
    EXPECT_EQ(name.rfind("smtpguard_", 0), 0u) << l;
  }
}

TEST(StatusPage, ShowsCountsChartAndState) {
  Snapshot snap;
  snap.now = kNow;
  std::vector<std::string> lines;
  for (int i = 0; i < 5; ++i) lines.push_back(line("received", R"("identity":"shop")", kNow - 120));
  lines.push_back(line("received", R"("identity":"<b>x</b>")", kNow - 60));
  lines.push_back(line("alert", R"("kind":"detector:rate","subject":"shop","reason":"burst")"));
  snap.stats = from_lines(lines);
  snap.queue.held = 4;
  snap.paused = true;
  snap.upstreams = {{"ses", "ses", 14}};
  snap.credentials = {{"ses", kNow - 95 * 86400}};
  snap.actions = {{"rate", "shop", "hold", "120 messages in a minute", kNow - 10}};
  std::string html = render_status_page(snap);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);  // no external assets
  EXPECT_NE(html.find("data-paused=\"1\""), std::string::npos);
  EXPECT_NE(html.find("PAUSED"), std::string::npos);
  EXPECT_NE(html.find("<svg id=\"rate-chart\""), std::string::npos);
  EXPECT_NE(html.find("data-identity=\"shop\" data-count=\"5\""), std::string::npos);
  EXPECT_NE(html.find("<td class=\"received\">5</td>"), std::string::npos);
  EXPECT_NE(html.find("<b id=\"held-count\">4</b>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"age\">95</td>"), std::string::npos);
  EXPECT_NE(html.find("class=\"bad\">95 days"), std::string::npos);  // over rotation_max_days
  EXPECT_NE(html.find("120 messages in a minute"), std::string::npos);
  EXPECT_NE(html.find("burst"), std::string::npos);
  // Names from clients are escaped.
  EXPECT_EQ(html.find("<b>x</b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;x&lt;/b&gt;"), std::string::npos);
}

TEST(StatusPage, EmptyStateRenders) {
  Snapshot snap;
  snap.now = kNow;
  std::string html = render_status_page(snap);
  EXPECT_NE(html.find("data-paused=\"0\""), std::string::npos);
  EXPECT_NE(html.find("</html>"), std::string::npos);
}

}  // namespace
}  // namespace sg::monitor
