// One client connection: drives smtp::ServerSession, asks policy, commits to
// the spool, and writes the audit trail.
#include <spdlog/spdlog.h>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/text.hpp"
#include "relay/deliverer.hpp"
#include "relay/receiver.hpp"
#include "smtp/smtp.hpp"

namespace sg::relay {
namespace {

constexpr std::chrono::seconds kCommandTimeout{300};  // RFC 5321 4.5.3.2
constexpr std::chrono::seconds kDataTimeout{180};

// Commits on the spool's committer thread and resumes on our executor.
// Coroutines in this file take class-type arguments by reference only: g++ 12
// copies by-value coroutine parameters bitwise in some cases (strings then
// point into a dead frame). The callers' frames outlive each co_await.
asio::awaitable<Result<std::string>> commit_async(spool::Spool& spool, spool::Message& message) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<std::string>)>(
      [&spool, &message, ex](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        spool.commit(std::move(message), [h, ex](Result<std::string> r) {
          asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        });
      },
      asio::use_awaitable);
}

// Runs fn() on the worker pool and resumes on our executor with its result.
// (A plain post rather than co_spawn of a lambda coroutine: g++ 12 mishandles
// the captures of lambda coroutines.)
template <class T, class F>
asio::awaitable<T> run_in_pool(asio::thread_pool& pool, F& fn) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [&pool, &fn, ex](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        F* f = &fn;
        asio::post(pool, [h, ex, f]() mutable {
          T result = (*f)();
          asio::post(ex, [h, result]() mutable { (*h)(std::move(result)); });
        });
      },
      asio::use_awaitable);
}

std::string describe(const policy::Peer& peer) {
  if (peer.unix_socket) return peer.uid ? "uid " + std::to_string(*peer.uid) : "unix socket";
  return peer.ip;
}

struct Transaction {
  std::string mail_from;
  std::vector<std::string> recipients;
  void clear() {
    mail_from.clear();
    recipients.clear();
  }
};

class SessionRunner {
 public:
  SessionRunner(ReceiverContext& ctx, std::unique_ptr<Transport> t, policy::Peer peer,
                bool loopback)
      : ctx_(ctx), transport_(std::move(t)), peer_(std::move(peer)) {
    smtp::ServerOptions o;
    o.hostname = ctx.hostname;
    o.max_message_size = ctx.config.relay.max_message_size;
    o.max_recipients = 1000;  // the identity's own limit is policy's
    o.starttls_available = transport_->can_starttls();
    o.auth_without_tls = loopback;
    session_.emplace(o);
  }

  asio::awaitable<void> run() {
    // An address (or local uid) the monitor blocked after repeated AUTH
    // failures gets a 421 and nothing else until the block ends.
    const std::string remote =
        peer_.unix_socket ? (peer_.uid ? "uid:" + std::to_string(*peer_.uid) : "") : peer_.ip;
    if (!remote.empty() && spool::blocked(ctx_.spool.directory(), remote, unix_now())) {
      ctx_.audit.write("refused",
                       {{"stage", "connect"}, {"peer", describe(peer_)}, {"rule", "blocked"}},
                       unix_now());
      (void)co_await transport_->write(
          "421 4.7.0 " + ctx_.hostname + " temporarily blocked; try again later\r\n",
          kCommandTimeout);
      transport_->close();
      co_return;
    }
    session_->start();
    // 64 KiB: a large message then takes a few reads instead of many, and
    // each read is a wait with a timer.
    constexpr std::size_t kReadSize = 64 * 1024;
    auto buf = std::make_unique<char[]>(kReadSize);
    for (;;) {
      if (!co_await handle_events()) break;
      if (!co_await flush()) break;
      if (session_->wants_close()) break;
      if (ctx_.stopping && txn_.mail_from.empty() && txn_.recipients.empty()) {
        session_->shutdown();
        continue;
      }
      bool idle = txn_.mail_from.empty() && txn_.recipients.empty();
      if (idle) ctx_.idle.insert(transport_.get());
      auto n = co_await transport_->read(buf.get(), kReadSize,
                                         in_data_ ? kDataTimeout : kCommandTimeout);
      ctx_.idle.erase(transport_.get());
      if (!n) {
        if (n.error().code != Errc::timeout) break;
        session_->timeout();
        continue;
      }
      if (*n == 0) break;
      session_->receive(std::string_view(buf.get(), *n));
    }
    ctx_.idle.erase(transport_.get());
    transport_->close();
  }

