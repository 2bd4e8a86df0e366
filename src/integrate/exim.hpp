// integrate/exim: `smtpguard integrate exim`. Points a host's Exim at the
// relay (smarthost mode: Exim logs in to 127.0.0.1:PORT as its own local
// identity and names the submitter in X-Smtpguard-Submitter), or, in the
// legacy passwd-client mode, writes the upstream credential into Exim's
// passwd.client with escaping that survives any password character.
//
// Everything smtpguard adds to Exim's files sits between the lines
// "# BEGIN smtpguard" and "# END smtpguard" (in the Debian split layout: in
// conf.d files of its own), so a new run replaces exactly its own text and
// nothing else; the rest of every file stays byte-exact.
//
// Trust: the Exim files are the host's own configuration but are parsed as
// untrusted text (bounded, never executed, no exceptions). The renderers and
// parsers (exim_render.cpp) do no I/O and are fuzzed; the installer
// (exim_install.cpp) reads and writes files under `root`, runs exim,
// update-exim4.conf and systemctl with fixed argv (never a shell), and
// signals Exim's daemon. Errors are Result values with one line naming the
// file or the program that failed. Secrets (the local password, the upstream
// password) live only in sg::Secret and in the files meant for them (0640
// root:EXIM_GROUP); diffs and messages never show them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "config/config.hpp"

