#include "relay/deliverer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "base/text.hpp"
#include "delivery/delivery.hpp"
#include "monitor/monitor.hpp"
#include "net/net.hpp"
#include "spool/spool.hpp"

namespace sg::relay {
namespace {

constexpr std::chrono::seconds kPassInterval{1};

class Deliverer {
 public:
  Deliverer(asio::io_context& io, const config::Config& config,
            std::optional<vault::Credential> credential, std::optional<std::string> ca_pem,
            spool::Spool& spool, monitor::AuditLog& audit)
      : io_(io),
        upstream_(config.upstreams.front()),
        credential_(std::move(credential)),
        ca_pem_(std::move(ca_pem)),
        spool_(spool),
        audit_(audit),
        hostname_(local_hostname()) {}

  bool stopping = false;

  // One pass over the queue; the upstream session lives for the pass.
  asio::awaitable<void> pass() {
    for (const auto& id : spool_.list(false)) {
      if (stopping) break;
      co_await deliver(id);
    }
    if (client_) {
      co_await client_->quit();
      client_.reset();
    }
  }

 private:
  asio::awaitable<bool> ensure_session(std::string& error) {
    if (client_) co_return true;
    const Secret* password = credential_ ? &credential_->password : nullptr;
    std::string username = credential_ ? credential_->username : "";
    client_ = std::make_unique<net::UpstreamClient>(io_, upstream_, username, password,
                                                    net::Trace{}, ca_pem_ ? &*ca_pem_ : nullptr);
    auto opened = co_await client_->open();
    if (opened) co_return true;
    error = opened.error().message;
    co_await client_->quit();
    client_.reset();
    co_return false;
  }

  void audit_changes(const spool::Envelope& env, const delivery::Changes& c) {
    for (std::size_t i : c.delivered)
      audit_.write("delivered",
                   {{"id", env.id},
                    {"identity", env.identity},
                    {"recipient", env.recipients[i].address},
                    {"upstream", upstream_.name},
                    {"upstream_id", env.recipients[i].upstream_id},
                    {"credential", upstream_.credential}},
                   unix_now());
    for (std::size_t i : c.deferred)
      audit_.write("deferred",
                   {{"id", env.id},
                    {"recipient", env.recipients[i].address},
                    {"reply", env.recipients[i].last_reply}},
                   unix_now());
    for (std::size_t i : c.failed)
      audit_.write("bounced",
                   {{"id", env.id},
                    {"recipient", env.recipients[i].address},
                    {"reply", env.recipients[i].last_reply}},
                   unix_now());
  }

  // A DSN for recipients that failed for good goes back through the spool.
  void queue_dsn(const spool::Envelope& env, const std::string& data,
                 const std::vector<std::size_t>& failed) {
    if (failed.empty() || !delivery::should_bounce(env, data)) return;
    auto header_end = data.find("\r\n\r\n");
    std::string headers =
        data.substr(0, header_end == std::string::npos ? data.size() : header_end + 2);
    spool::Message dsn;
    dsn.envelope.received_at = unix_now();
    dsn.envelope.identity = "smtpguard";
    dsn.envelope.peer = "deliverer";
    dsn.envelope.mail_from = "";
    dsn.envelope.recipients.push_back(spool::Recipient{env.mail_from});
    dsn.envelope.verdict = "accept";
    dsn.data =
        delivery::make_dsn(env, failed, headers, hostname_, unix_now(), "=_smtpguard_" + env.id);
    auto committed = spool_.commit_sync(std::move(dsn));
    if (!committed)
      spdlog::error("cannot queue a DSN for {}: {}", env.id, committed.error().message);
  }

  static void merge(delivery::Changes& into, const delivery::Changes& c) {
    into.delivered.insert(into.delivered.end(), c.delivered.begin(), c.delivered.end());
    into.deferred.insert(into.deferred.end(), c.deferred.begin(), c.deferred.end());
    into.failed.insert(into.failed.end(), c.failed.begin(), c.failed.end());
  }

