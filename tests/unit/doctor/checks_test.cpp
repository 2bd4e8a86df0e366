// doctor's checks on prepared trees: modes, key source, credential age,
// upstream TLS, relay listeners, PHP sendmail_path, egress rules.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "test_util.hpp"
#include "vault/vault.hpp"

namespace sg::doctor {
namespace {

using test::find;
using test::ids;
using test::put;
using test::TempDir;
using V = std::vector<std::string>;

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kNow = 1'800'000'000;

config::Config config_in(const std::filesystem::path& dir) {
  config::Config cfg;
  cfg.relay.state_dir = dir / "state";
  cfg.vault.key = "file:" + (dir / "state" / "master.key").string();
  cfg.vault.path = dir / "state" / "vault.sealed";
  return cfg;
}

vault::EntryUpdate entry(std::string name, std::string user, std::string_view password) {
  vault::EntryUpdate u;
  u.name = std::move(name);
  u.username = std::move(user);
  u.password = Secret::copy_of(password);
  return u;
}

TEST(StateFiles, GoodLayoutHasNoFindings) {
  TempDir dir;
  auto cfg = config_in(dir.path());
  ASSERT_TRUE(vault::init(cfg, {}).ok());
  ::chmod(cfg.relay.state_dir.c_str(), 0751);
  EXPECT_EQ(ids(check_state_files(cfg)), V{});
}

TEST(StateFiles, WorldReadableKeyGroupReadableVaultWritableDir) {
  TempDir dir;
  auto cfg = config_in(dir.path());
  ASSERT_TRUE(vault::init(cfg, {}).ok());
  ::chmod((dir.path() / "state/master.key").c_str(), 0644);
  ::chmod((dir.path() / "state/vault.sealed").c_str(), 0640);
  ::chmod(cfg.relay.state_dir.c_str(), 0777);
  auto f = check_state_files(cfg);
  EXPECT_EQ(ids(f), (V{"state-dir-writable", "vault-file-mode", "key-file-mode"}));
  EXPECT_EQ(find(f, "key-file-mode")->title, "the master key file is accessible to every user");
  EXPECT_EQ(find(f, "vault-file-mode")->title, "the vault file is accessible to its group");
  for (const auto& x : f) EXPECT_EQ(x.severity, Severity::high) << x.id;
  EXPECT_NE(find(f, "key-file-mode")->detail.find("0644"), std::string::npos);
  EXPECT_NE(find(f, "key-file-mode")->fix.find("chmod 0600"), std::string::npos);
}

TEST(StateFiles, OtherOwnerAndLooseDirMode) {
  TempDir dir;
  auto cfg = config_in(dir.path());
  ASSERT_TRUE(vault::init(cfg, {}).ok());
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  ASSERT_EQ(::chown((dir.path() / "state/vault.sealed").c_str(), 65534, 65534), 0);
  ::chmod(cfg.relay.state_dir.c_str(), 0755);
  EXPECT_EQ(ids(check_state_files(cfg)), (V{"state-dir-mode", "vault-file-owner"}));
}

TEST(StateFiles, MissingStateDirIsInfo) {
  TempDir dir;
  auto f = check_state_files(config_in(dir.path()));
  EXPECT_EQ(ids(f), V{"state-dir-missing"});
  EXPECT_EQ(f[0].severity, Severity::info);
}

TEST(KeySource, EnvWarnsPassphraseNotes) {
  config::Config cfg;
  cfg.vault.key = "file:/x/master.key";
  EXPECT_EQ(ids(check_key_source(cfg)), V{});
  cfg.vault.key = "env:SMTPGUARD_KEY";
  auto f = check_key_source(cfg);
  ASSERT_EQ(ids(f), V{"key-source-env"});
  EXPECT_EQ(f[0].severity, Severity::medium);
  cfg.vault.key = "passphrase";
  f = check_key_source(cfg);
  ASSERT_EQ(ids(f), V{"key-source-passphrase"});
  EXPECT_EQ(f[0].severity, Severity::info);
  cfg.vault.key = "bogus:1";
  EXPECT_EQ(ids(check_key_source(cfg)), V{"key-source-invalid"});
}

TEST(CredentialAge, SoonAndOverdueButNotPrevious) {
  TempDir dir;
  auto cfg = config_in(dir.path());
  cfg.vault.rotation_warn_days = 10;
  cfg.vault.rotation_max_days = 20;
  ASSERT_TRUE(vault::init(cfg, {}).ok());
  ASSERT_TRUE(vault::set(cfg, entry("fresh", "u1", "p1"), {}, kNow - 9 * kDay).ok());
  ASSERT_TRUE(vault::set(cfg, entry("soon", "u2", "p2"), {}, kNow - 10 * kDay).ok());
  ASSERT_TRUE(vault::set(cfg, entry("late", "u3", "p3"), {}, kNow - 20 * kDay).ok());
  ASSERT_TRUE(vault::set(cfg, entry("late.previous", "u4", "p4"), {}, kNow - 300 * kDay).ok());
  // A world-readable key is reported elsewhere; the ages are still read.
  ::chmod((dir.path() / "state/master.key").c_str(), 0644);
  auto state = open_vault(cfg);
  ASSERT_TRUE(state.contents) << (state.findings.empty() ? "" : state.findings[0].detail);
  auto f = check_credential_age(cfg, *state.contents, kNow);
  ASSERT_EQ(ids(f), (V{"credential-overdue", "credential-rotate-soon"}));
  EXPECT_EQ(f[0].title, "credential late is overdue for rotation");
  EXPECT_EQ(f[0].severity, Severity::medium);
  EXPECT_NE(f[0].detail.find("20 days ago"), std::string::npos) << f[0].detail;
  EXPECT_EQ(f[1].title, "credential soon should be rotated soon");
  EXPECT_EQ(f[1].severity, Severity::low);
  for (const auto& x : f) EXPECT_EQ(x.detail.find("p3"), std::string::npos);
}

TEST(CredentialAge, MissingAndUnopenableVault) {
  TempDir dir;
  auto cfg = config_in(dir.path());
  EXPECT_EQ(ids(open_vault(cfg).findings), V{"vault-missing"});
  ASSERT_TRUE(vault::init(cfg, {}).ok());
  put(dir.path(), "state/master.key", "not a key\n", 0600);
  auto state = open_vault(cfg);
  EXPECT_FALSE(state.contents);
  EXPECT_EQ(ids(state.findings), V{"vault-unreadable"});
  cfg.vault.key = "passphrase";
  state = open_vault(cfg);  // never asks
  EXPECT_FALSE(state.contents);
  EXPECT_EQ(ids(state.findings), V{});
}

TEST(UpstreamTls, NoneIsHighUnlessLoopback) {
  // The loader refuses tls = "none" to a non-loopback host; doctor still
  // reports it (a configuration built some other way, a future loader).
  auto cfg = config::parse(
      "[upstream.ses]\nhost = \"email-smtp.eu-west-1.amazonaws.com\"\ncredential = \"ses\"\n"
      "[upstream.local]\nhost = \"127.0.0.1\"\ntls = \"none\"\n"
      "[upstream.ca]\nhost = \"smtp.example.org\"\nca_file = \"/nonexistent/ca.pem\"\n"
      "credential = \"y\"\n",
      "t.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  config::Upstream plain;
  plain.name = "plain";
  plain.host = "smtp.example.net";
  plain.tls = config::TlsMode::none;
  plain.credential = "x";
  cfg->upstreams.push_back(plain);
  auto f = check_upstream_tls(*cfg);
  ASSERT_EQ(ids(f), (V{"upstream-ca-missing", "upstream-tls-off"}));
  EXPECT_EQ(f[0].title, "upstream ca's ca_file is missing");
  EXPECT_EQ(f[0].severity, Severity::medium);
  EXPECT_EQ(f[1].title, "upstream plain is reached without TLS");
  EXPECT_EQ(f[1].severity, Severity::high);
}

TEST(RelayListeners, LoopbackSilentPublicReportedAsConfigured) {
  config::Config cfg;
  EXPECT_EQ(ids(check_relay_listeners(cfg)), V{});
  cfg.relay.listen = {"127.0.0.1:2525", "0.0.0.0:587"};
  EXPECT_EQ(ids(check_relay_listeners(cfg)), (V{"relay-listener-no-tls", "relay-listener-open"}));
  cfg.relay.tls = config::RelayTls{"/c.pem", "/k.pem"};
  cfg.relay.allow_from = {"10.0.0.0/8"};
  auto f = check_relay_listeners(cfg);
  ASSERT_EQ(ids(f), V{"relay-listener-public"});
  EXPECT_EQ(f[0].severity, Severity::info);
  cfg.relay.allow_from = {"10.0.0.0/8", "0.0.0.0/0"};
  EXPECT_EQ(ids(check_relay_listeners(cfg)), V{"relay-listener-open"});
}

TEST(PhpSendmail, DebianCpanelAndPools) {
  TempDir root;
  const auto& r = root.path();
  // 8.2 cli: default (not set) -> finding; 8.2 fpm: ours, but a pool overrides.
  put(r, "etc/php/8.2/cli/php.ini", "[mail function]\n;sendmail_path =\n");
  put(r, "etc/php/8.2/fpm/php.ini", "sendmail_path = /usr/sbin/sendmail -t -i\n");
  put(r, "etc/php/8.2/fpm/conf.d/99-smtpguard.ini",
      "; smtpguard integrate php\nsendmail_path = \"/usr/bin/smtpguard sendmail -t -i\"\n");
  put(r, "etc/php/8.2/fpm/pool.d/www.conf",
      "[www]\nphp_admin_value[sendmail_path] = /usr/sbin/sendmail -t -i -fwww@example.com\n");
  // 8.3 apache2: a link named sendmail that points at smtpguard is fine.
  put(r, "etc/php/8.3/apache2/php.ini", "sendmail_path = /usr/local/bin/sendmail -t -i\n");
  std::filesystem::create_directories(r / "usr/local/bin");
  std::filesystem::create_symlink("/usr/bin/smtpguard", r / "usr/local/bin/sendmail");
  put(r, "opt/cpanel/ea-php81/root/etc/php.ini", "sendmail_path = /usr/sbin/sendmail -t -i\n");
  put(r, "etc/php/not-a-version/cli/php.ini", "x\n");  // not a PHP version: ignored
  auto f = check_php_sendmail(r);
  std::vector<std::string> titles;
  for (const auto& x : f) titles.push_back(x.title);
  EXPECT_EQ(titles, (V{"PHP 8.2 cli: PHP mail() does not go through smtpguard",
                       "PHP 8.2 fpm: an FPM pool overrides sendmail_path",
                       "cPanel ea-php81: PHP mail() does not go through smtpguard"}));
  EXPECT_NE(f[0].detail.find("PHP runs /usr/sbin/sendmail -t -i"), std::string::npos);
  EXPECT_NE(f[1].detail.find("www.conf sets sendmail_path = /usr/sbin/sendmail"),
            std::string::npos);
  EXPECT_NE(f[2].detail.find("sets sendmail_path = /usr/sbin/sendmail -t -i"), std::string::npos);
  for (const auto& x : f) EXPECT_EQ(x.severity, Severity::medium);
}

TEST(PhpSendmail, NoPhpNoFindings) {
  TempDir root;
  EXPECT_EQ(ids(check_php_sendmail(root.path())), V{});
}

TEST(Egress, SavedRulesUnderRoot) {
  TempDir root;
  Options o;
  o.root = root.path();
  o.run_firewall_tools = false;
  auto f = check_egress(o);
  ASSERT_EQ(ids(f), V{"egress-no-rule"});
  EXPECT_EQ(f[0].severity, Severity::low);
  EXPECT_NE(f[0].detail.find("no ruleset available"), std::string::npos);
  EXPECT_NE(f[0].fix.find("meta skuid"), std::string::npos);
  EXPECT_NE(f[0].fix.find("--uid-owner smtpguard"), std::string::npos);
  EXPECT_NE(f[0].fix.find("authorize-security-group-egress"), std::string::npos);
  put(root.path(), "etc/iptables/rules.v4",
      "*filter\n-A OUTPUT -p tcp -m multiport --dports 25,465,587 -m owner --uid-owner 999 -j "
      "ACCEPT\n-A OUTPUT -p tcp -m multiport --dports 25,465,587 -j REJECT\nCOMMIT\n");
  f = check_egress(o);
  ASSERT_EQ(ids(f), V{"egress-rule"});
  EXPECT_EQ(f[0].severity, Severity::info);
}

TEST(Render, TextGroupsBySeverityJsonCounts) {
  Report r;
  r.findings = {{"a", Severity::high, "A", "d1\nd2", "fix a"},
                {"b", Severity::low, "B", "", "fix b"}};
  EXPECT_EQ(render_text(r),
            "smtpguard doctor: 1 high, 0 medium, 1 low, 0 info\n"
            "\nhigh:\n  [a] A\n      d1\n      d2\n      fix: fix a\n"
            "\nlow:\n  [b] B\n      fix: fix b\n");
  EXPECT_TRUE(r.has_high());
  auto j = nlohmann::json::parse(render_json(r));
  EXPECT_EQ(j["summary"]["high"], 1);
  EXPECT_EQ(j["summary"]["low"], 1);
  EXPECT_EQ(j["findings"][0]["id"], "a");
  EXPECT_EQ(j["findings"][1]["severity"], "low");
  EXPECT_EQ(render_text(Report{}), "smtpguard doctor: no problems found\n");
}

}  // namespace
}  // namespace sg::doctor
