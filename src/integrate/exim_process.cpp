// Running exim, update-exim4.conf, systemctl and diff for integrate/exim.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "integrate/exim.hpp"

namespace sg::integrate::exim::detail {

Result<ProgramResult> run_program(const std::vector<std::string>& argv, int timeout_seconds) {
  const auto timeout = std::chrono::seconds(timeout_seconds);
  constexpr std::size_t kMaxOutput = 256 * 1024;
  if (argv.empty()) return make_error(Errc::invalid_input, "no program to run");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return make_error(Errc::io, std::string("pipe: ") + std::strerror(errno));
  int err[2];  // reports an exec failure from the child
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return make_error(Errc::io, std::string("pipe: ") + std::strerror(errno));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {fds[0], fds[1], err[0], err[1]}) ::close(fd);
    return make_error(Errc::io, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execvp(args[0], args.data());
    const int e = errno;
    (void)!::write(err[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(fds[1]);
  ::close(err[1]);
  int exec_errno = 0;
  const bool exec_failed = ::read(err[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  ::close(err[0]);

  ProgramResult r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    const ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (r.output.size() < kMaxOutput)
      r.output.append(
          buf, std::min<std::size_t>(static_cast<std::size_t>(got), kMaxOutput - r.output.size()));
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (exec_failed)
    return make_error(Errc::not_found, "cannot run " + argv[0] + ": " + std::strerror(exec_errno));
  r.status = !r.timed_out && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  return r;
}

std::string tail_lines(const std::string& output, std::size_t count) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < output.size()) {
    std::size_t end = output.find('\n', pos);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(pos, end - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    // Exim's environment warnings say nothing about the failure.
    if (first != std::string::npos && line.find("purging the environment") == std::string::npos &&
        line.find("Suggested action: use keep_environment") == std::string::npos)
      lines.push_back(line.substr(first));
    pos = end + 1;
  }
  std::string out;
  const std::size_t from = lines.size() > count ? lines.size() - count : 0;
  for (std::size_t i = from; i < lines.size(); ++i) out += (out.empty() ? "" : " / ") + lines[i];
  return out.empty() ? "(no output)" : out;
}

}  // namespace sg::integrate::exim::detail
