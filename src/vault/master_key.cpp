// Master key derivations: subkeys via crypto_kdf, key id, fingerprints, Argon2id.
#include <sodium.h>

#include <cstring>

#include "base/encoding.hpp"
#include "base/random.hpp"
#include "vault/vault.hpp"

namespace sg::vault {
namespace {

constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "sgvault1";
// Subkey ids; never reuse a number for another purpose.
constexpr std::uint64_t kSubkeyKeyId = 1;
constexpr std::uint64_t kSubkeyEntries = 2;
constexpr std::uint64_t kSubkeyFileMac = 3;
constexpr std::uint64_t kSubkeyFingerprint = 4;

// Upper bounds for limits read from an untrusted header (a hostile file must not
// make us allocate gigabytes or spin for minutes).
constexpr std::uint64_t kMaxOpslimit = 16;
constexpr std::uint64_t kMaxMemlimit = 1ull << 30;

Secret derive_subkey(const Secret& master, std::uint64_t id) {
  Secret out(32);
  crypto_kdf_derive_from_key(out.data(), out.size(), id, kKdfContext, master.data());
  return out;
}

}  // namespace

Result<MasterKey> MasterKey::from_secret(const Secret& key) {
  static_assert(kMasterKeyBytes == crypto_kdf_KEYBYTES);
  if (key.size() != kMasterKeyBytes)
    return make_error(Errc::invalid_input,
                      "master key must be 32 bytes, got " + std::to_string(key.size()));
  ensure_sodium();
  MasterKey k;
  k.master_ = key.clone();
  k.entry_key_ = derive_subkey(key, kSubkeyEntries);
  k.mac_key_ = derive_subkey(key, kSubkeyFileMac);
  k.fingerprint_key_ = derive_subkey(key, kSubkeyFingerprint);
  Secret id_key = derive_subkey(key, kSubkeyKeyId);
  static constexpr std::string_view kLabel = "smtpguard vault key id";
  unsigned char hash[32];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(kLabel.data()),
                     kLabel.size(), id_key.data(), id_key.size());
  k.id_.assign(reinterpret_cast<const char*>(hash), kKeyIdBytes);
  return k;
}

MasterKey MasterKey::generate() {
  Secret raw(kMasterKeyBytes);
  ensure_sodium();
  crypto_kdf_keygen(raw.data());
  auto key = from_secret(raw);
  assert(key.ok());
  return std::move(key).value();
}

std::string MasterKey::id_hex() const {
  return hex_encode(id_);
}

std::string MasterKey::fingerprint(std::string_view password) const {
  unsigned char hash[32];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(password.data()),
                     password.size(), fingerprint_key_.data(), fingerprint_key_.size());
  return hex_encode(std::string_view(reinterpret_cast<const char*>(hash), sizeof hash));
}

PassphraseKdf PassphraseKdf::fresh() {
  PassphraseKdf kdf;
  kdf.salt.resize(crypto_pwhash_SALTBYTES);
  random_bytes(kdf.salt.data(), kdf.salt.size());
  kdf.opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  kdf.memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  return kdf;
}

Result<MasterKey> derive_from_passphrase(const Secret& passphrase, const PassphraseKdf& kdf) {
  ensure_sodium();
  if (kdf.salt.size() != crypto_pwhash_SALTBYTES)
    return make_error(Errc::corrupt, "passphrase salt has the wrong length");
  if (kdf.opslimit < crypto_pwhash_OPSLIMIT_MIN || kdf.opslimit > kMaxOpslimit ||
      kdf.memlimit < crypto_pwhash_MEMLIMIT_MIN || kdf.memlimit > kMaxMemlimit)
    return make_error(Errc::corrupt, "passphrase key derivation limits out of range");
  if (passphrase.empty()) return make_error(Errc::invalid_input, "empty passphrase");
  Secret raw(kMasterKeyBytes);
  if (crypto_pwhash(raw.data(), raw.size(), reinterpret_cast<const char*>(passphrase.data()),
                    passphrase.size(), reinterpret_cast<const unsigned char*>(kdf.salt.data()),
                    kdf.opslimit, static_cast<std::size_t>(kdf.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0)
    return make_error(Errc::io, "passphrase key derivation failed (out of memory?)");
  return MasterKey::from_secret(raw);
}

}  // namespace sg::vault
