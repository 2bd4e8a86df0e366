// The sg-monitor process: tails the audit log, counts, runs the anomaly
// detectors and serves /metrics and / on [monitor] listen (cpp-httplib).
// It holds no secret and cannot open the vault; what it knows about
// credentials (names and ages) the supervisor's fork read before the
// privilege drop (vault::read_metadata).
#include <httplib.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "base/file.hpp"
#include "base/text.hpp"
#include "monitor/alerts.hpp"
#include "monitor/detect.hpp"
#include "monitor/monitor.hpp"
#include "spool/spool.hpp"

namespace sg::monitor {
namespace {

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ActiveAction describe(const Action& a) {
  return {a.detector, a.subject, std::string(config::to_string(a.action)), a.message, a.time};
}

// Sends alerts on a thread of its own: a webhook or mail server that hangs
// must not stop the monitor from reading the log and acting on it. The
// queue is bounded; the sinks deduplicate and rate-limit.
class AlertQueue {
 public:
  AlertQueue(ProcessSetup& setup, AuditLog& audit)
      : sinks_(setup.config.alerts, setup.config.upstreams, std::move(setup.alert_logins)),
        audit_(audit) {
    if (!sinks_.empty()) thread_ = std::thread([this] { run(); });
  }
  ~AlertQueue() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  void push(AlertEvent alert) {
    if (sinks_.empty()) return;
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= 100) return;  // the sinks would suppress it anyway
      queue_.push_back(std::move(alert));
    }
    wake_.notify_one();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping with nothing left
      AlertEvent alert = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      for (const auto& o : sinks_.send(alert)) {
        if (o.suppressed) continue;
        nlohmann::json fields = {{"key", alert.key}, {"sink", o.sink}, {"sent", o.sent}};
        if (!o.sent) fields["error"] = o.error;
        audit_.write("alert_sent", std::move(fields), unix_seconds());
        if (!o.sent) spdlog::error("alert {} via {}: {}", alert.key, o.sink, o.error);
      }
      lock.lock();
    }
  }

  AlertSinks sinks_;
  AuditLog& audit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<AlertEvent> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

class Monitor {
 public:
  explicit Monitor(ProcessSetup& setup)
      : setup_(setup),
        audit_(AuditLog::adopt(setup.audit_write_fd)),
        alerts_(setup, audit_),
        detectors_(setup.config.detect) {
    for (const auto& u : setup.config.upstreams)
      upstreams_.push_back({u.name, u.credential, u.max_send_rate});
  }

  // The learned state the last monitor saved, before the audit log primes
  // the detectors: lines it already covers are then skipped (counted twice,
  // a burst would raise the baselines it was learned into). A damaged or
  // foreign file: one warning, a fresh start, and the next save replaces it.
  void load_baselines() {
    auto loaded = load_detector_state(state_path(), detectors_);
    if (loaded) {
      baselines_.loaded = true;
      baselines_.position = position_ = *loaded;
      spdlog::info("monitor: detector baselines loaded from {} (audit seq {})",
                   state_path().string(), loaded->seq);
    } else if (loaded.error().code != Errc::not_found) {
      baselines_.error = loaded.error().message;
      spdlog::warn("monitor: {} not loaded, detectors start afresh: {}", state_path().string(),
                   loaded.error().message);
    }
  }

  // Every 10 minutes and at a clean exit, so a restart keeps what was learned.
  void save_baselines(std::int64_t now) {
    std::string text;
    {
      std::lock_guard lock(mutex_);
      text = encode_detector_state(detectors_, position_, now);
    }
    if (auto r = write_file_atomic(state_path(), text, 0600); !r)
      spdlog::error("monitor: cannot save the detector baselines: {}", r.error().message);
  }

