// Listening sockets, made by the supervisor before any privilege is dropped
// and inherited by the receiver.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"

namespace sg::relay {

struct Listener {
  enum class Kind { tcp, unix_socket } kind = Kind::tcp;
  int fd = -1;
  std::string name;       // "127.0.0.1:2525" or the socket path
  bool loopback = false;  // AUTH without TLS allowed
};

// The unix socket path: [relay] socket, or STATE_DIR/submit.sock.
std::filesystem::path submit_socket_path(const config::Config& config);

// A unix stream socket at `path` (a stale socket there is replaced) with
// permissions `mode`.
Result<Listener> open_unix_listener(const std::filesystem::path& path, mode_t mode);

// Opens every configured listener; on failure closes what it opened.
Result<std::vector<Listener>> open_listeners(const config::Config& config);
void close_listeners(std::vector<Listener>& listeners);

}  // namespace sg::relay
