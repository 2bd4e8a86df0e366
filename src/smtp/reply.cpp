#include "smtp/reply.hpp"

#include <fmt/format.h>

#include <utility>

namespace sg::smtp {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Server text shown to people: printable ASCII only.
void append_sanitised(std::string& out, std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u >= 0x7f ? '?' : c);
  }
}

std::string sanitised(std::string_view text, std::size_t limit) {
  std::string out;
  append_sanitised(out, text.substr(0, limit));
  if (text.size() > limit) out += "...";
  return out;
}

// Reads 1..3 digits at `pos`; returns -1 when there are none.
int read_number(std::string_view text, std::size_t& pos) {
  int value = 0;
  std::size_t digits = 0;
  while (pos < text.size() && is_digit(text[pos]) && digits < 3) {
    value = value * 10 + (text[pos] - '0');
    ++pos;
    ++digits;
  }
  if (digits == 0 || (pos < text.size() && is_digit(text[pos]))) return -1;
  return value;
}

}  // namespace

std::string EnhancedStatus::to_string() const {
  return fmt::format("{}.{}.{}", klass, subject, detail);
}

std::string Reply::text() const {
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += " / ";
    append_sanitised(out, lines[i]);
  }
  return out;
}

std::string Reply::to_string() const {
  std::string out = fmt::format("{:03d}", code);
  const std::string body = text();
  if (!body.empty()) out += " " + body;
  if (out.size() > kMaxDescription) {
    out.resize(kMaxDescription - 3);
    out += "...";
  }
  return out;
}

std::optional<EnhancedStatus> parse_enhanced_status(std::string_view text, int code) {
  if (text.size() < 5 || text[1] != '.') return std::nullopt;
  const int klass = text[0] - '0';
  if ((klass != 2 && klass != 4 && klass != 5) || klass != code / 100) return std::nullopt;
  std::size_t pos = 2;
  const int subject = read_number(text, pos);
  if (subject < 0 || pos >= text.size() || text[pos] != '.') return std::nullopt;
  ++pos;
  const int detail = read_number(text, pos);
  if (detail < 0 || (pos < text.size() && text[pos] != ' ')) return std::nullopt;
  return EnhancedStatus{klass, subject, detail};
}

Error ReplyParser::fail(std::string message) {
  error_ = Error{Errc::protocol, std::move(message)};
  return *error_;
}

Result<void> ReplyParser::feed(std::string_view bytes) {
  if (error_) return *error_;
  buffer_.append(bytes);
  std::size_t start = 0;
  for (std::size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(buffer_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto parsed = parse_line(line); !parsed) return parsed;
  }
  buffer_.erase(0, start);
  // A CR may still be followed by its LF, hence the +1.
  if (buffer_.size() > kMaxLineLength + 1)
    return fail(fmt::format("server reply line longer than {} octets", kMaxLineLength));
  return {};
}

Result<void> ReplyParser::parse_line(std::string_view line) {
  if (line.size() > kMaxLineLength)
    return fail(fmt::format("server reply line longer than {} octets", kMaxLineLength));
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
      line[0] < '2' || line[0] > '5')
    return fail(fmt::format("malformed server reply line \"{}\"", sanitised(line, 60)));
  const char separator = line.size() == 3 ? ' ' : line[3];
  if (separator != ' ' && separator != '-')
    return fail(fmt::format("malformed server reply line \"{}\"", sanitised(line, 60)));
  const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');

  if (partial_ && partial_->code != code)
    return fail(fmt::format("multi-line server reply mixes codes {} and {}", partial_->code, code));
  if (!partial_) {
    partial_.emplace();
    partial_->code = code;
  }
  if (partial_->lines.size() >= kMaxLines)
    return fail(fmt::format("server reply longer than {} lines", kMaxLines));
  partial_->lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});

  if (separator == ' ') {
    partial_->enhanced = parse_enhanced_status(partial_->lines.front(), code);
    ready_.push_back(std::move(*partial_));
    partial_.reset();
  }
  return {};
}

std::optional<Reply> ReplyParser::next() {
  if (ready_.empty()) return std::nullopt;
  Reply reply = std::move(ready_.front());
  ready_.pop_front();
  return reply;
}

}  // namespace sg::smtp
