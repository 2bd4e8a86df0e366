// Exim main log parsing, the reader's per-identity counts and the detector
// feed, on handwritten Debian (+all, +millisec) and cPanel lines.
#include "monitor/exim_log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "monitor/exim_log_detect.hpp"

namespace sg::monitor::exim {
namespace {

// 2026-11-28 02:43:39 UTC
constexpr std::int64_t kT = 1795833819;

TEST(EximLogParse, DebianAuthenticatedArrival) {
  Line l;
  ASSERT_TRUE(parse_line(
      "2026-11-28 02:43:39.087 1xX8Pb-0000mp-0H <= box@shop.example.com H=([127.0.0.1]) "
      "[127.0.0.1]:47682 I=[127.0.0.1]:59747 P=esmtpa L.- A=mailbox_plain:box@shop.example.com "
      "S=189 M8S=0 RT=0.001s T=\"t1\" from <box@shop.example.com> for a@shop.example.com "
      "b@shop.example.com",
      l));
  EXPECT_EQ(l.kind, Kind::arrival);
  EXPECT_EQ(l.time, kT);
  EXPECT_EQ(l.id, "1xX8Pb-0000mp-0H");
  EXPECT_EQ(l.address, "box@shop.example.com");
  EXPECT_EQ(l.host_ip, "127.0.0.1");
  EXPECT_EQ(l.protocol, "esmtpa");
  EXPECT_EQ(l.authenticator, "mailbox_plain");
  EXPECT_EQ(l.auth, "box@shop.example.com");
  EXPECT_EQ(l.size, 189u);
  EXPECT_EQ(l.recipients, 2u);
  EXPECT_EQ(l.recipient_list, "a@shop.example.com b@shop.example.com");
}

TEST(EximLogParse, CpanelArrivalWithQuotedSubjectHostAndZone) {
  Line l;
  ASSERT_TRUE(parse_line(
      "2026-11-28 03:43:39 +0100 [4242] 1x5dJQ-00000002ksM-1pMm <= noreply@shop.example "
      "H=ncc.example.net ([127.0.0.1]) [2001:db8::7]:59324 P=esmtpsa "
      "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no DN=\"C=DE, O=x A=evil:no\" "
      "A=dovecot_login:noreply@shop.example S=23324 id=x@y T=\"A \\\"for\\\" for y A=z\" "
      "for support@shop.example",
      l));
  EXPECT_EQ(l.kind, Kind::arrival);
  EXPECT_EQ(l.time, kT);  // +0100 applied
  EXPECT_EQ(l.pid, "4242");
  EXPECT_EQ(l.id, "1x5dJQ-00000002ksM-1pMm");  // 4.97+ id format
  EXPECT_EQ(l.host_ip, "2001:db8::7");
  EXPECT_EQ(l.authenticator, "dovecot_login");
  EXPECT_EQ(l.auth, "noreply@shop.example");
  EXPECT_EQ(l.message_id, "x@y");
  EXPECT_EQ(l.size, 23324u);
  EXPECT_EQ(l.recipient_list, "support@shop.example");
  EXPECT_EQ(l.recipients, 1u);
}

TEST(EximLogParse, LocalSubmissionCwdAndBounceArrival) {
  Line l;
  ASSERT_TRUE(
      parse_line("2026-11-28 02:43:39 cwd=/home/shop/public html 3 args: "
                 "/usr/sbin/sendmail -t -i",
                 l));
  EXPECT_EQ(l.kind, Kind::cwd);
  EXPECT_EQ(l.cwd, "/home/shop/public html");
  EXPECT_EQ(l.args, "/usr/sbin/sendmail -t -i");
  ASSERT_TRUE(
      parse_line("2026-11-28 02:43:39 1xX8Pb-0000nW-1h <= shop@host.example U=shop "
                 "P=local S=320 T=\"local\" for c@example.net",
                 l));
  EXPECT_EQ(l.local_user, "shop");
  EXPECT_EQ(l.protocol, "local");
  EXPECT_TRUE(l.host_ip.empty());
  ASSERT_TRUE(
      parse_line("2026-11-28 02:43:57 1xX8Pt-0000q8-2H <= <> R=1xX8Pt-0000q5-2B "
                 "U=Debian-exim P=local S=1373 T=\"Mail delivery failed\" for a@b.example",
                 l));
  EXPECT_EQ(l.address, "<>");
  EXPECT_EQ(l.bounce_of, "1xX8Pt-0000q5-2B");
}

TEST(EximLogParse, OutcomesAndAuthFailure) {
  Line l;
  ASSERT_TRUE(
      parse_line("2026-11-28 02:43:39 1xX8Pb-0000mp-0H => a <a@shop.example.com> "
                 "F=<box@shop.example.com> R=local_user T=devnull S=0",
                 l));
  EXPECT_EQ(l.kind, Kind::delivery);
  EXPECT_EQ(l.address, "a@shop.example.com");
  ASSERT_TRUE(parse_line("2026-11-28 02:43:39 1xX8Pb-0000mp-0H -> b@example.net R=x T=y", l));
  EXPECT_EQ(l.kind, Kind::delivery);
  EXPECT_EQ(l.address, "b@example.net");
  ASSERT_TRUE(
      parse_line("2026-11-28 02:43:39 1xX8Pb-0000mp-0H ** nobody@shop.example.com "
                 "F=<anon@else.example> R=bounce_user: no such user here",
                 l));
  EXPECT_EQ(l.kind, Kind::failure);
  EXPECT_EQ(l.address, "nobody@shop.example.com");
  ASSERT_TRUE(
      parse_line("2026-11-28 02:43:39 1xX8Pb-0000mp-0I == x@slow.example "
                 "R=defer_domain T=remote_smtp defer (111): Connection refused",
                 l));
  EXPECT_EQ(l.kind, Kind::deferral);
  ASSERT_TRUE(parse_line("2026-11-28 02:43:39 1xX8Pb-0000mp-0I Completed QT=0.018s", l));
  EXPECT_EQ(l.kind, Kind::completed);
  ASSERT_TRUE(
      parse_line("2026-11-28 02:43:39.305 dovecot_login authenticator failed for (User) "
                 "[198.51.100.9]:47686 I=[10.0.0.1]:25: 535 Incorrect authentication data "
                 "(set_id=info@shop.example.com)",
                 l));
  EXPECT_EQ(l.kind, Kind::auth_failure);
  EXPECT_EQ(l.authenticator, "dovecot_login");
  EXPECT_EQ(l.host_ip, "198.51.100.9");
  EXPECT_EQ(l.address, "info@shop.example.com");
}

TEST(EximLogParse, NotExim) {
  Line l;
  EXPECT_FALSE(parse_line("", l));
  EXPECT_FALSE(parse_line("Nov 28 02:43:39 host exim[1]: hello", l));
  EXPECT_FALSE(parse_line("2026-13-28 02:43:39 1xX8Pb-0000mp-0I Completed", l));
  ASSERT_TRUE(parse_line("2026-11-28 02:43:39 Start queue run: pid=2984", l));
  EXPECT_EQ(l.kind, Kind::other);
  ASSERT_TRUE(parse_line("2026-11-28 02:43:39 1xX8Pb-0000mp-0I <=", l));  // cut short
  EXPECT_EQ(l.kind, Kind::other);
  ASSERT_TRUE(parse_line("2026-11-28 02:43:39 1xX8Pb-0000mp-0I <= a T=\"unterminated", l));
  EXPECT_EQ(l.kind, Kind::arrival);
}

// A short log with every kind of line, fed in awkward pieces.
const char* kLog =
    "2026-11-28 02:43:39 1xX8Pb-0000mp-0H <= box@shop.example.com H=(pc) [198.51.100.7]:1 "
    "P=esmtpsa A=dovecot_login:box@shop.example.com S=100 for a@x.example b@y.example\n"
    "2026-11-28 02:43:39 1xX8Pb-0000mp-0H => a@x.example R=r T=t\n"
    "2026-11-28 02:43:40 1xX8Pb-0000mp-0H == b@y.example R=r T=t defer (-44): 451 later\n"
    "2026-11-28 02:43:41 1xX8Pb-0000mp-0H ** b@y.example R=r T=t: 550 unknown\n"
    "2026-11-28 02:43:41 1xX8Pb-0000mp-0H Completed\n"
    "2026-11-28 02:43:42 cwd=/var/spool/exim4 4 args: /usr/sbin/exim4 -Mc 1xX8Pb-0000mp-0I\n"
    "2026-11-28 02:43:42 cwd=/home/shop/public_html 3 args: /usr/sbin/sendmail -t -i\n"
    "2026-11-28 02:43:42 1xX8Pc-0000mp-0J <= shop@host.example U=shop P=local S=9 "
    "for c@z.example\n"
    "2026-11-28 02:43:42 1xX8Pc-0000mp-0J => c@z.example R=r T=t\n"
    "2026-11-28 02:43:43 1xX8Pc-0000mp-0K <= root@host.example U=root P=local S=9\n"
    "2026-11-28 02:43:43 1xX8Pc-0000mp-0K => d <d@host.example> R=r T=t\n"
    "2026-11-28 02:43:44 dovecot_login authenticator failed for (x) [192.0.2.1]:5: 535 "
    "Incorrect authentication data (set_id=box@shop.example.com)\n"
    "garbage line\n"
    "2026-11-28 02:43:45 1xX8Pc-0000mp-0K => e@x.example R=r T=t";  // no final newline

const Counts* find(const EximLogReader& r, std::string_view name) {
  for (const auto& id : r.identities())
    if (id.name == name) return &id.counts;
  return nullptr;
}

TEST(EximLogReader, CountsPerIdentityAcrossChunks) {
  for (std::size_t piece : {1u, 7u, 64u, 100000u}) {
    std::vector<Observation::What> seen;
    EximLogReader r([&](const Observation& o) { seen.push_back(o.what); });
    std::string_view log = kLog;
    for (std::size_t i = 0; i < log.size(); i += piece) r.feed(log.substr(i, piece));
    r.finish();
    EXPECT_EQ(r.lines(), 14u) << piece;
    EXPECT_EQ(r.unparsed(), 1u);
    const Counts* box = find(r, "auth:box@shop.example.com");
    ASSERT_NE(box, nullptr);
    EXPECT_EQ(box->messages, 1u);
    EXPECT_EQ(box->recipients, 2u);
    EXPECT_EQ(box->deliveries, 1u);
    EXPECT_EQ(box->deferrals, 1u);
    EXPECT_EQ(box->bounces, 1u);
    EXPECT_EQ(box->auth_failures, 1u);
    EXPECT_EQ(box->bytes, 100u);
    const Counts* ip = find(r, "ip:198.51.100.7");
    ASSERT_NE(ip, nullptr);
    EXPECT_EQ(ip->messages, 1u);
    const Counts* shop = find(r, "user:shop");
    ASSERT_NE(shop, nullptr);
    EXPECT_EQ(shop->messages, 1u);
    EXPECT_EQ(shop->deliveries, 1u);
    const Counts* cwd = find(r, "cwd:/home/shop/public_html");
    ASSERT_NE(cwd, nullptr);
    EXPECT_EQ(cwd->messages, 1u);
    EXPECT_EQ(find(r, "cwd:/var/spool/exim4"), nullptr);  // a delivery process, not a sender
    // root's message listed no recipients: each outcome counts one.
    const Counts* root = find(r, "user:root");
    ASSERT_NE(root, nullptr);
    EXPECT_EQ(root->messages, 1u);
    EXPECT_EQ(root->recipients, 2u);
    EXPECT_EQ(root->deliveries, 2u);
    const Counts* attacker = find(r, "ip:192.0.2.1");
    ASSERT_NE(attacker, nullptr);
    EXPECT_EQ(attacker->auth_failures, 1u);
    EXPECT_EQ(attacker->messages, 0u);
  }
}

TEST(EximLogReader, LongLinesAreCutAndPartialLinesForgotten) {
  EximLogReader r;
  std::string huge = "2026-11-28 02:43:39 1xX8Pb-0000mp-0H <= a@b.example S=1 for " +
                     std::string(EximLogReader::kMaxLine * 3, 'x') + "\n";
  r.feed(huge);
  r.feed("2026-11-28 02:43:39 torn");
  r.reset_partial();
  r.feed("2026-11-28 02:43:40 1xX8Pb-0000mp-0I <= c@d.example U=u P=local S=1\n");
  r.finish();
  EXPECT_EQ(r.lines(), 2u);
  EXPECT_EQ(r.unparsed(), 0u);
  const Counts* u = find(r, "user:u");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->messages, 1u);
}

// The classic incident on the log's clock: an authenticated mailbox sends
// 200 messages a minute to distinct recipients; the rate detector fires
// within the first minute, at a log time, and a replay gives the same.
std::vector<Action> replay(const std::string& log) {
  DetectorFeed feed;
  std::vector<Action> actions;
  EximLogReader r([&](const Observation& o) { feed.observe(o, actions); });
  r.feed(log);
  r.finish();
  return actions;
}

std::string burst_log() {
  std::string log;
  char line[512];
  for (int i = 0; i < 400; ++i) {
    int sec = i * 60 / 200;  // 200 a minute
    std::snprintf(line, sizeof line,
                  "2026-11-28 03:%02d:%02d 1xX8Pb-%06d-0H <= box@shop.example.com "
                  "H=(pc) [198.51.100.7]:1 P=esmtpsa A=dovecot_login:box@shop.example.com "
                  "S=100 for r%d@victim.example\n",
                  sec / 60, sec % 60, i, i);
    log += line;
  }
  for (int i = 0; i < 10; ++i) {
    std::snprintf(line, sizeof line,
                  "2026-11-28 04:00:%02d dovecot_login authenticator failed for (x) "
                  "[192.0.2.1]:5: 535 Incorrect authentication data (set_id=admin%d)\n",
                  i, i);
    log += line;
  }
  return log;
}

TEST(EximLogDetect, BurstAndAuthFailuresFireOnTheLogClock) {
  auto actions = replay(burst_log());
  const Action* rate = nullptr;
  const Action* auth = nullptr;
  for (const auto& a : actions) {
    if (a.detector == "rate" && a.subject == "auth:box@shop.example.com") rate = &a;
    if (a.detector == "auth" && a.subject == "192.0.2.1") auth = &a;
  }
  ASSERT_NE(rate, nullptr);
  EXPECT_EQ(rate->scope, Scope::identity);
  EXPECT_EQ(rate->action, config::DetectAction::hold);
  // 2026-11-28 03:00:00 UTC plus less than a minute.
  EXPECT_GE(rate->time, 1795834800);
  EXPECT_LT(rate->time, 1795834800 + 60);
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->action, config::DetectAction::block);

  auto again = replay(burst_log());
  ASSERT_EQ(again.size(), actions.size());
  for (std::size_t i = 0; i < actions.size(); ++i) {
    EXPECT_EQ(to_json(again[i]), to_json(actions[i]));
  }
}

}  // namespace
}  // namespace sg::monitor::exim
