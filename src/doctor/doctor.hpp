// doctor: `smtpguard doctor`, a posture check of the host around the relay.
// Each check looks at one thing (file owners and modes of the vault and its
// key, the key source, credential age, upstream TLS, relay listeners,
// processes listening on SMTP ports, plaintext upstream secrets left in Exim
// and Postfix files, PHP's sendmail_path, egress firewall rules) and returns
// findings, each with a severity and a one-line fix.
//
// Every system path is looked up under Options::root and every process fact
// under Options::proc, so tests run the checks on prepared trees. Paths named
// by the configuration (state_dir, vault, key file, ca_file) are used as
// written: the configuration describes the host it was written for.
//
// Trust: everything read (files under root, /proc, firewall tool output) is
// untrusted text: parsed with bounds, never executed, never thrown past this
// header. A check that cannot look at something says so as a finding rather
// than failing. Secrets: the vault is unsealed only to read credential ages
// and to fingerprint our own credentials for the scanner; findings show at
// most scan::redact() of a secret, never the secret.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "vault/vault.hpp"

namespace sg::scan {
class Scanner;
}

namespace sg::doctor {

enum class Severity { info, low, medium, high };
std::string_view to_string(Severity severity);

struct Finding {
  std::string id;  // stable, e.g. "key-file-mode", "mta-plaintext-secret"
  Severity severity = Severity::info;
  std::string title;   // one line
  std::string detail;  // what was seen (may be several lines)
  std::string fix;     // what to do (may be several lines)
};

struct Options {
  std::filesystem::path root = "/";      // prefix of every system path
  std::filesystem::path proc = "/proc";  // where net/tcp and PID/fd live
  std::vector<std::uint16_t> smtp_ports{25, 465, 587};
  std::int64_t now = 0;  // unix seconds; 0: the clock
  // Run `nft list ruleset`, iptables-save and ip6tables-save (only sensible
  // when root is "/"); saved rule files under root are read either way.
  bool run_firewall_tools = true;
};

struct Report {
  std::vector<Finding> findings;  // grouped by severity, high first, stable order within
  bool has_high() const;
};

// All checks.
Report run(const config::Config& cfg, const Options& options);

// ---- the checks, one per file, for tests ----

// check_files.cpp: state dir root:smtpguard 0751; vault and key file root 0600.
std::vector<Finding> check_state_files(const config::Config& cfg);
// check_files.cpp: env: (warn) and passphrase (note) key sources.
std::vector<Finding> check_key_source(const config::Config& cfg);

// check_vault.cpp: the unsealed vault, or a finding saying why it could not
// be opened (a passphrase vault is not opened: doctor asks for nothing).
struct VaultState {
  std::optional<vault::Contents> contents;
  std::vector<Finding> findings;
};
VaultState open_vault(const config::Config& cfg);
// Age of every current credential (NAME.previous is kept for rollback and
// not judged) against [vault] rotation_warn_days / rotation_max_days.
std::vector<Finding> check_credential_age(const config::Config& cfg,
                                          const vault::Contents& contents, std::int64_t now);

// check_config.cpp: upstream TLS, relay listeners.
std::vector<Finding> check_upstream_tls(const config::Config& cfg);
std::vector<Finding> check_relay_listeners(const config::Config& cfg);

// check_listeners.cpp: processes listening on `ports` on a non-loopback address.
std::vector<Finding> check_smtp_listeners(const Options& options);

// check_mta.cpp: Exim, Postfix and msmtp files under root with a plaintext
// upstream secret (scan rules; entries for loopback hosts are the relay's
// own local identity and are left alone).
std::vector<std::filesystem::path> mta_files(const std::filesystem::path& root);
std::vector<Finding> check_mta_secrets(const std::filesystem::path& root,
                                       const scan::Scanner& scanner);

// check_php.cpp: every PHP configuration whose effective sendmail_path is
// not smtpguard.
std::vector<Finding> check_php_sendmail(const std::filesystem::path& root);

// check_egress.cpp: whether a firewall rule keeps users other than root and
// smtpguard from remote ports 25/465/587 (advice only).
std::vector<Finding> check_egress(const Options& options);

// ---- pure parsers (parse.cpp; no I/O) ----

struct ListenSocket {
  std::string address;  // printable, e.g. "0.0.0.0", "::", "192.0.2.1"
  std::uint16_t port = 0;
  std::uint64_t inode = 0;
  bool loopback = false;
};
// LISTEN entries (state 0A) of /proc/net/tcp (v6 = false) or tcp6.
std::vector<ListenSocket> parse_proc_net_tcp(std::string_view text, bool v6);
// INODE of a "socket:[INODE]" link target.
std::optional<std::uint64_t> socket_inode(std::string_view link);

// The last sendmail_path set in php.ini text (quotes removed), if any;
// `pool` reads an FPM pool file's php_admin_value[sendmail_path] /
// php_value[sendmail_path] instead.
std::optional<std::string> ini_sendmail_path(std::string_view text, bool pool = false);

// A rule in nft or iptables-save text that restricts TCP to remote ports
// 25/465/587 by socket owner uid: some rule matches those ports with a drop
// or reject, and some rule matches the owner (skuid / --uid-owner).
struct EgressRules {
  bool blocks_smtp_ports = false;
  bool matches_owner = false;
  bool found() const { return blocks_smtp_ports && matches_owner; }
};
EgressRules analyse_firewall(std::string_view ruleset);

// ---- output ----
std::string render_text(const Report& report);
std::string render_json(const Report& report);

}  // namespace sg::doctor
