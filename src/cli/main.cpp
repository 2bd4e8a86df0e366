#include <sysexits.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string_view>

#include "cli/cli.hpp"

namespace sg::cli {

int exit_code_for(Errc code) {
  switch (code) {
    case Errc::invalid_input:
      return EX_DATAERR;
    case Errc::not_found:
      return EX_NOINPUT;
    case Errc::permission:
      return EX_NOPERM;
    case Errc::io:
      return EX_IOERR;
    case Errc::crypto:
      return EX_DATAERR;
    case Errc::corrupt:
      return EX_DATAERR;
    case Errc::unsupported:
      return EX_DATAERR;
    case Errc::config:
      return EX_CONFIG;
    case Errc::protocol:
      return EX_PROTOCOL;
    case Errc::tls:
      return EX_UNAVAILABLE;
    case Errc::auth:
      return EX_NOPERM;
    case Errc::temp_failure:
      return EX_TEMPFAIL;
    case Errc::perm_failure:
      return EX_UNAVAILABLE;
    case Errc::timeout:
      return EX_TEMPFAIL;
    case Errc::conflict:
      return EX_CANTCREAT;
  }
  return EX_SOFTWARE;
}

int fail(int exit_code, const std::string& message) {
  std::cerr << "smtpguard: " << message << "\n";
  return exit_code;
}

int fail(const Error& error) {
  return fail(exit_code_for(error.code), error.message);
}

Result<config::Config> load_config(const Globals& globals) {
  std::string path = globals.config_path;
  if (path.empty()) {
    if (const char* env = std::getenv("SMTPGUARD_CONFIG"); env != nullptr && *env != '\0')
      path = env;
  }
  if (path.empty()) {
    std::error_code ec;
    if (std::filesystem::exists("/etc/smtpguard/smtpguard.toml", ec))
      path = "/etc/smtpguard/smtpguard.toml";
  }
  if (path.empty()) return config::defaults();
  auto loaded = config::load_file(path);
  if (!loaded) return make_error(Errc::config, loaded.error().message);
  return loaded;
}

}  // namespace sg::cli

namespace {

// "sendmail ..." (by argv[0] or as the first command word, after an optional
// --config FILE) goes to run_sendmail before CLI11 sees sendmail's flags.
std::optional<int> dispatch_sendmail(int argc, char** argv, sg::cli::Globals& globals) {
  std::string_view self = argv[0];
  if (auto slash = self.rfind('/'); slash != std::string_view::npos) self.remove_prefix(slash + 1);
  int first = 1;
  if (self != "sendmail") {
    if (argc > 2 && std::string_view(argv[1]) == "--config") {
      globals.config_path = argv[2];
      first = 3;
    } else if (argc > 1 && std::string_view(argv[1]).rfind("--config=", 0) == 0) {
      globals.config_path = argv[1] + 9;
      first = 2;
    }
    if (first >= argc || std::string_view(argv[first]) != "sendmail") return std::nullopt;
    ++first;
  }
  return sg::cli::run_sendmail(globals, std::vector<std::string>(argv + first, argv + argc));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sg::cli;
  Globals globals;
  if (auto rc = dispatch_sendmail(argc, argv, globals)) return *rc;
  globals.config_path.clear();
  CLI::App app{
      "smtpguard keeps upstream SMTP credentials (Amazon SES or any smarthost) sealed away\n"
      "from the applications and mail servers that send through them."};
  app.name("smtpguard");
  app.set_version_flag("--version", std::string("smtpguard 0.1.0"));
  app.add_option("--config", globals.config_path,
                 "Configuration file (default: $SMTPGUARD_CONFIG, then "
                 "/etc/smtpguard/smtpguard.toml, then embedded defaults)");
  app.require_subcommand(1);
  app.footer(
      "Exit codes follow sysexits.h: 0 ok, 64 usage, 65 bad data, 66 missing input,\n"
      "69 unavailable (5xx), 74 I/O, 75 temporary failure (4xx), 76 protocol,\n"
      "77 permission or rejected credentials, 78 configuration.");

  add_status_command(app, globals);
  add_vault_commands(app, globals);
  add_ses_commands(app, globals);
  add_verify_command(app, globals);
  add_send_command(app, globals);
  add_client_commands(app, globals);
  add_relay_command(app, globals);
  add_queue_commands(app, globals);
  add_control_commands(app, globals);
  add_integrate_commands(app, globals);
  add_import_command(app, globals);
  add_rotate_command(app, globals);
  add_audit_commands(app, globals);
  add_alert_commands(app, globals);
  add_doctor_command(app, globals);
  add_scan_command(app, globals);
  add_watch_commands(app, globals);
  app.add_subcommand(
      "sendmail",
      "sendmail(8)-compatible submission to the relay (see: smtpguard sendmail --help)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "smtpguard: " << e.what() << "\n";
    std::cerr << "Run 'smtpguard --help' for usage.\n";
    return EX_USAGE;
  }
  return globals.exit_code;
}
