// The vault on disk: picking the key, opening, and locked read-modify-write.
//
// Rekey with a key file, in this order, so that some key on disk always opens
// the vault on disk (open() falls back to KEY.old when KEY does not match):
//   1. write the current key to KEY.old   2. write the new key to KEY
//   3. write the re-encrypted vault        4. remove KEY.old
#include <unistd.h>

#include <cstdio>

#include "base/encoding.hpp"
#include "base/file.hpp"
#include "base/secret_input.hpp"
#include "vault/vault.hpp"

namespace sg::vault {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxVaultFile = 16u << 20;

struct Opened {
  Contents contents;
  MasterKey key;
};

fs::path old_key_path(const fs::path& key) {
  return fs::path(key.string() + ".old");
}

bool path_exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

Error about_vault(const fs::path& vault, const Error& e) {
  return make_error(e.code, "vault " + vault.string() + ": " + e.message);
}

Error no_entry(std::string_view name) {
  return make_error(Errc::not_found,
                    "vault has no entry '" + std::string(name) + "' (see: smtpguard vault list)");
}

Result<std::string> read_vault_file(const fs::path& path) {
  auto data = read_file(path, kMaxVaultFile);
  if (!data && data.error().code == Errc::not_found)
    return make_error(Errc::not_found, "vault " + path.string() +
                                           " does not exist (create it with: smtpguard vault "
                                           "init)");
  return data;
}

Result<Secret> read_passphrase(std::string_view prompt, std::optional<int> fd, bool confirm) {
  SecretPrompt how;
  how.prompt = prompt;
  how.confirm = confirm;
  how.fd = fd;
  auto got = read_secret(how);
  if (!got) return make_error(got.error().code, "vault passphrase: " + got.error().message);
  return got;
}

Error wrong_key(const Paths& p, const Header& h, const MasterKey& key, const std::string& from) {
  return make_error(Errc::crypto, "wrong key for vault " + p.vault.string() +
                                      ": it was sealed with key id " + hex_encode(h.key_id) + ", " +
                                      from + " has key id " + key.id_hex());
}

Result<MasterKey> key_from(Result<Secret> raw) {
  if (!raw) return raw.error();
  return MasterKey::from_secret(*raw);
}

// Finds the master key that opens a vault with header `h`.
Result<MasterKey> pick_key(const Paths& p, const Header& h, const KeyOptions& opts) {
  using Kind = KeySource::Kind;
  if (p.key.kind == Kind::passphrase) {
    if (!h.kdf)
      return make_error(Errc::config, "vault " + p.vault.string() +
                                          " is sealed with a key, not a passphrase; set [vault] "
                                          "key to the key it was created with");
    Result<Secret> pass = Secret();
    if (opts.passphrase != nullptr)
      pass = opts.passphrase->clone();
    else
      pass = read_passphrase("Vault passphrase: ", opts.passphrase_fd, false);
    if (!pass) return pass.error();
    auto key = derive_from_passphrase(*pass, *h.kdf);
    if (!key) return about_vault(p.vault, key.error());
    if (key->id() != h.key_id)
      return make_error(Errc::crypto, "wrong passphrase for vault " + p.vault.string());
    return key;
  }
  if (h.kdf)
    return make_error(Errc::config, "vault " + p.vault.string() +
                                        " is sealed with a passphrase; set [vault] key = "
                                        "\"passphrase\"");
  if (p.key.kind == Kind::systemd || p.key.kind == Kind::env) {
    auto key = key_from(p.key.kind == Kind::systemd ? read_systemd_credential(p.key.arg)
                                                    : read_env_key(p.key.arg));
    if (!key) return key.error();
    if (key->id() != h.key_id)
      return wrong_key(
          p, h, *key,
          p.key.kind == Kind::systemd ? "systemd credential " + p.key.arg : "$" + p.key.arg);
    return key;
  }
  const fs::path path(p.key.arg);
  const fs::path old = old_key_path(path);
  auto key = key_from(read_key_file(path));
  if (key && key->id() == h.key_id) return key;
  if (path_exists(old)) {
    // An interrupted rekey: the new key was written but not the vault.
    auto old_key = key_from(read_key_file(old));
    if (old_key && old_key->id() == h.key_id) {
      std::fprintf(stderr,
                   "smtpguard: warning: opened the vault with %s left by an interrupted rekey; "
                   "run 'smtpguard vault rekey' again\n",
                   old.c_str());
      return old_key;
    }
  }
  if (!key) return key.error();
  return wrong_key(p, h, *key, "key file " + path.string());
}

Result<Opened> open_paths(const Paths& p, const KeyOptions& opts) {
  auto data = read_vault_file(p.vault);
  if (!data) return data.error();
  auto header = read_header(*data);
  if (!header) return about_vault(p.vault, header.error());
  auto key = pick_key(p, *header, opts);
  if (!key) return key.error();
  auto contents = unseal(*data, *key);
  if (!contents) return about_vault(p.vault, contents.error());
  return Opened{std::move(contents).value(), std::move(key).value()};
}

// Writers hold the lock for the whole read-modify-write. Readers of key-file
// vaults take it too, so they never see a rekey half done (new key, old vault).
Result<FileLock> lock_vault(const Paths& p) {
  if (auto r = ensure_directory(p.vault.parent_path().empty() ? "." : p.vault.parent_path(), 0700);
      !r)
    return r.error();
  return FileLock::acquire(p.lock);
}

Result<void> write_vault(const Paths& p, const Contents& contents, const MasterKey& key) {
  return write_file_atomic(p.vault, seal(contents, key), 0600);
}

std::size_t refingerprint(Contents& contents, const MasterKey& key) {
  std::size_t dropped = 0;
  for (auto& e : contents.entries) {
    e.fingerprint = key.fingerprint(e.password.view());
    dropped += e.previous_fingerprints.size();
    e.previous_fingerprints.clear();
  }
  return dropped;
}

Result<Opened> open_readonly(const config::Config& cfg, const KeyOptions& opts) {
  auto p = paths_for(cfg);
  if (!p) return p.error();
  std::optional<FileLock> lock;
  if (p->key.kind == KeySource::Kind::file && path_exists(p->vault)) {
    auto l = FileLock::acquire(p->lock);
    if (l) lock.emplace(std::move(l).value());  // best effort: a read-only directory is fine
  }
  return open_paths(*p, opts);
}

}  // namespace

