// Classification of SES SMTP replies. SES's texts are stable enough to match
// on (case-insensitively); anything unrecognised falls back to the reply
// code class, so a changed text degrades to "temporary"/"permanent", never
// to a wrong retry decision for the code.
#include "base/text.hpp"
#include "ses/ses.hpp"

namespace sg::ses {
namespace {

bool contains(const std::string& lowered, std::string_view needle) {
  return lowered.find(needle) != std::string::npos;
}

}  // namespace

Classification classify_reply(int code, std::string_view text) {
  const std::string t = to_lower(text);
  if (code >= 200 && code <= 299) return {ReplyClass::ok, false, ""};

  if (code == 454 && contains(t, "maximum sending rate exceeded")) {
    return {ReplyClass::throttled_rate, true,
            "SES throttled the send rate: slow down (lower max_send_rate to the account's "
            "quota) and retry shortly"};
  }
  if (code == 454 && contains(t, "daily message quota exceeded")) {
    return {ReplyClass::throttled_daily_quota, true,
            "the SES 24-hour sending quota is used up: mail is kept and retried after the quota "
            "window; request a higher quota in the SES console if this recurs"};
  }
  if (code == 535) {
    return {ReplyClass::bad_credentials, false,
            "SES refused the SMTP credentials; note the IAM secret access key is not the SMTP "
            "password: derive it with `smtpguard ses smtp-password --region REGION`"};
  }
  if (code >= 500 && code <= 599 && contains(t, "message rejected") &&
      contains(t, "not verified")) {
    return {ReplyClass::unverified_identity, false,
            "the sender (or, in the SES sandbox, the recipient) is not a verified identity in "
            "this region: verify the address or domain, or request to leave the SES sandbox"};
  }
  if (code == 421 && (contains(t, "maximum smtp session") || contains(t, "timeout") ||
                      contains(t, "timed out") || contains(t, "too many"))) {
    return {ReplyClass::session_limit, true,
            "SES closed the session (connection or session-time limit): reconnect and retry; "
            "lower max_connections if this repeats"};
  }
  if (code >= 500 && code <= 599 && contains(t, "message rejected")) {
    return {ReplyClass::message_rejected, false,
            "SES rejected this message; the reply text says why"};
  }
  if (code >= 500 && code <= 599 && contains(t, "sending suspended")) {
    return {ReplyClass::permanent, false,
            "SES has suspended sending for this account: check the AWS account's email and the "
            "SES console before resending"};
  }
  if (code >= 400 && code <= 499) return {ReplyClass::temporary, true, ""};
  if (code >= 500 && code <= 599) return {ReplyClass::permanent, false, ""};
  return {ReplyClass::other, false, ""};
}

std::string_view to_string(ReplyClass cls) {
  switch (cls) {
    case ReplyClass::ok:
      return "ok";
    case ReplyClass::throttled_rate:
      return "throttled_rate";
    case ReplyClass::throttled_daily_quota:
      return "throttled_daily_quota";
    case ReplyClass::bad_credentials:
      return "bad_credentials";
    case ReplyClass::unverified_identity:
      return "unverified_identity";
    case ReplyClass::session_limit:
      return "session_limit";
    case ReplyClass::message_rejected:
      return "message_rejected";
    case ReplyClass::temporary:
      return "temporary";
    case ReplyClass::permanent:
      return "permanent";
    case ReplyClass::other:
      return "other";
  }
  return "other";
}

}  // namespace sg::ses
