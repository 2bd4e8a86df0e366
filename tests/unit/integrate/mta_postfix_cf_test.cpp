// The main.cf editor: Postfix's logical lines (continuations, comments and
// blank lines inside them), in-place replacement, appends, idempotency, the
// diff; the Postfix settings and the SASL map.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integrate/mta.hpp"

namespace sg::integrate {
namespace {

using ::testing::HasSubstr;

const std::vector<MainCfSetting> kSettings = {
    {"relayhost", "[127.0.0.1]:2525"},
    {"smtp_sasl_auth_enable", "yes"},
    {"smtp_sasl_password_maps", "hash:/etc/postfix/smtpguard_sasl"},
    {"smtp_sasl_security_options", "noanonymous"},
};

MainCfEdit edit(std::string_view text, const std::vector<MainCfSetting>& s = kSettings) {
  auto r = edit_main_cf(text, s, "main.cf");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : MainCfEdit{};
}

TEST(MainCfParse, LogicalLinesAsPostfixReadsThem) {
  // Verified against postconf 3.7: relayhost = foo bar baz.
  const std::string text =
      "# header\n"
      "relayhost = foo\n"
      "# a comment inside the logical line\n"
      "  bar\n"
      "\n"
      "\tbaz\n"
      "# trailing comment belongs to nothing\n"
      "myhostname=mail.example.com\n";
  auto entries = parse_main_cf(text, "main.cf");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].name, "relayhost");
  EXPECT_EQ((*entries)[0].value, "foo bar baz");
  EXPECT_EQ((*entries)[0].first_line, 2u);
  EXPECT_EQ((*entries)[0].last_line, 6u);
  EXPECT_EQ(text.substr((*entries)[0].begin, (*entries)[0].end - (*entries)[0].begin),
            "relayhost = foo\n# a comment inside the logical line\n  bar\n\n\tbaz");
  EXPECT_EQ((*entries)[1].name, "myhostname");
  EXPECT_EQ((*entries)[1].value, "mail.example.com");
  EXPECT_EQ(main_cf_value(*entries, "relayhost"), "foo bar baz");
  EXPECT_EQ(main_cf_value(*entries, "nothing"), std::nullopt);
}

TEST(MainCfParse, LastDuplicateWins) {
  auto entries = parse_main_cf("relayhost = a\nrelayhost = b\n", "main.cf");
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(main_cf_value(*entries, "relayhost"), "b");
}

