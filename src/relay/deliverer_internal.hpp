// Internals of the deliverer, shared by deliverer.cpp (scheduling and
// delivery) and deliverer_control.cpp (the control socket's commands).
#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "delivery/delivery.hpp"
#include "monitor/monitor.hpp"
#include "net/net.hpp"
#include "relay/control.hpp"
#include "relay/deliverer.hpp"
#include "spool/spool.hpp"

namespace sg::relay::detail {

struct Pool;

// One upstream session slot of a pool; runs as one coroutine.
struct Worker {
  Worker(asio::io_context& io, Pool& p) : pool(p), wake(io) {}
  Pool& pool;
  asio::steady_timer wake;  // waiting for a job (or the idle timeout)
  std::unique_ptr<net::UpstreamClient> client;
  std::uint32_t messages_on_session = 0;
  std::optional<std::string> job;
  bool waiting = false;
  bool busy = false;
};

// One [upstream.NAME]: its access, rate bucket, state and workers.
struct Pool {
  Pool(const config::Upstream& c, UpstreamAccess a)
      : config(c),
        access(std::move(a)),
        bucket(c.max_send_rate, c.max_send_rate > 1 ? c.max_send_rate : 1) {}
  config::Upstream config;
  UpstreamAccess access;
  delivery::TokenBucket bucket;
  net::ClientTls tls;  // shared by the pool's sessions; null if the trust store did not load
  std::int64_t paused_until = 0;  // SES daily quota, bad credentials
  std::string pause_reason;
  std::string last_error;
  std::int64_t last_error_at = 0;
  std::uint64_t sessions_opened = 0, delivered = 0, deferred = 0, failed = 0, throttled = 0;
  std::vector<std::unique_ptr<Worker>> workers;
};

class Deliverer {
 public:
  Deliverer(asio::io_context& io, DelivererSetup& setup, spool::Spool& spool,
            monitor::AuditLog& audit);
  void start();
  void stop();
  nlohmann::json control(const nlohmann::json& request);  // deliverer_control.cpp

 private:
  // deliverer.cpp
  void kick();
  void rescan();
  void tick();
  void read_notifications();
  asio::awaitable<void> run_worker(Worker& w);
  asio::awaitable<void> close_session(Worker& w);
  asio::awaitable<bool> ensure_session(Worker& w, std::string& error);
  asio::awaitable<void> take_tokens(Pool& pool, std::size_t n);
  // Runs `job` on a disk thread and resumes on the io thread. Spool calls
  // block on fsync and on unlink (which waits for the file system's discard):
  // on the io thread they would stall every other session.
  asio::awaitable<void> run_on_disk(std::function<void()>& job);
  template <class F>
  asio::awaitable<std::invoke_result_t<F&>> on_disk(F& f) {
    std::optional<std::invoke_result_t<F&>> out;
    std::function<void()> job = [&] { out.emplace(f()); };
    co_await run_on_disk(job);
    co_return std::move(*out);
  }
  asio::awaitable<std::optional<std::int64_t>> deliver(Worker& w, const std::string& id);
  asio::awaitable<bool> send_chunk(Worker& w, spool::Envelope& env, const std::string& data,
                                   const std::vector<std::size_t>& rcpts,
                                   delivery::Changes& changes);
  void react_to_replies(Worker& w, const delivery::Transaction& t);
  void audit_changes(const Pool& pool, const spool::Envelope& env, const delivery::Changes& c,
                     bool maybe_duplicate);
  asio::awaitable<void> queue_dsn(const spool::Envelope& env, const std::string& data,
                                  const std::vector<std::size_t>& failed);
  void set_paused(bool paused);

  // deliverer_control.cpp
  nlohmann::json status();
  nlohmann::json queue_command(const std::string& cmd, const std::string& id);
  nlohmann::json pause_command(bool pause);

  asio::io_context& io_;
  asio::thread_pool disk_;  // blocking spool calls (see on_disk)
  DelivererSetup& setup_;
  spool::Spool& spool_;
  monitor::AuditLog& audit_;
  std::string hostname_;
  delivery::RetryPolicy policy_;
  delivery::SodiumRng rng_;
  delivery::Schedule schedule_;
  std::set<std::string> forced_;  // flushed: deferred recipients are due now
  std::vector<std::unique_ptr<Pool>> pools_;
  asio::steady_timer tick_timer_;
  std::optional<asio::posix::stream_descriptor> notify_;
  std::string notify_buffer_;
  std::array<char, 4096> notify_read_{};
  std::unique_ptr<ControlServer> control_;
  bool paused_ = false;
  bool stopping_ = false;
  unsigned ticks_ = 0;
  std::int64_t started_at_ = 0;
};

}  // namespace sg::relay::detail
