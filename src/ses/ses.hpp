// ses: what smtpguard knows about Amazon SES's SMTP interface.
//  - SMTP password derivation from an IAM secret access key (AWS's SigV4
//    based algorithm, and the legacy v2 form), computed in guarded memory.
//  - The regions with an SMTP endpoint, and recognising SES endpoint hosts.
//  - Classification of SES SMTP replies (throttling, daily quota, bad
//    credentials, unverified identities...) into retry decisions and hints.
// Trust: reply texts and host names come from the network or the config and
// are treated as untrusted text (matched, never parsed into structure); keys
// come from the operator. Nothing here fails on bad input: unknown regions
// are the caller's to warn about (AWS adds regions), unknown replies fall
// back to the SMTP code class. No exceptions except std::bad_alloc.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/secret.hpp"

namespace sg::ses {

// SMTP password for `region` (SigV4 derivation, version byte 0x04), as the
// base64 text SES expects in AUTH. All intermediate keys live in Secrets.
Secret smtp_password_v4(const Secret& secret_access_key, std::string_view region);

// Legacy region-independent password (version byte 0x02); only some older
// endpoints still accept it.
Secret smtp_password_v2(const Secret& secret_access_key);

// Regions with an SES SMTP endpoint that this build knows about.
std::span<const std::string_view> known_regions();
bool is_known_region(std::string_view region);

// "email-smtp.us-east-1.amazonaws.com" for a region.
std::string smtp_host_for(std::string_view region);

// email-smtp.REGION.amazonaws.com or email-smtp-fips.REGION.amazonaws.com
// (case-insensitive, optional trailing dot); REGION need not be known.
bool is_ses_host(std::string_view host);
std::optional<std::string> region_of_host(std::string_view host);

enum class ReplyClass {
  ok,                     // 2xx
  throttled_rate,         // 454 Throttling failure: Maximum sending rate exceeded
  throttled_daily_quota,  // 454 Throttling failure: Daily message quota exceeded
  bad_credentials,        // 535: wrong SMTP user name or password
  unverified_identity,    // 554 Message rejected: Email address is not verified
  session_limit,          // 421: too many connections, session too long, timeout
  message_rejected,       // 554 Message rejected: anything else
  temporary,              // other 4xx
  permanent,              // other 5xx
  other,                  // not a final reply code
};

struct Classification {
  ReplyClass cls;
  bool retry;        // deliver again later (with the same credential)
  std::string hint;  // one line for the operator; empty when nothing to add
};

Classification classify_reply(int code, std::string_view text);

std::string_view to_string(ReplyClass cls);

}  // namespace sg::ses
