// The control socket (STATE_DIR/control.sock, mode 0600, owned by the
// supervisor's user): how `smtpguard status|queue|pause|resume` talk to a
// running relay. The supervisor creates it; the deliverer serves it, since
// it owns the schedule and the upstream sessions.
// Protocol: the client writes one JSON object and a newline ({"cmd":
// "status"}, {"cmd": "hold", "id": ID}...); the server answers one JSON
// object and a newline ({"ok": true, ...} or {"ok": false, "error": "..."})
// and closes. Requests are trusted only from a peer whose uid (SO_PEERCRED)
// is root or the supervisor's own; they are still parsed defensively
// (size limit, no exceptions past this module).
#pragma once

#include <sys/types.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "config/config.hpp"

namespace sg::relay {

std::filesystem::path control_socket_path(const config::Config& config);

using ControlHandler = std::function<nlohmann::json(const nlohmann::json& request)>;

// Serves requests on an already listening unix socket until stop().
class ControlServer {
 public:
  ControlServer(asio::io_context& io, int listen_fd, uid_t allowed_uid, ControlHandler handler);
  ~ControlServer();
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// One request to a running relay (blocking, for the CLI). Errc::not_found
// when no relay listens there, Errc::timeout when it does not answer.
Result<nlohmann::json> control_request(const std::filesystem::path& socket,
                                       const nlohmann::json& request,
                                       std::chrono::milliseconds timeout);

}  // namespace sg::relay