TEST(MainCfParse, RefusesWhatPostfixRefuses) {
  auto r = parse_main_cf("a = 1\nbad line\n", "/etc/postfix/main.cf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_input);
  EXPECT_THAT(r.error().message, HasSubstr("/etc/postfix/main.cf:2: missing '='"));
  EXPECT_FALSE(parse_main_cf("=value\n", "m").ok());
  EXPECT_FALSE(parse_main_cf(std::string("a = \0\n", 6), "m").ok());
  EXPECT_FALSE(parse_main_cf(std::string(kMaxMainCfSize + 1, '#'), "m").ok());
}

TEST(MainCfEdit, ReplacesInPlaceAndKeepsEverythingElse) {
  const std::string text =
      "# See /usr/share/postfix/main.cf.dist\n"
      "smtpd_banner = $myhostname ESMTP\n"
      "relayhost = [email-smtp.us-east-1.amazonaws.com]:587\n"
      "  # old comment\n"
      "smtp_sasl_auth_enable=no\n"
      "mynetworks = 127.0.0.0/8\n"
      "    [::1]/128\n";
  auto e = edit(text);
  EXPECT_EQ(e.text,
            "# See /usr/share/postfix/main.cf.dist\n"
            "smtpd_banner = $myhostname ESMTP\n"
            "relayhost = [127.0.0.1]:2525\n"
            "  # old comment\n"  // after the last continuation: not part of the entry
            "smtp_sasl_auth_enable=yes\n"
            "mynetworks = 127.0.0.0/8\n"
            "    [::1]/128\n"
            "# smtpguard integrate postfix: relay through the local smtpguard\n"
            "smtp_sasl_password_maps = hash:/etc/postfix/smtpguard_sasl\n"
            "smtp_sasl_security_options = noanonymous\n");
  ASSERT_EQ(e.changes.size(), 3u);
  EXPECT_EQ(e.changes[0].old_line, 3u);
  EXPECT_EQ(e.changes[1].old_line, 5u);
  EXPECT_EQ(e.changes[2].old_line, 8u);
}

TEST(MainCfEdit, ReplacesAWholeContinuedValue) {
  const std::string text =
      "relayhost =\n"
      "    [smtp.example.com]:587\n"
      "# next\n"
      "smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd,\n"
      "\thash:/etc/postfix/other\r\n"
      "x = y";
  auto e = edit(text);
  EXPECT_EQ(e.text,
            "relayhost = [127.0.0.1]:2525\n"
            "# next\n"
            "smtp_sasl_password_maps = hash:/etc/postfix/smtpguard_sasl\r\n"
            "x = y\n"
            "# smtpguard integrate postfix: relay through the local smtpguard\n"
            "smtp_sasl_auth_enable = yes\n"
            "smtp_sasl_security_options = noanonymous\n");
}

TEST(MainCfEdit, EveryDuplicateIsSet) {
  auto e = edit("relayhost = a\nrelayhost = b\n", {{"relayhost", "[127.0.0.1]:1"}});
  EXPECT_EQ(e.text, "relayhost = [127.0.0.1]:1\nrelayhost = [127.0.0.1]:1\n");
}

TEST(MainCfEdit, SecondRunChangesNothing) {
  const std::string text = "myhostname = a\nrelayhost = [x]:25\n";
  auto first = edit(text);
  EXPECT_TRUE(first.changed());
  auto second = edit(first.text);
  EXPECT_FALSE(second.changed());
  EXPECT_EQ(second.text, first.text);
  // Same value, other layout: left as written.
  const std::string spread =
      "relayhost =\n  [127.0.0.1]:2525\nsmtp_sasl_auth_enable = yes\n"
      "smtp_sasl_password_maps = hash:/etc/postfix/smtpguard_sasl\n"
      "smtp_sasl_security_options =   noanonymous  \n";
  EXPECT_FALSE(edit(spread).changed());
}

TEST(MainCfEdit, EmptyFileAndLeadingContinuation) {
  auto e = edit("", {{"relayhost", "[127.0.0.1]:1"}});
  EXPECT_EQ(e.text,
            "# smtpguard integrate postfix: relay through the local smtpguard\n"
            "relayhost = [127.0.0.1]:1\n");
  auto lead = edit("  stray\nrelayhost = a\n", {{"relayhost", "b"}});
  EXPECT_EQ(lead.text, "  stray\nrelayhost = b\n");
}

TEST(MainCfEdit, RefusesBadSettings) {
  EXPECT_FALSE(edit_main_cf("", {{"bad name", "x"}}, "m").ok());
  EXPECT_FALSE(edit_main_cf("", {{"relayhost", "a\nb = c"}}, "m").ok());
  EXPECT_FALSE(edit_main_cf("oops\n", kSettings, "m").ok());
}

TEST(MainCfEdit, Diff) {
  auto e = edit("a = 1\nrelayhost =\n  old\nb = 2\n", {{"relayhost", "new"}, {"c", "3"}});
  EXPECT_EQ(render_main_cf_diff(e, "main.cf"),
            "--- main.cf\n+++ main.cf\n"
            "@@ -2,2 +2,1 @@\n-relayhost =\n-  old\n+relayhost = new\n"
            "@@ -4,0 +4,2 @@\n"
            "+# smtpguard integrate postfix: relay through the local smtpguard\n+c = 3\n");
  EXPECT_EQ(render_main_cf_diff(edit("c = 3\n", {{"c", "3"}}), "m"), "");
}

TEST(LineDiff, HunksOfTheChangedLinesOnly) {
  const std::string before = "a\nrelayhost = x\n  # note\nb\nc\n";
  const std::string after = "a\nrelayhost = y\n  # note\nb\nc\nd = 1\n";
  EXPECT_EQ(render_main_cf_diff(line_diff(after, before), "m"),
            "--- m\n+++ m\n@@ -2,1 +2,1 @@\n-relayhost = y\n+relayhost = x\n"
            "@@ -6,1 +5,0 @@\n-d = 1\n");
  EXPECT_FALSE(line_diff(before, before).changed());
  EXPECT_TRUE(line_diff("a\n", "a").changed());  // only the final newline differs
}

TEST(PostfixSettings, RelayhostFromListen) {
  config::Config cfg = config::defaults();
  cfg.relay.listen = {"[::1]:2600", "127.0.0.1:2525"};
  EXPECT_EQ(*postfix_relayhost(cfg), "[127.0.0.1]:2525");
  cfg.relay.listen = {"localhost:26"};
  EXPECT_EQ(*postfix_relayhost(cfg), "[127.0.0.1]:26");
  cfg.relay.listen = {"[::1]:2600", "10.0.0.1:25"};
  EXPECT_EQ(postfix_relayhost(cfg).error().code, Errc::config);
}

TEST(PostfixSettings, MandatoryTlsBecomesMay) {
  auto values = [](std::string_view text, bool relay_tls) {
    auto entries = parse_main_cf(text, "m");
    EXPECT_TRUE(entries.ok());
    auto s =
        postfix_settings(*entries, "[127.0.0.1]:2525", "/etc/postfix/smtpguard_sasl", relay_tls);
    return s.size() == 5 ? s[4].value : std::string("(kept)");
  };
  EXPECT_EQ(values("smtp_tls_security_level = encrypt\n", false), "may");
  EXPECT_EQ(values("smtp_tls_security_level = encrypt\n", true), "(kept)");
  EXPECT_EQ(values("smtp_tls_security_level = verify\n", true), "may");
  EXPECT_EQ(values("smtp_tls_security_level = may\n", false), "(kept)");
  EXPECT_EQ(values("smtp_enforce_tls = yes\n", false), "may");
  EXPECT_EQ(values("", false), "(kept)");
  auto entries = parse_main_cf("", "m");
  auto s = postfix_settings(*entries, "[127.0.0.1]:9", "/x/smtpguard_sasl", false);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[2].value, "hash:/x/smtpguard_sasl");
}

