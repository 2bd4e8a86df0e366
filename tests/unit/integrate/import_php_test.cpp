// PHP import parser: wp-config.php constants and PHPMailer properties,
// PHP's two string syntaxes, and code that only looks like an assignment.
#include <gtest/gtest.h>

#include <string>

#include "integrate/import.hpp"

namespace sg::integrate {
namespace {

std::string pw(const Finding& f) {
  return std::string(f.password.view());
}

TEST(PhpImport, WpConfigDefines) {
  std::string text =
      "<?php\n"
      "define( 'DB_PASSWORD', 'not-mail' );\n"
      "define('WPMS_ON', true);\n"
      "define('WPMS_SMTP_HOST', 'email-smtp.us-east-1.amazonaws.com');\n"
      "define(\"WPMS_SMTP_USER\", \"AKIAWP\");\n"
      "define( 'WPMS_SMTP_PASS', 'it\\'s \\\\ a $secret\\n' );\n";
  auto r = parse_php(text);
  ASSERT_EQ(r.findings.size(), 1u);
  const Finding& f = r.findings[0];
  EXPECT_EQ(f.kind, "wp-config");
  EXPECT_EQ(f.host, "email-smtp.us-east-1.amazonaws.com");
  EXPECT_EQ(f.username, "AKIAWP");
  EXPECT_EQ(pw(f), "it's \\ a $secret\\n");  // single quotes: only \' and \\ are escapes
  EXPECT_EQ(f.line, 6u);
  EXPECT_EQ(text.substr(f.begin, f.end - f.begin), "'it\\'s \\\\ a $secret\\n'");
}

TEST(PhpImport, PhpMailerDoubleQuotedEscapes) {
  auto r = parse_php(
      "<html><?php\n"
      "$mail = new PHPMailer(true);\n"
      "$mail->Host = 'email-smtp.eu-west-1.amazonaws.com';\n"
      "$mail->Username = \"AKIAMAILER\";\n"
      "$mail->Password = \"q\\\"\\\\\\$x\\x41\\101\\u{263A}\\d\";\n"
      "?></html>\n");
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].kind, "phpmailer");
  EXPECT_EQ(r.findings[0].username, "AKIAMAILER");
  EXPECT_EQ(r.findings[0].host, "email-smtp.eu-west-1.amazonaws.com");
  EXPECT_EQ(pw(r.findings[0]), "q\"\\$xAA\xE2\x98\xBA\\d");
}

TEST(PhpImport, NotLiteralsAndComments) {
  auto r = parse_php(
      "<?php\n"
      "// $mail->Password = 'commented-out-1';\n"
      "# $mail->Password = 'commented-out-2';\n"
      "/* define('SMTP_PASS', 'commented-out-3'); */\n"
      "$mail->Password = getenv('SMTP_PASS');\n"
      "$mail->Password = \"interp$var\";\n"
      "$mail->Password = 'concat' . $x;\n"
      "define('SMTP_PASS', env('SMTP_PASS'));\n"
      "$mail->Password = 'your_smtp_password';\n"
      "$s = <<<EOT\n"
      "$mail->Password = 'in-heredoc';\n"
      "EOT;\n"
      "?>\n"
      "$mail->Password = 'outside-php-tags';\n");
  EXPECT_TRUE(r.findings.empty()) << pw(r.findings[0]);
}

TEST(PhpImport, UsernameBeforeOrAfterPerObject) {
  auto r = parse_php(
      "<?php\n"
      "$a->Password = 'secret-for-a-1234';\n"
      "$a->Username = 'after';\n"
      "$b->Username = 'b-user';\n"
      "$b->Password = 'secret-for-b-1234';\n");
  ASSERT_EQ(r.findings.size(), 2u);
  EXPECT_EQ(r.findings[0].username, "after");
  EXPECT_EQ(r.findings[1].username, "b-user");
}

TEST(PhpImport, UnterminatedAndGarbageDoNotCrash) {
  for (const char* t :
       {"<?php $mail->Password = 'open", "<?php define('SMTP_PASS',", "<?php /*", "<?php <<<", "<?",
        "<?php \"\\", "<?php $mail->Password = \"\\u{110000}\";"}) {
    auto r = parse_php(t);
    EXPECT_TRUE(r.findings.size() <= 1u);
  }
}

}  // namespace
}  // namespace sg::integrate
