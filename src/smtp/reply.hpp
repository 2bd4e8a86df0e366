// SMTP replies (RFC 5321 section 4.2, RFC 3463 enhanced status codes) and an
// incremental parser for the bytes a server sends. The parser trusts nothing:
// malformed input yields an Errc::protocol error, never a crash or a throw.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace sg::smtp {

struct EnhancedStatus {
  int klass = 0, subject = 0, detail = 0;  // e.g. 5.7.8
  std::string to_string() const;           // "5.7.8"
  bool operator==(const EnhancedStatus&) const = default;
};

struct Reply {
  int code = 0;                            // 220, 250, 535 ...
  std::optional<EnhancedStatus> enhanced;  // parsed from the first line's text when present
  std::vector<std::string> lines;          // text of each line without "250-"/"250 " prefix
  // Lines joined with " / " for messages to people; control and non-ASCII
  // bytes become '?' so server text cannot forge log lines or break JSON.
  std::string text() const;
  // "535 5.7.8 Authentication credentials invalid" style, one line, at most
  // kMaxDescription characters (sanitised like text()).
  std::string to_string() const;
  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }

  static constexpr std::size_t kMaxDescription = 512;
};

// Parses "X.Y.Z" at the start of `text` (followed by a space or the end);
// X must be 2, 4 or 5 and match the first digit of `code`.
std::optional<EnhancedStatus> parse_enhanced_status(std::string_view text, int code);

// Incremental reply parser: feed bytes in any chunking; yields complete replies.
// Lines end with CRLF or a bare LF (servers are lenient about it too). Reply
// codes must be three digits with the first in 2..5, a multi-line reply must
// repeat one code, a line may hold at most kMaxLineLength octets before its
// line ending and a reply at most kMaxLines lines.
class ReplyParser {
 public:
  static constexpr std::size_t kMaxLineLength = 2048;
  static constexpr std::size_t kMaxLines = 512;

  // Appends bytes; returns an error on malformed input (parser then stays failed).
  Result<void> feed(std::string_view bytes);
  std::optional<Reply> next();  // next complete reply, if any
  // True while bytes of an unfinished reply are buffered or complete replies
  // have not been taken with next().
  bool has_pending() const { return !buffer_.empty() || partial_ || !ready_.empty(); }

 private:
  Result<void> parse_line(std::string_view line);
  Error fail(std::string message);

  std::string buffer_;            // bytes after the last complete line
  std::optional<Reply> partial_;  // multi-line reply still missing its last line
  std::deque<Reply> ready_;
  std::optional<Error> error_;
};

}  // namespace sg::smtp
