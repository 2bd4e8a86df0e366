// What the vault fuzz targets share: a fixed test master key (bytes 0..31;
// the seeds in corpus/fuzz_vault* are valid vaults under it) and a way to
// give arbitrary bytes a valid whole-file MAC, so that the parsers behind
// the MAC check are explored too. Test code only: trusts nothing, aborts on
// nothing (the key is fixed and always valid).
#pragma once

#include <sodium.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "vault/vault.hpp"

namespace sg::fuzz {

inline const vault::MasterKey& test_key() {
  static const vault::MasterKey key = [] {
    Secret raw(vault::kMasterKeyBytes);
    for (std::size_t i = 0; i < raw.size(); ++i) raw.data()[i] = static_cast<unsigned char>(i);
    return std::move(vault::MasterKey::from_secret(raw)).value();
  }();
  return key;
}

// `file` with its last 32 bytes (if any) replaced by the MAC of the rest.
inline std::string with_fixed_mac(std::string_view file, const vault::MasterKey& key) {
  std::string_view body = file.size() >= 32 ? file.substr(0, file.size() - 32) : file;
  unsigned char mac[32];
  crypto_generichash(mac, sizeof mac, reinterpret_cast<const unsigned char*>(body.data()),
                     body.size(), key.mac_key().data(), key.mac_key().size());
  return std::string(body) + std::string(reinterpret_cast<const char*>(mac), sizeof mac);
}

}  // namespace sg::fuzz