namespace sg::integrate::exim {

inline constexpr std::string_view kBeginMarker = "# BEGIN smtpguard";
inline constexpr std::string_view kEndMarker = "# END smtpguard";
inline constexpr std::string_view kSubmitterHeader = "X-Smtpguard-Submitter";
// The local identity Exim logs in to the relay as.
inline constexpr std::string_view kIdentity = "exim";

enum class Layout { debian_split, debian_unsplit, cpanel, single_file };
enum class Mode { smarthost, passwd_client };
std::string_view layout_name(Layout layout);

// ---- I/O-free rendering (exim_render.cpp) ----

// The text smtpguard adds to each section, each wrapped in the markers
// (main: at the top of the file, before any other option).
struct Blocks {
  std::string main, router, transport, auth;
};

// How Exim logs in to the relay. Exim refuses two client authenticators
// with one public name, so smtpguard adds its own for PLAIN or, when the
// configuration already has a PLAIN client, LOGIN; when both are taken (as
// in Debian's stock configuration) it uses Debian's own plain/login
// authenticators with a "127.0.0.1:exim:PASSWORD" passwd.client entry and
// defines AUTH_CLIENT_ALLOW_NOTLS_PASSWORDS (loopback has no TLS).
enum class LocalLogin { own_plain, own_login, debian_passwd_client };

struct SmarthostParams {
  std::uint16_t port = 2525;           // the relay's loopback listener
  std::string secret_path;             // own_*: file with the local password (no newline)
  bool has_local_domains_list = true;  // the config defines `domainlist local_domains`
  LocalLogin login = LocalLogin::own_plain;
};
Blocks smarthost_blocks(const SmarthostParams& p);

struct PasswdClientParams {
  std::string host;  // the upstream, as in [upstream.NAME] host
  std::uint16_t port = 587;
  config::TlsMode tls = config::TlsMode::starttls;
  std::string ca_file;  // empty: the system store
  std::string passwd_client_path;
  bool has_local_domains_list = true;
  // As for the smarthost; debian_passwd_client: Debian's own plain/login
  // authenticators read the entry (over TLS), no authenticator is added.
  LocalLogin login = LocalLogin::own_plain;
};
Result<Blocks> passwd_client_blocks(const PasswdClientParams& p);

// Removes every marked block (and nothing else). Errc::invalid_input, naming
// `source` and the line, for a BEGIN without END or an END without BEGIN.
Result<std::string> strip_blocks(std::string_view text, std::string_view source);

// A single-file configuration (Debian's template, cPanel's exim.conf, any
// exim.conf) with the old blocks removed and `blocks` inserted right after
// "begin routers", "begin transports" and "begin authenticators" (routers
// first, so ours wins over dnslookup; a missing section is appended).
Result<std::string> apply_to_config(std::string_view config, const Blocks& blocks,
                                    std::string_view source);
// cPanel's exim.conf.local: the blocks go after @ROUTERSTART@,
// @TRANSPORTSTART@ and @AUTH@ (appended when missing) so that cPanel's
// rebuild of exim.conf keeps them.
Result<std::string> apply_to_cpanel_local(std::string_view local, const Blocks& blocks,
                                          std::string_view source);
// True when the text defines `domainlist local_domains` (outside comments).
bool defines_local_domains(std::string_view config);
// Upper-cased public names of the client authenticators (those with a
// client_* option) in the text's authenticators section(s), smtpguard's own
// blocks left out; `whole_is_auth`: the text is only authenticators (a
// Debian conf.d/auth file).
std::vector<std::string> client_public_names(std::string_view config, bool whole_is_auth = false);

// passwd.client: `existing` with every line for `host` (and our marked
// entry) replaced by one marked entry "HOST:LOGIN:PASSWORD". Exim's lsearch
// drops trailing white space and cannot hold a line break, so a password
// that ends in white space, holds a control character, or starts with
// "{base64}" is written as "{base64}" + base64; the authenticator smtpguard
// renders decodes it. Refused (invalid_input): a NUL in the password (AUTH
// PLAIN cannot carry it), a login with ':', white space or control bytes,
// or a host that is not a plain host name or address.
Result<Secret> render_passwd_client(std::string_view existing, std::string_view host,
                                    std::string_view login, const Secret& password);
// The password stored for `host` by render_passwd_client, decoded; for
// tests and the idempotency check. not_found when there is no entry.
Result<Secret> passwd_client_password(const Secret& file, std::string_view host);

// The backup manifest (STATE_DIR/backups/exim-TIME/manifest): one line per
// file, "present MODE UID GID NAME PATH" or "absent - - - - PATH", PATH
// last so it may hold spaces; plus "identity-created NAME" when the run
// added the identity. Paths with a line break are refused when written.
struct ManifestEntry {
  std::string path;  // absolute, with the --root prefix
  bool existed = false;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string backup_name;  // file name inside the backup directory
};
struct Manifest {
  std::vector<ManifestEntry> files;
  std::string identity_created;  // empty: none
  std::string layout;
};
Result<std::string> format_manifest(const Manifest& m);
Result<Manifest> parse_manifest(std::string_view text);

// ---- I/O (exim_install.cpp) ----

struct Options {
  Mode mode = Mode::smarthost;
  bool dry_run = false;
  bool undo = false;
  std::filesystem::path root = "/";          // prefixes every system path
  std::filesystem::path config_file;         // explicit: a single-file config, as given
  std::string upstream;                      // passwd-client: [upstream.NAME]; empty: the only one
  std::vector<std::string> allowed_senders;  // for a newly created identity
};

// Runs the whole command, printing progress to stdout; the error is the one
// line to print as "smtpguard: ...".
Result<void> run(const config::Config& cfg, const Options& opts);

// ---- internal, shared by the exim_*.cpp files ----
namespace detail {
// Runs a program with a fixed argv (no shell), stdin from /dev/null, stdout
// and stderr captured together (at most 256 KiB), killed at the deadline.
struct ProgramResult {
  int status = -1;  // exit status; -1: killed by a signal or timed out
  bool timed_out = false;
  std::string output;
};
// Errc::not_found when the program cannot be started.
Result<ProgramResult> run_program(const std::vector<std::string>& argv, int timeout_seconds = 60);
// The last few meaningful lines of `output`, joined with " / ".
std::string tail_lines(const std::string& output, std::size_t count = 3);
}  // namespace detail

}  // namespace sg::integrate::exim
