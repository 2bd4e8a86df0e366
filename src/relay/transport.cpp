#include "relay/transport.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace sg::relay {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto kUse = asio::experimental::as_tuple(asio::use_awaitable);

Error io_error(const asio::error_code& ec) {
  if (ec == asio::error::operation_aborted) return make_error(Errc::timeout, "timeout");
  return make_error(Errc::io, ec.message());
}

template <class Stream>
asio::awaitable<Result<std::size_t>> read_with_deadline(Stream& s, asio::steady_timer& timer,
                                                        char* buf, std::size_t size,
                                                        std::chrono::seconds timeout) {
  timer.expires_after(timeout);
  auto r = co_await (s.async_read_some(asio::buffer(buf, size), kUse) || timer.async_wait(kUse));
  if (r.index() == 1) co_return make_error(Errc::timeout, "timeout");
  auto [ec, n] = std::get<0>(r);
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
      ec == asio::error::connection_reset)
    co_return std::size_t{0};
  if (ec) co_return io_error(ec);
  co_return n;
}

template <class Stream>
asio::awaitable<Result<void>> write_with_deadline(Stream& s, asio::steady_timer& timer,
                                                  std::string_view bytes,
                                                  std::chrono::seconds timeout) {
  timer.expires_after(timeout);
  auto r = co_await (asio::async_write(s, asio::buffer(bytes.data(), bytes.size()), kUse) ||
                     timer.async_wait(kUse));
  if (r.index() == 1) co_return make_error(Errc::timeout, "timeout");
  if (auto ec = std::get<0>(std::get<0>(r))) co_return io_error(ec);
  co_return Result<void>{};
}

class TcpTransport final : public Transport {
 public:
  TcpTransport(asio::ip::tcp::socket socket, asio::ssl::context* ctx)
      : timer_(socket.get_executor()), ctx_(ctx), plain_(std::move(socket)) {}

  asio::awaitable<Result<std::size_t>> read(char* buf, std::size_t size,
                                            std::chrono::seconds timeout) override {
    if (tls_) co_return co_await read_with_deadline(*tls_, timer_, buf, size, timeout);
    co_return co_await read_with_deadline(plain_, timer_, buf, size, timeout);
  }
  asio::awaitable<Result<void>> write(std::string_view bytes,
                                      std::chrono::seconds timeout) override {
    if (tls_) co_return co_await write_with_deadline(*tls_, timer_, bytes, timeout);
    co_return co_await write_with_deadline(plain_, timer_, bytes, timeout);
  }
  bool can_starttls() const override { return ctx_ != nullptr && !tls_; }
  asio::awaitable<Result<void>> server_handshake(std::chrono::seconds timeout) override {
    tls_.emplace(std::move(plain_), *ctx_);
    timer_.expires_after(timeout);
    auto r = co_await (tls_->async_handshake(asio::ssl::stream_base::server, kUse) ||
                       timer_.async_wait(kUse));
    if (r.index() == 1) co_return make_error(Errc::timeout, "TLS handshake timeout");
    if (auto ec = std::get<0>(std::get<0>(r)))
      co_return make_error(Errc::tls, "TLS handshake failed: " + ec.message());
    co_return Result<void>{};
  }
  void close() override {
    asio::error_code ec;
    auto& sock = tls_ ? tls_->next_layer() : plain_;
    sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    sock.close(ec);
  }

 private:
  asio::steady_timer timer_;
  asio::ssl::context* ctx_;
  asio::ip::tcp::socket plain_;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
};

class UnixTransport final : public Transport {
 public:
  explicit UnixTransport(asio::local::stream_protocol::socket socket)
      : timer_(socket.get_executor()), socket_(std::move(socket)) {}
  asio::awaitable<Result<std::size_t>> read(char* buf, std::size_t size,
                                            std::chrono::seconds timeout) override {
    co_return co_await read_with_deadline(socket_, timer_, buf, size, timeout);
  }
  asio::awaitable<Result<void>> write(std::string_view bytes,
                                      std::chrono::seconds timeout) override {
    co_return co_await write_with_deadline(socket_, timer_, bytes, timeout);
  }
  void close() override {
    asio::error_code ec;
    socket_.shutdown(asio::local::stream_protocol::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  asio::steady_timer timer_;
  asio::local::stream_protocol::socket socket_;
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport(asio::ip::tcp::socket socket,
                                              asio::ssl::context* tls_context) {
  return std::make_unique<TcpTransport>(std::move(socket), tls_context);
}

std::unique_ptr<Transport> make_unix_transport(asio::local::stream_protocol::socket socket) {
  return std::make_unique<UnixTransport>(std::move(socket));
}

}  // namespace sg::relay
