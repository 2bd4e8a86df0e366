// integrate/mta: `smtpguard integrate postfix` and `smtpguard integrate php`.
//  - Postfix: main.cf gets relayhost = [127.0.0.1]:PORT (the relay's
//    loopback listener) and SASL settings pointing at DIR/smtpguard_sasl, a
//    map holding only the local identity "postfix" (never the upstream
//    secret). Every other byte of main.cf stays as it was. Checked with
//    `postfix check` (or postconf), reloaded, backed up under
//    STATE_DIR/backups/postfix-TIME/, rolled back on failure, undone
//    byte-exact with --undo.
//  - PHP: a drop-in DIR/VERSION/SAPI/conf.d/99-smtpguard.ini per installed
//    PHP version and SAPI that sets sendmail_path to `smtpguard sendmail`.
// The renderers and the main.cf editor (mta_postfix_cf.cpp, mta_php_ini.cpp)
// are I/O-free and treat their input as untrusted text: bounded, no
// exceptions, errors as Result with "FILE:LINE: what" messages. The
// installers (mta_postfix.cpp, mta_php.cpp, mta_process.cpp) do the file
// and program work; they report progress on `out` and return one-line
// errors that never contain a password.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "config/config.hpp"

namespace sg::integrate {

// ---- Postfix main.cf (I/O-free) ----------------------------------------------------------

// Largest main.cf the editor accepts.
inline constexpr std::size_t kMaxMainCfSize = 4u << 20;

// One "name = value" logical line. A logical line is its first line plus the
// lines that start with whitespace; comment and blank lines between them do
// not end it (as Postfix reads it). [begin, end) are byte offsets of the
// first line's start and of the end of the last continuation line's text
// (before its line ending).
struct MainCfEntry {
  std::string name;
  std::string value;  // continuation lines joined with single spaces, trimmed
  std::size_t begin = 0, end = 0;
  std::size_t first_line = 0, last_line = 0;  // 1-based physical lines
};

// All entries in file order. Errors (Errc::invalid_input): a logical line
// without '=' after the name ("SOURCE:LINE: ..."), a NUL byte, a file larger
// than kMaxMainCfSize.
Result<std::vector<MainCfEntry>> parse_main_cf(std::string_view text, std::string_view source);

// The effective value of `name` (the last entry wins, as in Postfix).
std::optional<std::string> main_cf_value(const std::vector<MainCfEntry>& entries,
                                         std::string_view name);

struct MainCfSetting {
  std::string name;   // [A-Za-z0-9_]+
  std::string value;  // one line
};

// One replaced logical line or the appended block, for a -U0 style diff.
struct MainCfChange {
  std::size_t old_line = 0;  // 1-based first line in the old text (append: line count + 1)
  std::vector<std::string> removed, added;
};

struct MainCfEdit {
  std::string text;  // the new main.cf
  std::vector<MainCfChange> changes;
  bool changed() const { return !changes.empty(); }
};

// Sets each setting: every existing logical line of that name whose value
// differs is replaced in place (keeping "name =" as written and the line
// ending); missing names are appended after a comment line. Everything
// else is kept byte for byte; applying the same settings twice changes
// nothing the second time.
Result<MainCfEdit> edit_main_cf(std::string_view text, const std::vector<MainCfSetting>& settings,
                                std::string_view source);

// "--- LABEL / +++ LABEL / @@ -a,b +c,d @@" hunks of `edit` without context.
std::string render_main_cf_diff(const MainCfEdit& edit, std::string_view label);

// Line changes from `from` to `to` (longest common subsequence; one hunk
// for the differing middle when that is over 2000 lines), e.g. for --undo.
MainCfEdit line_diff(std::string_view from, std::string_view to);

// ---- Postfix settings (I/O-free) ---------------------------------------------------------

inline constexpr std::string_view kPostfixIdentity = "postfix";
inline constexpr std::string_view kPostfixMapName = "smtpguard_sasl";

// "[127.0.0.1]:PORT" from the first IPv4 loopback (or "localhost") entry of
// [relay] listen; Errc::config when there is none.
Result<std::string> postfix_relayhost(const config::Config& cfg);

// The main.cf settings for `relayhost` and the map at `map_path`. `current`
// is the parsed main.cf: a mandatory TLS level for the smtp client
// (smtp_tls_security_level encrypt/verify/secure/..., or smtp_enforce_tls =
// yes) becomes "may" unless `relay_has_tls`, because the relay offers
// STARTTLS on loopback only with [relay.tls].
std::vector<MainCfSetting> postfix_settings(const std::vector<MainCfEntry>& current,
                                            std::string_view relayhost,
                                            const std::filesystem::path& map_path,
                                            bool relay_has_tls);

// The map file "NEXTHOP USER:PASSWORD\n" (a secret, so a Secret).
Secret render_sasl_map(std::string_view nexthop, std::string_view user, const Secret& password);
// The password for `nexthop` in map text, if its user is `user`.
std::optional<Secret> sasl_map_password(std::string_view map_text, std::string_view nexthop,
                                        std::string_view user);

// ---- PHP (I/O-free) ----------------------------------------------------------------------

inline constexpr std::string_view kPhpDropinName = "99-smtpguard.ini";
// First line of every drop-in we write; --undo removes only files starting with it.
inline constexpr std::string_view kPhpDropinMarker = "; smtpguard integrate php";

// "BINARY [--config CONFIG] sendmail -t -i". Errc::invalid_input when a
// path is not absolute or holds characters that php.ini double quotes or
// the shell PHP runs it with would change ([A-Za-z0-9/._+@,:=-] only).
Result<std::string> php_sendmail_command(std::string_view binary, std::string_view config_path);

// The drop-in's text for a sendmail command.
std::string render_php_dropin(std::string_view sendmail_command);

// What to tell apps that speak SMTP (PHPMailer, WP Mail SMTP) and sites that
// use mail(): host, port, identities.
std::string php_smtp_instructions(std::string_view host, std::uint16_t port,
                                  std::string_view sendmail_command);

// ---- Installers (I/O; not in the fuzz build) ---------------------------------------------

struct PostfixOptions {
  std::filesystem::path config_dir = "/etc/postfix";
  bool dry_run = false;
  bool undo = false;
  bool force = false;                        // --undo even though main.cf changed since
  std::vector<std::string> allowed_senders;  // for a newly created "postfix" identity
};
Result<void> integrate_postfix(const config::Config& cfg, const PostfixOptions& options,
                               std::ostream& out);

struct PhpOptions {
  std::filesystem::path php_dir = "/etc/php";
  bool dry_run = false;
  bool undo = false;
  std::string binary;       // absolute path of this program (/proc/self/exe)
  std::string config_path;  // passed as --config in sendmail_path; empty: none
};
Result<void> integrate_php(const config::Config& cfg, const PhpOptions& options, std::ostream& out);

// ---- Running programs (mta_process.cpp) --------------------------------------------------

struct ProgramResult {
  int exit_code = -1;  // -1: killed by a signal or by the timeout
  bool timed_out = false;
  std::string output;  // stdout and stderr together, at most 64 KiB
  bool ok() const { return exit_code == 0; }
  // The output's first non-empty line (or "exit N"), for error messages.
  std::string summary() const;
};

// `name` in $PATH, then /usr/sbin and /sbin; nullopt when not executable.
std::optional<std::filesystem::path> find_program(std::string_view name);

// Runs argv (argv[0] a path) with stdin from /dev/null, a umask and a
// timeout after which it is killed. Errc::not_found / io when it cannot start.
Result<ProgramResult> run_program(const std::vector<std::string>& argv,
                                  std::chrono::seconds timeout = std::chrono::seconds(60),
                                  mode_t umask_value = 022);

}  // namespace sg::integrate