 private:
  asio::awaitable<bool> flush() {
    std::string out = session_->take_output();
    if (out.empty()) co_return true;
    auto w = co_await transport_->write(out, kCommandTimeout);
    co_return w.ok();
  }

  // Identity for the next decision: the login if any, else the peer rule.
  const policy::Identity* identity() {
    table_ = ctx_.identities();
    if (!auth_name_.empty()) return table_->find(auth_name_);
    return table_->by_peer(peer_);
  }

  void audit_refusal(std::string_view stage, const policy::Verdict& v,
                     const policy::Identity* who) {
    ctx_.audit.write("refused",
                     {{"stage", stage},
                      {"identity", who ? who->name : ""},
                      {"peer", describe(peer_)},
                      {"mail_from", txn_.mail_from},
                      {"recipients", txn_.recipients.size()},
                      {"code", v.code},
                      {"rule", v.rule},
                      {"reason", v.text}},
                     unix_now());
  }

  asio::awaitable<bool> handle_events() {
    while (auto ev = session_->next_event()) {
      switch (ev->type) {
        case smtp::ServerEventType::Auth:
          co_await on_auth(*ev);
          break;
        case smtp::ServerEventType::MailFrom:
          on_mail(*ev);
          break;
        case smtp::ServerEventType::RcptTo:
          on_rcpt(*ev);
          break;
        case smtp::ServerEventType::Message:
          in_data_ = false;
          co_await on_message(ev->data);
          break;
        case smtp::ServerEventType::StartTls: {
          if (!co_await flush()) co_return false;
          auto hs = co_await transport_->server_handshake(kCommandTimeout);
          if (!hs) co_return false;
          auth_name_.clear();
          txn_.clear();
          session_->tls_established();
          break;
        }
        case smtp::ServerEventType::Reset:
          txn_.clear();
          break;
        case smtp::ServerEventType::Quit:
          break;
      }
    }
    co_return true;
  }

  asio::awaitable<void> on_auth(smtp::ServerEvent& ev) {
    auto table = ctx_.identities();
    auto password = std::make_shared<Secret>(std::move(ev.password));
    std::string user = ev.username;
    // Argon2id takes tens of milliseconds: keep it off the event loop.
    auto verify = [&] { return table->authenticate(user, *password); };
    const policy::Identity* who =
        co_await run_in_pool<const policy::Identity*>(ctx_.workers, verify);
    if (who != nullptr) {
      auth_name_ = who->name;
      session_->answer_auth(true);
    } else {
      ctx_.audit.write("auth_failed", {{"peer", describe(peer_)}, {"username", user}}, unix_now());
      session_->answer_auth(false);
    }
  }

  void on_mail(const smtp::ServerEvent& ev) {
    txn_.clear();
    const policy::Identity* who = identity();
    std::string sender = ev.address.null() ? std::string() : ev.address.str();
    txn_.mail_from = sender;
    policy::Verdict v = policy::check_sender(who, sender);
    if (v.action == policy::Verdict::Action::accept) {
      session_->accept("2.1.0", "Ok");
      return;
    }
    audit_refusal("mail", v, who);
    txn_.clear();
    session_->reject(v.code, v.enhanced, v.text);
  }

  void on_rcpt(const smtp::ServerEvent& ev) {
    const policy::Identity* who = identity();
    policy::Verdict v = policy::check_recipient(who, txn_.recipients.size());
    if (v.action == policy::Verdict::Action::accept) {
      txn_.recipients.push_back(ev.address.str());
      in_data_ = true;  // DATA may follow; use the longer timeout from here
      session_->accept("2.1.5", "Ok");
      return;
    }
    audit_refusal("rcpt", v, who);
    session_->reject(v.code, v.enhanced, v.text);
  }

