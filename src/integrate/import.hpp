// import: finding plaintext upstream SMTP credentials in the files people
// put them in (Exim's passwd.client and authenticators, Postfix's
// sasl_passwd, msmtprc, .env, wp-config.php, PHPMailer scripts), and
// scrubbing them out again once they are sealed in the vault.
//  - Parsers (import_*.cpp) are pure: text in, findings out. They follow each
//    program's own quoting rules (Exim lsearch and string escapes, Postfix
//    maps, msmtp, phpdotenv, PHP string literals); anything computed at run
//    time (expansions, env() calls, passwordeval) is not a literal credential.
//  - Scrubbing is a list of byte-range edits rendered by apply_edits(); the
//    I/O part (scrub_io.cpp: reading files, default locations, backups,
//    atomic replacement, `php -l`) is only in the full build.
// Trust: file contents are untrusted text; parsers never throw (except
// std::bad_alloc), never abort, and report problems as warnings naming the
// line but never quoting it, since a line may hold a secret. Passwords live
// only in sg::Secret and are shown only through redact().
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"

namespace sg::integrate {

enum class SourceKind {
  exim_passwd_client,
  exim_config,
  postfix_sasl_passwd,
  msmtprc,
  dotenv,
  php
};
std::string_view source_kind_name(SourceKind kind);

// One credential found in a file.
struct Finding {
  std::string kind;      // exim-passwd-client, exim-config, postfix-sasl-passwd, msmtprc,
                         // dotenv, wp-config, phpmailer
  std::size_t line = 0;  // 1-based line of the password
  std::string host;      // upstream host if the file says (may be a pattern, e.g. "*.example")
  std::string username;
  Secret password;
  bool importable = true;
  std::string note;  // why it cannot be imported, or what else to know
  // Scrub: replace bytes [begin, end) of the file with
  // scrub_before + ENTRY + scrub_after (none of which holds the secret).
  std::size_t begin = 0, end = 0;
  std::string scrub_before, scrub_after;
};

struct ParseResult {
  std::vector<Finding> findings;
  std::vector<std::string> warnings;  // "line N: ..." (never the line's text)
};

ParseResult parse_exim_passwd_client(std::string_view text);
ParseResult parse_exim_config(std::string_view text);
ParseResult parse_sasl_passwd(std::string_view text);
ParseResult parse_msmtprc(std::string_view text);
ParseResult parse_dotenv(std::string_view text);
ParseResult parse_php(std::string_view text);
ParseResult parse_source(SourceKind kind, std::string_view text);

// By file name first, then by content; nullopt when it is none of the kinds.
std::optional<SourceKind> detect_kind(const std::filesystem::path& path, std::string_view text);

// Values that stand for a password without being one: empty, "null",
// "changeme", "your_smtp_password", "${VAR}", env('X'), "********", ...
bool is_placeholder(std::string_view value);

// At most the first and last two characters ("BM…cS"), fewer for short
// secrets, and only printable ASCII.
std::string redact(std::string_view password);

// What a scrubbed finding becomes when sealed as vault entry `entry`.
std::string scrub_replacement(const Finding& finding, std::string_view entry);

struct Edit {
  std::size_t begin = 0, end = 0;
  std::string replacement;
};
// Applies non-overlapping edits (any order); Errc::invalid_input when they
// overlap or fall outside the text.
Result<std::string> apply_edits(std::string_view text, std::vector<Edit> edits);

// Moves `value` into a fresh Secret and wipes the string.
Secret take_secret(std::string& value);

// --- I/O (scrub_io.cpp; not in the fuzz build) ---

struct SourceFile {
  std::filesystem::path path;  // as given or found
  SourceKind kind{};
  std::string text;
  ParseResult parsed;
};

// Reads and parses one file. Errc::not_found when it does not exist,
// Errc::invalid_input when it is not a regular text file of a known kind.
Result<SourceFile> load_source(const std::filesystem::path& path);

// The usual places, under `root` ("/" normally): Exim, Postfix, msmtp
// (system-wide and ~/.msmtprc of users under /home and /root). Only files
// that exist are returned.
std::vector<std::filesystem::path> default_locations(const std::filesystem::path& root);

struct ScrubResult {
  std::filesystem::path file;    // the file that was rewritten
  std::filesystem::path backup;  // its original content, mode 0600
  bool php_checked = false;      // `php -l` passed on the new content
};
// Rewrites `path` with `edits` applied: refuses if the file no longer holds
// `expected` (changed since it was read); writes a backup under
// `backup_dir` (created 0700); writes a temp file next to it with the
// original owner and mode, checks PHP files with `php -l` when php is
// installed, fsyncs, renames over the original and fsyncs the directory.
Result<ScrubResult> scrub_file(const std::filesystem::path& path, std::string_view expected,
                               std::vector<Edit> edits, const std::filesystem::path& backup_dir);

}  // namespace sg::integrate
