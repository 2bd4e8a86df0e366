// Shared by `verify` and `send --direct`: pick the upstream, unseal its
// credential, and turn delivery failures into sysexits codes.
#pragma once

#include <optional>
#include <string>

#include "base/result.hpp"
#include "cli/cli.hpp"
#include "config/config.hpp"
#include "vault/vault.hpp"

namespace sg::cli {

struct UpstreamAccess {
  config::Config config;
  config::Upstream upstream;
  std::optional<vault::Credential> credential;  // none for tls = "none" without credential
};

// `name` empty: the only configured upstream. Calls harden_process() before
// the vault is opened.
Result<UpstreamAccess> open_upstream(const Globals& globals, const std::string& name,
                                     std::optional<int> passphrase_fd);

}  // namespace sg::cli
