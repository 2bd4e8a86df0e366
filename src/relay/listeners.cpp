#include "relay/listeners.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/file.hpp"

namespace sg::relay {
namespace {

Result<Listener> open_tcp(const std::string& text) {
  auto addr = config::parse_listen_address(text);
  if (!addr) return make_error(Errc::config, addr.error().message);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(addr->port);
  if (int rc = ::getaddrinfo(addr->host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return make_error(Errc::config, "listen " + text + ": " + gai_strerror(rc));
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return make_error(Errc::io, "listen " + text + ": socket: " + std::strerror(errno));
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 512) != 0) {
    std::string why = std::strerror(errno);
    ::freeaddrinfo(res);
    ::close(fd);
    return make_error(Errc::io, "cannot listen on " + text + ": " + why);
  }
  ::freeaddrinfo(res);
  return Listener{Listener::Kind::tcp, fd, text, config::is_loopback_host(addr->host)};
}

}  // namespace

Result<Listener> open_unix_listener(const std::filesystem::path& path, mode_t mode) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof sa.sun_path)
    return make_error(Errc::config, "socket path too long: " + path.string());
  std::memcpy(sa.sun_path, path.c_str(), path.native().size());
  // A socket left by a previous run is replaced; anything else is not ours.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return make_error(Errc::config, path.string() + " exists and is not a socket");
    ::unlink(path.c_str());
  }
  if (!path.parent_path().empty()) {
    if (auto r = ensure_directory(path.parent_path(), 0755); !r) return r.error();
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot create socket", path));
  // Created with no access for others at all, then opened up to `mode`:
  // there is no moment when the socket is wider than asked.
  mode_t old_umask = ::umask(0177);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::umask(old_umask);
  if (rc != 0 || ::listen(fd, 512) != 0 || ::chmod(path.c_str(), mode) != 0) {
    Error e = make_error(Errc::io, errno_message("cannot listen on", path));
    ::close(fd);
    return e;
  }
  return Listener{Listener::Kind::unix_socket, fd, path.string(), true};
}

std::filesystem::path submit_socket_path(const config::Config& config) {
  if (!config.relay.socket.empty()) return config.relay.socket;
  return config.relay.state_dir / "submit.sock";
}

Result<std::vector<Listener>> open_listeners(const config::Config& config) {
  std::vector<Listener> out;
  for (const auto& text : config.relay.listen) {
    auto l = open_tcp(text);
    if (!l) {
      close_listeners(out);
      return l.error();
    }
    out.push_back(*l);
  }
  // Anyone may connect: the peer's uid decides which identity, if any, it is.
  auto u = open_unix_listener(submit_socket_path(config), 0666);
  if (!u) {
    close_listeners(out);
    return u.error();
  }
  out.push_back(*u);
  return out;
}

void close_listeners(std::vector<Listener>& listeners) {
  for (auto& l : listeners)
    if (l.fd >= 0) ::close(l.fd);
  listeners.clear();
}

}  // namespace sg::relay
