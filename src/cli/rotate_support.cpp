#include "cli/rotate_support.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "base/text.hpp"
#include "monitor/monitor.hpp"
#include "net/net.hpp"

namespace sg::cli {

std::int64_t credential_age_days(std::int64_t created_at, std::int64_t rotated_at,
                                 std::int64_t now) {
  std::int64_t since = rotated_at != 0 ? rotated_at : created_at;
  return now > since ? (now - since) / 86400 : 0;
}

AgeState age_state(std::int64_t age_days, const config::Vault& vault) {
  if (age_days >= static_cast<std::int64_t>(vault.rotation_max_days)) return AgeState::overdue;
  if (age_days >= static_cast<std::int64_t>(vault.rotation_warn_days)) return AgeState::soon;
  return AgeState::ok;
}

std::string_view age_note(AgeState state) {
  switch (state) {
    case AgeState::soon:
      return "rotate soon";
    case AgeState::overdue:
      return "OVERDUE: rotate now";
    default:
      return "";
  }
}

std::string_view age_state_name(AgeState state) {
  switch (state) {
    case AgeState::soon:
      return "soon";
    case AgeState::overdue:
      return "overdue";
    default:
      return "ok";
  }
}

namespace {

// Worth another try: the login was refused (new IAM keys take seconds to
// minutes to be accepted) or the server was briefly out of reach.
bool retryable(Errc code) {
  return code == Errc::auth || code == Errc::temp_failure || code == Errc::timeout;
}

Result<void> try_login(const config::Upstream& upstream, const std::string& username,
                       const Secret& password) {
  return net::run_blocking<Result<void>>(
      [&](asio::io_context& io) -> asio::awaitable<Result<void>> {
        net::UpstreamClient client(io, upstream, username, &password);
        auto opened = co_await client.open();
        co_await client.quit();
        co_return opened;
      });
}

}  // namespace

Result<int> verify_login(const config::Upstream& upstream, const std::string& username,
                         const Secret& password, const VerifyPolicy& policy) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(std::max(0, policy.timeout_seconds));
  const auto interval = std::chrono::seconds(std::max(1, policy.interval_seconds));
  // The deadline bounds the loop; the count is a second bound in case the
  // clock misbehaves.
  for (int attempt = 1; attempt <= 10000; ++attempt) {
    auto r = try_login(upstream, username, password);
    if (r) return attempt;
    auto left = deadline - Clock::now();
    if (!retryable(r.error().code) || left <= Clock::duration::zero()) return r.error();
    auto wait = std::min<Clock::duration>(interval, left);
    std::cout << "  attempt " << attempt << ": " << r.error().message << "; trying again in "
              << std::chrono::duration_cast<std::chrono::seconds>(wait +
                                                                  std::chrono::milliseconds(999))
                     .count()
              << " s" << std::endl;
    std::this_thread::sleep_for(wait);
  }
  return make_error(Errc::timeout, "verification did not finish");
}

bool append_audit(const config::Config& cfg, std::string_view event, nlohmann::json fields) {
  auto path = cfg.monitor.audit_log.empty() ? cfg.relay.state_dir / "audit.jsonl"
                                            : cfg.monitor.audit_log;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  monitor::AuditOptions options;  // chained under the file's lock; the relay rotates
  options.syslog = cfg.monitor.audit_syslog;
  options.proc = "cli";
  auto log = monitor::AuditLog::open(path, options);
  if (!log) return false;
  log->write(event, std::move(fields), unix_now());
  return log->failures() == 0;
}

}  // namespace sg::cli
