// The rule table, redaction and the placeholder list.
#include <set>

#include "test_util.hpp"

namespace sg::scan {
namespace {

using namespace test;

TEST(ScanRules, StableUniqueIdsWithText) {
  const std::vector<std::string_view> expected = {
      "own-credential",        "ses-smtp-password-v4",  "ses-smtp-password-v2",
      "aws-secret-access-key", "phpmailer-password",    "smtp-url-credentials",
      "laravel-mail-password", "wp-mail-smtp-password", "smtp-plugin-option-sql",
      "msmtprc-password",      "postfix-sasl-passwd",   "exim-passwd-client",
      "exim-client-send",      "generic-smtp-password", "aws-access-key-id"};
  ASSERT_EQ(rules().size(), expected.size());
  std::set<std::string_view> ids;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Rule& r = rules()[i];
    EXPECT_EQ(r.id, expected[i]);
    EXPECT_FALSE(r.description.empty());
    EXPECT_FALSE(r.fix.empty());
    ids.insert(r.id);
    EXPECT_EQ(find_rule(r.id), &r);
  }
  EXPECT_EQ(ids.size(), expected.size());
  EXPECT_EQ(find_rule("no-such-rule"), nullptr);
  EXPECT_EQ(find_rule("own-credential")->severity, Severity::critical);
  EXPECT_EQ(to_string(Severity::critical), "critical");
  EXPECT_EQ(to_string(Severity::low), "low");
}

TEST(ScanRedact, FirstAndLastTwoAtMost) {
  EXPECT_EQ(redact(""), "");
  EXPECT_EQ(redact("abcdefg"), "");  // shorter than 8: nothing at all
  EXPECT_EQ(redact("abcdefgh"), "ab...gh");
  EXPECT_EQ(redact(ses_v4()), ses_v4().substr(0, 2) + "..." + ses_v4().substr(42));
  EXPECT_EQ(redact(std::string("\xc3\xa9xxxxxx\n\x01", 10)), "??...??");  // always ASCII
}

// Every placeholder in every context that reads a quoted or unquoted value.
TEST(ScanPlaceholders, AreNotFindings) {
  const std::vector<std::string> values = {"",
                                           "your_smtp_password",
                                           "YOUR_SES_SMTP_PASSWORD",
                                           "changeme",
                                           "password",
                                           "xxxxxxxx",
                                           "XXXX",
                                           "<password>",
                                           "<your password here>",
                                           "${SMTP_PASSWORD}",
                                           "%(smtp_password)s",
                                           "{{ smtp_password }}",
                                           "env('MAIL_PASSWORD')",
                                           "getenv('SMTP_PASS')",
                                           "$_ENV['SMTP_PASS']",
                                           "***",
                                           "********",
                                           "null",
                                           "secret",
                                           "%MAIL_PASSWORD%",
                                           "$smtpPass",
                                           "example-password",
                                           "placeholder",
                                           "{$cfg['pass']}"};
  for (const std::string& v : values) {
    SCOPED_TRACE(v);
    const std::string q = "'" + v + "'";
    EXPECT_TRUE(scan_text("$mail->Password = " + q + ";\n").empty());
    EXPECT_TRUE(scan_text("$smtp_password = " + q + ";\n").empty());
    EXPECT_TRUE(scan_text("define('WPMS_SMTP_PASS', " + q + ");\n").empty());
    EXPECT_TRUE(scan_text("MAIL_PASSWORD=" + v + "\n", ".env").empty());
    EXPECT_TRUE(scan_text("smtp_password: \"" + v + "\"\n", "config.yml").empty());
    EXPECT_TRUE(scan_text("account default\nhost smtp.example.com\nuser me\npassword " + v + "\n",
                          ".msmtprc")
                    .empty());
  }
  // Unquoted references in code are not values.
  for (std::string_view v : {"$pass", "SMTP_PASSWORD_CONSTANT", "config.smtp.password",
                             "process.env.SMTP_PASS", "os.environ['SMTP_PASS']", "getPass()"}) {
    SCOPED_TRACE(v);
    EXPECT_TRUE(scan_text("smtp_password = " + std::string(v) + "\n", "app.py").empty());
    EXPECT_TRUE(scan_text("  smtpPassword: " + std::string(v) + ",\n", "mail.js").empty());
  }
  // The AWS documentation's example keys.
  EXPECT_TRUE(scan_text("aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
                        "credentials")
                  .empty());
}

}  // namespace
}  // namespace sg::scan
