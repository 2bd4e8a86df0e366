// The only file I/O of the policy module: clients.json under its lock, and
// user/group lookups.
#include "policy/store.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "base/file.hpp"

namespace sg::policy {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxStoreFile = 16u << 20;
constexpr const char* kRelayGroup = "smtpguard";

FileStamp stamp_of(const fs::path& path) {
  FileStamp s;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.inode = st.st_ino;
  s.size = static_cast<std::uint64_t>(st.st_size);
  s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return s;
}

// Lets the relay's group read the file; without the group or the right to
// chown (not root) the file keeps the writer's group.
void share_with_relay_group(const fs::path& path) {
  std::vector<char> buf(16384);
  struct group g {};
  struct group* found = nullptr;
  if (::getgrnam_r(kRelayGroup, &g, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    return;
  if (::chown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) return;  // best effort
}

std::vector<StoredClient>::iterator find_client(StoredClients& s, std::string_view name) {
  return std::find_if(s.clients.begin(), s.clients.end(),
                      [&](const StoredClient& c) { return c.name == name; });
}

}  // namespace

std::optional<uid_t> system_uid(std::string_view user) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  const std::string name(user);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    return std::nullopt;
  return found->pw_uid;
}

ClientStore::ClientStore(fs::path dir)
    : dir_(std::move(dir)), path_(dir_ / "clients.json"), lock_(dir_ / "clients.json.lock") {}

Result<ClientStore> ClientStore::open(fs::path state_dir) {
  if (state_dir.empty()) return make_error(Errc::config, "client store: empty state_dir");
  return ClientStore(std::move(state_dir));
}

Result<StoredClients> ClientStore::load() const {
  // Stamp first: a replacement racing with the read shows up as a change
  // on the next poll instead of being missed.
  const FileStamp stamp = stamp_of(path_);
  StoredClients out;
  if (stamp.exists) {
    auto text = read_file(path_, kMaxStoreFile);
    if (!text && text.error().code != Errc::not_found) return text.error();
    if (text) {
      auto parsed = parse_clients_json(*text, path_.string());
      if (!parsed) return parsed.error();
      out = std::move(parsed).value();
    }
  }
  out.path = path_;
  out.stamp = stamp;
  return out;
}

bool ClientStore::changed_since(const FileStamp& stamp) const {
  return !(stamp_of(path_) == stamp);
}

Result<void> ClientStore::modify(const Edit& edit, const Check& check) {
  if (auto r = ensure_directory(dir_, 0750); !r) return r.error();
  auto lock = FileLock::acquire(lock_);
  if (!lock) return lock.error();
  auto current = load();
  if (!current) return current.error();
  if (auto r = edit(*current); !r) return r;
  if (check)
    if (auto r = check(*current); !r) return r;
  if (auto r = write_file_atomic(path_, clients_to_json(*current), 0640); !r) return r;
  share_with_relay_group(path_);
  return {};
}

Result<void> ClientStore::add(StoredClient client, const Check& check) {
  if (auto v = validate_client(client); !v) return v.error();
  return modify(
      [&](StoredClients& s) -> Result<void> {
        if (find_client(s, client.name) != s.clients.end())
          return make_error(Errc::conflict,
                            "client \"" + client.name + "\" already exists in " + path_.string());
        s.clients.push_back(client);
        return {};
      },
      check);
}

Result<void> ClientStore::remove(std::string_view name) {
  return modify(
      [&](StoredClients& s) -> Result<void> {
        auto it = find_client(s, name);
        if (it == s.clients.end())
          return make_error(Errc::not_found,
                            "no client \"" + printable(name, 64) + "\" in " + path_.string());
        s.clients.erase(it);
        return {};
      },
      {});
}

Result<void> ClientStore::set_password(std::string_view name, const Secret& password) {
  if (password.empty()) return make_error(Errc::invalid_input, "empty password");
  auto hash = hash_password(password);  // slow: outside the lock
  if (!hash) return hash.error();
  return modify(
      [&](StoredClients& s) -> Result<void> {
        auto it = find_client(s, name);
        if (it == s.clients.end())
          return make_error(Errc::not_found,
                            "no client \"" + printable(name, 64) + "\" in " + path_.string());
        if (it->auth != "password" && it->auth != "exim")
          return make_error(Errc::invalid_input, "client \"" + it->name + "\" logs in by " +
                                                     it->auth + ", not by password");
        it->password_hash = *hash;
        return {};
      },
      {});
}

}  // namespace sg::policy
