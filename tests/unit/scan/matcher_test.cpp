// Each rule on realistic snippets (positive and negative), context severity,
// username/host/port extraction, and the finding fields: offsets, line and
// column, redaction, fingerprints, no plaintext.
#include "test_util.hpp"

namespace sg::scan {
namespace {

using namespace test;

// fingerprint("laravel-mail-password", ".env", "fixed-pass-1"); baselines depend on it.
constexpr std::string_view kFixedFingerprint =
    "3e51e1014addab36064d68e8515c84f1143775eb495fe488ec5e561881198b0f";

// Exactly one finding of `rule` whose value is `secret`.
Finding expect_one(std::string_view text, std::string_view path, std::string_view rule,
                   std::string_view secret) {
  const auto all = scan_text(text, path);
  const auto hits = with_rule(all, rule);
  EXPECT_EQ(hits.size(), 1u) << text;
  if (hits.empty()) return {};
  EXPECT_EQ(value_of(text, hits[0]), secret);
  expect_no_plaintext(all, secret);
  return hits[0];
}

TEST(ScanKeys, AwsAccessKeyId) {
  const std::string id = key_id();
  expect_one("key = \"" + id + "\"\n", "a.js", "aws-access-key-id", id);
  EXPECT_TRUE(scan_text("x" + id + "\n").empty());                // inside a word
  EXPECT_TRUE(scan_text("AKIA" + std::string(16, 'a')).empty());  // lower case
  EXPECT_TRUE(scan_text("AKIA1234567890123456").empty());         // 0, 1, 8, 9 are not base32
}

TEST(ScanKeys, SesV4AloneAndInContext) {
  const std::string pw = ses_v4();
  ASSERT_EQ(pw.size(), 44u);
  Finding f = expect_one("var blob = \"" + pw + "\";\n", "a.js", "ses-smtp-password-v4", pw);
  EXPECT_EQ(f.severity, Severity::high);
  f = expect_one("const SMTP = {pass: \"" + pw + "\"};\n", "a.js", "ses-smtp-password-v4", pw);
  EXPECT_EQ(f.severity, Severity::critical);
  const std::string id = key_id(3);
  f = expect_one("u=" + id + "\nx=" + pw + "\n", "a.txt", "ses-smtp-password-v4", pw);
  EXPECT_EQ(f.severity, Severity::critical);
  EXPECT_EQ(f.username, id);
  // Not a whole token: part of a longer base64 run, or followed by padding.
  EXPECT_TRUE(with_rule(scan_text("x = '" + pw + "A'"), "ses-smtp-password-v4").empty());
  EXPECT_TRUE(with_rule(scan_text("x = 'A" + pw + "'"), "ses-smtp-password-v4").empty());
  EXPECT_TRUE(with_rule(scan_text("x = '" + pw + "='"), "ses-smtp-password-v4").empty());
  std::string wrong = pw;
  wrong[1] = 'Q';  // second character outside A-P: not a v4 password
  EXPECT_TRUE(scan_text("x = '" + wrong + "'").empty());
}

TEST(ScanKeys, SesV2) {
  const std::string pw = ses_v2();
  ASSERT_EQ(pw.size(), 44u);
  Finding f = expect_one("data: " + pw + "\n", "a.txt", "ses-smtp-password-v2", pw);
  EXPECT_EQ(f.severity, Severity::medium);
  f = expect_one("smtp password: " + pw + "\n", "a.txt", "ses-smtp-password-v2", pw);
  EXPECT_EQ(f.severity, Severity::high);
}

TEST(ScanKeys, AwsSecretAccessKey) {
  const std::string id = key_id(), secret = aws_secret();
  const std::string creds =
      "[default]\naws_access_key_id = " + id + "\naws_secret_access_key = " + secret + "\n";
  Finding f = expect_one(creds, "credentials", "aws-secret-access-key", secret);
  EXPECT_EQ(f.severity, Severity::critical);
  EXPECT_EQ(f.username, id);
  EXPECT_EQ(with_rule(scan_text(creds, "credentials"), "aws-access-key-id").size(), 1u);
  // Next to a key id without a telling name.
  f = expect_one("$k = ['" + id + "', '" + secret + "'];", "a.php", "aws-secret-access-key",
                 secret);
  EXPECT_EQ(f.username, id);
  // An assignment alone.
  f = expect_one("AWS_SECRET_ACCESS_KEY=" + secret + "\n", ".env", "aws-secret-access-key", secret);
  EXPECT_EQ(f.severity, Severity::high);
  // A SHA-1 next to a key id is not a secret key.
  EXPECT_TRUE(with_rule(scan_text(id + " da39a3ee5e6b4b0d3255bfef95601890afd80709\n"),
                        "aws-secret-access-key")
                  .empty());
}

TEST(ScanApp, PhpMailer) {
  const std::string text =
      "$mail->isSMTP();\n$mail->Host = 'smtp.example.com';\n$mail->SMTPAuth = true;\n"
      "$mail->Username = 'mailer@example.com';\n$mail->Password = 'Tr0ub4dor&3';\n"
      "$mail->Port = 587;\n";
  const Finding f = expect_one(text, "send.php", "phpmailer-password", "Tr0ub4dor&3");
  EXPECT_EQ(f.username, "mailer@example.com");
  EXPECT_EQ(f.host, "smtp.example.com");
  EXPECT_EQ(f.port, 587);
  EXPECT_EQ(f.severity, Severity::high);
  EXPECT_TRUE(scan_text("$mail->Password = $config['smtp'];\n").empty());
  EXPECT_TRUE(scan_text("$mail->PasswordHash = 'abcdefgh';\n").empty());
}

TEST(ScanApp, SmtpUrlsAndDsns) {
  Finding f = expect_one(
      "MAILER_DSN=smtp://AKIAXXUSER:s3cr%2Ft-pw@email-smtp.eu-west-1."
      "amazonaws.com:587?verify_peer=1\n",
      ".env", "smtp-url-credentials", "s3cr%2Ft-pw");
  EXPECT_EQ(f.username, "AKIAXXUSER");
  EXPECT_EQ(f.host, "email-smtp.eu-west-1.amazonaws.com");
  EXPECT_EQ(f.port, 587);
  f = expect_one("  url: 'smtps://user%40example.com:hunter22@mail.example.com'\n", "swift.yml",
                 "smtp-url-credentials", "hunter22");
  EXPECT_EQ(f.username, "user@example.com");
  EXPECT_EQ(f.port, 0);
  f = expect_one("MAILER_DSN=ses+smtp://ID:k3y-v4lue@default\n", ".env", "smtp-url-credentials",
                 "k3y-v4lue");
  EXPECT_EQ(f.host, "");
  const std::string swift =
      "$transport = (new Swift_SmtpTransport('smtp.example.org', 465, 'ssl'))\n"
      "  ->setUsername('bob')\n  ->setPassword('b0bs-pw!');\n";
  f = expect_one(swift, "mail.php", "smtp-url-credentials", "b0bs-pw!");
  EXPECT_EQ(f.username, "bob");
  EXPECT_EQ(f.host, "smtp.example.org");
  EXPECT_EQ(f.port, 465);
  EXPECT_TRUE(scan_text("MAILER_DSN=smtp://localhost:1025\n", ".env").empty());
  EXPECT_TRUE(scan_text("MAILER_DSN=smtp://user:pass@localhost\n", ".env").empty());
  EXPECT_TRUE(scan_text("MAILER_DSN=smtp://u:${PW}@localhost\n", ".env").empty());
  EXPECT_TRUE(scan_text("->setPassword($pw)\n").empty());
}

TEST(ScanApp, LaravelEnv) {
  const std::string env =
      "APP_NAME=Shop\nMAIL_MAILER=smtp\nMAIL_HOST=email-smtp.us-east-1.amazonaws.com\n"
      "MAIL_PORT=587\nMAIL_USERNAME=AKIALARAVELUSER\nMAIL_PASSWORD=\"pa ss#word\"\n";
  Finding f = expect_one(env, ".env", "laravel-mail-password", "pa ss#word");
  EXPECT_EQ(f.username, "AKIALARAVELUSER");
  EXPECT_EQ(f.host, "email-smtp.us-east-1.amazonaws.com");
  EXPECT_EQ(f.port, 587);
  f = expect_one("MAIL_PASSWORD=plain.value-1 # a comment\n", ".env.production",
                 "laravel-mail-password", "plain.value-1");
  EXPECT_TRUE(scan_text("MAIL_PASSWORD=null\nMAIL_PASSWORD=\n", ".env").empty());
  EXPECT_TRUE(scan_text("'password' => env('MAIL_PASSWORD'),\n", "config/mail.php").empty());
}

TEST(ScanApp, WpMailSmtpConstant) {
  const std::string php =
      "define( 'WPMS_SMTP_HOST', 'smtp.example.net' );\ndefine( 'WPMS_SMTP_PORT', 2525 );\n"
      "define( 'WPMS_SMTP_USER', 'wp@example.net' );\ndefine( 'WPMS_SMTP_PASS', 'wp-S3cret' );\n";
  const Finding f = expect_one(php, "wp-config.php", "wp-mail-smtp-password", "wp-S3cret");
  EXPECT_EQ(f.username, "wp@example.net");
  EXPECT_EQ(f.host, "smtp.example.net");
  EXPECT_EQ(f.port, 2525);
  EXPECT_TRUE(scan_text("define('WPMS_SMTP_PASS', getenv('X'));\n", "wp-config.php").empty());
  EXPECT_TRUE(scan_text("define('WPMS_SMTP_PASS', SOME_CONST);\n", "wp-config.php").empty());
}

TEST(ScanApp, GenericAssignments) {
  expect_one("$config['smtp_pass'] = 'abc123XYZ';\n", "config.php", "generic-smtp-password",
             "abc123XYZ");
  expect_one("SMTP_PASSWORD = \"py-th0n\"\n", "settings.py", "generic-smtp-password", "py-th0n");
  expect_one("smtp_password: unquoted-yaml\n", "mail.yaml", "generic-smtp-password",
             "unquoted-yaml");
  expect_one("  'mail_password' => 'arr4y',\n", "cfg.php", "generic-smtp-password", "arr4y");
  expect_one("{\"smtpPassword\": \"js0n-pw\"}", "cfg.json", "generic-smtp-password", "js0n-pw");
  expect_one("<smtp_password>x-m-l-pw</smtp_password>", "cfg.xml", "generic-smtp-password",
             "x-m-l-pw");
  const Finding f = expect_one(
      "EMAIL_HOST = 'smtp.example.com'\nEMAIL_HOST_USER = 'dj'\n"
      "EMAIL_PORT = 25\nEMAIL_HOST_PASSWORD = 'dj4ngo'\n",
      "settings.py", "generic-smtp-password", "dj4ngo");
  EXPECT_EQ(f.username, "dj");
  EXPECT_EQ(f.host, "smtp.example.com");
  EXPECT_EQ(f.port, 25);
  EXPECT_EQ(f.severity, Severity::medium);
  EXPECT_TRUE(scan_text("$smtp_pass_enabled = 'yes-really';\n").empty());
  EXPECT_TRUE(scan_text("<input name=\"smtp_password\" value=\"\">\n", "a.html").empty());
  EXPECT_TRUE(scan_text("smtp_password: 'SMTP Password'\n", "en.yml").empty());
}

TEST(ScanSql, PluginOptionsInDumps) {
  const std::string wp =
      "INSERT INTO `wp_options` VALUES (150,'wp_mail_smtp','a:2:{s:4:\\\"mail\\\";a:1:{s:6:"
      "\\\"mailer\\\";s:4:\\\"smtp\\\";}s:4:\\\"smtp\\\";a:4:{s:4:\\\"host\\\";s:16:\\\"smtp."
      "example.com\\\";s:4:\\\"port\\\";i:587;s:4:\\\"user\\\";s:5:\\\"wpusr\\\";s:4:\\\"pass\\\";"
      "s:10:\\\"sq1-p4ss!x\\\";}}','yes');\n";
  Finding f = expect_one(wp, "backup.sql", "smtp-plugin-option-sql", "sq1-p4ss!x");
  EXPECT_EQ(f.host, "smtp.example.com");
  EXPECT_EQ(f.username, "wpusr");
  EXPECT_EQ(f.port, 587);
  const std::string fluent =
      "(7,'fluentmail-settings','{\\\"connections\\\":{\\\"x\\\":{\\\"provider_settings\\\":{"
      "\\\"provider\\\":\\\"smtp\\\",\\\"host\\\":\\\"smtp.fluent.test\\\",\\\"port\\\":"
      "\\\"465\\\","
      "\\\"username\\\":\\\"fl\\\",\\\"password\\\":\\\"flu3nt-pw\\\"}}}}','no'),\n";
  f = expect_one(fluent, "db.sql", "smtp-plugin-option-sql", "flu3nt-pw");
  EXPECT_EQ(f.host, "smtp.fluent.test");
  EXPECT_EQ(f.port, 465);
  // Unserialized PHP (not escaped) from a Post SMTP export.
  f = expect_one(
      "a:3:{s:8:\"hostname\";s:9:\"smtp.post\";s:19:\"basic_auth_password\";"
      "s:7:\"p0st-pw\";s:4:\"port\";s:3:\"587\";}",
      "opts.txt", "smtp-plugin-option-sql", "p0st-pw");
  EXPECT_EQ(f.host, "smtp.post");
  // A password option with nothing about SMTP around it, and a wrong key.
  EXPECT_TRUE(scan_text("a:1:{s:8:\"password\";s:6:\"dbpass\";}", "d.sql").empty());
  EXPECT_TRUE(scan_text("smtp a:1:{s:6:\"bypass\";s:6:\"abcdef\";}", "d.sql").empty());
  EXPECT_TRUE(scan_text("smtp a:1:{s:4:\"pass\";s:0:\"\";}", "d.sql").empty());
}

TEST(ScanMta, Msmtprc) {
  const std::string rc =
      "defaults\ntls on\n\naccount ses\nhost email-smtp.us-west-2.amazonaws.com\nport 587\n"
      "user AKIAMSMTPUSER\npassword ms-mtp-pw\n";
  Finding f = expect_one(rc, "home/u/.msmtprc", "msmtprc-password", "ms-mtp-pw");
  EXPECT_EQ(f.host, "email-smtp.us-west-2.amazonaws.com");
  EXPECT_EQ(f.username, "AKIAMSMTPUSER");
  EXPECT_EQ(f.port, 587);
  expect_one(rc, "etc/mail.conf", "msmtprc-password", "ms-mtp-pw");  // recognised by content
  EXPECT_TRUE(scan_text("password hunter2-x\n", "notes.txt").empty());
  EXPECT_TRUE(scan_text("host h\nuser u\npasswordeval gpg -d pw.gpg\n", ".msmtprc").empty());
}

TEST(ScanMta, PostfixSaslPasswd) {
  Finding f = expect_one("[email-smtp.us-east-1.amazonaws.com]:587 AKIAPOSTFIX:pf-pass-1\n",
                         "sasl_passwd", "postfix-sasl-passwd", "pf-pass-1");
  EXPECT_EQ(f.username, "AKIAPOSTFIX");
  EXPECT_EQ(f.host, "email-smtp.us-east-1.amazonaws.com");
  EXPECT_EQ(f.port, 587);
  f = expect_one("# map\n[smtp.relay.test]:2525 me@relay.test:pf-pass-2\n", "backup/old.txt",
                 "postfix-sasl-passwd", "pf-pass-2");
  EXPECT_EQ(f.host, "smtp.relay.test");
  f = expect_one("smtp.unbracketed.test me:pf-pass-3\n", "etc/postfix/sasl_passwd",
                 "postfix-sasl-passwd", "pf-pass-3");
  EXPECT_EQ(f.host, "smtp.unbracketed.test");
  EXPECT_TRUE(scan_text("smtp.unbracketed.test me:pf-pass-3\n", "notes.txt").empty());
  EXPECT_TRUE(scan_text("[section]\nkey = value\n", "a.ini").empty());
}

TEST(ScanMta, EximPasswdClientAndClientSend) {
  Finding f = expect_one("# comment\n*.amazonaws.com:AKIAEXIM:ex-im-pw1\n",
                         "etc/exim4/passwd.client", "exim-passwd-client", "ex-im-pw1");
  EXPECT_EQ(f.username, "AKIAEXIM");
  EXPECT_EQ(f.host, "");
  f = expect_one("email-smtp.eu-central-1.amazonaws.com:AKIAEXIM2:ex-im-pw2\n", "passwd.bak",
                 "exim-passwd-client", "ex-im-pw2");
  EXPECT_EQ(f.host, "email-smtp.eu-central-1.amazonaws.com");
  f = expect_one(
      "ses_login:\n  driver = plaintext\n  public_name = LOGIN\n"
      "  client_send = : AKIASEND : l0gin-pw\n",
      "exim.conf", "exim-client-send", "l0gin-pw");
  EXPECT_EQ(f.username, "AKIASEND");
  f = expect_one("  client_send = ^AKIAPLAIN^pl41n-pw\n", "exim.conf", "exim-client-send",
                 "pl41n-pw");
  EXPECT_EQ(f.username, "AKIAPLAIN");
  EXPECT_TRUE(scan_text("client_send = : ${extract{1}{:}{${lookup{$host}nwildlsearch"
                        "{/etc/exim4/passwd.client}{$value}fail}}} : ${extract{2}{:}{x}}\n",
                        "exim.conf")
                  .empty());
  EXPECT_TRUE(scan_text("a:b:c\n", "notes.txt").empty());
}

TEST(ScanFindings, NoPlaintextRedactedStableFingerprint) {
  const std::string pw = ses_v4(7);
  const std::string text = "MAIL_PASSWORD=" + pw + "\n";
  const auto a = scan_text(text, "www/.env");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].rule_id, "ses-smtp-password-v4");  // the more specific rule names it
  EXPECT_EQ(a[0].severity, Severity::critical);
  EXPECT_EQ(a[0].redacted, pw.substr(0, 2) + "..." + pw.substr(42));
  EXPECT_EQ(a[0].fingerprint.size(), 64u);
  expect_no_plaintext(a, pw);
  // Stable across scanners and runs; different per path and per secret.
  auto other = Scanner::create();
  ASSERT_TRUE(other);
  const auto b = scan_with(*other, text, "www/.env");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].fingerprint, b[0].fingerprint);
  EXPECT_NE(scan_text(text, "www2/.env")[0].fingerprint, a[0].fingerprint);
  EXPECT_NE(scan_text("MAIL_PASSWORD=" + ses_v4(8) + "\n", "www/.env")[0].fingerprint,
            a[0].fingerprint);
  // Fixed value: the fingerprint format must not change between releases (baselines).
  const auto fixed = scan_text("MAIL_PASSWORD=fixed-pass-1\n", ".env");
  ASSERT_EQ(fixed.size(), 1u);
  EXPECT_EQ(fixed[0].fingerprint, kFixedFingerprint);
}

