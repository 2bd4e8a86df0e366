#include "base/secret_input.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace sg {
namespace {

constexpr std::size_t kMaxSecret = 64 * 1024;

void drop_trailing_newline(Secret& s) {
  auto v = s.view();
  if (!v.empty() && v.back() == '\n') {
    std::size_t n = v.size() - 1;
    if (n > 0 && v[n - 1] == '\r') --n;
    s.truncate(n);
  }
}

// Reads one line from the terminal with echo off.
Result<Secret> read_tty_line(int tty, std::string_view prompt) {
  (void)!::write(tty, prompt.data(), prompt.size());
  struct termios old {};
  bool have_termios = ::tcgetattr(tty, &old) == 0;
  if (have_termios) {
    struct termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(tty, TCSAFLUSH, &quiet);
  }
  Secret buf(4096);
  std::size_t used = 0;
  bool done = false;
  while (!done && used < buf.size()) {
    char c;
    ssize_t n = ::read(tty, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') {
      done = true;
      break;
    }
    buf.data()[used++] = static_cast<unsigned char>(c);
  }
  if (have_termios) ::tcsetattr(tty, TCSAFLUSH, &old);
  if (!done) return make_error(Errc::invalid_input, "secret too long");
  if (used > 0 && buf.data()[used - 1] == '\r') --used;
  return Secret::copy_of(buf.view().substr(0, used));
}

}  // namespace

bool stdin_is_tty() {
  return ::isatty(STDIN_FILENO) == 1;
}

Result<Secret> read_secret_fd(int fd) {
  Secret buf(kMaxSecret);
  std::size_t used = 0;
  for (;;) {
    if (used == buf.size()) return make_error(Errc::invalid_input, "secret input over 64 KiB");
    ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::io, std::string("cannot read secret: ") + std::strerror(errno));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  Secret out = Secret::copy_of(buf.view().substr(0, used));
  drop_trailing_newline(out);
  return out;
}

Result<Secret> read_secret(const SecretPrompt& how) {
  Result<Secret> got = make_error(Errc::invalid_input, "no secret");
  if (how.fd) {
    got = read_secret_fd(*how.fd);
  } else if (!stdin_is_tty()) {
    got = read_secret_fd(STDIN_FILENO);
  } else {
    int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0) tty = STDIN_FILENO;
    got = read_tty_line(tty, how.prompt);
    if (got && how.confirm) {
      auto again = read_tty_line(tty, "Again: ");
      if (!again)
        got = again.error();
      else if (!got->equals(*again))
        got = make_error(Errc::invalid_input, "the two entries differ");
    }
    if (tty != STDIN_FILENO) ::close(tty);
  }
  if (got && got->empty() && !how.allow_empty)
    return make_error(Errc::invalid_input, "empty secret");
  return got;
}

}  // namespace sg
