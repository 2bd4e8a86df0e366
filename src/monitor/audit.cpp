#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/file.hpp"
#include "monitor/monitor.hpp"

namespace sg::monitor {

Result<AuditLog> AuditLog::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot open audit log", path));
  return AuditLog(fd);
}

AuditLog AuditLog::adopt(int fd) {
  return AuditLog(fd);
}

AuditLog::AuditLog(AuditLog&& other) noexcept : fd_(other.fd_), failures_(other.failures_) {
  other.fd_ = -1;
}

AuditLog& AuditLog::operator=(AuditLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    failures_ = other.failures_;
    other.fd_ = -1;
  }
  return *this;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::write(std::string_view event, nlohmann::json fields, std::int64_t now) {
  if (fd_ < 0) return;
  nlohmann::json line = nlohmann::json::object();
  line["time"] = now;
  line["event"] = event;
  for (auto& [k, v] : fields.items()) line[k] = std::move(v);
  // Client-supplied text may be invalid UTF-8: replace rather than throw.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  // One write per line: O_APPEND makes it land whole at the end.
  ssize_t n;
  do {
    n = ::write(fd_, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(text.size())) ++failures_;
}

}  // namespace sg::monitor
