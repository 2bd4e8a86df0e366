// Running postfix, postconf, postmap and systemctl: posix_spawn with stdin
// from /dev/null, stdout+stderr captured (bounded), killed at a deadline.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/text.hpp"
#include "integrate/mta.hpp"

extern char** environ;

namespace sg::integrate {
namespace {

constexpr std::size_t kMaxOutput = 64u << 10;

bool executable(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

}  // namespace

std::string ProgramResult::summary() const {
  if (timed_out) return "timed out";
  for (auto line : split(output, '\n')) {
    line = trim(line);
    if (!line.empty()) return std::string(line.substr(0, 300));
  }
  return exit_code < 0 ? "killed by a signal" : "exit " + std::to_string(exit_code);
}

std::optional<std::filesystem::path> find_program(std::string_view name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH"))
    for (auto d : split(path, ':'))
      if (!d.empty()) dirs.emplace_back(d);
  dirs.emplace_back("/usr/sbin");
  dirs.emplace_back("/sbin");
  for (const auto& d : dirs) {
    std::filesystem::path p = std::filesystem::path(d) / std::string(name);
    if (executable(p)) return p;
  }
  return std::nullopt;
}

Result<ProgramResult> run_program(const std::vector<std::string>& argv,
                                  std::chrono::seconds timeout, mode_t umask_value) {
  if (argv.empty()) return make_error(Errc::invalid_input, "no program to run");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return make_error(Errc::io, std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  // The child inherits the umask; this command is single-threaded here.
  const mode_t old_umask = ::umask(umask_value);
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  ::umask(old_umask);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return make_error(rc == ENOENT ? Errc::not_found : Errc::io,
                      "cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  ProgramResult result;
  int status = 0;
  bool done = false;
  auto reaped = [&done](pid_t child, int& st) {
    done = ::waitpid(child, &st, WNOHANG) == child;
    return done;
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n == 0 && reaped(pid, status)) break;  // exited; a daemon it started holds the pipe
    if (n <= 0) continue;
    ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the child (and its children) closed the pipe
    if (result.output.size() < kMaxOutput)
      result.output.append(buf, std::min<std::size_t>(static_cast<std::size_t>(got),
                                                      kMaxOutput - result.output.size()));
  }
  ::close(fds[0]);
  while (!done && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) && !result.timed_out ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace sg::integrate
