// integrate/exim renderers and parsers: marked blocks go in and come out
// leaving the rest byte-exact, passwd.client keeps every password character,
// client authenticator names are found, the backup manifest round-trips.
#include <gtest/gtest.h>

#include <string>

#include "integrate/exim.hpp"

namespace sg::integrate::exim {
namespace {

constexpr std::string_view kConfig =
    "primary_hostname = h.example\n"
    "domainlist local_domains = @ : localhost\n"
    "begin routers\n"
    "\n"
    "dnslookup:\n"
    "  driver = dnslookup\n"
    "begin transports\n"
    "remote_smtp:\n"
    "  driver = smtp\n"
    "begin authenticators\n"
    "server_plain:\n"
    "  driver = plaintext\n"
    "  public_name = PLAIN\n"
    "  server_condition = no\n";

Blocks blocks() {
  return smarthost_blocks({2525, "/etc/exim4/smtpguard.secret", true, LocalLogin::own_plain});
}

TEST(EximConfig, InsertsRouterFirstAndStripsBackToTheOriginal) {
  auto out = apply_to_config(kConfig, blocks(), "exim.conf");
  ASSERT_TRUE(out.ok()) << out.error().message;
  const auto router = out->find("smtpguard_relay:");
  ASSERT_NE(router, std::string::npos);
  EXPECT_LT(router, out->find("dnslookup:"));
  EXPECT_GT(router, out->find("begin routers"));
  EXPECT_NE(out->find("port = 2525"), std::string::npos);
  EXPECT_NE(out->find("headers_remove = X-Smtpguard-Submitter"), std::string::npos);
  EXPECT_NE(out->find("${readfile{/etc/exim4/smtpguard.secret}}"), std::string::npos);
  auto back = strip_blocks(*out, "exim.conf");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, kConfig);
  // Rendering again over the result gives the same text (idempotent).
  auto again = apply_to_config(*out, blocks(), "exim.conf");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *out);
}

TEST(EximConfig, AppendsMissingSections) {
  auto out = apply_to_config("primary_hostname = x\n", blocks(), "c");
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->find("\nbegin routers\n# BEGIN smtpguard"), std::string::npos);
  EXPECT_NE(out->find("\nbegin authenticators\n# BEGIN smtpguard"), std::string::npos);
  auto again = apply_to_config(*out, blocks(), "c");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *out);
}

TEST(EximConfig, UnbalancedMarkersAreRefusedWithTheLine) {
  auto r = strip_blocks("a\n# BEGIN smtpguard\nb\n", "exim.conf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exim.conf line 2"), std::string::npos);
  EXPECT_FALSE(strip_blocks("# END smtpguard\n", "x").ok());
}

TEST(EximConfig, CpanelLocalGetsBlocksAfterItsTags) {
  auto out = apply_to_cpanel_local("@AUTH@\n\n@ROUTERSTART@\n", blocks(), "exim.conf.local");
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->find("@ROUTERSTART@\n# BEGIN smtpguard"), std::string::npos);
  EXPECT_NE(out->find("@TRANSPORTSTART@\n# BEGIN smtpguard"), std::string::npos);  // appended
  auto back = strip_blocks(*out, "l");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "@AUTH@\n\n@ROUTERSTART@\n@TRANSPORTSTART@\n");
}

TEST(EximConfig, FindsClientAuthenticatorNamesOnly) {
  const std::string debianish = std::string(kConfig) +
                                "plain:\n  driver = plaintext\n  public_name = PLAIN\n"
                                "  client_send = \"<; ^a^b\"\n"
                                "login:\n  driver = plaintext\n  public_name = \"login\"\n"
                                ".ifndef X\n  client_send = <; ; a ; b\n.endif\n"
                                "begin retry\nx_client = 1\n";
  auto names = client_public_names(debianish);
  EXPECT_EQ(names, (std::vector<std::string>{"PLAIN", "LOGIN"}));
  EXPECT_TRUE(client_public_names(kConfig).empty());  // server_plain is server-only
}

TEST(EximConfig, LocalDomainsAndLoginChoices) {
  EXPECT_TRUE(defines_local_domains(kConfig));
  EXPECT_FALSE(defines_local_domains("# domainlist local_domains = x\n"));
  auto login = smarthost_blocks({25, "/s", false, LocalLogin::own_login});
  EXPECT_NE(login.router.find("domains = ! @ : ! localhost"), std::string::npos);
  EXPECT_NE(login.auth.find("public_name = LOGIN"), std::string::npos);
  auto debian = smarthost_blocks({25, "/s", true, LocalLogin::debian_passwd_client});
  EXPECT_TRUE(debian.auth.empty());
  EXPECT_NE(debian.main.find("AUTH_CLIENT_ALLOW_NOTLS_PASSWORDS"), std::string::npos);
}

