// Scrubbing: the edits each parser describes leave a file of the same kind
// that parses again with no credential left, and scrub_file() keeps the
// owner, mode and a 0600 backup.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "integrate/import.hpp"

namespace sg::integrate {
namespace {

namespace fs = std::filesystem;

std::string scrub_all(SourceKind kind, const std::string& text, std::size_t expect) {
  auto r = parse_source(kind, text);
  EXPECT_EQ(r.findings.size(), expect);
  std::vector<Edit> edits;
  for (const auto& f : r.findings)
    if (f.importable) edits.push_back({f.begin, f.end, scrub_replacement(f, "ses")});
  auto out = apply_edits(text, edits);
  EXPECT_TRUE(out.ok());
  return out.ok() ? *out : "";
}

TEST(Scrub, EveryKindParsesCleanAfterwards) {
  struct Case {
    SourceKind kind;
    std::string text, secret;
  };
  const Case cases[] = {
      {SourceKind::exim_passwd_client, "h.example:AKIA1:Se:cr#et/one\n", "Se:cr#et/one"},
      {SourceKind::exim_config,
       "ses_login:\n  driver = plaintext\n  public_name = LOGIN\n"
       "  client_send = : AKIA2 : \\\n      Secret2two\n  client_condition = true\n",
       "Secret2two"},
      {SourceKind::postfix_sasl_passwd, "[h.example]:587 AKIA3:Secret3three\n", "Secret3three"},
      {SourceKind::msmtprc, "account a\n  host h\n  user u\n  password \"Secret 4\"\n", "Secret 4"},
      {SourceKind::dotenv, "MAIL_USERNAME=AKIA5\r\nMAIL_PASSWORD='Secret5five'\r\nX=1\r\n",
       "Secret5five"},
      {SourceKind::php, "<?php\n$mail->Password = 'Secret6six'; $mail->Port = 587;\n",
       "Secret6six"},
  };
  for (const auto& c : cases) {
    std::string out = scrub_all(c.kind, c.text, 1);
    EXPECT_EQ(out.find(c.secret), std::string::npos) << out;
    EXPECT_NE(out.find("smtpguard vault"), std::string::npos) << out;
    EXPECT_TRUE(parse_source(c.kind, out).findings.empty()) << out;
  }
  EXPECT_EQ(scrub_all(SourceKind::dotenv, "MAIL_PASSWORD=abcdefgh123\n", 1),
            "# MAIL_PASSWORD moved to smtpguard vault entry ses (smtpguard import)\n"
            "MAIL_PASSWORD=\n");
  EXPECT_EQ(scrub_all(SourceKind::dotenv, "MAIL_PASSWORD=abcdefgh123\r\nA=b\r\n", 1),
            "# MAIL_PASSWORD moved to smtpguard vault entry ses (smtpguard import)\r\n"
            "MAIL_PASSWORD=\r\nA=b\r\n");
  EXPECT_EQ(scrub_all(SourceKind::php, "<?php define('SMTP_PASS', \"ab\\\"cdefgh\");", 1),
            "<?php define('SMTP_PASS', '' /* moved to smtpguard vault ses */);");
}

TEST(Scrub, OverlappingEditsAreRefused) {
  EXPECT_FALSE(apply_edits("abcdef", {{0, 3, "x"}, {2, 4, "y"}}).ok());
  EXPECT_FALSE(apply_edits("abc", {{2, 9, "x"}}).ok());
  EXPECT_EQ(*apply_edits("abcdef", {{4, 5, "Y"}, {0, 1, "X"}}), "XbcdYf");
}

class ScrubFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sg-scrub-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { fs::remove_all(dir); }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path dir;
};

TEST_F(ScrubFile, KeepsModeWritesBackupAndLintsPhp) {
  const std::string text = "<?php\ndefine('WPMS_SMTP_PASS', 'Sup3r\\'Secret');\n";
  fs::path file = dir / "wp-config.php";
  std::ofstream(file) << text;
  ::chmod(file.c_str(), 0640);
  fs::create_symlink(file, dir / "link.php");
  auto parsed = parse_php(text);
  ASSERT_EQ(parsed.findings.size(), 1u);
  const auto& f = parsed.findings[0];
  auto r = scrub_file(dir / "link.php", text, {{f.begin, f.end, scrub_replacement(f, "ses")}},
                      dir / "state" / "backups");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(fs::is_symlink(dir / "link.php"));  // the target was rewritten, not the link
  std::string now = slurp(file);
  EXPECT_EQ(now.find("Secret"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_EQ(::stat(r->backup.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(slurp(r->backup), text);
  if (::access("/usr/bin/php", X_OK) == 0) {
    EXPECT_TRUE(r->php_checked);
  }
  // A second scrub with the old text is refused: the file changed.
  auto again = scrub_file(file, text, {}, dir / "state" / "backups");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::conflict);
}

TEST_F(ScrubFile, BrokenPhpIsLeftUnchanged) {
  if (::access("/usr/bin/php", X_OK) != 0) GTEST_SKIP() << "php-cli not installed";
  const std::string text = "<?php\n$mail->Password = 'Secret7seven';\n";
  fs::path file = dir / "mailer.php";
  std::ofstream(file) << text;
  // An edit that breaks the syntax must not be installed.
  auto r = scrub_file(file, text, {{6, 7, "("}}, dir / "backups");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(slurp(file), text);
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".smtpguard-"), std::string::npos);
}

}  // namespace
}  // namespace sg::integrate
