// A client connection as the receiver sees it: TCP (optionally upgraded by
// STARTTLS) or a unix socket, with a deadline on every read and write.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "base/result.hpp"

namespace sg::relay {

class Transport {
 public:
  virtual ~Transport() = default;
  // Bytes read (0 = peer closed); error on timeout or I/O failure.
  virtual asio::awaitable<Result<std::size_t>> read(char* buf, std::size_t size,
                                                    std::chrono::seconds timeout) = 0;
  virtual asio::awaitable<Result<void>> write(std::string_view bytes,
                                              std::chrono::seconds timeout) = 0;
  virtual bool can_starttls() const { return false; }
  virtual asio::awaitable<Result<void>> server_handshake(std::chrono::seconds) {
    co_return make_error(Errc::unsupported, "no TLS on this transport");
  }
  virtual void close() = 0;
};

std::unique_ptr<Transport> make_tcp_transport(asio::ip::tcp::socket socket,
                                              asio::ssl::context* tls_context);
std::unique_ptr<Transport> make_unix_transport(asio::local::stream_protocol::socket socket);

}  // namespace sg::relay