TEST(SaslMap, RenderAndReadBack) {
  Secret pw = Secret::copy_of("Abc123xyz");
  Secret map = render_sasl_map("[127.0.0.1]:2525", "postfix", pw);
  EXPECT_EQ(map.view(), "[127.0.0.1]:2525 postfix:Abc123xyz\n");
  auto back = sasl_map_password(map.view(), "[127.0.0.1]:2525", "postfix");
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->equals(pw));
  EXPECT_FALSE(sasl_map_password(map.view(), "[127.0.0.1]:2526", "postfix").has_value());
  EXPECT_FALSE(sasl_map_password(map.view(), "[127.0.0.1]:2525", "exim").has_value());
  auto spaced = sasl_map_password("# c\n\n  [h]:1\t u:p:q  \n", "[h]:1", "u");
  ASSERT_TRUE(spaced.has_value());
  EXPECT_EQ(spaced->view(), "p:q");
}

TEST(PhpDropin, CommandAndText) {
  auto cmd = php_sendmail_command("/usr/bin/smtpguard", "");
  ASSERT_TRUE(cmd.ok());
  EXPECT_EQ(*cmd, "/usr/bin/smtpguard sendmail -t -i");
  auto with = php_sendmail_command("/usr/bin/smtpguard", "/srv/sg/smtpguard.toml");
  EXPECT_EQ(*with, "/usr/bin/smtpguard --config /srv/sg/smtpguard.toml sendmail -t -i");
  for (const char* bad : {"smtpguard", "/opt/my dir/sg", "/opt/\"x", "/opt/$x", "/a;b", ""})
    EXPECT_FALSE(php_sendmail_command(bad, "").ok()) << bad;
  EXPECT_FALSE(php_sendmail_command("/usr/bin/smtpguard", "rel.toml").ok());
  const std::string ini = render_php_dropin(*cmd);
  EXPECT_EQ(ini.rfind(kPhpDropinMarker, 0), 0u);
  EXPECT_THAT(ini, HasSubstr("\nsendmail_path = \"/usr/bin/smtpguard sendmail -t -i\"\n"));
  const std::string help = php_smtp_instructions("127.0.0.1", 2525, *cmd);
  EXPECT_THAT(help, HasSubstr("host 127.0.0.1, port 2525"));
  EXPECT_THAT(help, HasSubstr("smtpguard client add NAME --password-stdin --allowed-sender"));
}

}  // namespace
}  // namespace sg::integrate
