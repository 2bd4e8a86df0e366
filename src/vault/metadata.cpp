// Entry names and times read without the master key, for the monitor's
// "credential age" (it runs without vault access and must never unseal).
// Walks the same v1 layout as format.cpp (see the layout comment there) but
// skips every ciphertext; nothing is decrypted and, since the whole-file MAC
// needs the key, nothing is authenticated: display only, never a decision.
#include <sodium.h>

#include "vault/vault.hpp"

namespace sg::vault {
namespace {

constexpr std::string_view kMagic{"SGVAULT\0", 8};
constexpr std::size_t kMacBytes = 32;
constexpr std::size_t kFingerprintBytes = 32;
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kSaltBytes = crypto_pwhash_SALTBYTES;
constexpr std::size_t kMaxEntries = 4096;

// Bounds-checked little-endian cursor; false once the input runs out.
struct Cursor {
  std::string_view in;
  std::size_t pos = 0;
  bool skip(std::size_t n) {
    if (in.size() - pos < n) return false;
    pos += n;
    return true;
  }
  bool le(std::uint64_t& v, int n) {
    if (in.size() - pos < static_cast<std::size_t>(n)) return false;
    v = 0;
    for (int i = 0; i < n; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
    pos += n;
    return true;
  }
  bool str8(std::string_view& out) {
    std::uint64_t n = 0;
    if (!le(n, 1) || in.size() - pos < n) return false;
    out = in.substr(pos, n);
    pos += n;
    return true;
  }
};

Error damaged(std::string what) {
  return make_error(Errc::corrupt, "vault metadata: " + std::move(what));
}

}  // namespace

Result<std::vector<EntryMetadata>> read_metadata(std::string_view file) {
  auto header = read_header(file);
  if (!header) return header.error();
  if (file.size() < kMacBytes) return damaged("file is truncated");
  Cursor c{file.substr(0, file.size() - kMacBytes)};
  if (!c.skip(kMagic.size() + 2 + 2 + kKeyIdBytes) || (header->kdf && !c.skip(kSaltBytes + 8 + 8)))
    return damaged("file is truncated");
  std::uint64_t count = 0;
  if (!c.le(count, 4)) return damaged("file is truncated");
  if (count > kMaxEntries) return damaged("too many entries");
  std::vector<EntryMetadata> out;
  for (std::uint64_t i = 0; i < count; ++i) {
    EntryMetadata m;
    std::string_view name, host;
    std::uint64_t created = 0, rotated = 0, previous = 0, ct_len = 0;
    if (!c.str8(name) || !c.str8(host) || !c.le(created, 8) || !c.le(rotated, 8) ||
        !c.skip(kFingerprintBytes) || !c.le(previous, 2) || !c.skip(previous * kFingerprintBytes) ||
        !c.skip(kNonceBytes) || !c.le(ct_len, 4) || !c.skip(ct_len))
      return damaged("file is truncated");
    if (!valid_entry_name(name)) return damaged("an entry has an invalid name");
    m.name = std::string(name);
    m.upstream_host = std::string(host);
    m.created_at = static_cast<std::int64_t>(created);
    m.rotated_at = static_cast<std::int64_t>(rotated);
    out.push_back(std::move(m));
  }
  if (c.pos != c.in.size()) return damaged("trailing data after the last entry");
  return out;
}

}  // namespace sg::vault
