// Feeds arbitrary bytes to the vault parser with a fixed test key: once as
// they are, and once with the last 32 bytes replaced by a valid whole-file MAC
// so that the entry parser behind the MAC is explored too. Also fuzzes key
// text decoding. Seeds in corpus/fuzz_vault are valid vaults under this key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vault/vault.hpp"
#include "vault_fixture.hpp"

namespace {

using sg::fuzz::test_key;
using sg::fuzz::with_fixed_mac;

// Whatever opens must survive a seal/unseal round trip unchanged.
void check_round_trip(const sg::vault::Contents& c, const sg::vault::MasterKey& key) {
  auto again = sg::vault::unseal(sg::vault::seal(c, key), key);
  if (!again.ok() || again->entries.size() != c.entries.size()) std::abort();
  for (std::size_t i = 0; i < c.entries.size(); ++i) {
    const auto& a = c.entries[i];
    const auto& b = again->entries[i];
    if (a.name != b.name || a.username != b.username || a.upstream_host != b.upstream_host ||
        !a.password.equals(b.password) || a.created_at != b.created_at ||
        a.rotated_at != b.rotated_at || a.fingerprint != b.fingerprint ||
        a.previous_fingerprints != b.previous_fingerprints)
      std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto& key = test_key();
  (void)sg::vault::read_header(input);
  (void)sg::vault::decode_key_text(input);
  if (auto opened = sg::vault::unseal(input, key); opened.ok()) check_round_trip(*opened, key);
  if (auto opened = sg::vault::unseal(with_fixed_mac(input, key), key); opened.ok())
    check_round_trip(*opened, key);
  return 0;
}
