// The CLI's way to a running relay: its control socket (relay/control.hpp)
// and its supervisor's pid file. Commands that can also act on the spool
// directly (queue hold/release/delete/flush, pause/resume) do so only when
// no relay answers.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "base/result.hpp"
#include "config/config.hpp"

namespace sg::cli {

// Errc::not_found: no relay runs; Errc::timeout: it runs but its deliverer
// does not answer (no upstream, no credential, or restarting).
Result<nlohmann::json> ask_relay(const config::Config& cfg, const nlohmann::json& request);

// The running supervisor's pid from STATE_DIR/relay.pid (only if its lock is
// held, i.e. the relay really runs).
std::optional<int> running_relay_pid(const config::Config& cfg);

// Signals the running relay to reload (SIGHUP) and waits up to 15 s for its
// answer in STATE_DIR/audit.jsonl (config_reloaded). Returns its pid.
// Errc::not_found: no relay runs; Errc::config: it rejected the configuration
// (the message is its reason); Errc::permission: cannot signal it;
// Errc::timeout: no answer.
Result<int> request_reload(const config::Config& cfg);

}  // namespace sg::cli
