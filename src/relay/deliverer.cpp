#include "relay/deliverer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>

#include "base/text.hpp"
#include "relay/deliverer_internal.hpp"
#include "relay/deliverer_status.hpp"

namespace sg::relay {
namespace detail {
namespace {

constexpr std::chrono::seconds kTick{1};
constexpr unsigned kRescanTicks = 5;  // a lost notification delays mail by at most this

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void merge(delivery::Changes& into, const delivery::Changes& c) {
  into.delivered.insert(into.delivered.end(), c.delivered.begin(), c.delivered.end());
  into.deferred.insert(into.deferred.end(), c.deferred.begin(), c.deferred.end());
  into.failed.insert(into.failed.end(), c.failed.begin(), c.failed.end());
}

delivery::RetryPolicy retry_policy(const config::Delivery& d) {
  delivery::RetryPolicy p;
  p.first_min = std::chrono::seconds(d.first_retry_seconds);
  p.first_max = std::chrono::seconds(2 * d.first_retry_seconds);
  p.cap = std::chrono::seconds(d.max_retry_interval_seconds);
  p.max_lifetime = std::chrono::seconds(d.queue_lifetime_seconds);
  return p;
}

// One disk thread per session of the delivering pool, so each can have its
// spool call in progress; at least two, at most eight.
std::size_t disk_threads(const config::Config& config) {
  std::size_t sessions = config.upstreams.empty() ? 1 : config.upstreams.front().max_connections;
  return std::clamp<std::size_t>(sessions, 2, 8);
}

}  // namespace

Deliverer::Deliverer(asio::io_context& io, DelivererSetup& setup, spool::Spool& spool,
                     monitor::AuditLog& audit)
    : io_(io),
      disk_(disk_threads(setup.config)),
      setup_(setup),
      spool_(spool),
      audit_(audit),
      hostname_(local_hostname()),
      policy_(retry_policy(setup.config.delivery)),
      tick_timer_(io) {
  // Every upstream gets its access and state (status shows them all); the
  // first one carries the mail.
  for (std::size_t i = 0; i < setup.config.upstreams.size(); ++i)
    pools_.push_back(std::make_unique<Pool>(
        setup.config.upstreams[i],
        i < setup.access.size() ? std::move(setup.access[i]) : UpstreamAccess{}));
  for (auto& pool : pools_) {
    auto tls =
        net::make_client_tls(pool->config, pool->access.ca_pem ? &*pool->access.ca_pem : nullptr);
    if (tls)
      pool->tls = std::move(*tls);
    else
      spdlog::error("upstream {}: {}", pool->config.name, tls.error().message);
  }
  if (!pools_.empty()) {
    Pool& main = *pools_.front();
    for (std::uint32_t i = 0; i < main.config.max_connections; ++i)
      main.workers.push_back(std::make_unique<Worker>(io, main));
  }
  paused_ = spool::paused(spool_.directory());
}

void Deliverer::start() {
  started_at_ = unix_now();
  if (paused_) spdlog::warn("delivery is paused (smtpguard resume starts it again)");
  rescan();
  for (auto& pool : pools_)
    for (auto& w : pool->workers) asio::co_spawn(io_, run_worker(*w), asio::detached);
  if (setup_.notify_fd >= 0) {
    notify_.emplace(io_, setup_.notify_fd);
    read_notifications();
  }
  if (setup_.control_fd >= 0)
    control_ = std::make_unique<ControlServer>(
        io_, setup_.control_fd, setup_.control_uid,
        [this](const nlohmann::json& request) { return control(request); });
  tick();
}

void Deliverer::stop() {
  stopping_ = true;
  tick_timer_.cancel();
  if (notify_) {
    asio::error_code ec;
    notify_->close(ec);
  }
  if (control_) control_->stop();
  for (auto& pool : pools_)
    for (auto& w : pool->workers) w->wake.cancel();
}

void Deliverer::tick() {
  if (stopping_) return;
  // The monitor pauses by creating the marker (it has no control socket).
  if (bool marker = spool::paused(spool_.directory()); marker != paused_) set_paused(marker);
  if (++ticks_ % kRescanTicks == 0) rescan();
  kick();
  audit_.flush();  // lines kept while the supervisor was behind
  // Gauges for the monitor, which cannot use the control socket.
  publish_status(spool_.directory(), control({{"cmd", "status"}, {"queue_files", false}}),
                 unix_now());
  tick_timer_.expires_after(kTick);
  tick_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) tick();
  });
}

