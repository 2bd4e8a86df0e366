#include "relay/control.hpp"

#include "base/file.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstring>

namespace sg::relay {
namespace {

using asio::local::stream_protocol;
using namespace asio::experimental::awaitable_operators;
constexpr auto kUse = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxRequest = 64 * 1024;

nlohmann::json error_reply(const std::string& message) {
  return {{"ok", false}, {"error", message}};
}

}  // namespace

std::filesystem::path control_socket_path(const config::Config& config) {
  return config.relay.state_dir / "control.sock";
}

struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
  asio::io_context& io;
  stream_protocol::acceptor acceptor;
  uid_t allowed_uid;
  ControlHandler handler;

  Impl(asio::io_context& io_, int fd, uid_t uid, ControlHandler h)
      : io(io_), acceptor(io_), allowed_uid(uid), handler(std::move(h)) {
    acceptor.assign(stream_protocol(), fd);
  }

  // Takes the socket by reference (g++ 12 copies by-value coroutine
  // parameters bitwise); the caller keeps it alive in the frame below.
  asio::awaitable<void> serve(stream_protocol::socket& socket) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != 0 && cred.uid != allowed_uid)) {
      spdlog::warn("control: refused a request from uid {}", cred.uid);
      co_return;
    }
    std::string buffer;
    asio::steady_timer timer(io);
    timer.expires_after(std::chrono::seconds(5));
    auto r = co_await (asio::async_read_until(socket, asio::dynamic_buffer(buffer, kMaxRequest),
                                              '\n', kUse) ||
                       timer.async_wait(kUse));
    nlohmann::json reply;
    if (r.index() == 1 || std::get<0>(std::get<0>(r))) {
      reply = error_reply("incomplete or oversized request");
    } else {
      auto request = nlohmann::json::parse(buffer, nullptr, false);
      if (request.is_discarded() || !request.is_object() || !request.contains("cmd") ||
          !request["cmd"].is_string()) {
        reply = error_reply("not a control request");
      } else {
        try {
          reply = handler(request);
        } catch (const std::exception& e) {
          reply = error_reply(std::string("internal error: ") + e.what());
        }
      }
    }
    std::string out = reply.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
    timer.expires_after(std::chrono::seconds(5));
    co_await (asio::async_write(socket, asio::buffer(out), kUse) || timer.async_wait(kUse));
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kUse);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(
          io,
          [self, s = std::make_shared<stream_protocol::socket>(std::move(socket))]()
              -> asio::awaitable<void> { co_await self->serve(*s); },
          asio::detached);
    }
  }
};

ControlServer::ControlServer(asio::io_context& io, int listen_fd, uid_t allowed_uid,
                             ControlHandler handler)
    : impl_(std::make_shared<Impl>(io, listen_fd, allowed_uid, std::move(handler))) {
  asio::co_spawn(io, impl_->accept_loop(), asio::detached);
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::stop() {
  asio::error_code ec;
  impl_->acceptor.close(ec);
}

Result<nlohmann::json> control_request(const std::filesystem::path& socket,
                                       const nlohmann::json& request,
                                       std::chrono::milliseconds timeout) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket.native().size() >= sizeof sa.sun_path)
    return make_error(Errc::config, "control socket path too long: " + socket.string());
  std::memcpy(sa.sun_path, socket.c_str(), socket.native().size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot create socket for", socket));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED)
      return make_error(Errc::not_found, "the relay is not running (nothing listens on " +
                                             socket.string() + ")");
    return make_error(e == EACCES ? Errc::permission : Errc::io,
                      errno_message("cannot connect to", socket));
  }
  std::string out =
      request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
    return make_error(Errc::io, errno_message("cannot write to", socket));
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return make_error(Errc::timeout,
                        "the relay did not answer on " + socket.string() +
                            " (is its deliverer running? see the relay's log)");
    char buf[4096];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    in.append(buf, static_cast<std::size_t>(got));
    if (in.size() > (16u << 20)) return make_error(Errc::protocol, "control reply too large");
  }
  auto reply = nlohmann::json::parse(in, nullptr, false);
  if (reply.is_discarded() || !reply.is_object())
    return make_error(Errc::protocol, "the relay's control reply is not JSON");
  return reply;
}

}  // namespace sg::relay
