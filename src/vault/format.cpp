// Vault file format v1 (all integers little-endian):
//   magic "SGVAULT\0" | u16 version | u8 kdf (0 key, 1 argon2id) | u8 reserved 0
//   | key id [16] | kdf 1: salt [16], u64 opslimit, u64 memlimit
//   | u32 entry count | entries... | BLAKE2b-256 MAC of everything before it
// entry: u8 len + name | u8 len + upstream host | i64 created_at | i64 rotated_at
//   | fingerprint [32] | u16 count + previous fingerprints [32 each]
//   | nonce [24] | u32 len + XChaCha20-Poly1305(u16 len + username | password)
// The entry AD is a domain label, the header bytes and the entry bytes before
// the nonce: an entry cannot be edited, renamed or moved into another vault.
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "base/encoding.hpp"
#include "base/random.hpp"
#include "vault/vault.hpp"

namespace sg::vault {
namespace {

constexpr std::string_view kMagic{"SGVAULT\0", 8};
constexpr std::string_view kAdLabel = "smtpguard vault entry v1";
constexpr std::size_t kMacBytes = 32;
constexpr std::size_t kFingerprintBytes = 32;
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kMaxEntries = 4096;
constexpr std::size_t kMaxPrevious = 1024;  // accepted when reading
constexpr std::size_t kKeepPrevious = 32;   // kept when appending
constexpr std::size_t kMaxSecretBytes = 64 * 1024;
constexpr std::uint8_t kKdfNone = 0;
constexpr std::uint8_t kKdfArgon2id = 1;

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void i64(std::int64_t v) { le(static_cast<std::uint64_t>(v), 8); }
  void bytes(std::string_view b) { out_.append(b); }
  void str8(std::string_view s) {
    u8(static_cast<std::uint8_t>(s.size()));
    bytes(s);
  }
  std::string& out() { return out_; }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

// Bounds-checked cursor; every getter returns false once input runs out.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool bytes(std::size_t n, std::string_view& out) {
    if (in_.size() - pos_ < n) return false;
    out = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  template <class T>
  bool le(T& v) {
    std::string_view b;
    if (!bytes(sizeof(T), b)) return false;
    std::uint64_t x = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
      x |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    v = static_cast<T>(x);
    return true;
  }
  bool str8(std::string_view& out) {
    std::uint8_t n = 0;
    return le(n) && bytes(n, out);
  }
  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

Error corrupt(std::string what) {
  return make_error(Errc::corrupt, std::move(what));
}
Error truncated() {
  return corrupt("file is truncated");
}

void mac_of(std::string_view body, const MasterKey& key, unsigned char out[kMacBytes]) {
  crypto_generichash(out, kMacBytes, reinterpret_cast<const unsigned char*>(body.data()),
                     body.size(), key.mac_key().data(), key.mac_key().size());
}

void write_header(Writer& w, const MasterKey& key, const std::optional<PassphraseKdf>& kdf) {
  w.bytes(kMagic);
  w.u16(kFormatVersion);
  w.u8(kdf ? kKdfArgon2id : kKdfNone);
  w.u8(0);
  w.bytes(key.id());
  if (kdf) {
    w.bytes(kdf->salt);
    w.u64(kdf->opslimit);
    w.u64(kdf->memlimit);
  }
}

Result<Header> parse_header(Reader& r) {
  std::string_view magic;
  if (!r.bytes(kMagic.size(), magic)) return truncated();
  if (magic != kMagic) return corrupt("not a smtpguard vault file (bad magic)");
  Header h;
  if (!r.le(h.version)) return truncated();
  if (h.version != kFormatVersion)
    return make_error(Errc::unsupported, "format version " + std::to_string(h.version) +
                                             " is not supported (this smtpguard reads version " +
                                             std::to_string(kFormatVersion) + ")");
  std::uint8_t kdf = 0, reserved = 0;
  std::string_view id;
  if (!r.le(kdf) || !r.le(reserved) || !r.bytes(kKeyIdBytes, id)) return truncated();
  if (kdf > kKdfArgon2id || reserved != 0) return corrupt("header is damaged");
  h.key_id = std::string(id);
  if (kdf == kKdfArgon2id) {
    PassphraseKdf p;
    std::string_view salt;
    if (!r.bytes(crypto_pwhash_SALTBYTES, salt) || !r.le(p.opslimit) || !r.le(p.memlimit))
      return truncated();
    p.salt = std::string(salt);
    h.kdf = std::move(p);
  }
  return h;
}

std::string ad_for(std::string_view header, std::string_view entry_meta) {
  std::string ad(kAdLabel);
  ad += header;
  ad += entry_meta;
  return ad;
}

Result<Entry> parse_entry(Reader& r, std::string_view body, std::string_view header,
                          const MasterKey& key) {
  std::size_t start = r.pos();
  Entry e;
  std::string_view name, host, fp;
  std::uint16_t previous = 0;
  if (!r.str8(name) || !r.str8(host) || !r.le(e.created_at) || !r.le(e.rotated_at) ||
      !r.bytes(kFingerprintBytes, fp) || !r.le(previous))
    return truncated();
  if (!valid_entry_name(name)) return corrupt("an entry has an invalid name");
  e.name = std::string(name);
  e.upstream_host = std::string(host);
  e.fingerprint = hex_encode(fp);
  if (previous > kMaxPrevious) return corrupt("entry '" + e.name + "' is damaged");
  for (std::uint16_t i = 0; i < previous; ++i) {
    if (!r.bytes(kFingerprintBytes, fp)) return truncated();
    e.previous_fingerprints.push_back(hex_encode(fp));
  }
  std::string_view meta = body.substr(start, r.pos() - start);
  std::string_view nonce, ct;
  std::uint32_t ct_len = 0;
  if (!r.bytes(kNonceBytes, nonce) || !r.le(ct_len) || !r.bytes(ct_len, ct)) return truncated();
  if (ct.size() < kTagBytes + 2 || ct.size() > kMaxSecretBytes + kTagBytes)
    return corrupt("entry '" + e.name + "' is damaged");
  std::string ad = ad_for(header, meta);
  Secret plain(ct.size() - kTagBytes);
  unsigned long long plain_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          plain.data(), &plain_len, nullptr, reinterpret_cast<const unsigned char*>(ct.data()),
          ct.size(), reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
          reinterpret_cast<const unsigned char*>(nonce.data()), key.entry_key().data()) != 0)
    return corrupt("entry '" + e.name + "' failed authentication (edited or moved)");
  std::string_view pv = plain.view();
  std::size_t user_len = static_cast<unsigned char>(pv[0]) |
                         (static_cast<std::size_t>(static_cast<unsigned char>(pv[1])) << 8);
  if (user_len > pv.size() - 2) return corrupt("entry '" + e.name + "' is damaged");
  e.username = std::string(pv.substr(2, user_len));
  e.password = Secret::copy_of(pv.substr(2 + user_len));
  return e;
}

}  // namespace

