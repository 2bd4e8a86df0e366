// `smtpguard doctor`: the host posture check (the work is in src/doctor/).
#include <sysexits.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/secret.hpp"
#include "cli/cli.hpp"
#include "doctor/doctor.hpp"

namespace sg::cli {
namespace {

struct DoctorArgs {
  bool json = false;
  std::string root = "/";
  std::string proc = "/proc";
  std::vector<std::uint16_t> ports{25, 465, 587};
  std::int64_t now = 0;
};

}  // namespace

void add_doctor_command(CLI::App& app, Globals& globals) {
  auto args = std::make_shared<DoctorArgs>();
  auto* cmd = app.add_subcommand("doctor", "Check the host around the relay and say what to fix");
  cmd->add_flag("--json", args->json, "One JSON document: {summary, findings[]}");
  cmd->add_option("--root", args->root,
                  "Look for system files (Exim, Postfix, PHP, saved firewall rules) under DIR; "
                  "firewall tools run only when DIR is /")
      ->type_name("DIR")
      ->default_val("/");
  // For tests: a prepared /proc, other ports, a fixed clock.
  cmd->add_option("--proc", args->proc, "")->group("");
  cmd->add_option("--smtp-ports", args->ports, "")->delimiter(',')->group("");
  cmd->add_option("--now", args->now, "")->group("");
  cmd->footer(
      "Checks, each reported with a severity (high, medium, low, info) and a fix:\n"
      "  state directory root:smtpguard 0751; vault file and key file root 0600\n"
      "  key source: env:VAR (medium: environments leak), passphrase (info)\n"
      "  credential age per vault entry against [vault] rotation_warn_days (low) and\n"
      "    rotation_max_days (medium); NAME.previous is not judged\n"
      "  upstreams with tls = \"none\" to a non-loopback host (high); a missing ca_file\n"
      "  relay listeners on non-loopback addresses without [relay.tls] or allow_from\n"
      "  processes listening on ports 25/465/587 on a non-loopback address (medium),\n"
      "    with the owning process, from /proc/net/tcp, tcp6 and /proc/PID/fd\n"
      "  plaintext upstream secrets in Exim (Debian split and unsplit, cPanel), Postfix\n"
      "    (sasl_passwd, main.cf, master.cf) and msmtp files, found with the scan rules\n"
      "    and our own credentials' fingerprints (high; entries for 127.0.0.1 are the\n"
      "    relay's local identity and are ignored)\n"
      "  PHP configurations whose sendmail_path does not run smtpguard (medium)\n"
      "  no firewall rule limiting remote ports 25/465/587 by user (low: advice, with\n"
      "    nft, iptables and AWS security group commands)\n"
      "Paths named in the configuration (state_dir, vault, key file, ca_file) are used\n"
      "as written, not under --root. The vault is opened with its key (not with a\n"
      "passphrase: doctor never asks) to read credential ages; no secret is shown.\n"
      "\n"
      "Exit status: 0 nothing of high severity, 1 at least one high finding,\n"
      "64 usage error, 78 configuration error.");
  cmd->callback([&globals, args] {
    auto cfg = load_config(globals);
    if (!cfg) {
      globals.exit_code = fail(cfg.error());
      return;
    }
    harden_process();  // the vault is unsealed for the age check
    doctor::Options o;
    o.root = args->root;
    o.proc = args->proc;
    o.smtp_ports = args->ports;
    o.now = args->now;
    std::error_code ec;
    o.run_firewall_tools = std::filesystem::weakly_canonical(o.root, ec) == "/";
    auto report = doctor::run(*cfg, o);
    std::cout << (args->json ? doctor::render_json(report) : doctor::render_text(report));
    std::cout.flush();
    globals.exit_code = report.has_high() ? 1 : EX_OK;
  });
}

}  // namespace sg::cli
