// cli: the smtpguard command line. main() builds one CLI11 app; each file
// cmd_*.cpp adds one command group. Commands report failures as a single
// "smtpguard: ..." line on stderr and a sysexits.h exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "spool/spool.hpp"

namespace sg::cli {

struct Globals {
  std::string
      config_path;  // --config; empty: $SMTPGUARD_CONFIG, /etc/smtpguard/smtpguard.toml, defaults
  int exit_code = 0;
};

// Loads the configuration the command line asks for.
Result<config::Config> load_config(const Globals& globals);

// The relay's spool, opened without taking it over (recover = false), so
// safe while the relay runs; Errc::not_found when the relay never ran.
Result<std::unique_ptr<spool::Spool>> open_spool_shared(const config::Config& cfg);

// Prints "smtpguard: MESSAGE" to stderr and returns the exit code for `error`.
int fail(const Error& error);
int fail(int exit_code, const std::string& message);
// sysexits code for an error class.
int exit_code_for(Errc code);

void add_status_command(CLI::App& app, Globals& globals);
void add_vault_commands(CLI::App& app, Globals& globals);
void add_ses_commands(CLI::App& app, Globals& globals);
void add_verify_command(CLI::App& app, Globals& globals);
void add_send_command(CLI::App& app, Globals& globals);
void add_client_commands(CLI::App& app, Globals& globals);
void add_relay_command(CLI::App& app, Globals& globals);
void add_queue_commands(CLI::App& app, Globals& globals);
void add_queue_control_commands(CLI::App& queue, Globals& globals);  // hold, release, delete, flush
void add_control_commands(CLI::App& app, Globals& globals);          // pause, resume, reload
void add_integrate_commands(CLI::App& app, Globals& globals);        // integrate exim (+ below)
void add_integrate_mta_commands(CLI::App& integrate, Globals& globals);  // integrate postfix|php
void add_import_command(CLI::App& app, Globals& globals);
void add_rotate_command(CLI::App& app, Globals& globals);
void add_audit_commands(CLI::App& app, Globals& globals);  // audit verify|tail
void add_alert_commands(CLI::App& app, Globals& globals);  // alert test
// queue release|delete --identity NAME (cmd_queue_identity.cpp).
int queue_identity_action(const Globals& globals, const std::string& cmd,
                          const std::string& identity);
void add_doctor_command(CLI::App& app, Globals& globals);  // doctor (exit 1: high findings)
void add_scan_command(CLI::App& app, Globals& globals);  // scan (exit codes 0/1/2)
void add_watch_commands(CLI::App& app, Globals& globals);  // watch exim-log

// The sendmail(8) interface, parsed by hand: its flags (-oi, -odb, -bs, -fADDR)
// are not getopt-style. `args` are the words after "sendmail".
int run_sendmail(const Globals& globals, const std::vector<std::string>& args);

}  // namespace sg::cli
