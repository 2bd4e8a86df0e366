// relay: the long-running `smtpguard relay` service.
//  - supervisor (root or the invoking user): opens listeners, the spool
//    directory and the audit log, then forks the worker processes and
//    restarts them if they die; talks to systemd (Type=notify).
//  - receiver (unprivileged; never holds or can read the upstream secret):
//    accepts local submissions (TCP and a unix socket), authenticates each
//    client as a local identity, applies policy and commits accepted mail to
//    the spool before answering 250.
// Input from clients is untrusted and handled by smtp::ServerSession; every
// failure becomes an SMTP reply, an audit line or a log line, never a crash.
#pragma once

#include "config/config.hpp"

namespace sg::relay {

struct RelayOptions {
  bool foreground = true;
};

// Runs until SIGTERM/SIGINT; returns a sysexits code.
int run(const config::Config& config, const RelayOptions& options);

}  // namespace sg::relay
