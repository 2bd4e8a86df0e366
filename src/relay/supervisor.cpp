// The supervisor: prepares what needs root, forks the receiver, restarts it
// if it dies, and speaks to systemd.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <set>
#include <string>

#include "base/file.hpp"
#include "base/text.hpp"
#include "monitor/monitor.hpp"
#include "relay/control.hpp"
#include "relay/deliverer.hpp"
#include "relay/listeners.hpp"
#include "relay/privileges.hpp"
#include "relay/receiver.hpp"
#include "relay/relay.hpp"
#include "vault/vault.hpp"

namespace sg::relay {
namespace {

// A worker that dies is restarted, at most 5 times a minute.
// Exit code of a deliverer that cannot unseal its credential: restarting it
// would not help, so the supervisor does not.
constexpr int kNoCredential = 78;  // EX_CONFIG

class RestartBudget {
 public:
  bool allow() {
    auto now = std::chrono::steady_clock::now();
    times_.push_back(now);
    while (now - times_.front() > std::chrono::minutes(1)) times_.pop_front();
    return times_.size() <= 5;
  }

 private:
  std::deque<std::chrono::steady_clock::time_point> times_;
};

struct Prepared {
  config::Config config;
  std::optional<RunAs> run_as;
  std::vector<Listener> listeners;
  int audit_fd = -1;
  int lock_fd = -1;
  int notify_read = -1, notify_write = -1;  // receiver -> deliverer queue ids
  int control_fd = -1;
  std::vector<int> close_in_workers;  // the supervisor's own descriptors
};

// Directories and files with the owners the receiver needs: it can write
// the spool and nothing else of the state directory.
Result<void> prepare_state(const Prepared& p) {
  const auto& dir = p.config.relay.state_dir;
  if (auto r = ensure_directory(dir, 0751); !r) return r;
  if (p.run_as) {
    // The receiver works inside the state directory and its group reads
    // clients.json; others may only pass through to the submit socket (each
    // file inside keeps its own restrictive mode; the directory is not
    // listable).
    if (::chown(dir.c_str(), 0, p.run_as->gid) != 0 || ::chmod(dir.c_str(), 0751) != 0)
      return make_error(Errc::permission, errno_message("cannot set owner/mode of", dir));
  }
  auto spool = dir / "spool";
  if (auto r = ensure_directory(spool, 0700); !r) return r;
  if (p.run_as) {
    if (::chown(spool.c_str(), p.run_as->uid, p.run_as->gid) != 0)
      return make_error(Errc::permission, errno_message("cannot chown", spool));
    // Already spooled files must stay readable after a change of user.
    std::error_code ec;
    for (auto& e : std::filesystem::recursive_directory_iterator(spool, ec))
      (void)!::lchown(e.path().c_str(), p.run_as->uid, p.run_as->gid);
    auto clients = dir / "clients.json";
    if (::access(clients.c_str(), F_OK) == 0) {
      (void)!::chown(clients.c_str(), 0, p.run_as->gid);
      ::chmod(clients.c_str(), 0640);
    }
  }
  return {};
}

// First steps of a forked worker: take signals again (the supervisor
// blocks them) and work inside the state directory from here on.
void enter_state_dir(const Prepared& p, const char* role) {
  // "sg-receiver" / "sg-deliverer" in ps and /proc/PID/comm.
  ::prctl(PR_SET_NAME, (std::string("sg-") + role).c_str());
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, nullptr);
  for (int fd : p.close_in_workers) ::close(fd);
  if (::chdir(p.config.relay.state_dir.c_str()) != 0) {
    spdlog::critical("{}: cannot enter {}: {}", role, p.config.relay.state_dir.string(),
                     std::strerror(errno));
    ::_exit(73);
  }
}

// Once a worker has read what needs root: drop it for good, and die with
// the supervisor (PDEATHSIG is set after the uid change, which clears it).
void become_worker(const Prepared& p, pid_t supervisor, const char* role) {
  if (p.run_as) {
    if (auto r = drop_privileges(*p.run_as); !r) {
      spdlog::critical("{}: {}", role, r.error().message);
      ::_exit(77);
    }
  } else {
    lock_down_process();
  }
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != supervisor) ::_exit(0);
}

