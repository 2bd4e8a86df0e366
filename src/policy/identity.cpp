// Building the identity table from both sources and answering "who is this
// peer / login". Pure apart from the uid resolver it is handed.
#include "policy/identity.hpp"

#include <sodium.h>

#include <charconv>

namespace sg::policy {
namespace {

// Any valid Argon2id string: unknown user names are verified against it so
// that they take as long as a wrong password.
constexpr const char* kDummyHash =
    "$argon2id$v=19$m=65536,t=2,p=1$VEPJapKdxUY3izBr5FygTQ$"
    "7h5XvqZi/oOrcHoVLuKnMQUTd0Rx1dudNhHYmzwiPRA";

Error invalid(const StoredClient& c, std::string_view why) {
  return make_error(Errc::invalid_input,
                    "client \"" + printable(c.name, 64) + "\": " + std::string(why));
}

std::string source_name(const config::Config& config) {
  return config.source.empty() ? std::string("the embedded default configuration")
                               : config.source.string();
}

bool valid_hash(const std::string& hash) {
  ensure_sodium();
  return hash.rfind("$argon2id$", 0) == 0 &&
         crypto_pwhash_str_needs_rehash(hash.c_str(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != -1;
}

std::optional<uid_t> numeric_uid(std::string_view s) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return static_cast<uid_t>(v);
}

Result<Identity> make_identity(const StoredClient& c, const std::string& source,
                               const UidResolver& resolve) {
  if (auto ok = validate_client(c); !ok)
    return make_error(Errc::config, source + ": " + ok.error().message);
  Identity id;
  id.name = c.name;
  id.source = source;
  id.password_hash = c.password_hash;
  id.allowed_senders = c.allowed_senders;
  for (const auto& s : c.allowed_senders) id.sender_patterns.push_back(*SenderPattern::parse(s));
  id.max_recipients = c.max_recipients;
  id.max_message_size = c.max_message_size;
  id.messages = c.rate;
  id.recipients = c.recipient_rate;
  id.on_limit = c.on_limit;
  id.exim = c.auth == "exim";
  id.submitter_messages = c.submitter_rate;
  if (c.auth == "address") {
    id.kind = AuthKind::address;
    for (const auto& n : c.ip) id.networks.push_back(*Cidr::parse(n));
  } else if (c.auth.rfind("uid:", 0) == 0) {
    id.kind = AuthKind::uid;
    id.uid_name = c.auth.substr(4);
    id.uid = numeric_uid(id.uid_name);
    if (!id.uid && resolve) id.uid = resolve(id.uid_name);
    if (!id.uid)
      return make_error(Errc::config, source + ": client \"" + c.name + "\": no such user \"" +
                                          printable(id.uid_name, 64) + "\"");
  } else {
    id.kind = AuthKind::password;
  }
  return id;
}

// One uid or one network may identify only one client.
Result<void> check_unique_rules(const std::vector<Identity>& ids) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (std::size_t j = i + 1; j < ids.size(); ++j) {
      const Identity& a = ids[i];
      const Identity& b = ids[j];
      bool clash = a.uid && b.uid && *a.uid == *b.uid;
      for (const auto& n : a.networks)
        for (const auto& m : b.networks) clash = clash || n == m;
      if (clash)
        return make_error(Errc::config, "clients \"" + a.name + "\" (" + a.source + ") and \"" +
                                            b.name + "\" (" + b.source +
                                            ") claim the same uid or network");
    }
  }
  return {};
}

}  // namespace

bool valid_identity_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@' || c == '+';
    if (!ok) return false;
  }
  return true;
}

