// Implementation of net::run_blocking (kept out of net.hpp for readability).
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <optional>

namespace sg::net {

template <class T>
T run_blocking(const std::function<asio::awaitable<T>(asio::io_context&)>& body) {
  asio::io_context io;
  std::optional<T> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out.emplace(co_await body(io)); }, asio::detached);
  io.run();
  return std::move(*out);
}

}  // namespace sg::net