pid_t start_receiver(Prepared& p, int ready_fd, bool recover_spool) {
  pid_t supervisor = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  enter_state_dir(p, "receiver");
  ::close(p.notify_read);
  ::close(p.control_fd);
  auto tls = load_server_tls(p.config);
  if (!tls) {
    spdlog::critical("receiver: {}", tls.error().message);
    ::_exit(78);
  }
  become_worker(p, supervisor, "receiver");
  int rc = run_receiver(p.config, p.listeners, p.audit_fd, ready_fd, std::move(*tls),
                        p.notify_write, recover_spool);
  ::_exit(rc);
}

pid_t start_deliverer(Prepared& p, int ready_fd) {
  pid_t supervisor = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  enter_state_dir(p, "deliverer");
  ::close(p.notify_write);
  close_listeners(p.listeners);
  // What only root may read is read now, in this child: the upstreams'
  // private CAs and the sealed credentials. The supervisor never holds a
  // secret, so a receiver it forks later cannot inherit one.
  harden_process();
  DelivererSetup setup;
  for (const auto& upstream : p.config.upstreams) {
    UpstreamAccess access;
    if (!upstream.credential.empty()) {
      auto loaded = vault::load_credential(p.config, upstream.credential, {});
      if (!loaded) {
        spdlog::critical("no delivery: upstream {}: {}; accepted mail stays queued",
                         upstream.name, loaded.error().message);
        ::_exit(kNoCredential);
      }
      access.credential.emplace(std::move(*loaded));
    }
    if (!upstream.ca_file.empty()) {
      auto pem = read_file(upstream.ca_file, 1u << 20);
      if (!pem) {
        spdlog::critical("deliverer: upstream {}: {}", upstream.name, pem.error().message);
        ::_exit(kNoCredential);
      }
      access.ca_pem = std::move(*pem);
    }
    setup.access.push_back(std::move(access));
  }
  become_worker(p, supervisor, "deliverer");
  setup.config = p.config;
  setup.audit_fd = p.audit_fd;
  setup.ready_fd = ready_fd;
  setup.notify_fd = p.notify_read;
  setup.control_fd = p.control_fd;
  setup.control_uid = p.run_as ? 0 : ::getuid();
  ::_exit(run_deliverer(std::move(setup)));
}

