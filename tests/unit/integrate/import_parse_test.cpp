// Import parsers for Exim, Postfix, msmtp and .env files: quoting rules,
// placeholders, and where each finding sits in the text.
#include <gtest/gtest.h>

#include <string>

#include "integrate/import.hpp"

namespace sg::integrate {
namespace {

std::string pw(const Finding& f) {
  return std::string(f.password.view());
}

TEST(EximPasswdClient, ColonsInPasswordAndWildcardHosts) {
  auto r = parse_exim_passwd_client(
      "# comment\n"
      "email-smtp.us-east-1.amazonaws.com:AKIAEXAMPLE:BMx/y+z:with:colons#and hash\n"
      "*.mail.example:user2:  spaced pass  \n"
      "\"quoted:key\" : user3:p3\\x41\n");
  ASSERT_EQ(r.findings.size(), 3u);
  EXPECT_EQ(r.findings[0].host, "email-smtp.us-east-1.amazonaws.com");
  EXPECT_EQ(r.findings[0].username, "AKIAEXAMPLE");
  EXPECT_EQ(pw(r.findings[0]), "BMx/y+z:with:colons#and hash");  // '#' is data mid-line
  EXPECT_EQ(r.findings[0].line, 2u);
  EXPECT_EQ(r.findings[1].host, "*.mail.example");
  EXPECT_EQ(pw(r.findings[1]), "  spaced pass");  // lsearch trims only the ends of the data
  EXPECT_EQ(r.findings[2].host, "quoted:key");    // quoted key takes escapes...
  EXPECT_EQ(pw(r.findings[2]), "p3\\x41");        // ...the data does not
}

TEST(EximPasswdClient, ContinuationLinesAndPlaceholders) {
  auto r = parse_exim_passwd_client(
      "smarthost.example:user:first\n"
      "# a comment inside the item is ignored\n"
      "   second\n"
      "other.example:user:changeme\n"
      "nopassword.example\n");
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(pw(r.findings[0]), "first second");
  EXPECT_EQ(r.findings[0].begin, 0u);
  std::string text =
      "smarthost.example:user:first\n# a comment inside the item is ignored\n   second";
  EXPECT_EQ(r.findings[0].end, text.size());
  EXPECT_TRUE(r.warnings.empty());
}

TEST(EximConfig, PlainAndLoginClientSend) {
  auto r = parse_exim_config(
      "begin routers\n"
      "send_via_ses:\n"
      "  driver = manualroute\n"
      "  route_list = * email-smtp.eu-west-1.amazonaws.com::587\n"
      "begin authenticators\n"
      "ses_plain:\n"
      "  driver = plaintext\n"
      "  public_name = PLAIN\n"
      "  hide client_send = ^AKIAPLAIN^pa^^ss::word\\x21\n"
      "ses_login:\n"
      "  driver = plaintext\n"
      "  public_name = LOGIN\n"
      "  client_send = : AKIALOGIN : colon::inside\n");
  ASSERT_EQ(r.findings.size(), 2u) << (r.warnings.empty() ? "" : r.warnings[0]);
  EXPECT_EQ(r.findings[0].username, "AKIAPLAIN");
  EXPECT_EQ(pw(r.findings[0]), "pa^ss:word!");  // ^^ is ^, :: is :, \x21 is !
  EXPECT_EQ(r.findings[0].host, "email-smtp.eu-west-1.amazonaws.com");
  EXPECT_EQ(r.findings[0].line, 9u);
  EXPECT_EQ(r.findings[1].username, "AKIALOGIN");
  EXPECT_EQ(pw(r.findings[1]), "colon:inside");  // doubled list separator
}

TEST(EximConfig, QuotedValuesContinuationsAndSeparators) {
  auto r = parse_exim_config(
      "a_plain:\n"
      "  driver = plaintext\n"
      "  public_name = PLAIN\n"
      "  client_send = \"^user1^back\\\\\\\\slash \\\"q\\\"\"\n"
      "a_login:\n"
      "  driver = plaintext\n"
      "  public_name = LOGIN\n"
      "  client_send = <; ; user2 ; \\\n"
      "  # comment in a continuation\n"
      "     semi;;colon:pw\n");
  ASSERT_EQ(r.findings.size(), 2u) << (r.warnings.empty() ? "" : r.warnings[0]);
  // Quoted: "\\\\" -> "\\" when read, then "\" when expanded.
  EXPECT_EQ(pw(r.findings[0]), "back\\slash \"q\"");
  EXPECT_EQ(r.findings[1].username, "user2");
  EXPECT_EQ(pw(r.findings[1]), "semi;colon:pw");
  EXPECT_EQ(r.findings[1].line, 8u);
}

TEST(EximConfig, ExpansionsAndCramMd5) {
  auto r = parse_exim_config(
      "plain:\n"
      "  driver = plaintext\n"
      "  public_name = PLAIN\n"
      "  client_send = \"<; ^${extract{1}{:}{PASSWDLINE}}^${sg{PASSWDLINE}{x}{y}}\"\n"
      "cram:\n"
      "  driver = cram_md5\n"
      "  public_name = CRAM-MD5\n"
      "  client_name = cramuser\n"
      "  client_secret = \\N$ecret\\N-part\n");
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].username, "cramuser");
  EXPECT_EQ(pw(r.findings[0]), "$ecret-part");  // \N...\N is literal
}