  // One transaction for `rcpts` (envelope indices); false when the session broke.
  asio::awaitable<bool> send_chunk(spool::Envelope& env, const std::string& data,
                                   const std::vector<std::size_t>& rcpts, std::int64_t now,
                                   delivery::Changes& changes) {
    std::string error;
    if (!co_await ensure_session(error)) {
      merge(changes, delivery::apply_connection_failure(env, error, now, policy_, rng_));
      co_return false;
    }
    // Recorded before DATA: a crash from here on may cause one duplicate,
    // never a loss.
    env.in_flight = true;
    (void)spool_.update_envelope(env);
    smtp::Message m;
    m.envelope.mail_from = env.mail_from;
    for (std::size_t i : rcpts) m.envelope.rcpt_to.push_back(env.recipients[i].address);
    m.data = data;
    auto sent = co_await client_->send(std::move(m));
    delivery::Transaction t;
    t.recipients = rcpts;
    bool alive = sent.ok();
    if (sent) {
      for (const auto& r : sent->recipient_replies)
        t.rcpt_replies.push_back(r.code == 0 ? std::nullopt : std::optional<smtp::Reply>(r));
      t.final_reply = sent->final_reply;
    } else {
      t.connection_error = sent.error().message;
      co_await client_->quit();
      client_.reset();
    }
    merge(changes, delivery::apply_transaction(env, t, now, policy_, rng_));
    env.in_flight = false;
    co_return alive;
  }

  asio::awaitable<void> deliver(const std::string& id) {
    // The envelope first: a message that is not due costs no body read.
    auto head = spool_.load_envelope(id);
    if (!head) co_return;  // removed meanwhile, or damaged (load says which)
    spool::Envelope env = *head;
    std::int64_t now = unix_now();
    delivery::Changes changes = delivery::expire_overdue(env, now, policy_);
    std::vector<std::size_t> due = delivery::recipients_due(env, now);
    if (due.empty() && changes.failed.empty()) {
      if (delivery::finished(env)) (void)spool_.remove(id);
      co_return;
    }
    auto loaded = spool_.load(id);
    if (!loaded) co_return;
    // SES takes at most 50 recipients per transaction; other servers must
    // take 100 (RFC 5321), so 50 is safe everywhere.
    for (const auto& chunk :
         delivery::split_recipients(due, delivery::kSesMaxRecipientsPerTransaction)) {
      if (!co_await send_chunk(env, loaded->data, chunk, now, changes)) break;
    }
    audit_changes(env, changes);
    queue_dsn(env, loaded->data, changes.failed);
    if (delivery::finished(env)) {
      if (auto r = spool_.remove(id); !r)
        spdlog::error("cannot remove {}: {}", id, r.error().message);
    } else if (auto r = spool_.update_envelope(env); !r) {
      spdlog::error("cannot record the state of {}: {}", id, r.error().message);
    }
  }

  asio::io_context& io_;
  config::Upstream upstream_;
  std::optional<vault::Credential> credential_;
  std::optional<std::string> ca_pem_;
  spool::Spool& spool_;
  monitor::AuditLog& audit_;
  std::string hostname_;
  delivery::RetryPolicy policy_;
  delivery::SodiumRng rng_;
  std::unique_ptr<net::UpstreamClient> client_;
};

asio::awaitable<void> run_passes(Deliverer& d, asio::steady_timer& timer) {
  while (!d.stopping) {
    co_await d.pass();
    timer.expires_after(kPassInterval);
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

int run_deliverer(const config::Config& config, std::optional<vault::Credential> credential,
                  std::optional<std::string> ca_pem, int audit_fd, int ready_fd) {
  asio::io_context io(1);
  spool::Options options;
  options.recover = false;  // the receiver owns recovery
  auto spool = spool::Spool::open("spool", nullptr, options);
  if (!spool) {
    spdlog::critical("deliverer: cannot open the spool: {}", spool.error().message);
    return 74;
  }
  monitor::AuditLog audit = monitor::AuditLog::adopt(audit_fd);
  Deliverer deliverer(io, config, std::move(credential), std::move(ca_pem), **spool, audit);
  asio::steady_timer timer(io);
  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  signals.async_wait([&](const asio::error_code& ec, int) {
    if (ec) return;
    deliverer.stopping = true;  // finish the message in hand, then stop
    timer.cancel();
  });
  asio::co_spawn(io, run_passes(deliverer, timer), [&](std::exception_ptr e) {
    if (e) spdlog::critical("deliverer stopped by an internal error");
    signals.cancel();
  });
  char ready = 'R';
  if (ready_fd >= 0) {
    (void)!::write(ready_fd, &ready, 1);
    ::close(ready_fd);
  }
  io.run();
  (*spool)->stop();
  return 0;
}

}  // namespace sg::relay