  asio::awaitable<void> on_message(std::string& data) {
    const policy::Identity* who = identity();
    if (who == nullptr) {  // removed while the client was sending
      session_->reject(451, "4.7.1", "identity no longer exists; try again");
      txn_.clear();
      co_return;
    }
    std::int64_t now = unix_now();
    policy::Verdict v = policy::check_message(*who, txn_.mail_from, data, data.size(),
                                              txn_.recipients.size(), ctx_.counters, now);
    using A = policy::Verdict::Action;
    if (v.action == A::defer || v.action == A::reject) {
      audit_refusal("data", v, who);
      session_->reject(v.code, v.enhanced, v.text);
      txn_.clear();
      co_return;
    }
    spool::Message m;
    m.envelope.received_at = now;
    m.envelope.identity = who->name;
    m.envelope.peer = describe(peer_);
    m.envelope.mail_from = txn_.mail_from;
    for (const auto& r : txn_.recipients) m.envelope.recipients.push_back(spool::Recipient{r});
    m.envelope.held = v.action == A::hold;
    m.envelope.verdict = m.envelope.held ? "hold" : "accept";
    m.envelope.rule = v.rule;
    m.envelope.submitter = policy::trusted_submitter(*who, data);
    const std::string submitter = m.envelope.submitter;
    // The kill switch: while delivery is paused, new mail waits in hold.
    const bool paused = !m.envelope.held && ctx_.paused();
    if (paused) {
      m.envelope.held = true;
      m.envelope.verdict = "hold";
      m.envelope.rule = kPausedRule;
    }
    // An identity the monitor held (its sending looked abused): new mail
    // waits in hold until `queue release --identity NAME`.
    if (!m.envelope.held && spool::identity_held(ctx_.spool.directory(), who->name)) {
      m.envelope.held = true;
      m.envelope.verdict = "hold";
      m.envelope.rule = kDetectorRule;
    }
    std::size_t size = data.size();
    const bool held = m.envelope.held;
    const std::string rule = m.envelope.rule;  // m is moved into the spool below
    m.data = std::move(data);
    auto id = co_await commit_async(ctx_.spool, m);
    if (!id) {
      ctx_.audit.write("spool_error", {{"identity", who->name}, {"error", id.error().message}},
                       now);
      session_->reject(452, "4.3.1", "insufficient system storage; try again later");
      txn_.clear();
      co_return;
    }
    // Held mail does not count: the limits meter what may go out.
    if (v.action == A::accept) {
      ctx_.counters.record(who->name, txn_.recipients.size(), now);
      if (!submitter.empty())
        ctx_.counters.record(policy::submitter_key(*who, submitter), txn_.recipients.size(), now);
    }
    if (!held) ctx_.notify_deliverer(*id);
    ctx_.audit.write(held ? "held" : "received",
                     {{"id", *id},
                      {"identity", who->name},
                      {"peer", describe(peer_)},
                      {"mail_from", txn_.mail_from},
                      {"recipients", txn_.recipients},  // the monitor counts distinct ones
                      {"size", size},
                      {"verdict", held ? "hold" : "accept"},
                      {"rule", rule},
                      {"submitter", submitter}},
                     now);
    session_->accept("2.0.0", "queued as " + *id);
    txn_.clear();
  }

  ReceiverContext& ctx_;
  std::unique_ptr<Transport> transport_;
  policy::Peer peer_;
  std::optional<smtp::ServerSession> session_;
  std::shared_ptr<const policy::IdentityTable> table_;
  std::string auth_name_;
  Transaction txn_;
  bool in_data_ = false;
};

}  // namespace

void start_session(ReceiverContext& ctx, std::unique_ptr<Transport> transport, policy::Peer peer,
                   bool loopback) {
  auto runner =
      std::make_shared<SessionRunner>(ctx, std::move(transport), std::move(peer), loopback);
  asio::co_spawn(ctx.io, runner->run(), [runner](std::exception_ptr e) {
    if (!e) return;
    // A bug in our own code must end this session only, not the receiver.
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("session ended by an internal error: {}", ex.what());
    }
  });
}

}  // namespace sg::relay
