// The supervisor: prepares what needs root, forks the receiver, restarts it
// if it dies, and speaks to systemd.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>

#include "base/file.hpp"
#include "relay/deliverer.hpp"
#include "relay/privileges.hpp"
#include "relay/receiver.hpp"
#include "relay/relay.hpp"

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
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, nullptr);
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

pid_t start_receiver(Prepared& p, int ready_fd) {
  pid_t supervisor = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  enter_state_dir(p, "receiver");
  auto tls = load_server_tls(p.config);
  if (!tls) {
    spdlog::critical("receiver: {}", tls.error().message);
    ::_exit(78);
  }
  become_worker(p, supervisor, "receiver");
  int rc = run_receiver(p.config, p.listeners, p.audit_fd, ready_fd, std::move(*tls));
  ::_exit(rc);
}

pid_t start_deliverer(Prepared& p, int ready_fd) {
  pid_t supervisor = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  enter_state_dir(p, "deliverer");
  // What only root may read is read now, in this child: the upstream's
  // private CA and the sealed credential. The supervisor never holds the
  // secret, so a receiver it forks later cannot inherit it.
  harden_process();
  std::optional<vault::Credential> credential;
  if (const auto& name = p.config.upstreams.front().credential; !name.empty()) {
    auto loaded = vault::load_credential(p.config, name, {});
    if (!loaded) {
      spdlog::critical("no delivery: {}; accepted mail stays queued", loaded.error().message);
      ::_exit(kNoCredential);
    }
    credential.emplace(std::move(*loaded));
  }
  std::optional<std::string> ca_pem;
  if (const auto& ca = p.config.upstreams.front().ca_file; !ca.empty()) {
    auto pem = read_file(ca, 1u << 20);
    if (!pem) {
      spdlog::critical("deliverer: {}", pem.error().message);
      ::_exit(66);
    }
    ca_pem = std::move(*pem);
  }
  become_worker(p, supervisor, "deliverer");
  ::_exit(run_deliverer(p.config, std::move(credential), std::move(ca_pem), p.audit_fd, ready_fd));
}

bool wait_ready(int fd, pid_t pid) {
  char c = 0;
  ssize_t n;
  do {
    n = ::read(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n == 1) return true;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return false;
}

}  // namespace

int run(const config::Config& config, const RelayOptions&) {
  // A closed log pipe must not kill the supervisor (and orphan the receiver).
  ::signal(SIGPIPE, SIG_IGN);
  Prepared p;
  p.config = config;
  std::error_code ec;
  p.config.relay.state_dir =
      std::filesystem::absolute(config.relay.state_dir, ec).lexically_normal();
  if (!p.config.relay.socket.empty())
    p.config.relay.socket = std::filesystem::absolute(config.relay.socket, ec).string();
  else
    p.config.relay.socket = submit_socket_path(p.config).string();

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
  auto audit_path = p.config.relay.state_dir / "audit.jsonl";
  p.audit_fd = ::open(audit_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0600);
  if (p.audit_fd < 0) {
    spdlog::critical("{}", errno_message("cannot open audit log", audit_path));
    return 73;
  }
  auto listeners = open_listeners(p.config);
  if (!listeners) {
    spdlog::critical("{}", listeners.error().message);
    return listeners.error().code == Errc::config ? 78 : 71;  // EX_OSERR
  }
  p.listeners = std::move(*listeners);
  for (const auto& l : p.listeners) spdlog::info("listening on {}", l.name);
  spdlog::info("state directory {}; receiver runs as {}", p.config.relay.state_dir.string(),
               p.run_as ? p.run_as->name : std::string("the invoking user"));
  if (p.config.upstreams.empty())
    spdlog::warn("no upstream is configured yet: accepted mail stays queued until one is");

  // Signals are taken synchronously with sigwaitinfo; children unblock them.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);

  RestartBudget receiver_restarts, deliverer_restarts;
  auto spawn = [&]() -> pid_t {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
    pid_t pid = start_receiver(p, pipefd[1]);
    ::close(pipefd[1]);
    if (pid < 0 || !wait_ready(pipefd[0], pid)) return -1;
    return pid;
  };
  pid_t receiver = spawn();
  if (receiver < 0) {
    spdlog::critical("the receiver did not start");
    return 71;
  }
  // The deliverer unseals the upstream credential itself (see start_deliverer).
  bool can_deliver = !p.config.upstreams.empty();
  auto spawn_deliverer = [&]() -> pid_t {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
    pid_t pid = start_deliverer(p, pipefd[1]);
    ::close(pipefd[1]);
    if (pid < 0 || !wait_ready(pipefd[0], pid)) return -1;
    return pid;
  };
  pid_t deliverer = can_deliver ? spawn_deliverer() : -1;
  if (can_deliver && deliverer < 0) spdlog::error("the deliverer did not start");
  spdlog::info("relay ready (receiver pid {}{})", receiver,
               deliverer > 0 ? ", deliverer pid " + std::to_string(deliverer) : std::string());
  sd_notify(0, "READY=1\nSTATUS=accepting mail");

  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&mask, &info);
    if (sig < 0) continue;
    if (sig == SIGHUP) {
      ::kill(receiver, SIGHUP);
      continue;
    }
    if ((sig == SIGTERM || sig == SIGINT) && deliverer > 0) {
      ::kill(deliverer, SIGTERM);
      int status = 0;
      while (::waitpid(deliverer, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (sig == SIGTERM || sig == SIGINT) {
      sd_notify(0, "STOPPING=1");
      spdlog::info("stopping");
      ::kill(receiver, SIGTERM);
      int status = 0;
      while (::waitpid(receiver, &status, 0) < 0 && errno == EINTR) {
      }
      close_listeners(p.listeners);
      ::unlink(p.config.relay.socket.c_str());
      return 0;
    }
    // SIGCHLD: restart the receiver unless it keeps dying.
    int status = 0;
    pid_t dead;
    while ((dead = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (dead == deliverer) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == kNoCredential) {
          deliverer = -1;
        } else if (!deliverer_restarts.allow()) {
          spdlog::critical("deliverer restarted too often; mail stays queued");
          deliverer = -1;
        } else {
          spdlog::error("deliverer exited; restarting");
          deliverer = spawn_deliverer();
        }
        continue;
      }
      if (dead != receiver) continue;
      spdlog::error("receiver exited ({}); restarting",
                    WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                        : "status " + std::to_string(WEXITSTATUS(status)));
      if (!receiver_restarts.allow()) {
        spdlog::critical("receiver restarted too often; giving up");
        return 70;  // EX_SOFTWARE
      }
      receiver = spawn();
      if (receiver < 0) {
        spdlog::critical("the receiver did not restart");
        return 71;
      }
    }
  }
}

}  // namespace sg::relay
