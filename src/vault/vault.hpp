// vault: upstream SMTP credentials sealed at rest, and the master key that opens them.
//  - File format v1 (format.cpp): header (magic, version, key id, and for passphrase
//    vaults the Argon2id salt and limits), one record per entry whose secrets
//    (username, password) are an XChaCha20-Poly1305 ciphertext with the header and
//    the entry's name and metadata as associated data, then a keyed BLAKE2b MAC of
//    the whole file. docs/security-model.md says what this protects against.
//  - Key sources (key_source.cpp), from config [vault] key: file:PATH, systemd:NAME,
//    passphrase, env:VAR. Every key derived from the master key uses crypto_kdf.
//  - Store operations (store.cpp): read-only opens, and read-modify-write under an
//    exclusive lock on VAULT.lock with atomic replacement of the file.
//  - Rotation (rotate.cpp): replacing a credential while keeping NAME.previous
//    for rollback.
// Trust: vault files, key files, credentials and the environment are untrusted.
// Any problem is an Error (corrupt, crypto, unsupported, not_found, permission,
// config, conflict, io) with a one-line message naming the file; nothing throws
// (except std::bad_alloc) and nothing aborts. Secrets live only in sg::Secret and
// never appear in messages. Time is passed in (`now`, unix seconds).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "config/config.hpp"

namespace sg::vault {

inline constexpr std::uint16_t kFormatVersion = 1;
inline constexpr std::size_t kMasterKeyBytes = 32;
inline constexpr std::size_t kKeyIdBytes = 16;

// The master key and the subkeys derived from it (crypto_kdf, context "sgvault1").
class MasterKey {
 public:
  // `key` must be exactly kMasterKeyBytes long.
  static Result<MasterKey> from_secret(const Secret& key);
  static MasterKey generate();

  const Secret& bytes() const { return master_; }
  // kKeyIdBytes raw bytes: the first 16 bytes of a keyed BLAKE2b hash, so that a
  // vault opened with another key reports "wrong key" rather than "corrupt".
  const std::string& id() const { return id_; }
  std::string id_hex() const;
  // Keyed BLAKE2b-256 of a password, hex; for the leak scanner.
  std::string fingerprint(std::string_view password) const;
  const Secret& entry_key() const { return entry_key_; }  // AEAD key for entries
  const Secret& mac_key() const { return mac_key_; }      // whole-file MAC key

