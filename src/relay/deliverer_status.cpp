// The deliverer's status file for the monitor (see deliverer_status.hpp).
#include "relay/deliverer_status.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "monitor/monitor.hpp"

namespace sg::relay {
namespace {

// temp + rename, no fsync: after a crash an old or missing file only means
// no gauges until the next write.
bool write_replace(const std::filesystem::path& path, const std::string& data, std::string& error) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    error = "cannot create " + tmp.string() + ": " + std::strerror(errno);
    return false;
  }
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = "cannot write " + tmp.string() + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot rename onto " + path.string() + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

bool StatusFile::update(const nlohmann::json& status, std::int64_t now) {
  if (now == last_at_) return false;  // at most once a second
  std::string text = status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text == last_ && now - last_at_ < monitor::kDelivererStatusHeartbeat) return false;
  nlohmann::json out = status;
  out["written_at"] = now;
  std::string error;
  if (!write_replace(path_,
                     out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                     error)) {
    if (!failing_) spdlog::warn("deliverer status for the monitor: {}", error);
    failing_ = true;
    last_at_ = now;  // try again in a second, not at once
    return false;
  }
  failing_ = false;
  last_ = std::move(text);
  last_at_ = now;
  return true;
}

void publish_status(const std::filesystem::path& spool_dir, const nlohmann::json& status,
                    std::int64_t now) {
  static StatusFile file(spool_dir / monitor::kDelivererStatusFile);
  file.update(status, now);
}

}  // namespace sg::relay
