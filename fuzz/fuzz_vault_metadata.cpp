// vault::read_metadata on arbitrary bytes (the monitor reads the vault file
// without its key). Any input must give a clean result; when the same bytes
// (with a valid MAC) also unseal under the test key, the metadata must agree
// with the unsealed entries. Seeds in corpus/fuzz_vault_metadata are valid
// vaults under this key (copies of corpus/fuzz_vault).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vault/vault.hpp"
#include "vault_fixture.hpp"

using sg::fuzz::test_key;
using sg::fuzz::with_fixed_mac;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string file =
      with_fixed_mac(std::string_view(reinterpret_cast<const char*>(data), size), test_key());
  auto meta = sg::vault::read_metadata(file);
  auto opened = sg::vault::unseal(file, test_key());
  if (!opened.ok()) return 0;
  if (!meta.ok() || meta->size() != opened->entries.size()) std::abort();
  for (std::size_t i = 0; i < meta->size(); ++i) {
    const auto& a = (*meta)[i];
    const auto& b = opened->entries[i];
    if (a.name != b.name || a.upstream_host != b.upstream_host || a.created_at != b.created_at ||
        a.rotated_at != b.rotated_at)
      std::abort();
  }
  return 0;
}