const Entry* Contents::find(std::string_view name) const {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

bool valid_entry_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

Result<Header> read_header(std::string_view file) {
  Reader r(file);
  return parse_header(r);
}

std::string seal(const Contents& contents, const MasterKey& key) {
  ensure_sodium();
  Writer w;
  write_header(w, key, contents.kdf);
  const std::string header = w.out();
  std::vector<const Entry*> sorted;
  for (const auto& e : contents.entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const Entry* a, const Entry* b) { return a->name < b->name; });
  assert(sorted.size() <= kMaxEntries);
  w.u32(static_cast<std::uint32_t>(sorted.size()));
  for (const Entry* e : sorted) {
    assert(valid_entry_name(e->name) && e->upstream_host.size() <= 255);
    assert(e->username.size() <= 0xffff);
    std::size_t start = w.out().size();
    w.str8(e->name);
    w.str8(e->upstream_host);
    w.i64(e->created_at);
    w.i64(e->rotated_at);
    auto fp = hex_decode(e->fingerprint);
    assert(fp.ok() && fp->size() == kFingerprintBytes);
    w.bytes(*fp);
    std::size_t previous = std::min(e->previous_fingerprints.size(), kMaxPrevious);
    w.u16(static_cast<std::uint16_t>(previous));
    for (std::size_t i = e->previous_fingerprints.size() - previous;
         i < e->previous_fingerprints.size(); ++i) {
      auto old = hex_decode(e->previous_fingerprints[i]);
      assert(old.ok() && old->size() == kFingerprintBytes);
      w.bytes(*old);
    }
    std::string ad = ad_for(header, std::string_view(w.out()).substr(start));
    Secret plain(2 + e->username.size() + e->password.size());
    plain.data()[0] = static_cast<unsigned char>(e->username.size() & 0xff);
    plain.data()[1] = static_cast<unsigned char>(e->username.size() >> 8);
    std::memcpy(plain.data() + 2, e->username.data(), e->username.size());
    if (!e->password.empty())
      std::memcpy(plain.data() + 2 + e->username.size(), e->password.data(), e->password.size());
    unsigned char nonce[kNonceBytes];
    random_bytes(nonce, sizeof nonce);
    std::string ct(plain.size() + kTagBytes, '\0');
    unsigned long long ct_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(ct.data()), &ct_len,
                                               plain.data(), plain.size(),
                                               reinterpret_cast<const unsigned char*>(ad.data()),
                                               ad.size(), nullptr, nonce, key.entry_key().data());
    w.bytes(std::string_view(reinterpret_cast<const char*>(nonce), sizeof nonce));
    w.u32(static_cast<std::uint32_t>(ct.size()));
    w.bytes(ct);
  }
  unsigned char mac[kMacBytes];
  mac_of(w.out(), key, mac);
  w.bytes(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
  return std::move(w.out());
}

