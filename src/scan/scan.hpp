// scan: finds copies of SMTP, SES and AWS credentials in files, and copies of
// our own vault credentials by keyed fingerprint, without ever holding them.
//
// Matching is one Hyperscan pass per buffer over every rule's trigger
// pattern; exact extraction and validation (placeholders, context, encoded
// forms) run only around the offsets where a trigger fired.
//
// Input: file contents are untrusted bytes of any size and encoding; paths are
// untrusted names (any bytes but NUL). Own-secret digests come from our own
// vault child process and are trusted.
// Errors: building a Scanner or walking a tree returns Result; scanning a
// buffer never fails and never throws (a malformed candidate is simply not a
// finding). Unreadable files, odd names and skipped files become Warnings.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"

namespace sg::scan {

enum class Severity { low, medium, high, critical };
std::string_view to_string(Severity severity);

struct Rule {
  std::string_view id;           // stable, e.g. "ses-smtp-password-v4"
  std::string_view description;  // one line for people
  Severity severity;             // before context adjustments
  std::string_view fix;          // one-line fix hint
};
// Every rule, in a stable order. "own-credential" (critical) is among them.
const std::vector<Rule>& rules();
const Rule* find_rule(std::string_view id);

struct Finding {
  std::string rule_id;
  Severity severity = Severity::medium;  // after context (e.g. next to a key id)
  std::string path;                      // display path, as the walker produced it
  std::uint64_t line = 0;                // 1-based
  std::uint64_t column = 0;              // 1-based, in bytes
  std::uint64_t offset = 0;              // byte offset of the secret value in the content
  std::uint64_t length = 0;              // byte length of the secret value
  std::string redacted;                  // at most the first and last two characters
  std::string fingerprint;               // hex; stable per (rule, path, secret); for baselines
  std::string username;                  // SMTP user or AWS key id found with it, if any
  std::string host;                      // SMTP host found with it, if any (for --verify)
  std::uint16_t port = 0;                // SMTP port found with it, 0 if unknown
  std::string message;  // e.g. "ACTIVE credential exposed: vault entry ses (current)"
};

// Our own credentials, as keyed digests only. Built in a short-lived child
// process that unseals the vault (see digest_variants); the scanning process
// receives the key and the digests, never the plaintext.
struct OwnDigest {
  std::string label;  // "vault entry ses (current)", "... ses.previous"
  std::string form;   // "plain", "base64", "url", ...
  std::size_t length = 0;
  std::array<unsigned char, 32> digest{};
};
struct OwnSecrets {
  std::array<unsigned char, 32> key{};  // random per scan run
  std::vector<OwnDigest> digests;
};
// Digests of `secret` and of its encoded copies (base64 with and without
// padding, URL-encoded, AUTH PLAIN/LOGIN encodings with `username` when given).
std::vector<OwnDigest> digest_variants(const Secret& secret, std::string_view username,
                                       std::string_view label,
                                       const std::array<unsigned char, 32>& key);

// Compiled rules. Thread-safe to share; each thread scans with its own Scratch.
class Scanner {
 public:
  static Result<Scanner> create(OwnSecrets own = {});
  Scanner(Scanner&&) noexcept;
  Scanner& operator=(Scanner&&) noexcept;
  ~Scanner();

  class Scratch {
   public:
    Scratch(Scratch&&) noexcept;
    Scratch& operator=(Scratch&&) noexcept;
    ~Scratch();

   private:
    friend class Scanner;
    struct Impl;
    explicit Scratch(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  Result<Scratch> make_scratch() const;

  // All findings in `content`, in offset order. `path` feeds fingerprints and
  // file-type context (".env", "wp-config.php", "passwd.client", ...).
  std::vector<Finding> scan(std::string_view content, std::string_view path,
                            Scratch& scratch) const;

 private:
  struct Impl;
  explicit Scanner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Redaction used everywhere a secret is shown: at most the first and last two
// characters, and nothing at all for values shorter than 8.
std::string redact(std::string_view secret);

// --- Walking a tree (not in the fuzz build) ---

struct WalkOptions {
  unsigned jobs = 0;                           // 0: all cores
  std::uint64_t max_file_size = 256ull << 20;  // larger files are skipped with a warning
  bool follow_symlinks = false;                // never out of the tree unless true
  bool git = false;                            // also read .git objects (libgit2)
  std::function<void(std::uint64_t files, std::uint64_t bytes)> progress;  // may be empty
};
struct Warning {
  std::string path;
  std::string message;  // "unreadable: Permission denied", "skipped: binary", ...
};
struct WalkResult {
  std::vector<Finding> findings;  // sorted by path, then offset
  std::vector<Warning> warnings;
  std::uint64_t files_scanned = 0;
  std::uint64_t bytes_scanned = 0;
};
// Scans every regular file under `roots` (files may be given directly).
// Never modifies anything. Fails only when a root itself does not exist.
Result<WalkResult> walk(const Scanner& scanner, const std::vector<std::filesystem::path>& roots,
                        const WalkOptions& options);

}  // namespace sg::scan
