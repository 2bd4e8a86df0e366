// Pieces of `smtpguard scan` (cmd_scan.cpp): our own vault fingerprints from
// a short-lived child, reporters (text, JSON lines, SARIF 2.1.0), baselines
// and --verify. None of them ever prints a secret: findings carry only the
// redacted form, and --verify reads the secret back from the file into a
// Secret just before it logs in.
#pragma once

#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "scan/scan.hpp"

namespace sg::cli::scan_support {

// Keyed digests of every vault credential (NAME and NAME.previous), computed
// in a forked child that unseals the vault and exits; this process only gets
// labels, forms, lengths and digests over a pipe. nullopt with `note` set
// when there is no vault to read (`note` empty) or it could not be opened
// (`note` says why, for one warning line).
std::optional<scan::OwnSecrets> vault_fingerprints(const config::Config& cfg, std::string& note);

// --verify outcome of one finding.
struct Verdict {
  std::string state;   // "live", "dead", "unknown"
  std::string detail;  // why, for unknown (and the server's answer for dead)
};
struct VerifyOptions {
  unsigned timeout_seconds = 10;
  std::string ca_file;  // empty: system trust store
};
// EHLO, STARTTLS, AUTH, QUIT for each finding that has a username, a host and
// a password the file still holds. At most one attempt per host, user and
// secret, at most one per second. Keyed by index into `findings`.
std::map<std::size_t, Verdict> verify(const std::vector<scan::Finding>& findings,
                                      const VerifyOptions& options);

// The path behind a display path (undoes scan's escaping of odd names).
std::string real_path(std::string_view display);

struct Summary {
  std::uint64_t files = 0, bytes = 0;
  std::size_t suppressed = 0;  // by --baseline
  std::size_t binary_skipped = 0;
};
void write_text(std::ostream& out, const std::vector<scan::Finding>& findings,
                const std::map<std::size_t, Verdict>& verdicts, const Summary& summary);
void write_json_lines(std::ostream& out, const std::vector<scan::Finding>& findings,
                      const std::map<std::size_t, Verdict>& verdicts);
void write_sarif(std::ostream& out, const std::vector<scan::Finding>& findings,
                 const std::map<std::size_t, Verdict>& verdicts);

// Baselines: {"version": 1, "findings": [{"fingerprint", "rule", "path"}]}.
Result<std::set<std::string>> read_baseline(const std::string& path);
Result<void> write_baseline(const std::string& path, const std::vector<scan::Finding>& findings);

}  // namespace sg::cli::scan_support
