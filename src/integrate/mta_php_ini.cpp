// The php.ini drop-in and the instructions `integrate php` prints.
#include <algorithm>
#include <string>

#include "integrate/mta.hpp"

namespace sg::integrate {
namespace {

// Characters that mean nothing special inside php.ini double quotes (no '"',
// '$', '\\') nor to /bin/sh, which PHP's mail() runs sendmail_path with.
bool plain_path(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.size() > 1024) return false;
  return std::all_of(path.begin(), path.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("/._+@,:=-").find(c) != std::string_view::npos;
  });
}

}  // namespace

Result<std::string> php_sendmail_command(std::string_view binary, std::string_view config_path) {
  if (!plain_path(binary))
    return make_error(Errc::invalid_input,
                      "the program's path must be absolute and use only letters, digits and "
                      "/._+@,:=- to go into sendmail_path");
  if (!config_path.empty() && !plain_path(config_path))
    return make_error(Errc::invalid_input,
                      "the configuration file's path must be absolute and use only letters, "
                      "digits and /._+@,:=- to go into sendmail_path");
  std::string cmd(binary);
  if (!config_path.empty()) cmd += " --config " + std::string(config_path);
  cmd += " sendmail -t -i";
  return cmd;
}

std::string render_php_dropin(std::string_view sendmail_command) {
  return std::string(kPhpDropinMarker) +
         ": PHP mail() submits through the smtpguard relay,\n"
         "; which knows each site by the unix user PHP runs as. Undo with\n"
         "; `smtpguard integrate php --undo`; do not edit (it is rewritten).\n"
         "sendmail_path = \"" +
         std::string(sendmail_command) + "\"\n";
}

std::string php_smtp_instructions(std::string_view host, std::uint16_t port,
                                  std::string_view sendmail_command) {
  const std::string h(host), p = std::to_string(port);
  return "PHP mail() now runs: " + std::string(sendmail_command) +
         "\n"
         "It is identified by the unix user PHP runs as; give each site user an identity:\n"
         "  smtpguard client add SITE --uid www-data --allowed-sender '*@example.com'\n"
         "\n"
         "Applications that speak SMTP (PHPMailer, WP Mail SMTP, Laravel, Symfony Mailer):\n"
         "  host " +
         h + ", port " + p +
         ", no encryption (loopback), authentication on,\n"
         "  username and password: the application's own identity; create one with:\n"
         "    smtpguard client add NAME --password-stdin --allowed-sender '*@example.com'\n"
         "  PHPMailer:    $mail->isSMTP(); $mail->Host = '" +
         h + "'; $mail->Port = " + p +
         ";\n"
         "                $mail->SMTPAuth = true; $mail->Username = 'NAME'; $mail->Password = "
         "...;\n"
         "                $mail->SMTPSecure = ''; $mail->SMTPAutoTLS = false;\n"
         "  WP Mail SMTP: Mailer \"Other SMTP\", SMTP Host " +
         h + ", Encryption None, SMTP Port " + p +
         ",\n"
         "                Auto TLS off, Authentication on, SMTP Username NAME, its password\n"
         "                (or define WPMS_SMTP_PASS in wp-config.php, readable only by the site)\n"
         "Never give an application the upstream (SES) credential.\n";
}

}  // namespace sg::integrate
