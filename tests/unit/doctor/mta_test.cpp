// Plaintext upstream secrets in Exim/Postfix files under a prepared root,
// found with the real scan rules; and a whole run() on a prepared tree.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "scan/scan.hpp"
#include "test_util.hpp"
#include "vault/vault.hpp"

namespace sg::doctor {
namespace {

using test::find;
using test::ids;
using test::put;
using test::TempDir;

// Shaped like real ones (AKIA + 16, SES v4 password: B[A-P] + 42), not real.
constexpr const char* kKeyId = "AKIAZ2QWERTY7UIOPASD";
constexpr const char* kSesPassword = "BFq3Zs0PplvQ9xYtKc2mWnE8rT5uJiH7gL1oA4dSfGhJ";

void prepare_mta(const std::filesystem::path& r) {
  put(r, "etc/exim4/update-exim4.conf.conf", "dc_use_split_config='true'\n");
  put(r, "etc/exim4/passwd.client",
      std::string("127.0.0.1:exim:LocalRelayPassword123\n"
                  "# upstream\n"
                  "*.amazonaws.com:") +
          kKeyId + ":" + kSesPassword + "\n",
      0640);
  put(r, "etc/postfix/sasl_passwd",
      std::string("[email-smtp.eu-west-1.amazonaws.com]:587 ") + kKeyId + ":" + kSesPassword + "\n",
      0600);
  put(r, "etc/postfix/main.cf", "relayhost = [127.0.0.1]:2525\nsmtp_sasl_auth_enable = yes\n");
  put(r, "etc/exim4/conf.d/main/01_exim4-config_listmacrosdefs", "domainlist local_domains = @\n");
}

TEST(MtaSecrets, FindsEximAndPostfixCopiesNotTheLocalIdentity) {
  TempDir root;
  prepare_mta(root.path());
  auto files = mta_files(root.path());
  EXPECT_EQ(files.size(), 4u);  // the files above but update-exim4.conf.conf
  auto scanner = scan::Scanner::create();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message;
  auto f = check_mta_secrets(root.path(), *scanner);
  ASSERT_EQ(ids(f), (std::vector<std::string>{"mta-plaintext-secret", "mta-plaintext-secret"}));
  EXPECT_EQ(f[0].title,
            "plaintext upstream secret in " + (root.path() / "etc/exim4/passwd.client").string());
  EXPECT_EQ(f[1].title,
            "plaintext upstream secret in " + (root.path() / "etc/postfix/sasl_passwd").string());
  EXPECT_NE(f[0].detail.find("line 3: ses-smtp-password-v4 BF...hJ user " + std::string(kKeyId)),
            std::string::npos)
      << f[0].detail;
  EXPECT_EQ(f[0].detail.find("line 1:"), std::string::npos) << f[0].detail;
  EXPECT_NE(f[1].detail.find("line 1: ses-smtp-password-v4 BF...hJ user " + std::string(kKeyId) +
                             " host email-smtp.eu-west-1.amazonaws.com"),
            std::string::npos)
      << f[1].detail;
  for (const auto& x : f) {
    EXPECT_EQ(x.severity, Severity::high);
    EXPECT_EQ(x.detail.find(kSesPassword), std::string::npos);  // redacted
    EXPECT_NE(x.fix.find("smtpguard import"), std::string::npos);
  }
}

TEST(Run, OwnCredentialIsActiveAndReportIsSorted) {
  TempDir dir;
  config::Config cfg;
  cfg.relay.state_dir = dir.path() / "state";
  cfg.vault.key = "file:" + (dir.path() / "state/master.key").string();
  cfg.vault.path = dir.path() / "state/vault.sealed";
  ASSERT_TRUE(vault::init(cfg, {}).ok());
  ::chmod(cfg.relay.state_dir.c_str(), 0751);
  vault::EntryUpdate u;
  u.name = "ses";
  u.username = kKeyId;
  u.password = Secret::copy_of(kSesPassword);
  ASSERT_TRUE(vault::set(cfg, std::move(u), {}, 1'000'000'000).ok());

  const auto root = dir.path() / "root";
  put(root, "etc/postfix/sasl_passwd",
      std::string("[email-smtp.eu-west-1.amazonaws.com]:587 ") + kKeyId + ":" + kSesPassword + "\n",
      0600);
  Options o;
  o.root = root;
  o.proc = dir.path() / "noproc";
  o.now = 1'000'000'000 + 100 * 86400;
  o.run_firewall_tools = false;
  auto report = run(cfg, o);
  EXPECT_EQ(
      ids(report.findings),
      (std::vector<std::string>{"mta-plaintext-secret", "credential-overdue", "egress-no-rule"}));
  ASSERT_TRUE(find(report.findings, "mta-plaintext-secret"));
  EXPECT_EQ(find(report.findings, "mta-plaintext-secret")->title,
            "ACTIVE credential exposed in " + (root / "etc/postfix/sasl_passwd").string());
  EXPECT_TRUE(report.has_high());
}

}  // namespace
}  // namespace sg::doctor