 private:
  MasterKey() = default;
  Secret master_, entry_key_, mac_key_, fingerprint_key_;
  std::string id_;
};

// Argon2id parameters stored in the header of a passphrase vault.
struct PassphraseKdf {
  std::string salt;  // crypto_pwhash_SALTBYTES random bytes
  std::uint64_t opslimit = 0;
  std::uint64_t memlimit = 0;
  static PassphraseKdf fresh();  // new salt, INTERACTIVE limits
};
Result<MasterKey> derive_from_passphrase(const Secret& passphrase, const PassphraseKdf& kdf);

struct Entry {
  std::string name;
  std::string username;
  std::string upstream_host;  // optional, may be empty
  Secret password;
  std::int64_t created_at = 0;
  std::int64_t rotated_at = 0;                     // 0: never rotated
  std::string fingerprint;                         // hex, see MasterKey::fingerprint
  std::vector<std::string> previous_fingerprints;  // hex, oldest first
};

struct Contents {
  std::optional<PassphraseKdf> kdf;  // set for passphrase vaults
  std::vector<Entry> entries;        // sorted by name, names unique
  const Entry* find(std::string_view name) const;
};

struct Header {
  std::uint16_t version = 0;
  std::string key_id;
  std::optional<PassphraseKdf> kdf;
};

// --- Format (pure: no files, no clock) ---
// Parses only the header; enough to pick the key. Never needs a key.
Result<Header> read_header(std::string_view file);
// Serialises with fresh random nonces.
std::string seal(const Contents& contents, const MasterKey& key);
// Verifies the key id, the whole-file MAC and every entry.
Result<Contents> unseal(std::string_view file, const MasterKey& key);

// Entry names: 1-64 of [A-Za-z0-9._-], starting with a letter or digit.
bool valid_entry_name(std::string_view name);

struct EntryUpdate {
  std::string name;
  std::string username;
  std::optional<std::string> upstream_host;  // nullopt: keep the current one
  Secret password;
};
// Adds or replaces an entry. A replacement keeps created_at, sets rotated_at = now
// and, when the password changed, appends the old fingerprint to
// previous_fingerprints. Returns true if an entry was replaced.
Result<bool> put_entry(Contents& contents, const MasterKey& key, EntryUpdate update,
                       std::int64_t now);
bool remove_entry(Contents& contents, std::string_view name);

// --- Metadata without the key (metadata.cpp) ---
// Entry names, upstream hosts and times, for processes that must not open
// the vault (the monitor's credential age). Nothing is decrypted and nothing
// is authenticated (the MAC needs the key): for display only.
struct EntryMetadata {
  std::string name, upstream_host;
  std::int64_t created_at = 0, rotated_at = 0;
};
Result<std::vector<EntryMetadata>> read_metadata(std::string_view file);

// --- Key sources ---
struct KeySource {
  enum class Kind { file, systemd, passphrase, env };
  Kind kind = Kind::file;
  std::string arg;  // PATH, NAME or VAR; empty for passphrase
};
Result<KeySource> parse_key_source(std::string_view spec);
// Reads a key file (32 bytes as base64 text, or 32 raw bytes), refusing one not
// owned by the caller or accessible by group/others, with the command that fixes it.
Result<Secret> read_key_file(const std::filesystem::path& path);
// Writes base64 text + newline, mode 0600, creating the directory 0700.
Result<void> write_key_file(const std::filesystem::path& path, const Secret& key);
// $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential[Encrypted]=); same formats.
Result<Secret> read_systemd_credential(std::string_view name);
// $VAR holding base64 text; prints a warning on stderr (environments leak).
Result<Secret> read_env_key(std::string_view var);
// 32 raw bytes, or base64 of 32 bytes with optional surrounding whitespace.
Result<Secret> decode_key_text(std::string_view text);

// --- Store (files named by the configuration) ---
struct KeyOptions {
  std::optional<int> passphrase_fd;
  // A passphrase the caller already read (not owned; used instead of asking), so
  // that a command opening the vault twice asks once and can read a descriptor once.
  const Secret* passphrase = nullptr;
};

struct Credential {
  std::string name, username, upstream_host;
  Secret password;
  std::int64_t created_at = 0, rotated_at = 0;
};

// Opens key and vault read-only and returns one entry.
Result<Credential> load_credential(const config::Config& cfg, std::string_view name,
                                   const KeyOptions& opts);

struct Paths {
  KeySource key;
  std::filesystem::path vault;
  std::filesystem::path lock;  // VAULT.lock
};
Result<Paths> paths_for(const config::Config& cfg);

// Read-only open of the whole vault.
Result<Contents> open(const config::Config& cfg, const KeyOptions& opts);

struct InitOptions {
  bool force = false;  // replace an existing key file and vault
  std::optional<int> passphrase_fd;
};
Result<void> init(const config::Config& cfg, const InitOptions& opts);

// Read-modify-write under the lock. Returns true if an entry was replaced.
Result<bool> set(const config::Config& cfg, EntryUpdate update, const KeyOptions& opts,
                 std::int64_t now);
Result<void> remove(const config::Config& cfg, std::string_view name, const KeyOptions& opts);

// Read-modify-write under the lock: `change` edits the contents (the master key is
// given for put_entry); the vault is written only when it succeeds.
Result<void> modify(const config::Config& cfg, const KeyOptions& opts,
                    const std::function<Result<void>(Contents&, const MasterKey&)>& change);

struct RekeyOptions {
  std::optional<int> new_passphrase_fd;
};
struct RekeyReport {
  std::size_t entries = 0;
  // Fingerprints of earlier passwords are keyed by the old master key and cannot
  // be recomputed (old passwords are not kept), so rekey drops them.
  std::size_t dropped_previous_fingerprints = 0;
};
// file: keeps the old key as PATH.old until the re-encrypted vault is written;
// passphrase: asks for the new passphrase. systemd:/env: are rejected (the key
// lives outside smtpguard).
Result<RekeyReport> rekey(const config::Config& cfg, const KeyOptions& opts,
                          const RekeyOptions& ropts);

// --- Rotation (rotate.cpp) ---
// A rotation keeps the credential it replaces as "NAME.previous", so that a
// rollback can put it back while the provider still accepts it.
inline constexpr std::string_view kPreviousSuffix = ".previous";
// NAME.previous; invalid_input when NAME is too long to carry the suffix.
Result<std::string> previous_entry_name(std::string_view name);
bool is_previous_entry_name(std::string_view name);

struct RotationReport {
  std::string username;                          // now in NAME
  std::optional<std::string> previous_username;  // now in NAME.previous (none: NAME was new)
};
// NAME's current entry (if any) becomes NAME.previous, replacing an older one;
// `update` becomes NAME with rotated_at = now. conflict when `update` is the
// credential NAME already holds (same username and password).
Result<RotationReport> rotate_entry(Contents& contents, const MasterKey& key, EntryUpdate update,
                                    std::int64_t now);
// Swaps NAME and NAME.previous (each keeps its own times, so ages stay honest);
// not_found when there is no NAME.previous. With no NAME, the previous one
// becomes NAME and no NAME.previous is left.
Result<RotationReport> rollback_entry(Contents& contents, std::string_view name);
// The same on the vault file, under the lock.
Result<RotationReport> rotate(const config::Config& cfg, EntryUpdate update, const KeyOptions& opts,
                              std::int64_t now);
Result<RotationReport> rollback(const config::Config& cfg, std::string_view name,
                                const KeyOptions& opts);

}  // namespace sg::vault
