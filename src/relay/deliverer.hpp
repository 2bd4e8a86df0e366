// The deliverer process: the only one that holds upstream credentials
// (unsealed by itself as root before it dropped privileges, kept in
// Secrets, process not dumpable). It keeps an in-memory schedule of the
// queue (fed by queue ids the receiver writes to a pipe, and by a rescan of
// the spool every few seconds, so a lost notification only delays mail),
// hands due messages to a pool of upstream sessions (up to max_connections,
// reused for up to max_messages_per_connection messages, closed when idle),
// paces them with a token bucket for max_send_rate shared by the pool,
// records each recipient's outcome, queues DSNs for recipients that failed
// for good, and serves the control socket (status, queue hold/release/
// delete/flush, pause/resume).
// All mail goes to the first configured upstream.
// Errors: upstream trouble becomes per-recipient state (retry or DSN) and
// audit lines; spool trouble is logged and the message retried later;
// nothing here throws past run_deliverer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "vault/vault.hpp"

namespace sg {
namespace spool {
class Spool;
}
}  // namespace sg

namespace sg::relay {

// What a deliverer read as root for one upstream (config.upstreams order).
struct UpstreamAccess {
  std::optional<vault::Credential> credential;  // none: the upstream needs no login
  std::optional<std::string> ca_pem;            // the upstream's ca_file
};

struct DelivererSetup {
  config::Config config;
  std::vector<UpstreamAccess> access;
  int audit_fd = -1;      // its audit channel to the supervisor (AuditLog::adopt)
  int ready_fd = -1;      // one byte when running
  int notify_fd = -1;     // read end of the receiver's queue-id pipe (or -1)
  int control_fd = -1;    // listening control socket (or -1)
  uid_t control_uid = 0;  // besides root, who may use the control socket
};

// Hold rule given to mail accepted while paused; `resume` releases it.
inline constexpr const char* kPausedRule = "paused";
// Hold rule given to mail of an identity the monitor held (spool.hpp's
// held-identities); `queue release --identity NAME` releases it.
inline constexpr const char* kDetectorRule = "detector";

// The kill switch's state is spool::set_paused/spool::paused, shared by the
// deliverer's control commands, the monitor and the CLI when no relay runs.
// release_paused_mail releases every held message whose rule is "paused"
// and returns their ids.
std::vector<std::string> release_paused_mail(spool::Spool& spool);

// Runs in the (already privilege-dropped) deliverer process, in the state
// directory; returns an exit code.
int run_deliverer(DelivererSetup setup);

}  // namespace sg::relay
