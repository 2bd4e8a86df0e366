#include "cli/relay_control.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "relay/control.hpp"
#include "relay/relay.hpp"

namespace sg::cli {

Result<nlohmann::json> ask_relay(const config::Config& cfg, const nlohmann::json& request) {
  auto reply =
      relay::control_request(relay::control_socket_path(cfg), request, std::chrono::seconds(15));
  if (!reply) return reply.error();
  if (!reply->value("ok", false))
    return make_error(Errc::invalid_input, reply->value("error", std::string("request refused")));
  return reply;
}

std::optional<int> running_relay_pid(const config::Config& cfg) {
  auto path = relay::pid_file_path(cfg);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  // If we can take the lock, nobody holds it: the file is stale.
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::close(fd);
    return std::nullopt;
  }
  char buf[32] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  int pid = std::atoi(buf);
  return pid > 1 ? std::optional<int>(pid) : std::nullopt;
}

}  // namespace sg::cli