Result<Contents> unseal(std::string_view file, const MasterKey& key) {
  ensure_sodium();
  Reader hr(file);
  auto header = parse_header(hr);
  if (!header) return header.error();
  if (sodium_memcmp(header->key_id.data(), key.id().data(), kKeyIdBytes) != 0)
    return make_error(Errc::crypto, "wrong key: sealed with key id " + hex_encode(header->key_id) +
                                        ", this key has id " + key.id_hex());
  if (file.size() < hr.pos() + 4 + kMacBytes) return truncated();
  std::string_view body = file.substr(0, file.size() - kMacBytes);
  unsigned char mac[kMacBytes];
  mac_of(body, key, mac);
  if (sodium_memcmp(mac, file.data() + body.size(), kMacBytes) != 0)
    return corrupt("integrity check failed (file damaged, truncated or edited)");

  std::string_view header_bytes = body.substr(0, hr.pos());
  Reader r(body);
  std::string_view skip;
  (void)r.bytes(header_bytes.size(), skip);
  std::uint32_t count = 0;
  if (!r.le(count)) return truncated();
  if (count > kMaxEntries) return corrupt("too many entries");
  Contents contents;
  contents.kdf = header->kdf;
  for (std::uint32_t i = 0; i < count; ++i) {
    auto e = parse_entry(r, body, header_bytes, key);
    if (!e) return e.error();
    if (!contents.entries.empty() && contents.entries.back().name >= e->name)
      return corrupt("entries are duplicated or out of order");
    contents.entries.push_back(std::move(e).value());
  }
  if (r.remaining() != 0) return corrupt("trailing data after the last entry");
  return contents;
}

Result<bool> put_entry(Contents& contents, const MasterKey& key, EntryUpdate update,
                       std::int64_t now) {
  if (!valid_entry_name(update.name))
    return make_error(Errc::invalid_input,
                      "invalid entry name (use 1-64 letters, digits, '.', '_', '-')");
  if (update.username.empty() || update.username.size() > 1024)
    return make_error(Errc::invalid_input, "username must be 1-1024 bytes");
  if (update.upstream_host &&
      (update.upstream_host->size() > 255 ||
       std::any_of(update.upstream_host->begin(), update.upstream_host->end(),
                   [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })))
    return make_error(
        Errc::invalid_input,
        "upstream host must be at most 255 bytes without spaces or control characters");
  if (update.password.empty() || update.password.size() > kMaxSecretBytes - 2048)
    return make_error(Errc::invalid_input, "password must be 1 byte to 62 KiB");
  std::string fp = key.fingerprint(update.password.view());
  auto it = std::lower_bound(contents.entries.begin(), contents.entries.end(), update.name,
                             [](const Entry& e, const std::string& n) { return e.name < n; });
  bool replacing = it != contents.entries.end() && it->name == update.name;
  if (!replacing) {
    if (contents.entries.size() >= kMaxEntries)
      return make_error(Errc::invalid_input, "vault is full");
    Entry e;
    e.name = update.name;
    e.created_at = now;
    it = contents.entries.insert(it, std::move(e));
  } else {
    it->rotated_at = now;
    if (it->fingerprint != fp) {
      auto& prev = it->previous_fingerprints;
      prev.erase(std::remove(prev.begin(), prev.end(), it->fingerprint), prev.end());
      prev.erase(std::remove(prev.begin(), prev.end(), fp), prev.end());
      prev.push_back(it->fingerprint);
      if (prev.size() > kKeepPrevious) prev.erase(prev.begin(), prev.end() - kKeepPrevious);
    }
  }
  it->username = std::move(update.username);
  if (update.upstream_host) it->upstream_host = std::move(*update.upstream_host);
  it->password = std::move(update.password);
  it->fingerprint = std::move(fp);
  return replacing;
}

bool remove_entry(Contents& contents, std::string_view name) {
  auto it = std::find_if(contents.entries.begin(), contents.entries.end(),
                         [&](const Entry& e) { return e.name == name; });
  if (it == contents.entries.end()) return false;
  contents.entries.erase(it);
  return true;
}

}  // namespace sg::vault
