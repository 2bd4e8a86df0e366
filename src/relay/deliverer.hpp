// The deliverer process: the only one that holds the upstream credential
// (unsealed by the supervisor as root, kept in a Secret, process not
// dumpable). It walks the spool, sends what is due to the upstream over a
// verified TLS session reused for every message of a pass, records each
// recipient's outcome (delivery::apply_transaction), queues a DSN for
// recipients that failed for good, and removes a message once every
// recipient is delivered or failed.
// First version (issue 4 is open): one upstream (the first configured), one
// session at a time, a pass every second; no pool, rate bucket or control
// socket yet.
#pragma once

#include <optional>
#include <string>

#include "config/config.hpp"
#include "vault/vault.hpp"

namespace sg::relay {

// Runs in the (already privilege-dropped) deliverer process; returns an exit code.
// `ca_pem`: the upstream's ca_file, read before privileges were dropped.
int run_deliverer(const config::Config& config, std::optional<vault::Credential> credential,
                  std::optional<std::string> ca_pem, int audit_fd, int ready_fd);

}  // namespace sg::relay
