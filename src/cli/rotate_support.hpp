// Pieces of `smtpguard rotate` that other commands share or that are easier
// to read apart: credential age against the [vault] rotation thresholds
// (used by `vault list` and `status` too), verifying a credential against an
// upstream with retries, and the audit line a rotation leaves.
// Errors come back as Result (never thrown); no secret is printed or logged.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "config/config.hpp"

namespace sg::cli {

enum class AgeState { ok, soon, overdue };

// Days since the credential was sealed (created_at) or last rotated.
std::int64_t credential_age_days(std::int64_t created_at, std::int64_t rotated_at,
                                 std::int64_t now);
// soon from rotation_warn_days, overdue from rotation_max_days.
AgeState age_state(std::int64_t age_days, const config::Vault& vault);
// "" (ok), "rotate soon" or "OVERDUE: rotate now".
std::string_view age_note(AgeState state);
// "ok", "soon" or "overdue" (JSON).
std::string_view age_state_name(AgeState state);

struct VerifyPolicy {
  int timeout_seconds = 60;  // keep trying this long (0: one attempt)
  int interval_seconds = 5;  // between attempts
};

// EHLO, STARTTLS (or implicit TLS) and AUTH with `username`/`password`
// against `upstream`, then QUIT; never sends mail. Retries refused logins and
// temporary failures (a new IAM key takes a while to be accepted) until the
// policy's timeout; TLS and configuration errors fail at once. Progress goes
// to stdout. Returns the number of attempts it took.
Result<int> verify_login(const config::Upstream& upstream, const std::string& username,
                         const Secret& password, const VerifyPolicy& policy);

// Appends {"time","event",...fields} to the audit log ([monitor] audit_log,
// default STATE_DIR/audit.jsonl) if that file exists (the relay creates it),
// linked into its hash chain under the file's lock. False if it could not.
bool append_audit(const config::Config& cfg, std::string_view event, nlohmann::json fields);

}  // namespace sg::cli
