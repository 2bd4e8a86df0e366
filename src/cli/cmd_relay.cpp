#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sysexits.h>

#include "cli/cli.hpp"
#include "relay/relay.hpp"

namespace sg::cli {

void add_relay_command(CLI::App& app, Globals& globals) {
  auto* cmd = app.add_subcommand("relay", "Run the local submission relay (foreground)");
  cmd->footer(
      "Local SMTP submission on [relay] listen and the unix socket, per-identity policy,\n"
      "and a durable spool (a 250 means the message is fsync'd). Started as root it drops\n"
      "to the unprivileged user smtpguard (or nobody) for everything that reads client\n"
      "bytes. Logs to stderr; systemd Type=notify; SIGTERM stops it without losing any\n"
      "accepted message. SIGHUP (or `smtpguard reload`) re-reads the configuration and the\n"
      "vault: a configuration with errors is rejected and the running one stays; otherwise\n"
      "a new receiver takes over while the old one finishes its sessions, and the\n"
      "deliverer restarts after the messages in its hands. Client identities\n"
      "(`smtpguard client ...`) apply without any reload.\n"
      "`smtpguard pause` stops delivery at once (new mail is accepted and held) until\n"
      "`smtpguard resume`, across restarts.");
  cmd->callback([&globals] {
    auto cfg = load_config(globals);
    if (!cfg) {
      globals.exit_code = fail(cfg.error());
      return;
    }
    // Logs go to stderr (the journal under systemd), never mixed with output.
    spdlog::set_default_logger(spdlog::stderr_logger_mt("relay"));
    spdlog::set_pattern("smtpguard[%P]: %l: %v");
    relay::RelayOptions options;
    options.reload = [&globals] { return load_config(globals); };
    globals.exit_code = relay::run(*cfg, options);
  });
}

}  // namespace sg::cli