// The monitor (sg-monitor): opens the audit log read-only and reads the
// vault's metadata (entry names and times for the credential age; never a
// secret, never the key) while still root, then runs unprivileged.
pid_t start_monitor(Prepared& p, int ready_fd) {
  pid_t supervisor = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  monitor::ProcessSetup setup;
  setup.config = p.config;
  // Before enter_state_dir: configured paths are relative to the start directory.
  std::error_code ec;
  setup.config.monitor.audit_log = std::filesystem::absolute(p.config.monitor.audit_log, ec);
  setup.audit_read_fd =
      ::open(setup.config.monitor.audit_log.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (auto file = read_file(p.config.vault.path); file)
    if (auto entries = vault::read_metadata(*file); entries)
      for (const auto& e : *entries)
        setup.credentials.push_back({e.name, e.rotated_at != 0 ? e.rotated_at : e.created_at});
  // Alert email through a second upstream: only that upstream's login.
  for (const auto& a : p.config.alerts) {
    if (a.email_upstream.empty() || setup.alert_logins.count(a.email_upstream)) continue;
    const config::Upstream* up = p.config.find_upstream(a.email_upstream);
    if (up == nullptr || up->credential.empty()) continue;
    harden_process();
    auto login = vault::load_credential(p.config, up->credential, {});
    if (login)
      setup.alert_logins.emplace(a.email_upstream,
                                 monitor::AlertLogin{login->username, std::move(login->password)});
    else
      spdlog::error("monitor: alert email through upstream {}: {}", a.email_upstream,
                    login.error().message);
  }
  enter_state_dir(p, "monitor");
  ::close(p.notify_read);
  ::close(p.notify_write);
  if (p.control_fd >= 0) ::close(p.control_fd);
  close_listeners(p.listeners);
  become_worker(p, supervisor, "monitor");
  setup.audit_write_fd = p.audit_fd;
  setup.ready_fd = ready_fd;
  ::_exit(monitor::run_process(std::move(setup)));
}

// True once the worker wrote its ready byte; otherwise it died first, and
// `status` gets its wait status.
// The workers' audit lines are served meanwhile.
bool wait_ready(int fd, pid_t pid, int& status, monitor::AuditChannels& channels) {
  char c = 0;
  ssize_t n;
  channels.wait(fd, -1);
  do {
    n = ::read(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n == 1) return true;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return false;
}

// Paths as the workers will see them: absolute, since they chdir into the
// state directory.
void normalize_paths(config::Config& c) {
  std::error_code ec;
  c.relay.state_dir = std::filesystem::absolute(c.relay.state_dir, ec).lexically_normal();
  if (!c.relay.socket.empty())
    c.relay.socket = std::filesystem::absolute(c.relay.socket, ec).string();
  else
    c.relay.socket = submit_socket_path(c).string();
  if (c.monitor.audit_log.empty()) c.monitor.audit_log = c.relay.state_dir / "audit.jsonl";
  c.monitor.audit_log = std::filesystem::absolute(c.monitor.audit_log, ec).lexically_normal();
}

// The supervisor appends for every relay process (see monitor.hpp) and
// rotates; new files stay readable by the monitor's group.
monitor::AuditOptions audit_options(const Prepared& p) {
  monitor::AuditOptions o;
  o.max_size = p.config.monitor.audit_max_size;
  o.keep = p.config.monitor.audit_keep;
  o.syslog = p.config.monitor.audit_syslog;
  o.proc = "supervisor";
  if (p.run_as) o.group = static_cast<int>(p.run_as->gid);
  return o;
}

// One relay per state directory; the lock file holds the supervisor's pid.
Result<int> lock_state(const config::Config& c) {
  auto path = pid_file_path(c);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot open", path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    (void)!::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    return make_error(Errc::conflict, "another smtpguard relay (pid " +
                                          std::string(trim(buf)) + ") is running on " +
                                          c.relay.state_dir.string());
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0)
    spdlog::warn("{}", errno_message("cannot write", path));
  return fd;
}

std::string describe_exit(int status) {
  return WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                             : "status " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

std::filesystem::path pid_file_path(const config::Config& config) {
  return config.relay.state_dir / "relay.pid";
}

int run(const config::Config& config, const RelayOptions& options) {
  // A closed log pipe must not kill the supervisor (and orphan the receiver).
  ::signal(SIGPIPE, SIG_IGN);
  Prepared p;
  p.config = config;
  normalize_paths(p.config);

  auto who = unprivileged_user(p.config.relay.user);
  if (!who) {
    spdlog::critical("{}", who.error().message);
    return 78;
  }
  p.run_as = *who;
  if (auto r = prepare_state(p); !r) {
    spdlog::critical("{}", r.error().message);
    return 73;  // EX_CANTCREAT
  }
  auto lock = lock_state(p.config);
  if (!lock) {
    spdlog::critical("{}", lock.error().message);
    return lock.error().code == Errc::conflict ? 75 : 73;  // EX_TEMPFAIL
  }
  p.lock_fd = *lock;
  const auto audit_path = p.config.monitor.audit_log;
  auto opened = monitor::AuditLog::open(audit_path, audit_options(p));
  if (!opened) {
    spdlog::critical("{}", opened.error().message);
    return 73;
  }
  monitor::AuditLog audit = std::move(*opened);
  // The monitor reads it unprivileged, by path after a rotation too.
  if (p.run_as && (::fchown(audit.fd(), 0, p.run_as->gid) != 0 || ::fchmod(audit.fd(), 0640) != 0))
    spdlog::warn("{}", errno_message("cannot make group-readable", audit_path));
  // Each worker gets its own channel to the supervisor, the only writer.
  monitor::AuditChannels channels(audit);
  auto listeners = open_listeners(p.config);
  if (!listeners) {
    spdlog::critical("{}", listeners.error().message);
    return listeners.error().code == Errc::config ? 78 : 71;  // EX_OSERR
  }
  p.listeners = std::move(*listeners);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
    spdlog::critical("cannot create the notification pipe: {}", std::strerror(errno));
    return 71;
  }
  p.notify_read = pipefd[0];
  p.notify_write = pipefd[1];
  for (const auto& l : p.listeners) spdlog::info("listening on {}", l.name);
  spdlog::info("state directory {}; workers run as {}", p.config.relay.state_dir.string(),
               p.run_as ? p.run_as->name : std::string("the invoking user"));
  if (p.config.upstreams.empty())
    spdlog::warn("no upstream is configured yet: accepted mail stays queued until one is");

  // Signals are read from a signalfd, between audit lines; children unblock them.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int signal_fd = ::signalfd(-1, &mask, SFD_CLOEXEC);
  if (signal_fd < 0) {
    spdlog::critical("cannot create a signalfd: {}", std::strerror(errno));
    return 71;
  }

  int failed_status = 0;  // wait status of the last worker that died before it was ready
  auto spawn_with_ready = [&](const char* role, auto&& start) -> pid_t {
    auto channel = monitor::make_audit_channel();
    if (!channel) {
      spdlog::error("{}: {}", role, channel.error().message);
      return -1;
    }
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
      ::close(channel->supervisor_fd);
      ::close(channel->worker_fd);
      return -1;
    }
    // The new worker keeps its channel end and none of the supervisor's.
    p.audit_fd = channel->worker_fd;
    p.close_in_workers = channels.fds();
    for (int fd : {p.lock_fd, audit.fd(), signal_fd, channel->supervisor_fd})
      p.close_in_workers.push_back(fd);
    pid_t pid = start(ready[1]);
    ::close(ready[1]);
    ::close(channel->worker_fd);
    p.audit_fd = -1;
    channels.add(channel->supervisor_fd, role);
    failed_status = 0;
    if (pid < 0) {
      ::close(ready[0]);
      return -1;
    }
    if (!wait_ready(ready[0], pid, failed_status, channels)) return -1;
    return pid;
  };
  bool first_receiver = true;
  auto spawn_receiver = [&]() -> pid_t {
    bool recover = first_receiver;
    first_receiver = false;
    return spawn_with_ready("receiver", [&](int fd) { return start_receiver(p, fd, recover); });
  };
  // The control socket exists only while a deliverer may serve it, so the
  // CLI is told at once that nobody answers instead of waiting for a reply.
  auto close_control = [&] {
    if (p.control_fd < 0) return;
    ::close(p.control_fd);
    p.control_fd = -1;
    ::unlink(control_socket_path(p.config).c_str());
  };
  // The deliverer unseals the upstream credentials itself (see start_deliverer).
  auto spawn_deliverer = [&]() -> pid_t {
    if (p.config.upstreams.empty()) {
      close_control();
      return -1;
    }
    if (p.control_fd < 0) {
      if (auto control = open_unix_listener(control_socket_path(p.config), 0600))
        p.control_fd = control->fd;
      else
        spdlog::error("no control socket: {}", control.error().message);
    }
    pid_t pid = spawn_with_ready("deliverer", [&](int fd) { return start_deliverer(p, fd); });
    if (pid < 0) close_control();
    return pid;
  };

  auto spawn_monitor = [&]() -> pid_t {
    pid_t pid = spawn_with_ready("monitor", [&](int fd) { return start_monitor(p, fd); });
    if (pid < 0) spdlog::error("the monitor did not start; mail goes on without it");
    return pid;
  };

  RestartBudget receiver_restarts, deliverer_restarts, monitor_restarts;
  pid_t receiver = spawn_receiver();
  if (receiver < 0) {
    spdlog::critical("the receiver did not start");
    return 71;
  }
  pid_t deliverer = spawn_deliverer();
  if (!p.config.upstreams.empty() && deliverer < 0) spdlog::error("the deliverer did not start");
  pid_t monitor_pid = spawn_monitor();
  bool monitor_for_reload = false;     // the monitor stops to be started anew
  std::set<pid_t> draining;            // receivers replaced by a reload
  bool deliverer_for_reload = false;   // the deliverer stops to be started anew
  spdlog::info("relay ready (receiver pid {}{})", receiver,
               deliverer > 0 ? ", deliverer pid " + std::to_string(deliverer) : std::string());
  sd_notify(0, "READY=1\nSTATUS=accepting mail");

  auto reload = [&] {
    sd_notify(0, "RELOADING=1");
    auto fresh = options.reload ? options.reload() : Result<config::Config>(p.config);
    if (fresh) {
      normalize_paths(*fresh);
      if (fresh->relay.state_dir != p.config.relay.state_dir ||
          fresh->relay.socket != p.config.relay.socket)
        fresh = make_error(Errc::config,
                           "state_dir and socket cannot change while the relay runs; restart it");
    }
    if (!fresh) {
      spdlog::error("reload rejected, the running configuration stays: {}",
                    fresh.error().message);
      audit.write("config_rejected", {{"error", fresh.error().message}}, unix_now());
      sd_notify(0, "READY=1");
      return;
    }
    if (fresh->relay.listen != p.config.relay.listen || fresh->relay.user != p.config.relay.user)
      spdlog::warn("[relay] listen and user changes take effect at the next restart");
    fresh->relay.listen = p.config.relay.listen;
    fresh->relay.user = p.config.relay.user;
    if (fresh->monitor.audit_log != p.config.monitor.audit_log)
      spdlog::warn("[monitor] audit_log changes take effect at the next restart");
    fresh->monitor.audit_log = p.config.monitor.audit_log;
    p.config = std::move(*fresh);
    audit.set_options(audit_options(p));
    pid_t next = spawn_receiver();
    if (next < 0) {
      spdlog::error("the new receiver did not start; the old one goes on");
    } else {
      ::kill(receiver, SIGUSR1);  // finish its sessions, accept no more
      draining.insert(receiver);
      receiver = next;
    }
    if (deliverer > 0) {
      deliverer_for_reload = true;
      ::kill(deliverer, SIGTERM);  // restarted when it exits (see SIGCHLD)
    } else {
      deliverer = spawn_deliverer();
    }
    if (monitor_pid > 0) {
      monitor_for_reload = true;
      ::kill(monitor_pid, SIGTERM);  // restarted when it exits (see SIGCHLD)
    } else {
      monitor_pid = spawn_monitor();
    }
    spdlog::info("configuration reloaded (receiver pid {})", receiver);
    audit.write("config_reloaded",
                {{"source", p.config.source.empty() ? std::string("embedded defaults")
                                                    : p.config.source.string()}},
                unix_now());
    sd_notify(0, "READY=1");
  };

  for (;;) {
    if (!channels.wait(signal_fd, -1)) continue;
    signalfd_siginfo info{};
    if (::read(signal_fd, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) continue;
    const int sig = static_cast<int>(info.ssi_signo);
    if (sig == SIGHUP) {
      reload();
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      sd_notify(0, "STOPPING=1");
      spdlog::info("stopping");
      std::vector<pid_t> all(draining.begin(), draining.end());
      all.push_back(receiver);
      if (deliverer > 0) all.push_back(deliverer);
      if (monitor_pid > 0) all.push_back(monitor_pid);
      for (pid_t pid : all) ::kill(pid, SIGTERM);
      // Their last audit lines are served while they finish.
      for (pid_t pid : all) {
        int status = 0;
        while (::waitpid(pid, &status, WNOHANG) == 0) channels.wait(-1, 100);
      }
      for (int i = 0; i < 64; ++i) channels.wait(-1, 0);  // what is left (bounded)
      close_listeners(p.listeners);
      ::unlink(p.config.relay.socket.c_str());
      close_control();
      return 0;
    }
    // SIGCHLD: restart a worker unless it keeps dying.
    int status = 0;
    pid_t dead;
    while ((dead = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (draining.erase(dead)) continue;
      if (dead == deliverer) {
        deliverer = -1;
        if (deliverer_for_reload) {
          deliverer_for_reload = false;
          deliverer = spawn_deliverer();
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == kNoCredential) {
          // Logged by the deliverer; a reload (after `vault set`) tries again.
        } else {
          spdlog::error("deliverer exited ({}); restarting", describe_exit(status));
          // A new one that dies before it is ready is tried again, within
          // the budget, unless it says retrying cannot help.
          while (deliverer < 0) {
            if (!deliverer_restarts.allow()) {
              spdlog::critical("deliverer restarted too often; mail stays queued until a reload");
              break;
            }
            deliverer = spawn_deliverer();
            if (deliverer < 0 && WIFEXITED(failed_status) &&
                WEXITSTATUS(failed_status) == kNoCredential)
              break;
          }
        }
        if (deliverer < 0) close_control();
        continue;
      }
      if (dead == monitor_pid) {
        monitor_pid = -1;
        if (!monitor_for_reload)
          spdlog::error("monitor exited ({}); restarting", describe_exit(status));
        if (monitor_for_reload || monitor_restarts.allow())
          monitor_pid = spawn_monitor();
        else
          spdlog::critical("monitor restarted too often; no metrics until a reload");
        monitor_for_reload = false;
        continue;
      }
      if (dead != receiver) continue;
      spdlog::error("receiver exited ({}); restarting", describe_exit(status));
      receiver = -1;
      while (receiver < 0) {
        if (!receiver_restarts.allow()) {
          spdlog::critical("receiver restarted too often; giving up");
          if (deliverer > 0) ::kill(deliverer, SIGTERM);
          return 70;  // EX_SOFTWARE
        }
        receiver = spawn_receiver();
        if (receiver < 0) spdlog::error("the new receiver died before it was ready; trying again");
      }
    }
  }
}

}  // namespace sg::relay