// New ids become due now; ids gone from queue/ (delivered elsewhere, held or
// deleted from outside) are forgotten unless a worker has them.
void Deliverer::rescan() {
  auto ids = spool_.list(false);
  std::set<std::string> present(ids.begin(), ids.end());
  std::int64_t now = unix_now();
  for (const auto& id : ids)
    if (!schedule_.known(id)) schedule_.add(id, now);
  for (const auto& id : schedule_.ids())
    if (!present.count(id)) schedule_.forget(id);
}

// Hands due messages to waiting workers, those with an open session first.
void Deliverer::kick() {
  if (paused_ || stopping_ || pools_.empty()) return;
  std::int64_t now = unix_now();
  for (bool warm : {true, false}) {
    for (auto& w : pools_.front()->workers) {
      if (!w->waiting || w->job || (w->client != nullptr) != warm) continue;
      auto id = schedule_.take(now);
      if (!id) return;
      w->job = std::move(*id);
      w->wake.cancel();
    }
  }
}

void Deliverer::read_notifications() {
  notify_->async_read_some(asio::buffer(notify_read_),
                           [this](const asio::error_code& ec, std::size_t n) {
                             if (ec || stopping_) return;
                             notify_buffer_.append(notify_read_.data(), n);
                             std::size_t start = 0, nl;
                             std::int64_t now = unix_now();
                             while ((nl = notify_buffer_.find('\n', start)) != std::string::npos) {
                               std::string id = notify_buffer_.substr(start, nl - start);
                               if (spool::is_valid_id(id)) schedule_.add(id, now);
                               start = nl + 1;
                             }
                             notify_buffer_.erase(0, start);
                             if (notify_buffer_.size() > 4096)
                               notify_buffer_.clear();  // garbage: the rescan catches up
                             kick();
                             read_notifications();
                           });
}

// The job runs on a disk thread; the handler (the suspended coroutine) is
// posted back to the io thread. The work guard keeps io.run() from returning
// while a job is out, so a stopping deliverer still records its outcomes.
// Only pointers are captured: g++ 12 copies coroutine parameters bitwise.
asio::awaitable<void> Deliverer::run_on_disk(std::function<void()>& job) {
  std::function<void()>* p = &job;
  asio::thread_pool* disk = &disk_;
  asio::io_context* io = &io_;
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [p, disk, io](auto handler) {
        asio::post(*disk, [p, io, work = asio::make_work_guard(*io),
                           handler = std::move(handler)]() mutable {
          (*p)();
          asio::post(*io, std::move(handler));
        });
      },
      asio::use_awaitable);
}

asio::awaitable<void> Deliverer::run_worker(Worker& w) {
  Pool& pool = w.pool;
  while (!stopping_) {
    if (!w.job && !paused_) w.job = schedule_.take(unix_now());
    if (!w.job) {
      // Nothing to do: wait for a job; an open session waits at most the
      // idle timeout (servers drop idle sessions anyway), and a pause
      // closes it at once.
      if (w.client && (paused_ || pool.config.idle_timeout_seconds == 0)) co_await close_session(w);
      w.waiting = true;
      if (w.client)
        w.wake.expires_after(std::chrono::seconds(pool.config.idle_timeout_seconds));
      else
        w.wake.expires_after(std::chrono::hours(24));
      asio::error_code ec;
      co_await w.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      w.waiting = false;
      if (!w.job && !ec && w.client) co_await close_session(w);
      continue;
    }
    std::string id = std::move(*w.job);
    w.job.reset();
    w.busy = true;
    std::optional<std::int64_t> next;
    bool broken = false;
    try {
      next = co_await deliver(w, id);
    } catch (const std::exception& e) {
      spdlog::error("delivery of {} failed internally: {}; retrying later", id, e.what());
      next = unix_now() + 60;
      broken = true;
    }
    if (broken && w.client) co_await close_session(w);
    w.busy = false;
    schedule_.finish(id, next);
  }
  if (w.client) co_await close_session(w);
}

asio::awaitable<void> Deliverer::close_session(Worker& w) {
  auto client = std::move(w.client);
  w.messages_on_session = 0;
  if (client) co_await client->quit();
}

