// The receiver process: accepts local submissions and commits them to the
// spool. Runs unprivileged with the state directory as its working
// directory (so it needs no access to anything above it) and never opens
// the vault.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>
#include <asio/thread_pool.hpp>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "monitor/monitor.hpp"
#include "policy/policy.hpp"
#include "relay/listeners.hpp"
#include "relay/transport.hpp"
#include "spool/spool.hpp"

namespace sg::relay {

// Shared by all sessions of one receiver; used only on the io_context thread
// (the worker pool runs password checks and touches nothing here).
struct ReceiverContext {
  asio::io_context& io;
  asio::thread_pool& workers;
  config::Config config;
  std::string hostname;
  spool::Spool& spool;
  monitor::AuditLog& audit;
  asio::ssl::context* tls = nullptr;  // null without [relay.tls]
  policy::RateCounters counters;
  bool stopping = false;
  int notify_fd = -1;  // write end of the deliverer's queue-id pipe (or -1)

  // Whether delivery is paused (the deliverer's marker file in the spool).
  bool paused() const;
  // Tells the deliverer a new message is queued; never blocks (a full pipe
  // drops the note and the deliverer's rescan finds the message).
  void notify_deliverer(const std::string& id) const;
  std::set<Transport*> idle;  // sessions waiting for a command: closed on stop

  // The identities in force now; re-read when clients.json changed, so
  // `client add/rm/passwd` apply without a restart.
  std::shared_ptr<const policy::IdentityTable> identities();

  std::shared_ptr<const policy::IdentityTable> table_;
  std::int64_t store_mtime_ns_ = -1;
};

// Serves one connection until it ends (runs on ctx.io).
void start_session(ReceiverContext& ctx, std::unique_ptr<Transport> transport, policy::Peer peer,
                   bool loopback);

// Runs the receiver in this (already privilege-dropped) process. `ready_fd`
// gets one byte when it accepts connections. Returns an exit code.
// `notify_fd`: see ReceiverContext::notify_fd. SIGTERM stops (idle
// sessions close at once); SIGUSR1 drains (no new connections, sessions end
// as their clients end them) for a reload, where a new receiver already
// accepts on the same listeners. `recover_spool`: the first receiver of a
// run checks the spool (spool::Options::recover); later ones do not, since
// a draining receiver may still be writing to it.
int run_receiver(const config::Config& config, std::vector<Listener> listeners, int audit_fd,
                 int ready_fd, std::unique_ptr<asio::ssl::context> tls, int notify_fd,
                 bool recover_spool);

// The STARTTLS context from [relay.tls] (null without it). Loaded before
// privileges are dropped: the key is readable by root only.
Result<std::unique_ptr<asio::ssl::context>> load_server_tls(const config::Config& config);

}  // namespace sg::relay
