// Reading a message from stdin and building its envelope the way sendmail
// does; shared by `send --direct` and `sendmail`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "smtp/smtp.hpp"

namespace sg::cli {

struct EnvelopeRequest {
  std::string from;  // -f
  bool from_given = false;
  std::string full_name;         // -F, for an added From: header
  bool read_recipients = false;  // -t
  bool dot_ends_input = false;   // classic sendmail without -i/-oi
  std::vector<std::string> recipients;
};

// Reads stdin to EOF (or to a lone "." line when asked); refuses more than
// `limit` bytes.
Result<std::string> read_message(int fd, std::uint64_t limit, bool dot_ends_input);

// -f or the From: header gives the sender; the arguments, plus To/Cc/Bcc
// with -t, the recipients (Bcc is then removed). `fallback_sender` is used
// when neither -f nor From: gives one (empty: that is an error).
Result<smtp::Message> build_message(const EnvelopeRequest& req, std::string data,
                                    const std::string& fallback_sender = "");

}  // namespace sg::cli