TEST(EximConfig, MacrosAreNotReadAsPasswords) {
  auto r = parse_exim_config(
      "SES_SECRET = Macro-secret-1234\n"
      "begin authenticators\n"
      "login:\n"
      "  driver = plaintext\n"
      "  public_name = LOGIN\n"
      "  client_send = : AKIAMACRO : SES_SECRET\n");
  EXPECT_TRUE(r.findings.empty());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("line 6"), std::string::npos);
}

TEST(SaslPasswd, KeysAndColonPasswords) {
  auto r = parse_sasl_passwd(
      "# Postfix\n"
      "[email-smtp.us-west-2.amazonaws.com]:587 AKIASASL:pass:with:colons and space\n"
      "@example.org   senderuser:sender pw\n"
      "smtp.example.com   onlyuser\n");
  ASSERT_EQ(r.findings.size(), 2u);
  EXPECT_EQ(r.findings[0].host, "email-smtp.us-west-2.amazonaws.com");
  EXPECT_EQ(r.findings[0].username, "AKIASASL");
  EXPECT_EQ(pw(r.findings[0]), "pass:with:colons and space");
  EXPECT_EQ(r.findings[1].host, "");
  EXPECT_NE(r.findings[1].note.find("sender-dependent"), std::string::npos);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].find("onlyuser"), std::string::npos);  // never quotes the line
}

TEST(Msmtprc, AccountsDefaultsQuotesAndPasswordeval) {
  auto r = parse_msmtprc(
      "defaults\n"
      "  host email-smtp.us-east-1.amazonaws.com\n"
      "  tls on\n"
      "account ses\n"
      "  password \"  spaces kept \"\n"
      "  user AKIAMSMTP\n"
      "account other : ses\n"
      "  passwordeval \"pass show smtp\"\n"
      "account third\n"
      "  host smtp.third.example\n"
      "  user third\n"
      "  password with\"inner\"quotes # not a comment\n");
  ASSERT_EQ(r.findings.size(), 3u);
  EXPECT_EQ(r.findings[0].host, "email-smtp.us-east-1.amazonaws.com");
  EXPECT_EQ(r.findings[0].username, "AKIAMSMTP");  // user after password still counts
  EXPECT_EQ(pw(r.findings[0]), "  spaces kept ");
  EXPECT_FALSE(r.findings[1].importable);
  EXPECT_NE(r.findings[1].note.find("passwordeval"), std::string::npos);
  EXPECT_EQ(r.findings[1].username, "AKIAMSMTP");  // "account other : ses" copies ses
  EXPECT_EQ(r.findings[2].host, "smtp.third.example");
  EXPECT_EQ(pw(r.findings[2]), "with\"inner\"quotes # not a comment");
}