Result<void> validate_client(const StoredClient& c) {
  if (!valid_identity_name(c.name))
    return invalid(c, "name must be 1-64 letters, digits, '.', '_', '-', '@' or '+'");
  const bool password = c.auth == "password" || c.auth == "exim";
  if (!password && c.auth != "address" && !(c.auth.rfind("uid:", 0) == 0 && c.auth.size() > 4))
    return invalid(c, "auth must be \"password\", \"exim\", \"uid:USER\" or \"address\"");
  if (c.auth == "address" && c.ip.empty()) return invalid(c, "auth \"address\" needs ip networks");
  if (c.auth != "address" && !c.ip.empty()) return invalid(c, "ip is only for auth \"address\"");
  for (const auto& n : c.ip)
    if (auto cidr = Cidr::parse(n); !cidr) return invalid(c, cidr.error().message);
  if (!c.password_hash.empty()) {
    if (!password) return invalid(c, "password_hash is only for password identities");
    if (!valid_hash(c.password_hash)) return invalid(c, "password_hash is not an Argon2id hash");
  }
  for (const auto& s : c.allowed_senders)
    if (auto p = SenderPattern::parse(s); !p) return invalid(c, p.error().message);
  if (c.max_recipients == 0 || c.max_recipients > 100000)
    return invalid(c, "max_recipients must be 1-100000");
  return {};
}

Result<std::string> hash_password(const Secret& password) {
  ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.view().data(), password.size(),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return make_error(Errc::crypto, "password hashing failed (out of memory)");
  return std::string(out);
}

Result<IdentityTable> IdentityTable::build(const config::Config& config,
                                           const StoredClients& stored,
                                           const UidResolver& resolve_uid) {
  IdentityTable t;
  auto add = [&](const StoredClient& c, const std::string& source) -> Result<void> {
    auto id = make_identity(c, source, resolve_uid);
    if (!id) return id.error();
    if (auto it = t.by_name_.find(c.name); it != t.by_name_.end()) {
      const std::string& first = t.identities_[it->second].source;
      if (first == source)
        return make_error(Errc::config, source + ": client \"" + c.name + "\" is defined twice");
      return make_error(Errc::config, "client \"" + c.name + "\" is defined both in " + first +
                                          " and in " + source +
                                          " (keep one; 'smtpguard client rm " + c.name +
                                          "' removes the stored one)");
    }
    t.by_name_.emplace(c.name, t.identities_.size());
    t.identities_.push_back(std::move(id).value());
    return {};
  };
  const std::string config_source = source_name(config);
  for (const auto& c : config.clients)
    if (auto r = add(c, config_source); !r) return r.error();
  const std::string store_source = stored.path.empty() ? "the client store" : stored.path.string();
  for (const auto& c : stored.clients)
    if (auto r = add(c, store_source); !r) return r.error();
  if (auto r = check_unique_rules(t.identities_); !r) return r.error();
  return t;
}

const Identity* IdentityTable::by_peer(const Peer& peer) const {
  const Identity* best = nullptr;
  unsigned best_prefix = 0;
  for (const auto& id : identities_) {
    if (peer.unix_socket) {
      if (id.kind == AuthKind::uid && peer.uid && id.uid == peer.uid) return &id;
      continue;
    }
    if (id.kind != AuthKind::address || peer.ip.empty()) continue;
    for (const auto& n : id.networks) {
      if (n.contains(peer.ip) && (best == nullptr || n.prefix() > best_prefix)) {
        best = &id;
        best_prefix = n.prefix();
      }
    }
  }
  return best;
}

const Identity* IdentityTable::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &identities_[it->second];
}

const Identity* IdentityTable::authenticate(std::string_view username,
                                            const Secret& password) const {
  ensure_sodium();
  const Identity* id = find(username);
  const bool can_log_in =
      id != nullptr && id->kind == AuthKind::password && !id->password_hash.empty();
  const char* hash = can_log_in ? id->password_hash.c_str() : kDummyHash;
  const bool ok = crypto_pwhash_str_verify(hash, password.view().data(), password.size()) == 0;
  return can_log_in && ok ? id : nullptr;
}

}  // namespace sg::policy