  // Reads what the audit log gained and feeds counters and detectors.
  // `catching_up`: lines written before this process started, whose
  // actions were dealt with by the monitor that saw them (they still warm
  // up the detectors and show as active).
  std::size_t poll(AuditTail& tail, bool catching_up) {
    std::vector<Action> fired;
    std::size_t lines = tail.poll([&](std::string_view line) {
      std::lock_guard lock(mutex_);
      stats_.observe_line(line);
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object()) return;
      std::uint64_t seq = 0;
      std::int64_t time = 0;
      if (auto it = j.find("seq"); it != j.end() && it->is_number_unsigned())
        seq = it->get<std::uint64_t>();
      if (auto it = j.find("time"); it != j.end() && it->is_number_integer())
        time = it->get<std::int64_t>();
      if (baselines_.position.covers(seq, time)) {
        ++baselines_.skipped;
        return;
      }
      position_.seq = std::max(position_.seq, seq);
      position_.time = std::max(position_.time, time);
      if (auto e = event_from_audit(j)) {
        auto now = detectors_.observe(*e);
        fired.insert(fired.end(), now.begin(), now.end());
      }
    });
    if (!catching_up)
      for (const auto& a : fired) on_action(a);
    return lines;
  }

  void tick(std::int64_t now) {
    std::vector<Action> fired;
    {
      std::lock_guard lock(mutex_);
      fired = detectors_.tick(std::max(now, stats_.last_time));
      stats_.prune(now);
    }
    for (const auto& a : fired) on_action(a);
  }

  // Carries out a detector's action through the marker files the relay
  // reads (spool.hpp: held-identities, blocked, paused), writes what was
  // done to the audit log, and queues the alert for the [[alert]] sinks.
  void on_action(const Action& a) {
    std::string done;
    std::string error;
    Result<void> r;
    switch (a.action) {
      case config::DetectAction::alert:
        done = "alerted";
        break;
      case config::DetectAction::hold:
        // An upstream cannot be held; its mail would all wait: pause instead.
        if (a.scope == Scope::identity) {
          r = spool::set_identity_hold("spool", a.subject, a.detector + ": " + a.message);
          done = "identity held";
        } else {
          r = spool::set_paused("spool", true, a.time);
          done = "delivery paused";
        }
        break;
      case config::DetectAction::pause:
        r = spool::set_paused("spool", true, a.time);
        done = "delivery paused";
        break;
      case config::DetectAction::block:
        r = spool::set_block("spool", a.subject, a.until, a.detector + ": " + a.message);
        done = "address blocked";
        break;
    }
    if (!r) error = r.error().message;
    auto fields = to_json(a);
    fields["kind"] = "detector:" + a.detector;
    fields["reason"] = a.message;
    fields["carried_out"] = error.empty();
    if (!error.empty()) fields["error"] = error;
    audit_.write("alert", fields, unix_seconds());
    if (error.empty())
      spdlog::warn("detector {}: {}: {} ({})", a.detector, a.subject, a.message, done);
    else
      spdlog::error("detector {}: {}: {}; could not carry out {}: {}", a.detector, a.subject,
                    a.message, config::to_string(a.action), error);
    AlertEvent alert;
    alert.key = a.detector + ":" + a.subject;
    alert.severity = a.severity == Severity::critical ? "critical" : "warning";
    alert.title = a.subject + ": " + a.message + (error.empty() ? " (" + done + ")" : "");
    alert.detail = "Detector " + a.detector + " fired for " + a.subject + ".\n" +
                   (error.empty() ? "Done: " + done : "Could not carry it out: " + error) +
                   ".\nUndo with: " + undo_hint(a);
    alert.host = hostname_;
    alert.time = a.time;
    alert.fields = std::move(fields);
    alerts_.push(std::move(alert));
  }

  static std::string undo_hint(const Action& a) {
    switch (a.action) {
      case config::DetectAction::hold:
        return a.scope == Scope::identity ? "smtpguard queue release --identity " + a.subject +
                                                " (or queue delete --identity " + a.subject + ")"
                                          : "smtpguard resume";
      case config::DetectAction::pause:
        return "smtpguard resume";
      case config::DetectAction::block:
        return "the block ends by itself; earlier: rm STATE_DIR/spool/blocked/" + a.subject;
      default:
        return "nothing to undo";
    }
  }

  Snapshot snapshot() {
    Snapshot s;
    s.now = unix_seconds();
    // Relative: the working directory is the state directory, and the
    // service user may not be allowed to pass through its parents.
    s.queue = read_queue_state("spool");
    s.paused = spool::paused("spool");
    s.upstreams = upstreams_;
    s.credentials = setup_.credentials;
    s.rotation_warn_days = setup_.config.vault.rotation_warn_days;
    s.rotation_max_days = setup_.config.vault.rotation_max_days;
    s.detectors_running = true;
    s.deliverer = read_deliverer_status("spool", s.now);
    std::lock_guard lock(mutex_);
    s.baselines = baselines_;
    s.stats = stats_;
    for (const auto& a : detectors_.active()) s.actions.push_back(describe(a));
    return s;
  }
  // Lines kept while the supervisor was behind (see AuditLog::flush).
  void flush_audit() { audit_.flush(); }

 private:
  ProcessSetup& setup_;
  AuditLog audit_;
  std::string hostname_ = local_hostname();
  AlertQueue alerts_;
  std::mutex mutex_;  // stats_ and detectors_: the HTTP threads read them
  Stats stats_;
  Detectors detectors_;
  std::vector<UpstreamInfo> upstreams_;
  AuditPosition position_;  // how far the detectors have read (saved with them)
  BaselineInfo baselines_;  // what was loaded; its position is what to skip

  // In the spool directory: the service user's own directory (the state
  // directory is root's), kept across restarts and upgrades like the
  // receiver's rate-counters.json, and relative for the same reason as the
  // spool itself (see snapshot()).
  static std::filesystem::path state_path() {
    return std::filesystem::path("spool") / kDetectorStateFile;
  }
};