TEST(Dotenv, QuotingRules) {
  auto r = parse_dotenv(
      "APP_NAME=Shop\n"
      "MAIL_HOST=email-smtp.us-east-1.amazonaws.com\n"
      "MAIL_USERNAME=AKIADOTENV\n"
      "MAIL_PASSWORD=\"dq \\\"x\\\" \\\\ \\$HOME # not comment\" # comment\n"
      "export SMTP_USER='sq'\n"
      "export SMTP_PASS='lit\\n$X \"#'\n"
      "EMAIL_HOST=smtp.django.example\n"
      "EMAIL_HOST_USER=django\n"
      "EMAIL_HOST_PASSWORD=unq#uoted\n"
      "SES_SMTP_PASSWORD = spaced-equals   # trailing\n");
  ASSERT_EQ(r.findings.size(), 4u) << (r.warnings.empty() ? "" : r.warnings[0]);
  EXPECT_EQ(r.findings[0].username, "AKIADOTENV");
  EXPECT_EQ(r.findings[0].host, "email-smtp.us-east-1.amazonaws.com");
  EXPECT_EQ(pw(r.findings[0]), "dq \"x\" \\ $HOME # not comment");
  EXPECT_EQ(r.findings[1].username, "sq");
  EXPECT_EQ(pw(r.findings[1]), "lit\\n$X \"#");
  EXPECT_EQ(r.findings[2].username, "django");
  EXPECT_EQ(r.findings[2].host, "smtp.django.example");
  EXPECT_EQ(pw(r.findings[2]), "unq");  // phpdotenv: '#' ends an unquoted value
  EXPECT_EQ(pw(r.findings[3]), "spaced-equals");
}

TEST(Dotenv, PlaceholdersReferencesAndErrors) {
  auto r = parse_dotenv(
      "MAIL_PASSWORD=null\n"
      "SMTP_PASS=${OTHER_SECRET}\n"
      "MAIL_PASS=\"prefix${X}\"\n"
      "SMTP_PASSWORD=your_smtp_password\n"
      "MAILER_PASSWORD=\"unterminated\n"
      "X_MAIL_PASSWORD=\"bad \\q escape\"\n"
      "Y_SMTP_PASSWORD=two words\n"
      "DB_PASSWORD=notmail\n");
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.warnings.size(), 3u);
}

TEST(Placeholders, Common) {
  for (const char* p : {"", "  ", "null", "changeme", "your_smtp_password", "YOUR-PASSWORD",
                        "${SMTP_PASS}", "env('MAIL_PASSWORD')", "********", "xxxxxxxx",
                        "<password>", "smtp_password", "{{ mail_pass }}"})
    EXPECT_TRUE(is_placeholder(p)) << p;
  for (const char* p : {"BMx9sLk2/abc+DEF", "p4ss:w0rd", "hunter2!"})
    EXPECT_FALSE(is_placeholder(p)) << p;
}

TEST(Redact, ShowsAtMostTwoAndTwo) {
  EXPECT_EQ(redact("BM1234567890abcdefcS"),
            "BM\xE2\x80\xA6"
            "cS");
  EXPECT_EQ(redact("abcdefgh"), "a\xE2\x80\xA6h");
  EXPECT_EQ(redact("short"), "\xE2\x80\xA6");
  EXPECT_EQ(redact(std::string("\n123456789012345\t")),
            "?1\xE2\x80\xA6"
            "5?");
}

TEST(Detect, ByNameThenContent) {
  EXPECT_EQ(detect_kind("/etc/exim4/passwd.client", ""), SourceKind::exim_passwd_client);
  EXPECT_EQ(detect_kind("/etc/postfix/sasl_passwd", ""), SourceKind::postfix_sasl_passwd);
  EXPECT_EQ(detect_kind("/home/u/.msmtprc", ""), SourceKind::msmtprc);
  EXPECT_EQ(detect_kind("/var/www/.env.production", ""), SourceKind::dotenv);
  EXPECT_EQ(detect_kind("/var/www/wp-config.php", ""), SourceKind::php);
  EXPECT_EQ(detect_kind("/etc/exim4/conf.d/auth/30_ses", ""), SourceKind::exim_config);
  EXPECT_EQ(detect_kind("/tmp/x", "<?php\n"), SourceKind::php);
  EXPECT_EQ(detect_kind("/tmp/x", "MAIL_PASSWORD=x\n"), SourceKind::dotenv);
  EXPECT_EQ(detect_kind("/tmp/x", "account a\nhost h\n"), SourceKind::msmtprc);
  EXPECT_EQ(detect_kind("/tmp/x", "hello\n"), std::nullopt);
}

}  // namespace
}  // namespace sg::integrate
