// STATE_DIR/clients.json: the identities `smtpguard client` manages, next to
// the [[client]] tables of the config file. The file is
//   {"version":1,"clients":[{"name":..., "auth":..., ...}, ...]}
// with the keys of a [[client]] table (sizes in bytes). Writers hold
// STATE_DIR/clients.json.lock for the whole read-modify-write and replace
// the file atomically, mode 0640, group "smtpguard" when that group exists
// and we may chown (root), so the unprivileged receiver can read it; readers
// take no lock. The running relay polls changed_since() and rebuilds its
// IdentityTable (keeping the old one if the new file does not load).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "policy/identity.hpp"

namespace sg::policy {

// Pure conversions (clients_json.cpp). Parsing validates every record with
// validate_client and rejects duplicates; errors are Errc::corrupt (or
// unsupported for another version) and name `source`.
Result<StoredClients> parse_clients_json(std::string_view json, std::string_view source);
std::string clients_to_json(const StoredClients& clients);

class ClientStore {
 public:
  // Checks run under the lock on the would-be new contents before writing,
  // e.g. building an IdentityTable with the config.
  using Check = std::function<Result<void>(const StoredClients&)>;

  static Result<ClientStore> open(std::filesystem::path state_dir);
  const std::filesystem::path& path() const { return path_; }

  // A missing file is an empty store.
  Result<StoredClients> load() const;
  // The file was replaced, created or removed since `stamp` was taken.
  bool changed_since(const FileStamp& stamp) const;

  Result<void> add(StoredClient client, const Check& check = {});            // conflict if present
  Result<void> remove(std::string_view name);                                // not_found if absent
  Result<void> set_password(std::string_view name, const Secret& password);  // Argon2id

 private:
  explicit ClientStore(std::filesystem::path dir);
  using Edit = std::function<Result<void>(StoredClients&)>;
  Result<void> modify(const Edit& edit, const Check& check);

  std::filesystem::path dir_, path_, lock_;
};

}  // namespace sg::policy
