// The rule table, the trigger patterns that make Hyperscan fire for them, and
// redaction. Order in rules() is also merge priority: when two rules find the
// same bytes, the earlier rule names the finding.
#include <hs/hs.h>

#include "scan/internal.hpp"

namespace sg::scan {

std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::low:
      return "low";
    case Severity::medium:
      return "medium";
    case Severity::high:
      return "high";
    case Severity::critical:
      return "critical";
  }
  return "medium";
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> all = {
      {"own-credential", "A copy of one of this host's own vault credentials", Severity::critical,
       "Remove the copy now and rotate the credential (smtpguard vault rotate)"},
      {"ses-smtp-password-v4", "Amazon SES SMTP password (SigV4)", Severity::high,
       "Delete it, rotate the IAM key and send through the smtpguard relay instead"},
      {"ses-smtp-password-v2", "Amazon SES SMTP password (legacy SigV2)", Severity::medium,
       "Delete it, rotate the IAM key (SigV2 passwords are deprecated) and use the relay"},
      {"aws-secret-access-key", "AWS secret access key", Severity::high,
       "Delete it and deactivate the access key in IAM; use an instance role instead"},
      {"phpmailer-password", "PHPMailer SMTP password ($mail->Password)", Severity::high,
       "Point PHPMailer at the local smtpguard relay with a per-app identity"},
      {"smtp-url-credentials", "Credentials in an SMTP URL, Symfony/SwiftMailer DSN or setPassword",
       Severity::high, "Use a DSN to the local smtpguard relay without the upstream password"},
      {"laravel-mail-password", "Laravel .env MAIL_PASSWORD", Severity::high,
       "Set MAIL_HOST to the smtpguard relay and remove the upstream MAIL_PASSWORD"},
      {"wp-mail-smtp-password", "WP Mail SMTP password constant (WPMS_SMTP_PASS)", Severity::high,
       "Remove the define and let WordPress send through smtpguard's sendmail"},
      {"smtp-plugin-option-sql", "SMTP plugin password in a database dump (wp_options)",
       Severity::high, "Delete or restrict the dump; clear the plugin's stored password"},
      {"msmtprc-password", "msmtp account password", Severity::high,
       "Use passwordeval or the smtpguard relay instead of a plaintext password"},
      {"postfix-sasl-passwd", "Postfix sasl_passwd entry", Severity::high,
       "Relay Postfix through smtpguard (smtpguard integrate postfix) and delete the entry"},
      {"exim-passwd-client", "Exim passwd.client entry", Severity::high,
       "Relay Exim through smtpguard (smtpguard integrate exim) and delete the entry"},
      {"exim-client-send", "Exim authenticator client_send with a literal password", Severity::high,
       "Relay Exim through smtpguard (smtpguard integrate exim)"},
      {"generic-smtp-password", "SMTP or mail password assignment", Severity::medium,
       "Remove the password from the file; send through the smtpguard relay"},
      {"aws-access-key-id", "AWS access key id", Severity::low,
       "Check where its secret key is; prefer instance roles over long-lived keys"},
  };
  return all;
}

const Rule* find_rule(std::string_view id) {
  for (const Rule& r : rules())
    if (r.id == id) return &r;
  return nullptr;
}

std::string redact(std::string_view secret) {
  if (secret.size() < 8) return {};
  // Only printable ASCII is shown, so the result is always valid UTF-8.
  auto show = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u > 0x20 && u < 0x7f) ? c : '?';
  };
  std::string out;
  out += show(secret[0]);
  out += show(secret[1]);
  out += "...";
  out += show(secret[secret.size() - 2]);
  out += show(secret[secret.size() - 1]);
  return out;
}

}  // namespace sg::scan

namespace sg::scan::detail {

const std::vector<Trigger>& triggers() {
  constexpr unsigned ci = HS_FLAG_CASELESS;
  constexpr unsigned ml = HS_FLAG_MULTILINE;
  static const std::vector<Trigger> all = {
      {"(?:AKIA|ASIA)[A-Z2-7]{16}", 0, 20, Kind::aws_key_id, true},
      {"[^A-Za-z0-9+/]B[A-P][A-Za-z0-9+/]{42}", 0, 45, Kind::ses_v4, true},
      {"[^A-Za-z0-9+/]A[g-v][A-Za-z0-9+/]{42}", 0, 45, Kind::ses_v2, true},
      {"secret_access_key", ci, 17, Kind::aws_secret_key},
      {"secretaccesskey", ci, 15, Kind::aws_secret_key},
      {"secret-access-key", ci, 17, Kind::aws_secret_key},
      {"aws_secret_key", ci, 14, Kind::aws_secret_key},
      {"->Password", ci, 10, Kind::phpmailer},
      {"smtp://", ci, 7, Kind::smtp_url},
      {"smtps://", ci, 8, Kind::smtp_url},
      {"ses+https://", ci, 12, Kind::smtp_url},
      {"ses+api://", ci, 10, Kind::smtp_url},
      {"->setPassword(", ci, 14, Kind::swift},
      {"MAIL_PASSWORD", 0, 13, Kind::laravel},
      {"WPMS_SMTP_PASS", 0, 14, Kind::wpms},
      {"pass\";s:", ci, 8, Kind::sql_option},
      {"pass\\\";s:", ci, 9, Kind::sql_option},
      {"password\";s:", ci, 12, Kind::sql_option},
      {"password\\\";s:", ci, 13, Kind::sql_option},
      {"\"password\":", ci, 11, Kind::sql_option},
      {"\\\"password\\\":", ci, 13, Kind::sql_option},
      {"^[ \\t]*password[ \\t]+[^ \\t\\r\\n]", ml, 0, Kind::msmtp, true},
      {"^[ \\t]*\\[[A-Za-z0-9.\\-]{1,253}\\](?::[0-9]{1,5})?[ \\t]+[^ \\t\\r\\n:]{1,256}:", ml, 0,
       Kind::postfix, true},
      {"email-smtp.", ci, 11, Kind::mail_host},
      {"client_send", ci, 11, Kind::exim_send},
      {"smtp_pass", ci, 9, Kind::generic},
      {"smtppass", ci, 8, Kind::generic},
      {"smtp-pass", ci, 9, Kind::generic},
      {"smtp_auth_pass", ci, 14, Kind::generic},
      {"mail_pass", ci, 9, Kind::generic},
      {"email_pass", ci, 10, Kind::generic},
      {"email_host_password", ci, 19, Kind::generic},
      {"mailer_pass", ci, 11, Kind::generic},
  };
  return all;
}

FileInfo classify_path(std::string_view path) {
  FileInfo f;
  const std::size_t slash = path.find_last_of('/');
  const std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto ends = [&](std::string_view s) { return base.ends_with(s); };
  f.dotenv = base.starts_with(".env") || ends(".env");
  f.msmtprc = base.find("msmtprc") != std::string_view::npos;
  f.sasl_passwd = base.starts_with("sasl_passwd");
  f.passwd_client = base.starts_with("passwd.client");
  f.literal_config = f.dotenv || f.msmtprc || ends(".ini") || ends(".yml") || ends(".yaml") ||
                     ends(".conf") || ends(".cfg") || ends(".toml") || ends(".properties") ||
                     ends("rc") || f.sasl_passwd || f.passwd_client;
  return f;
}

}  // namespace sg::scan::detail
