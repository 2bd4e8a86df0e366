// monitor: what happened, for people and machines. For now the audit log:
// one JSON line per decision, appended with a single write(2) on an O_APPEND
// descriptor so lines from several processes never interleave.
// Input: event fields from our own code (addresses and rule names may come
// from clients, so everything is JSON-escaped). No secrets, no bodies.
// Errors: writing the audit log never stops mail; failures are counted and
// reported through failures().
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.hpp"

namespace sg::monitor {

class AuditLog {
 public:
  // Opens (creating, mode 0600) `path` for appending.
  static Result<AuditLog> open(const std::filesystem::path& path);
  // Adopts an already open O_APPEND descriptor (inherited from the supervisor).
  static AuditLog adopt(int fd);
  // A log that writes nothing (tests, dry runs).
  AuditLog() = default;
  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&& other) noexcept;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();

  // Writes {"time": now, "event": event, ...fields} as one line.
  void write(std::string_view event, nlohmann::json fields, std::int64_t now);
  int fd() const { return fd_; }
  std::uint64_t failures() const { return failures_; }

 private:
  explicit AuditLog(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::uint64_t failures_ = 0;
};

}  // namespace sg::monitor