Result<Paths> paths_for(const config::Config& cfg) {
  const fs::path& state = cfg.relay.state_dir;
  std::string spec =
      cfg.vault.key.empty() ? "file:" + (state / "master.key").string() : cfg.vault.key;
  auto key = parse_key_source(spec);
  if (!key) return key.error();
  Paths p;
  p.key = std::move(key).value();
  p.vault = cfg.vault.path.empty() ? state / "vault.sealed" : cfg.vault.path;
  p.lock = fs::path(p.vault.string() + ".lock");
  return p;
}

Result<Contents> open(const config::Config& cfg, const KeyOptions& opts) {
  auto opened = open_readonly(cfg, opts);
  if (!opened) return opened.error();
  return std::move(opened->contents);
}

Result<Credential> load_credential(const config::Config& cfg, std::string_view name,
                                   const KeyOptions& opts) {
  auto opened = open_readonly(cfg, opts);
  if (!opened) return opened.error();
  for (auto& e : opened->contents.entries) {
    if (e.name != name) continue;
    Credential c;
    c.name = e.name;
    c.username = e.username;
    c.upstream_host = e.upstream_host;
    c.password = std::move(e.password);
    c.created_at = e.created_at;
    c.rotated_at = e.rotated_at;
    return c;
  }
  return no_entry(name);
}

Result<void> init(const config::Config& cfg, const InitOptions& opts) {
  auto p = paths_for(cfg);
  if (!p) return p.error();
  auto lock = lock_vault(*p);
  if (!lock) return lock.error();
  if (path_exists(p->vault) && !opts.force)
    return make_error(Errc::conflict, "vault " + p->vault.string() +
                                          " already exists; use --force to replace it (its "
                                          "entries will be lost)");
  using Kind = KeySource::Kind;
  Contents empty;
  Result<MasterKey> key = make_error(Errc::config, "no key");
  switch (p->key.kind) {
    case Kind::file: {
      const fs::path path(p->key.arg);
      if (path_exists(path) && !opts.force)
        return make_error(Errc::conflict, "key file " + path.string() +
                                              " already exists; use --force to replace it (the "
                                              "vault it opens becomes unreadable)");
      key = MasterKey::generate();
      if (auto r = write_key_file(path, key->bytes()); !r) return r;
      std::error_code ec;
      fs::remove(old_key_path(path), ec);
      break;
    }
    case Kind::systemd:
      key = key_from(read_systemd_credential(p->key.arg));
      break;
    case Kind::env:
      key = key_from(read_env_key(p->key.arg));
      break;
    case Kind::passphrase: {
      auto pass = read_passphrase("New vault passphrase: ", opts.passphrase_fd, true);
      if (!pass) return pass.error();
      empty.kdf = PassphraseKdf::fresh();
      key = derive_from_passphrase(*pass, *empty.kdf);
      break;
    }
  }
  if (!key) return key.error();
  return write_vault(*p, empty, *key);
}

