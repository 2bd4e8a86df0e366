// doctor's pure parsers: /proc/net/tcp*, php.ini sendmail_path, firewall text.
#include <gtest/gtest.h>

#include "doctor/doctor.hpp"

namespace sg::doctor {
namespace {

const char* kTcp =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
    "   0: 0100007F:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "1111 1 0000000000000000 100 0 0 10 0\n"
    "   1: 00000000:024B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "2222 1 0000000000000000 100 0 0 10 0\n"
    "   2: 0A0200C0:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 "
    "3333 1 0000000000000000 100 0 0 10 0\n"
    "   3: 0A0200C0:D431 0B0200C0:0019 01 00000000:00000000 00:00000000 00000000     0        0 "
    "4444 1 0000000000000000 100 0 0 10 0\n"
    "garbage line\n"
    "   4: 0A0200C0:ZZZZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "5555\n";

TEST(ProcNetTcp, ListenEntriesWithAddressesPortsAndInodes) {
  auto s = parse_proc_net_tcp(kTcp, false);
  ASSERT_EQ(s.size(), 3u);  // the connected socket and the bad port are skipped
  EXPECT_EQ(s[0].address, "127.0.0.1");
  EXPECT_EQ(s[0].port, 25);
  EXPECT_TRUE(s[0].loopback);
  EXPECT_EQ(s[0].inode, 1111u);
  EXPECT_EQ(s[1].address, "0.0.0.0");
  EXPECT_EQ(s[1].port, 587);
  EXPECT_FALSE(s[1].loopback);
  EXPECT_EQ(s[2].address, "192.0.2.10");
  EXPECT_EQ(s[2].inode, 3333u);
}

TEST(ProcNetTcp, Ipv6AnyLoopbackAndMapped) {
  const std::string tail =
      " 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 ";
  std::string text = "  sl local rem\n";
  text += "   0: 00000000000000000000000000000000:01D1" + tail + "7\n";
  text += "   1: 00000000000000000000000001000000:0019" + tail + "8\n";
  text += "   2: 0000000000000000FFFF00000100007F:0019" + tail + "9\n";
  text += "   3: B80D0120000000000000000001000000:0019" + tail + "10\n";
  auto s = parse_proc_net_tcp(text, true);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].address, "::");
  EXPECT_EQ(s[0].port, 465);
  EXPECT_FALSE(s[0].loopback);
  EXPECT_EQ(s[1].address, "::1");
  EXPECT_TRUE(s[1].loopback);
  EXPECT_EQ(s[2].address, "::ffff:127.0.0.1");
  EXPECT_TRUE(s[2].loopback);
  EXPECT_EQ(s[3].address, "2001:db8::1");
  EXPECT_FALSE(s[3].loopback);
  EXPECT_TRUE(parse_proc_net_tcp(text, false).empty());  // v6 lines are not v4 ones
}

TEST(ProcNetTcp, SocketLinks) {
  EXPECT_EQ(socket_inode("socket:[12345]"), 12345u);
  EXPECT_FALSE(socket_inode("pipe:[12345]"));
  EXPECT_FALSE(socket_inode("socket:[]"));
  EXPECT_FALSE(socket_inode("socket:[12x]"));
  EXPECT_FALSE(socket_inode("/dev/null"));
}

TEST(PhpIni, LastSendmailPathWinsQuotesAndCommentsRemoved) {
  EXPECT_FALSE(ini_sendmail_path("; sendmail_path = /x\n[mail function]\nSMTP = localhost\n"));
  EXPECT_EQ(ini_sendmail_path("sendmail_path = /usr/sbin/sendmail -t -i\n"),
            "/usr/sbin/sendmail -t -i");
  EXPECT_EQ(ini_sendmail_path("sendmail_path=/a\nsendmail_path = \"/usr/bin/smtpguard sendmail "
                              "-t -i\" ; ours\n"),
            "/usr/bin/smtpguard sendmail -t -i");
  EXPECT_EQ(ini_sendmail_path("sendmail_path = /usr/sbin/sendmail -t ; comment\r\n"),
            "/usr/sbin/sendmail -t");
  EXPECT_FALSE(ini_sendmail_path("php_admin_value[sendmail_path] = /x\n"));
  EXPECT_EQ(ini_sendmail_path("php_admin_value[sendmail_path] = /usr/sbin/sendmail -t\n", true),
            "/usr/sbin/sendmail -t");
}

TEST(Firewall, OwnerRuleAndSmtpRejectBothNeeded) {
  const char* nft =
      "table inet smtpguard_egress {\n"
      "  chain out {\n"
      "    type filter hook output priority filter; policy accept;\n"
      "    oifname \"lo\" accept\n"
      "    tcp dport { 25, 465, 587 } meta skuid { 0, 999 } accept\n"
      "    tcp dport { 25, 465, 587 } reject with tcp reset\n"
      "  }\n}\n";
  EXPECT_TRUE(analyse_firewall(nft).found());
  const char* ipt =
      "*filter\n:OUTPUT ACCEPT [0:0]\n"
      "-A OUTPUT -p tcp -m multiport --dports 25,465,587 -m owner --uid-owner 0 -j ACCEPT\n"
      "-A OUTPUT -p tcp -m multiport --dports 25,465,587 -j REJECT --reject-with tcp-reset\n"
      "COMMIT\n";
  EXPECT_TRUE(analyse_firewall(ipt).found());
  EXPECT_FALSE(analyse_firewall("-A OUTPUT -p tcp --dport 2525 -j DROP\n"
                                "-A OUTPUT -m owner --uid-owner 0 -j ACCEPT\n")
                   .found());
  auto only_block = analyse_firewall("-A OUTPUT -p tcp --dport 25 -j DROP\n");
  EXPECT_TRUE(only_block.blocks_smtp_ports);
  EXPECT_FALSE(only_block.found());
  EXPECT_FALSE(analyse_firewall("").found());
  EXPECT_FALSE(analyse_firewall("# tcp dport 25 reject skuid\n").found());
}

}  // namespace
}  // namespace sg::doctor
