// Local identities: who a connection is (peer uid, peer address, or a
// password login) and what that identity may do.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "config/config.hpp"
#include "policy/address.hpp"
#include "policy/cidr.hpp"

namespace sg::policy {

enum class AuthKind { password, uid, address };

struct Identity {
  std::string name;
  AuthKind kind = AuthKind::password;
  std::string password_hash;                 // password: Argon2id string; empty = cannot log in
  std::optional<uid_t> uid;                  // uid
  std::vector<Cidr> networks;                // address
  std::vector<std::string> allowed_senders;  // as written; empty = may send nothing
  std::uint32_t max_recipients = 50;
  std::uint64_t max_message_size = 0;  // 0 = relay default
  config::RateLimit messages, recipients;
  config::OnLimit on_limit = config::OnLimit::defer;
  bool exim = false;  // a password identity trusted to name a submitter
  config::RateLimit submitter_messages;  // exim: per submitter

  std::vector<SenderPattern> sender_patterns;  // allowed_senders, parsed
  std::string uid_name;                        // uid: the name as configured
  std::string source;                          // config file or clients.json path
};

// Where a connection comes from, as the listener saw it.
struct Peer {
  bool unix_socket = false;
  std::optional<uid_t> uid;  // SO_PEERCRED on the unix socket
  std::string ip;            // textual v4 or v6 (TCP)
};

// A client record of either source: config::Client is also the store's
// record format (see store.hpp).
using StoredClient = config::Client;

// The contents of STATE_DIR/clients.json at one moment.
struct FileStamp {
  bool exists = false;
  std::uint64_t inode = 0, size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};
struct StoredClients {
  std::vector<StoredClient> clients;
  std::filesystem::path path;  // for messages
  FileStamp stamp;             // for ClientStore::changed_since
};

// Client names are SMTP AUTH user names: [A-Za-z0-9._@+-]{1,64}.
bool valid_identity_name(std::string_view name);
// Everything about one record that can be checked without the others or the
// system (name, auth, networks, sender patterns, hash format, limits).
Result<void> validate_client(const StoredClient& client);

// user name (or decimal uid) -> uid; the store's default asks getpwnam.
using UidResolver = std::function<std::optional<uid_t>(std::string_view user)>;
std::optional<uid_t> system_uid(std::string_view user);  // store.cpp (I/O)

// Argon2id (libsodium crypto_pwhash_str, INTERACTIVE limits: ~64 MiB, tens
// of ms). Errc::crypto only when memory runs out.
Result<std::string> hash_password(const Secret& password);

class IdentityTable {  // immutable snapshot; share it as shared_ptr<const>
 public:
  // Config clients and stored clients together. Errors (Errc::config): a
  // name in both sources (naming both), an invalid record, an unknown user,
  // two identities claiming one uid or one network.
  static Result<IdentityTable> build(const config::Config& config, const StoredClients& stored,
                                     const UidResolver& resolve_uid = system_uid);

  // The uid identity of a unix-socket peer, or the address identity with
  // the longest network prefix containing a TCP peer's ip; else nullptr.
  const Identity* by_peer(const Peer& peer) const;
  const Identity* find(std::string_view name) const;
  // A password login (AUTH PLAIN/LOGIN, username = identity name) or
  // nullptr. Argon2id is slow (~50-100 ms, 64 MiB): call it off the event
  // loop, few at a time. Unknown names cost the same time as wrong passwords.
  const Identity* authenticate(std::string_view username, const Secret& password) const;

  const std::vector<Identity>& identities() const { return identities_; }

 private:
  std::vector<Identity> identities_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
};

}  // namespace sg::policy
