#include "relay/receiver.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "base/file.hpp"
#include "base/text.hpp"
#include "relay/deliverer.hpp"

namespace sg::relay {
namespace {

constexpr const char* kClientsFile = "clients.json";
constexpr const char* kCountersFile = "spool/rate-counters.json";

std::int64_t mtime_ns(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

policy::Peer peer_of(asio::ip::tcp::socket& s) {
  policy::Peer p;
  asio::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (!ec) {
    auto a = ep.address();
    // v4-mapped v6 peers are matched as plain IPv4.
    if (a.is_v6() && a.to_v6().is_v4_mapped())
      a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    p.ip = a.to_string();
  }
  return p;
}

policy::Peer peer_of(asio::local::stream_protocol::socket& s) {
  policy::Peer p;
  p.unix_socket = true;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) p.uid = cred.uid;
  return p;
}

bool allowed(const ReceiverContext& ctx, const std::string& ip) {
  if (config::is_loopback_host(ip)) return true;
  for (const auto& net : ctx.config.relay.allow_from) {
    auto cidr = policy::Cidr::parse(net);
    if (cidr && cidr->contains(ip)) return true;
  }
  return false;
}

asio::awaitable<void> accept_tcp(ReceiverContext& ctx, asio::ip::tcp::acceptor& acceptor,
                                 bool loopback) {
  for (;;) {
    asio::error_code ec;
    auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || ctx.stopping) co_return;
    if (ec) continue;  // e.g. EMFILE: keep serving the sessions we have
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    policy::Peer peer = peer_of(socket);
    if (!loopback && !allowed(ctx, peer.ip)) {
      // Not one of [relay] allow_from: say so once and hang up.
      static constexpr std::string_view kDenied =
          "554 5.7.1 This relay does not accept connections from your address\r\n";
      asio::write(socket, asio::buffer(kDenied.data(), kDenied.size()), ec);
      socket.close(ec);
      ctx.audit.write("connection_refused", {{"peer", peer.ip}, {"rule", "relay.allow_from"}},
                      unix_now());
      continue;
    }
    start_session(ctx, make_tcp_transport(std::move(socket), ctx.tls), std::move(peer), loopback);
  }
}

asio::awaitable<void> accept_unix(ReceiverContext& ctx,
                                  asio::local::stream_protocol::acceptor& acceptor) {
  for (;;) {
    asio::error_code ec;
    auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || ctx.stopping) co_return;
    if (ec) continue;
    policy::Peer peer = peer_of(socket);
    start_session(ctx, make_unix_transport(std::move(socket)), std::move(peer), true);
  }
}

void save_counters(ReceiverContext& ctx) {
  auto r = write_file_atomic(kCountersFile, ctx.counters.to_json(), 0600);
  if (!r) spdlog::warn("cannot save rate counters: {}", r.error().message);
}

}  // namespace

bool ReceiverContext::paused() const {
  return spool::paused("spool");
}

void ReceiverContext::notify_deliverer(const std::string& id) const {
  if (notify_fd < 0) return;
  std::string line = id + "\n";  // < PIPE_BUF: written whole or not at all
  (void)!::write(notify_fd, line.data(), line.size());
}

std::shared_ptr<const policy::IdentityTable> ReceiverContext::identities() {
  std::int64_t m = mtime_ns(kClientsFile);
  if (table_ && m == store_mtime_ns_) return table_;
  auto store = policy::ClientStore::open(".");
  Result<policy::IdentityTable> table = make_error(Errc::io, "no store");
  if (store) {
    auto stored = store->load();
    if (stored)
      table = policy::IdentityTable::build(config, *stored);
    else
      table = stored.error();
  } else {
    table = store.error();
  }
  if (!table) {
    // Keep serving with the identities we had; say why once per change.
    if (m != store_mtime_ns_) spdlog::error("cannot reload identities: {}", table.error().message);
    store_mtime_ns_ = m;
    if (!table_) table_ = std::make_shared<const policy::IdentityTable>();
    return table_;
  }
  if (table_) spdlog::info("identities reloaded from {}", kClientsFile);
  table_ = std::make_shared<const policy::IdentityTable>(std::move(*table));
  store_mtime_ns_ = m;
  return table_;
}

Result<std::unique_ptr<asio::ssl::context>> load_server_tls(const config::Config& config) {
  if (!config.relay.tls) return std::unique_ptr<asio::ssl::context>();
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  asio::error_code ec;
  tls->use_certificate_chain_file(config.relay.tls->cert_file, ec);
  if (ec)
    return make_error(Errc::config, "cannot load [relay.tls] cert_file " +
                                        config.relay.tls->cert_file + ": " + ec.message());
  tls->use_private_key_file(config.relay.tls->key_file, asio::ssl::context::pem, ec);
  if (ec)
    return make_error(Errc::config, "cannot load [relay.tls] key_file " +
                                        config.relay.tls->key_file + ": " + ec.message());
  return tls;
}

