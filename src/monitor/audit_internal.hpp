// Inside the audit log (not part of the monitor module's interface): the two
// kinds of writer behind AuditLog.
#pragma once

#include <memory>
#include <vector>

#include "monitor/monitor.hpp"

namespace sg::monitor {

struct AuditLog::Impl {
  virtual ~Impl() = default;
  virtual void append(nlohmann::json record) = 0;
  virtual void append_all(std::vector<nlohmann::json>& records) {
    for (auto& r : records) append(std::move(r));
  }
  virtual void set_options(const AuditOptions&) {}
  virtual void flush() {}
  virtual int fd() const = 0;
  virtual std::uint64_t failures() const = 0;
};

// The chained file (audit_file.cpp).
Result<std::unique_ptr<AuditLog::Impl>> open_audit_file(const std::filesystem::path& path,
                                                        const AuditOptions& options);

}  // namespace sg::monitor