Secret passwd(std::string_view existing, std::string_view pw) {
  auto r = render_passwd_client(existing, "email-smtp.eu-west-1.amazonaws.com", "AKIAEXAMPLE",
                                Secret::copy_of(pw));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : Secret();
}

TEST(PasswdClient, KeepsEveryCharacterAndRoundTrips) {
  for (std::string_view pw : {"plain", " a/b&c\\d:e#f'g h^i", "x$y{z}", "ends in space ",
                              "tab\tinside", "line\nbreak", "{base64}literal", "caf\xc3\xa9"}) {
    Secret file = passwd("", pw);
    auto back = passwd_client_password(file, "email-smtp.eu-west-1.amazonaws.com");
    ASSERT_TRUE(back.ok()) << pw;
    EXPECT_EQ(back->view(), pw);
    // One entry line (plus the marker comment), whatever the password holds.
    std::size_t lines = 0;
    for (char c : file.view()) lines += c == '\n';
    EXPECT_EQ(lines, 2u) << pw;
  }
  Secret plain = passwd("", "a/b:c");
  EXPECT_NE(plain.view().find("\nemail-smtp.eu-west-1.amazonaws.com:AKIAEXAMPLE:a/b:c\n"),
            std::string::npos);
  Secret encoded = passwd("", "trailing ");
  EXPECT_NE(encoded.view().find(":AKIAEXAMPLE:{base64}"), std::string::npos);
}

TEST(PasswdClient, ReplacesTheHostsOldLinesAndKeepsTheRest) {
  const std::string old =
      "# comment\n"
      "other.example:u:p\n"
      "email-smtp.eu-west-1.amazonaws.com:OLD:old-secret\n"
      "  continued-old\n"
      "*.example.net:w:x\n";
  Secret file = passwd(old, "new");
  const auto v = file.view();
  EXPECT_EQ(v.find("old-secret"), std::string_view::npos);
  EXPECT_EQ(v.find("continued-old"), std::string_view::npos);
  EXPECT_TRUE(v.starts_with("# comment\nother.example:u:p\n*.example.net:w:x\n# smtpguard:"));
  Secret twice = passwd(v, "new");
  EXPECT_EQ(twice.view(), v);
}

TEST(PasswdClient, RefusesWhatCannotBeWritten) {
  EXPECT_FALSE(
      render_passwd_client("", "h", "user", Secret::copy_of(std::string_view("a\0b", 3))).ok());
  EXPECT_FALSE(render_passwd_client("", "h", "us:er", Secret::copy_of("p")).ok());
  EXPECT_FALSE(render_passwd_client("", "h h", "user", Secret::copy_of("p")).ok());
  EXPECT_FALSE(render_passwd_client("", "h", "user", Secret()).ok());
  EXPECT_FALSE(
      passwd_client_blocks({"h", 587, config::TlsMode::starttls, "", "/p ${run{x}}"}).ok());
}

TEST(Manifest, RoundTripsAndRefusesDamage) {
  Manifest m;
  m.layout = "Debian split configuration (conf.d)";
  m.identity_created = "exim";
  m.files.push_back({"/etc/exim4/with space", true, 0640, 0, 105, "f0"});
  m.files.push_back({"/etc/exim4/conf.d/router/050_smtpguard", false, 0, 0, 0, ""});
  auto text = format_manifest(m);
  ASSERT_TRUE(text.ok());
  auto back = parse_manifest(*text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->layout, m.layout);
  EXPECT_EQ(back->identity_created, "exim");
  ASSERT_EQ(back->files.size(), 2u);
  EXPECT_EQ(back->files[0].path, "/etc/exim4/with space");
  EXPECT_EQ(back->files[0].mode, 0640u);
  EXPECT_EQ(back->files[0].gid, 105u);
  EXPECT_FALSE(back->files[1].existed);
  EXPECT_FALSE(parse_manifest("smtpguard-exim-backup 2\n").ok());
  EXPECT_FALSE(parse_manifest("smtpguard-exim-backup 1\npresent 0640 0 0 ../x /etc/x\n").ok());
  EXPECT_FALSE(parse_manifest("smtpguard-exim-backup 1\npresent 9999 0 0 f0 /etc/x\n").ok());
  EXPECT_FALSE(parse_manifest("smtpguard-exim-backup 1\nabsent - - - - relative\n").ok());
  m.files[0].path = "/a\nb";
  EXPECT_FALSE(format_manifest(m).ok());
}

}  // namespace
}  // namespace sg::integrate::exim