TEST(ScanFindings, LineColumnStartEndCrlfNul) {
  const std::string pw = ses_v4(2);
  // At the very start and the very end of the buffer.
  auto f = scan_text(pw);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].offset, 0u);
  EXPECT_EQ(f[0].line, 1u);
  EXPECT_EQ(f[0].column, 1u);
  const std::string tail = "a\nb\n" + pw;
  f = scan_text(tail);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].line, 3u);
  EXPECT_EQ(f[0].column, 1u);
  EXPECT_EQ(f[0].offset + f[0].length, tail.size());
  // CRLF lines: the value stops before CR; lines and columns still count right.
  const std::string crlf = "APP=x\r\nMAIL_USERNAME=u1\r\nMAIL_PASSWORD=crlf-pw-1\r\n";
  f = scan_text(crlf, ".env");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(value_of(crlf, f[0]), "crlf-pw-1");
  EXPECT_EQ(f[0].username, "u1");
  EXPECT_EQ(f[0].line, 3u);
  EXPECT_EQ(f[0].column, 15u);
  // NUL bytes around and between findings.
  std::string bin("\0\0\x01", 3);
  bin += "$mail->Password = 'nul-pw-1';";
  bin += std::string("\0\0\n\0", 4) + pw + std::string("\0", 1);
  f = scan_text(bin);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(value_of(bin, f[0]), "nul-pw-1");
  EXPECT_EQ(f[0].column, 23u);
  EXPECT_EQ(value_of(bin, f[1]), pw);
  EXPECT_EQ(f[1].line, 2u);
  EXPECT_EQ(f[1].column, 2u);
  // Empty and tiny buffers.
  EXPECT_TRUE(scan_text("").empty());
  EXPECT_TRUE(scan_text("B").empty());
}

TEST(ScanFindings, ManyFindingsInOffsetOrder) {
  std::string text;
  for (unsigned i = 0; i < 200; ++i)
    text += "// filler line " + std::to_string(i) + "\n$mail->Password = 'pw-number-" +
            std::to_string(i) + "';\n";
  const auto f = scan_text(text);
  ASSERT_EQ(f.size(), 200u);
  for (unsigned i = 0; i < 200; ++i) {
    EXPECT_EQ(value_of(text, f[i]), "pw-number-" + std::to_string(i));
    EXPECT_EQ(f[i].line, 2u * i + 2);
  }
}

}  // namespace
}  // namespace sg::scan