Result<bool> set(const config::Config& cfg, EntryUpdate update, const KeyOptions& opts,
                 std::int64_t now) {
  auto p = paths_for(cfg);
  if (!p) return p.error();
  if (!path_exists(p->vault)) return read_vault_file(p->vault).error();
  auto lock = lock_vault(*p);
  if (!lock) return lock.error();
  auto opened = open_paths(*p, opts);
  if (!opened) return opened.error();
  auto replaced = put_entry(opened->contents, opened->key, std::move(update), now);
  if (!replaced) return replaced;
  if (auto r = write_vault(*p, opened->contents, opened->key); !r) return r.error();
  return replaced;
}

Result<void> modify(const config::Config& cfg, const KeyOptions& opts,
                    const std::function<Result<void>(Contents&, const MasterKey&)>& change) {
  auto p = paths_for(cfg);
  if (!p) return p.error();
  if (!path_exists(p->vault)) return read_vault_file(p->vault).error();
  auto lock = lock_vault(*p);
  if (!lock) return lock.error();
  auto opened = open_paths(*p, opts);
  if (!opened) return opened.error();
  if (auto r = change(opened->contents, opened->key); !r) return r;
  return write_vault(*p, opened->contents, opened->key);
}

Result<void> remove(const config::Config& cfg, std::string_view name, const KeyOptions& opts) {
  auto p = paths_for(cfg);
  if (!p) return p.error();
  if (!path_exists(p->vault)) return read_vault_file(p->vault).error();
  auto lock = lock_vault(*p);
  if (!lock) return lock.error();
  auto opened = open_paths(*p, opts);
  if (!opened) return opened.error();
  if (!remove_entry(opened->contents, name)) return no_entry(name);
  return write_vault(*p, opened->contents, opened->key);
}

Result<RekeyReport> rekey(const config::Config& cfg, const KeyOptions& opts,
                          const RekeyOptions& ropts) {
  auto p = paths_for(cfg);
  if (!p) return p.error();
  using Kind = KeySource::Kind;
  if (p->key.kind == Kind::systemd || p->key.kind == Kind::env)
    return make_error(Errc::unsupported,
                      "vault rekey works with key = \"file:...\" or \"passphrase\"; a systemd: or "
                      "env: key is managed outside smtpguard (switch to a key file, rekey, then "
                      "provision that key)");
  if (!path_exists(p->vault)) return read_vault_file(p->vault).error();
  auto lock = lock_vault(*p);
  if (!lock) return lock.error();
  auto opened = open_paths(*p, opts);
  if (!opened) return opened.error();
  Contents& contents = opened->contents;
  RekeyReport report;
  report.entries = contents.entries.size();

  if (p->key.kind == Kind::passphrase) {
    auto pass = read_passphrase("New vault passphrase: ", ropts.new_passphrase_fd, true);
    if (!pass) return pass.error();
    contents.kdf = PassphraseKdf::fresh();
    auto key = derive_from_passphrase(*pass, *contents.kdf);
    if (!key) return key.error();
    report.dropped_previous_fingerprints = refingerprint(contents, *key);
    if (auto r = write_vault(*p, contents, *key); !r) return r.error();
    return report;
  }

  const fs::path path(p->key.arg);
  const fs::path old = old_key_path(path);
  MasterKey key = MasterKey::generate();
  report.dropped_previous_fingerprints = refingerprint(contents, key);
  const std::string sealed = seal(contents, key);
  if (auto r = write_key_file(old, opened->key.bytes()); !r) return r.error();
  if (auto r = write_key_file(path, key.bytes()); !r) return r.error();
  if (auto r = write_file_atomic(p->vault, sealed, 0600); !r) {
    // Put the old key back; if even that fails, open() still finds KEY.old.
    if (write_key_file(path, opened->key.bytes())) ::unlink(old.c_str());
    return r.error();
  }
  ::unlink(old.c_str());
  return report;
}

}  // namespace sg::vault
