// relay: the long-running `smtpguard relay` service.
//  - supervisor (root or the invoking user): opens listeners, the spool
//    directory and the audit log, then forks the worker processes and
//    restarts them if they die; talks to systemd (Type=notify).
//  - receiver (unprivileged; never holds or can read the upstream secret):
//    accepts local submissions (TCP and a unix socket), authenticates each
//    client as a local identity, applies policy and commits accepted mail to
//    the spool before answering 250.
//  - deliverer (unprivileged after it unsealed the upstream credentials):
//    takes queued mail upstream (see deliverer.hpp) and serves the control
//    socket (control.hpp).
// SIGHUP re-reads configuration and vault through RelayOptions::reload: a
// configuration that does not load is rejected (logged and audited) and the
// old one keeps running; otherwise a new receiver takes over the listeners
// while the old one finishes its sessions, and the deliverer is restarted
// after the messages in its hands.
// Input from clients is untrusted and handled by smtp::ServerSession; every
// failure becomes an SMTP reply, an audit line or a log line, never a crash.
#pragma once

#include <functional>

#include "base/result.hpp"
#include "config/config.hpp"

namespace sg::relay {

struct RelayOptions {
  // Loads the configuration again (SIGHUP); null: reloads keep the current one.
  std::function<Result<config::Config>()> reload;
};

// STATE_DIR/relay.pid: holds the running supervisor's pid, and its lock
// keeps a second relay off the same state directory.
std::filesystem::path pid_file_path(const config::Config& config);

// Runs until SIGTERM/SIGINT; returns a sysexits code.
int run(const config::Config& config, const RelayOptions& options);

}  // namespace sg::relay
