// Reading the header section of an RFC 5322 message as sendmail -t needs it:
// header values (unfolded), addresses from To/Cc/Bcc/From lists, and removal
// of Bcc before the message goes out. Input is untrusted; malformed headers
// yield fewer addresses, never a crash or exception.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sg::smtp {

// The header in which a trusted MTA (Exim, through `integrate exim`) names
// who submitted a message; the relay trusts it only from an Exim identity
// and the deliverer strips it before the message goes upstream.
inline constexpr std::string_view kSubmitterHeader = "X-Smtpguard-Submitter";

// Unfolded values of every header field called `name` (case-insensitive).
std::vector<std::string> header_values(std::string_view message, std::string_view name);

// The addr-specs of an address list: "A <a@x>, b@y, \"Q, R\" <c@z>, grp: d@w;"
// -> a@x, b@y, c@z, d@w. Comments in parentheses are dropped.
std::vector<std::string> parse_address_list(std::string_view value);

// The message with every header field called `name` removed (body untouched).
std::string remove_header(std::string_view message, std::string_view name);

}  // namespace sg::smtp