// Binds [monitor] listen; false (logged) when it cannot: mail goes on.
bool start_http(httplib::Server& server, const std::string& listen, Monitor& m) {
  auto address = config::parse_listen_address(listen);
  if (!address) {
    spdlog::error("monitor: listen {}: {}", listen, address.error().message);
    return false;
  }
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_keep_alive_max_count(20);
  server.Get("/metrics", [&m](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_metrics(m.snapshot()), kMetricsContentType);
  });
  server.Get("/", [&m](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
    res.set_content(render_status_page(m.snapshot()), "text/html; charset=utf-8");
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    res.set_content("not found\n", "text/plain");
  });
  if (!server.bind_to_port(address->host, address->port)) {
    spdlog::error("monitor: cannot listen on {}: {}; metrics and status page are off", listen,
                  std::strerror(errno));
    return false;
  }
  spdlog::info("monitor: metrics and status page on http://{}/", listen);
  return true;
}

}  // namespace

int run_process(ProcessSetup setup) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // before any thread starts

  Monitor monitor(setup);
  monitor.load_baselines();
  // A log inside the state directory (the default) is reopened relative to
  // it, the working directory, for the same reason as the spool.
  auto audit_path = setup.config.monitor.audit_log;
  auto inside = audit_path.lexically_relative(setup.config.relay.state_dir);
  if (!inside.empty() && *inside.begin() != "..") audit_path = inside;
  AuditTail tail(audit_path, setup.audit_read_fd);
  httplib::Server server;
  std::thread http;
  if (!setup.config.monitor.listen.empty() &&
      start_http(server, setup.config.monitor.listen, monitor))
    http = std::thread([&server] { server.listen_after_bind(); });
  // Ready before the backlog is read: the supervisor waits for this byte.
  if (setup.ready_fd >= 0) {
    (void)!::write(setup.ready_fd, "R", 1);
    ::close(setup.ready_fd);
  }
  // What was written before we started (the tail bounds the backlog).
  for (int round = 0; round < 64 && monitor.poll(tail, true) > 0; ++round) {
  }

  // Audit lines are read every 250 ms; detectors tick every second; the
  // learned state is saved every 10 minutes and at exit.
  constexpr std::int64_t kSaveEvery = 600;
  std::int64_t last_tick = 0, last_save = unix_seconds();
  for (;;) {
    timespec wait{0, 250'000'000};
    int sig = sigtimedwait(&stop, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) break;
    monitor.poll(tail, false);
    monitor.flush_audit();
    std::int64_t now = unix_seconds();
    if (now != last_tick) {
      monitor.tick(now);
      last_tick = now;
    }
    if (now - last_save >= kSaveEvery || now < last_save) {
      monitor.save_baselines(now);
      last_save = now;
    }
  }
  monitor.save_baselines(unix_seconds());
  if (http.joinable()) {
    server.stop();
    http.join();
  }
  return 0;
}

}  // namespace sg::monitor
