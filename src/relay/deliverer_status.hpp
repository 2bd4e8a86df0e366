// relay/deliverer_status: the deliverer's gauges for the monitor. The
// monitor runs unprivileged and cannot use the control socket (root's), so
// the deliverer writes the status it serves there (control "status", without
// the spool listing) to spool/deliverer-status.json (monitor.hpp:
// kDelivererStatusFile), which the monitor, the same service user, reads per
// scrape. It is a gauge, not a record: written atomically (temp + rename)
// without fsync, at most once a second, only when something changed or
// every kDelivererStatusHeartbeat seconds (so the monitor can tell a live
// deliverer from a stale file).
// Input: our own status JSON. Errors: a write that fails is logged once (and
// again after it worked in between); mail never depends on this file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace sg::relay {

class StatusFile {
 public:
  explicit StatusFile(std::filesystem::path path) : path_(std::move(path)) {}
  // Writes {"written_at": now, ...status} when `status` differs from what was
  // last written or the heartbeat is due, at most once per second. True when
  // the file was written.
  bool update(const nlohmann::json& status, std::int64_t now);

 private:
  std::filesystem::path path_;
  std::string last_;  // `status` as last written
  std::int64_t last_at_ = 0;
  bool failing_ = false;
};

// What Deliverer::tick calls once a second: one StatusFile for the process
// (one deliverer per process) at spool_dir/kDelivererStatusFile.
void publish_status(const std::filesystem::path& spool_dir, const nlohmann::json& status,
                    std::int64_t now);

}  // namespace sg::relay
