#include "cli/relay_control.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

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

// The relay answers a reload in its audit log: config_reloaded or
// config_rejected, after the size the log had when we signalled.
Result<int> request_reload(const config::Config& cfg) {
  auto pid = running_relay_pid(cfg);
  if (!pid)
    return make_error(Errc::not_found, "no relay is running on " + cfg.relay.state_dir.string() +
                                           "; nothing to reload");
  auto audit = cfg.monitor.audit_log.empty() ? cfg.relay.state_dir / "audit.jsonl"
                                             : cfg.monitor.audit_log;
  struct stat st {};
  std::uintmax_t before =
      ::stat(audit.c_str(), &st) == 0 ? static_cast<std::uintmax_t>(st.st_size) : 0;
  if (::kill(*pid, SIGHUP) != 0)
    return make_error(Errc::permission,
                      "cannot signal the relay (pid " + std::to_string(*pid) + ")");
  for (int i = 0; i < 150; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // Smaller than before: the relay rotated it; the answer is in the new file.
    if (::stat(audit.c_str(), &st) == 0 && static_cast<std::uintmax_t>(st.st_size) < before)
      before = 0;
    std::ifstream in(audit, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(before));
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) continue;
      auto event = j.value("event", std::string());
      if (event == "config_reloaded") return *pid;
      if (event == "config_rejected")
        return make_error(Errc::config,
                          "the relay rejected the new configuration and keeps the old one: " +
                              j.value("error", std::string()));
    }
  }
  return make_error(Errc::timeout, "reload signalled to pid " + std::to_string(*pid) +
                                       ", but no answer in " + audit.string() + " within 15 s");
}

}  // namespace sg::cli