asio::awaitable<bool> Deliverer::ensure_session(Worker& w, std::string& error) {
  Pool& pool = w.pool;
  if (w.client && pool.config.max_messages_per_connection > 0 &&
      w.messages_on_session >= pool.config.max_messages_per_connection)
    co_await close_session(w);
  if (w.client) co_return true;
  const auto& cred = pool.access.credential;
  const Secret* password = cred ? &cred->password : nullptr;
  std::string username = cred ? cred->username : "";
  if (pool.tls)
    w.client =
        std::make_unique<net::UpstreamClient>(io_, pool.config, username, password, pool.tls);
  else  // reports the trust store's error when it opens
    w.client =
        std::make_unique<net::UpstreamClient>(io_, pool.config, username, password, net::Trace{},
                                              pool.access.ca_pem ? &*pool.access.ca_pem : nullptr);
  w.messages_on_session = 0;
  auto opened = co_await w.client->open();
  if (opened) {
    ++pool.sessions_opened;
    co_return true;
  }
  error = opened.error().message;
  pool.last_error = error;
  pool.last_error_at = unix_now();
  co_await close_session(w);
  co_return false;
}

// SES counts recipients against the sending rate, so a transaction takes
// one token per recipient.
asio::awaitable<void> Deliverer::take_tokens(Pool& pool, std::size_t n) {
  asio::steady_timer timer(io_);
  for (std::size_t i = 0; i < n && !stopping_; ++i) {
    while (!pool.bucket.try_take(monotonic_seconds()) && !stopping_) {
      double wait = pool.bucket.wait_time(monotonic_seconds());
      timer.expires_after(std::chrono::microseconds(static_cast<std::int64_t>(wait * 1e6) + 1));
      asio::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

void Deliverer::react_to_replies(Worker& w, const delivery::Transaction& t) {
  Pool& pool = w.pool;
  std::vector<const smtp::Reply*> replies;
  for (const auto& r : t.rcpt_replies)
    if (r && r->code >= 400) replies.push_back(&*r);
  if (t.final_reply && t.final_reply->code >= 400) replies.push_back(&*t.final_reply);
  std::int64_t now = unix_now();
  for (const smtp::Reply* reply : replies) {
    auto cls = ses::classify_reply(reply->code, reply->text());
    auto action = delivery::on_reply(cls, policy_);
    pool.last_error = reply->to_string();
    pool.last_error_at = now;
    if (action.slow_down) {
      ++pool.throttled;
      pool.bucket.slow_down(action.slow_factor, monotonic_seconds(), action.slow_seconds);
      audit_.write("throttled", {{"upstream", pool.config.name}, {"reply", reply->to_string()}},
                   now);
    }
    if (action.pause_upstream > 0) {
      bool was_paused = pool.paused_until > now;
      pool.paused_until = std::max(pool.paused_until, now + action.pause_upstream);
      pool.pause_reason = action.hint.empty() ? reply->to_string() : action.hint;
      if (action.alert && !was_paused) {
        spdlog::error("upstream {}: {}; delivery waits until {}", pool.config.name,
                      pool.pause_reason, pool.paused_until);
        audit_.write("alert",
                     {{"kind", std::string(ses::to_string(cls.cls))},
                      {"upstream", pool.config.name},
                      {"reply", reply->to_string()},
                      {"hint", pool.pause_reason},
                      {"until", pool.paused_until}},
                     now);
      }
    }
    if (action.reconnect) w.messages_on_session = UINT32_MAX;  // a new session next time
  }
}

// One transaction for `rcpts` (envelope indices); false when the session broke.
asio::awaitable<bool> Deliverer::send_chunk(Worker& w, spool::Envelope& env,
                                            const std::string& data,
                                            const std::vector<std::size_t>& rcpts,
                                            delivery::Changes& changes) {
  Pool& pool = w.pool;
  co_await take_tokens(pool, rcpts.size());
  if (stopping_ || paused_) co_return false;  // the recipients stay due
  for (int attempt = 0;; ++attempt) {
    std::string error;
    bool reused = w.client != nullptr;
    if (!co_await ensure_session(w, error)) {
      merge(changes, delivery::apply_connection_failure(env, error, unix_now(), policy_, rng_));
      co_return false;
    }
    reused = reused && w.client != nullptr && w.messages_on_session > 0;
    // From here a crash may cause one duplicate, never a loss.
    auto mark = [&] { return spool_.mark_in_flight(env.id); };
    if (auto r = co_await on_disk(mark); !r) spdlog::warn("{}", r.error().message);
    smtp::Message m;
    m.envelope.mail_from = env.mail_from;
    for (std::size_t i : rcpts) m.envelope.rcpt_to.push_back(env.recipients[i].address);
    m.data = data;
    auto sent = co_await w.client->send(std::move(m));
    delivery::Transaction t;
    t.recipients = rcpts;
    if (!sent) {
      bool body_sent = w.client->body_sent();
      pool.last_error = sent.error().message;
      pool.last_error_at = unix_now();
      co_await close_session(w);
      // A reused session the server had closed (idle timeout, 421 after N
      // messages) before the content went out: try once more on a new one,
      // without counting an attempt. Nothing was delivered, so no duplicate.
      if (reused && !body_sent && attempt == 0) continue;
      t.connection_error = sent.error().message;
      merge(changes, delivery::apply_transaction(env, t, unix_now(), policy_, rng_));
      co_return false;
    }
    ++w.messages_on_session;
    for (const auto& r : sent->recipient_replies)
      t.rcpt_replies.push_back(r.code == 0 ? std::nullopt : std::optional<smtp::Reply>(r));
    t.final_reply = sent->final_reply;
    auto c = delivery::apply_transaction(env, t, unix_now(), policy_, rng_);
    pool.delivered += c.delivered.size();
    pool.deferred += c.deferred.size();
    pool.failed += c.failed.size();
    merge(changes, c);
    react_to_replies(w, t);
    co_return true;
  }
}

asio::awaitable<std::optional<std::int64_t>> Deliverer::deliver(Worker& w, const std::string& id) {
  Pool& pool = w.pool;
  // One read of the whole file: the schedule hands out only messages that
  // are due (or new), so the body is almost always needed.
  // Mail of an identity the monitor put on hold (an anomaly) goes to the
  // hold queue instead, also when it was queued before the hold.
  // The in-flight check rides along: one trip to the disk threads less.
  bool held_now = false, maybe_duplicate = false;
  auto load = [&] {
    auto m = spool_.load(id);
    if (m && !m->envelope.held && spool::identity_held(spool_.directory(), m->envelope.identity))
      held_now = spool_.hold(id).ok();
    if (m && !held_now) maybe_duplicate = spool_.in_flight(id);
    return m;
  };
  auto loaded = co_await on_disk(load);
  if (!loaded) {
    if (loaded.error().code == Errc::not_found) co_return std::nullopt;  // delivered or deleted
    spdlog::error("{}; trying again in 5 minutes", loaded.error().message);
    co_return unix_now() + 300;
  }
  if (held_now) {
    audit_.write("held",
                 {{"id", id},
                  {"identity", loaded->envelope.identity},
                  {"rule", kDetectorRule},
                  {"by", "monitor"}},
                 unix_now());
    co_return std::nullopt;
  }
  if (loaded->envelope.held) co_return std::nullopt;  // held from outside: release brings it back
  spool::Envelope env = std::move(loaded->envelope);
  std::int64_t now = unix_now();
  if (forced_.erase(id)) {
    for (auto& r : env.recipients)
      if (r.state == spool::RecipientState::deferred)
        r.next_attempt = std::min(r.next_attempt, now);
  }
  delivery::Changes changes = delivery::expire_overdue(env, now, policy_);
  std::vector<std::size_t> due = delivery::recipients_due(env, now);
  if (!due.empty() && pool.paused_until > now) {
    // The upstream refuses everything for now (daily quota, credentials):
    // wait for it without counting an attempt against the recipients.
    delivery::defer_all(env, pool.paused_until, pool.pause_reason);
    due.clear();
    auto update = [&] { return spool_.update_envelope(env); };
    if (auto r = co_await on_disk(update); !r) spdlog::error("{}", r.error().message);
  }
  if (due.empty() && changes.failed.empty()) {
    if (delivery::finished(env)) {
      auto remove = [&] { return spool_.remove(id); };
      (void)co_await on_disk(remove);
      co_return std::nullopt;
    }
    co_return delivery::next_wakeup(env);
  }
  // In place: without the submitter header (the usual case) no copy is made.
  loaded->data = delivery::strip_header(std::move(loaded->data));
  if (!due.empty()) {
    std::string with_ses;
    const bool ses = !pool.config.configuration_set.empty();
    if (ses)
      with_ses =
          delivery::add_ses_headers(loaded->data, pool.config.configuration_set, env.identity);
    const std::string& data = ses ? with_ses : loaded->data;
    // SES takes at most 50 recipients per transaction; other servers must
    // take 100 (RFC 5321), so 50 is safe everywhere.
    for (const auto& chunk :
         delivery::split_recipients(due, delivery::kSesMaxRecipientsPerTransaction)) {
      if (stopping_ || paused_ || !co_await send_chunk(w, env, data, chunk, changes)) break;
    }
  }
  audit_changes(pool, env, changes, maybe_duplicate);
  if (!changes.failed.empty() && setup_.config.delivery.bounces)
    co_await queue_dsn(env, loaded->data, changes.failed);
  // One trip to the disk thread records the outcome and clears the mark.
  const bool done = delivery::finished(env);
  auto record = [&] {
    if (done) {
      if (auto r = spool_.retire(id); !r) {  // which clears the mark too
        spdlog::error("cannot remove {}: {}", id, r.error().message);
        spool_.clear_in_flight(id);
      }
      return true;
    }
    if (auto r = spool_.update_envelope(env); !r)
      spdlog::error("cannot record the state of {}: {}", id, r.error().message);
    spool_.clear_in_flight(id);
    return true;
  };
  co_await on_disk(record);
  if (done) co_return std::nullopt;
  co_return delivery::next_wakeup(env);
}

void Deliverer::audit_changes(const Pool& pool, const spool::Envelope& env,
                              const delivery::Changes& c, bool maybe_duplicate) {
  std::int64_t now = unix_now();
  const std::string credential =
      pool.access.credential ? pool.access.credential->name : std::string();
  // Which secret of that entry: when it was sealed or last rotated.
  const std::int64_t credential_version =
      pool.access.credential
          ? (pool.access.credential->rotated_at != 0 ? pool.access.credential->rotated_at
                                                     : pool.access.credential->created_at)
          : 0;
  for (std::size_t i : c.delivered) {
    nlohmann::json fields = {{"id", env.id},
                             {"identity", env.identity},
                             {"recipient", env.recipients[i].address},
                             {"upstream", pool.config.name},
                             {"upstream_id", env.recipients[i].upstream_id},
                             {"credential", credential},
                             {"credential_version", credential_version}};
    // The last attempt was cut off after the content may have left.
    if (maybe_duplicate) fields["possible_duplicate"] = true;
    audit_.write("delivered", std::move(fields), now);
  }
  for (std::size_t i : c.deferred)
    audit_.write("deferred",
                 {{"id", env.id},
                  {"identity", env.identity},
                  {"recipient", env.recipients[i].address},
                  {"upstream", pool.config.name},
                  {"reply", env.recipients[i].last_reply},
                  {"next_attempt", env.recipients[i].next_attempt}},
                 now);
  for (std::size_t i : c.failed)
    audit_.write("bounced",
                 {{"id", env.id},
                  {"identity", env.identity},
                  {"recipient", env.recipients[i].address},
                  {"upstream", pool.config.name},
                  {"reply", env.recipients[i].last_reply},
                  {"dsn", setup_.config.delivery.bounces && delivery::should_bounce(env)}},
                 now);
}

// A DSN for recipients that failed for good goes back through the spool.
asio::awaitable<void> Deliverer::queue_dsn(const spool::Envelope& env, const std::string& data,
                                           const std::vector<std::size_t>& failed) {
  if (failed.empty() || !delivery::should_bounce(env, data)) co_return;
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
  auto commit = [&] { return spool_.commit_sync(std::move(dsn)); };
  auto committed = co_await on_disk(commit);
  if (!committed) {
    spdlog::error("cannot queue a DSN for {}: {}", env.id, committed.error().message);
    co_return;
  }
  schedule_.add(*committed, unix_now());
}

}  // namespace detail

int run_deliverer(DelivererSetup setup) {
  asio::io_context io(1);
  spool::Options options;
  options.recover = false;  // the receiver owns recovery
  auto spool = spool::Spool::open("spool", nullptr, options);
  if (!spool) {
    spdlog::critical("deliverer: cannot open the spool: {}", spool.error().message);
    return 74;
  }
  monitor::AuditLog audit = monitor::AuditLog::adopt(setup.audit_fd);
  detail::Deliverer deliverer(io, setup, **spool, audit);
  ::signal(SIGHUP, SIG_IGN);  // reloads restart this process (see the supervisor)
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const asio::error_code& ec, int) {
    if (!ec) deliverer.stop();  // messages in hand are finished first
  });
  deliverer.start();
  char ready = 'R';
  if (setup.ready_fd >= 0) {
    (void)!::write(setup.ready_fd, &ready, 1);
    ::close(setup.ready_fd);
  }
  io.run();
  (*spool)->stop();
  return 0;
}

}  // namespace sg::relay
