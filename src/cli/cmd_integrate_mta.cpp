// `smtpguard integrate postfix` and `smtpguard integrate php` (the work is in
// src/integrate/mta_*.cpp; this file is the command line).
#include <sysexits.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "integrate/integrate.hpp"

namespace sg::cli {
namespace {

struct MtaArgs {
  bool dry_run = false, undo = false, force = false;
  std::string config_dir = "/etc/postfix";
  std::string php_dir = "/etc/php";
  std::vector<std::string> senders;
};

// This program's absolute path, as the kernel knows it.
Result<std::string> self_path() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return make_error(Errc::io, "cannot read /proc/self/exe");
  std::string path(buf, static_cast<std::size_t>(n));
  if (path.ends_with(" (deleted)"))
    return make_error(Errc::not_found, "this program was deleted while running: " + path);
  return path;
}

template <class Run>
void bind(CLI::App* cmd, Globals& globals, Run run) {
  cmd->callback([&globals, run] {
    auto cfg = load_config(globals);
    if (!cfg) {
      globals.exit_code = fail(cfg.error());
      return;
    }
    harden_process();
    auto r = run(*cfg);
    globals.exit_code = r ? EX_OK : fail(r.error());
  });
}

void add_postfix(CLI::App& integrate, Globals& globals) {
  auto args = std::make_shared<MtaArgs>();
  auto* cmd = integrate.add_subcommand(
      "postfix", "Make Postfix relay all mail through smtpguard with its own identity");
  cmd->add_flag("--dry-run", args->dry_run, "Show the main.cf diff and what would be done");
  cmd->add_flag("--undo", args->undo,
                "Put back main.cf and the map as they were before the first run, byte-exact, "
                "remove the identity if it was created, and reload Postfix");
  cmd->add_flag("--force", args->force, "--undo even though main.cf changed since");
  cmd->add_option("--config-dir", args->config_dir, "Postfix's configuration directory")
      ->default_val("/etc/postfix");
  cmd->add_option("--allowed-sender", args->senders,
                  "Envelope senders the identity 'postfix' may use when it is created "
                  "(ADDRESS, *@DOMAIN, *@*.DOMAIN, <>); repeatable");
  cmd->footer(
      "Sets in DIR/main.cf, editing existing lines in place (continuation lines included)\n"
      "and appending missing ones, every other byte unchanged:\n"
      "  relayhost = [127.0.0.1]:PORT            (PORT from [relay] listen)\n"
      "  smtp_sasl_auth_enable = yes\n"
      "  smtp_sasl_password_maps = hash:DIR/smtpguard_sasl\n"
      "  smtp_sasl_security_options = noanonymous\n"
      "  smtp_tls_security_level = may           (only if it demanded TLS the loopback hop\n"
      "                                           cannot give)\n"
      "DIR/smtpguard_sasl (0600 root, postmap'd) holds only the local identity 'postfix'\n"
      "with a random password; the identity is created if missing. The upstream secret\n"
      "never reaches Postfix. Postfix's SMTP client needs a Cyrus SASL plugin for PLAIN or\n"
      "LOGIN (Debian: libsasl2-modules).\n"
      "\n"
      "The originals are kept in STATE_DIR/backups/postfix-TIME/ (one backup until --undo).\n"
      "The result is checked with `postfix check` (postconf when the postfix command is\n"
      "missing) and must read back the values set; then Postfix is reloaded (postfix reload,\n"
      "or systemctl). Any failure puts the previous files back. A second run changes nothing.\n"
      "\n"
      "Examples:\n"
      "  smtpguard integrate postfix --dry-run\n"
      "  smtpguard integrate postfix --allowed-sender '*@example.com' --allowed-sender '<>'\n"
      "  smtpguard integrate postfix --undo");
  bind(cmd, globals, [args](const config::Config& cfg) {
    integrate::PostfixOptions o;
    o.config_dir = args->config_dir;
    o.dry_run = args->dry_run;
    o.undo = args->undo;
    o.force = args->force;
    o.allowed_senders = args->senders;
    return integrate::integrate_postfix(cfg, o, std::cout);
  });
}

void add_php(CLI::App& integrate, Globals& globals) {
  auto args = std::make_shared<MtaArgs>();
  auto* cmd = integrate.add_subcommand(
      "php", "Point PHP's mail() (sendmail_path) at smtpguard for every PHP version and SAPI");
  cmd->add_flag("--dry-run", args->dry_run, "Show which drop-ins would be written or removed");
  cmd->add_flag("--undo", args->undo, "Remove the drop-ins smtpguard wrote");
  cmd->add_option("--php-dir", args->php_dir, "Where PHP's configuration lives")
      ->default_val("/etc/php");
  cmd->footer(
      "Writes DIR/VERSION/SAPI/conf.d/99-smtpguard.ini (0644, atomically) for every installed\n"
      "PHP version and SAPI (cli, fpm, apache2, ...) with\n"
      "  sendmail_path = \"/path/to/smtpguard [--config FILE] sendmail -t -i\"\n"
      "(this program's path; --config when the configuration is not the default file), then\n"
      "reloads the active php*-fpm and apache2 services. mail() then submits over the relay's\n"
      "unix socket, identified by the unix user PHP runs as (smtpguard client add NAME --uid\n"
      "USER). Prints the settings for applications that speak SMTP (PHPMailer, WP Mail SMTP).\n"
      "A second run changes nothing; --undo removes only files that smtpguard wrote.\n"
      "\n"
      "Examples:\n"
      "  smtpguard integrate php --dry-run\n"
      "  smtpguard integrate php\n"
      "  smtpguard integrate php --undo");
  bind(cmd, globals, [args](const config::Config& cfg) -> Result<void> {
    integrate::PhpOptions o;
    o.php_dir = args->php_dir;
    o.dry_run = args->dry_run;
    o.undo = args->undo;
    auto self = self_path();
    if (!self) return self.error();
    o.binary = *self;
    if (!cfg.source.empty()) {
      std::error_code ec;
      auto abs = std::filesystem::absolute(cfg.source, ec);
      if (ec) abs = cfg.source;
      if (abs != "/etc/smtpguard/smtpguard.toml") o.config_path = abs.lexically_normal().string();
    }
    return integrate::integrate_php(cfg, o, std::cout);
  });
}

}  // namespace

void add_integrate_mta_commands(CLI::App& integrate, Globals& globals) {
  add_postfix(integrate, globals);
  add_php(integrate, globals);
}

}  // namespace sg::cli