int run_receiver(const config::Config& config, std::vector<Listener> listeners, int audit_fd,
                 int ready_fd, std::unique_ptr<asio::ssl::context> tls, int notify_fd,
                 bool recover_spool) {
  asio::io_context io(1);
  // One verifier thread: each Argon2id check takes ~64 MiB of memory.
  asio::thread_pool workers(1);
  spool::RecoveryReport recovery;
  spool::Options spool_options;
  spool_options.sync_mode = config.relay.spool_sync == config::Relay::SpoolSync::syncfs
                                ? spool::SyncMode::syncfs
                                : spool::SyncMode::fdatasync_each;
  spool_options.recover = recover_spool;
  auto spool = spool::Spool::open("spool", &recovery, spool_options);
  if (!spool) {
    spdlog::critical("cannot open the spool: {}", spool.error().message);
    return 74;  // EX_IOERR
  }
  for (const auto& w : recovery.warnings) spdlog::warn("spool: {}", w);
  spdlog::info("spool: {} queued, {} held, {} unacknowledged partial files removed",
               recovery.queued, recovery.held, recovery.removed_tmp);
  monitor::AuditLog audit = monitor::AuditLog::adopt(audit_fd);

  ReceiverContext ctx{io, workers, config, local_hostname(), **spool, audit, tls.get()};
  ctx.notify_fd = notify_fd;
  if (auto saved = read_file(kCountersFile); saved) {
    if (auto c = policy::RateCounters::from_json(*saved); c)
      ctx.counters = std::move(*c);
    else
      spdlog::warn("rate counters unreadable, starting from zero: {}", c.error().message);
  }
  if (ctx.identities()->identities().empty())
    spdlog::warn(
        "no client identities yet: nothing can be relayed until one is added "
        "(smtpguard client add NAME ...)");

  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> tcp;
  std::vector<std::unique_ptr<asio::local::stream_protocol::acceptor>> local;
  for (auto& l : listeners) {
    if (l.kind == Listener::Kind::tcp) {
      asio::ip::tcp::endpoint ep;
      auto a = std::make_unique<asio::ip::tcp::acceptor>(io);
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&ss), &len);
      a->assign(ss.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), l.fd);
      asio::co_spawn(io, accept_tcp(ctx, *a, l.loopback), asio::detached);
      tcp.push_back(std::move(a));
    } else {
      auto a = std::make_unique<asio::local::stream_protocol::acceptor>(io);
      a->assign(asio::local::stream_protocol(), l.fd);
      asio::co_spawn(io, accept_unix(ctx, *a), asio::detached);
      local.push_back(std::move(a));
    }
  }

  asio::steady_timer save_timer(io);
  std::function<void()> schedule_save = [&] {
    save_timer.expires_after(std::chrono::seconds(10));
    save_timer.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      save_counters(ctx);
      schedule_save();
    });
  };
  schedule_save();

  // Audit lines kept while the supervisor was behind go out within a second
  // even when no new line follows them.
  asio::steady_timer flush_timer(io);
  std::function<void()> schedule_flush = [&] {
    flush_timer.expires_after(std::chrono::seconds(1));
    flush_timer.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      audit.flush();
      schedule_flush();
    });
  };
  schedule_flush();

  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  signals.add(SIGUSR1);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const asio::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        ctx.store_mtime_ns_ = -1;  // force a reload
        ctx.identities();
        wait_signal();
        return;
      }
      // Stop: no new connections; idle sessions close now, sessions in a
      // transaction finish it (their 250 needs the commit) and then close.
      // Drain (SIGUSR1, a reload): no new connections, and every session
      // goes on until its client ends it; the new receiver has taken over.
      asio::error_code ignored;
      for (auto& a : tcp) a->close(ignored);
      for (auto& a : local) a->close(ignored);
      save_timer.cancel();
      flush_timer.cancel();
      save_counters(ctx);
      if (sig == SIGUSR1) {
        spdlog::info("receiver {} draining: finishing its open sessions", ::getpid());
        wait_signal();  // a later SIGTERM still stops it
        return;
      }
      ctx.stopping = true;
      for (Transport* t : ctx.idle) t->close();
    });
  };
  wait_signal();

  char ready = 'R';
  if (ready_fd >= 0) {
    (void)!::write(ready_fd, &ready, 1);
    ::close(ready_fd);
  }
  io.run();
  (*spool)->stop();
  save_counters(ctx);
  workers.join();
  return 0;
}

}  // namespace sg::relay
