// Bounces: RFC 3464 delivery status notifications (multipart/report, RFC
// 6522) and the rules for when not to send one (RFC 3834, RFC 5321 6.2).
#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "base/text.hpp"
#include "delivery/delivery.hpp"
#include "delivery/internal.hpp"
#include "smtp/message_headers.hpp"

namespace sg::delivery {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::size_t kFoldWidth = 78;  // preferred line length (RFC 5322 2.1.1)
constexpr std::size_t kMaxWord = 900;   // longer words are cut: lines stay < 998
constexpr std::size_t kMaxText = 1000;  // untrusted text per diagnostic
constexpr std::size_t kMaxAddress = 512;
constexpr std::size_t kMaxHeaderLine = 990;  // copied header lines are cut here
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

// Address for a header: printable ASCII, no angle brackets or quotes.
std::string safe_address(std::string_view address) {
  std::string out = detail::printable(address, kMaxAddress);
  for (char& c : out)
    if (c == '<' || c == '>' || c == '"' || c == '\\') c = '?';
  return out;
}

std::string safe_host(std::string_view host) {
  std::string out;
  for (char c : host.substr(0, 253)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-';
    if (ok) out.push_back(c);
  }
  return out.empty() ? std::string("localhost") : out;
}

// RFC 2046 bchars, at most 70, not ending in a space.
std::string safe_boundary(std::string_view boundary) {
  static constexpr std::string_view kSpecials = "'()+_,-./:=? ";
  std::string out;
  for (char c : boundary.substr(0, 70)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    kSpecials.find(c) != std::string_view::npos;
    out.push_back(ok ? c : '_');
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? std::string("smtpguard-dsn") : out;
}

std::string id_part(std::string_view text, std::size_t limit) {
  std::string out;
  for (char c : text)
    if (out.size() < limit &&
        ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      out.push_back(c);
  return out;
}

// Appends `prefix` + `text` (already printable) as folded lines: breaks at
// spaces near kFoldWidth, continuation lines start with `indent`, words
// longer than kMaxWord are cut, so no line reaches 998 octets.
void append_folded(std::string& out, std::string_view prefix, std::string_view text,
                   std::string_view indent) {
  std::string line(prefix);
  bool has_word = false;
  auto add_word = [&](std::string_view word) {
    if (has_word && line.size() + 1 + word.size() > kFoldWidth) {
      out += line;
      out += kCrlf;
      line.assign(indent);
      has_word = false;
    }
    if (has_word) line.push_back(' ');
    line += word;
    has_word = true;
  };
  for (std::string_view word : split(text, ' ')) {
    if (word.empty()) continue;
    while (word.size() > kMaxWord) {
      add_word(word.substr(0, kMaxWord));
      word.remove_prefix(kMaxWord);
    }
    add_word(word);
  }
  out += line;
  out += kCrlf;
}

// The header section of `message` (which may be just headers), one CRLF line
// per line, untrusted bytes made printable, lines that could end the MIME
// part dropped, bounded in size.
std::string header_copy(std::string_view message, std::string_view boundary) {
  std::string out;
  const std::string delimiter = "--" + std::string(boundary);
  std::size_t pos = 0;
  while (pos < message.size() && out.size() < kMaxHeaderBytes) {
    std::size_t eol = message.find('\n', pos);
    std::size_t next = eol == std::string_view::npos ? message.size() : eol + 1;
    std::string_view line = message.substr(pos, (eol == std::string_view::npos ? next : eol) - pos);
    pos = next;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header section
    std::string copy;
    for (char c : line.substr(0, kMaxHeaderLine)) {
      const auto u = static_cast<unsigned char>(c);
      copy.push_back(c == '\t' || (u >= 0x20 && u < 0x7f) ? c : '?');
    }
    if (copy.starts_with(delimiter) || trim(copy).empty()) continue;
    out += copy;
    out += kCrlf;
  }
  return out;
}

struct RecipientReport {
  std::string address;
  std::string status;
  std::string diagnostic_type;  // "smtp", "X-Smtpguard" or empty
  std::string diagnostic;       // printable
};

RecipientReport report_for(const spool::Recipient& rcpt) {
  RecipientReport r;
  r.address = safe_address(rcpt.address);
  const auto code = detail::reply_code_of(rcpt.last_reply);
  if (code && *code >= 500) {
    std::optional<smtp::EnhancedStatus> enhanced;
    if (rcpt.last_reply.size() > 4)
      enhanced = smtp::parse_enhanced_status(std::string_view(rcpt.last_reply).substr(4), *code);
    r.status = enhanced ? enhanced->to_string() : "5.0.0";
  } else {
    r.status = "5.4.7";  // gave up after temporary failures: delivery time expired
  }
  if (code) {
    r.diagnostic_type = "smtp";
  } else if (!rcpt.last_reply.empty()) {
    r.diagnostic_type = "X-Smtpguard";
  }
  r.diagnostic = detail::printable(rcpt.last_reply, kMaxText);
  return r;
}

bool is_report(std::string_view content_type) {
  std::string t;
  for (char c : to_lower(content_type))
    if (c != ' ' && c != '\t' && c != '"') t.push_back(c);
  return t.starts_with("multipart/report") &&
         (t.find("report-type=delivery-status") != std::string::npos ||
          t.find("report-type=disposition-notification") != std::string::npos);
}

}  // namespace

std::string rfc5322_date(std::int64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = std::clamp<std::int64_t>(unix_seconds, 0, 253402300799);  // 9999-12-31
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday % 7],
                     tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

bool should_bounce(const spool::Envelope& envelope, std::string_view message) {
  if (envelope.mail_from.empty()) return false;  // never bounce a bounce
  for (const std::string& value : smtp::header_values(message, "Auto-Submitted")) {
    std::string_view v = value;
    v = trim(v.substr(0, v.find_first_of(";(")));
    if (!iequals(v, "no")) return false;
  }
  for (const std::string& value : smtp::header_values(message, "Content-Type"))
    if (is_report(value)) return false;
  return true;
}

std::string make_dsn(const spool::Envelope& envelope, std::span<const std::size_t> failed_rcpts,
                     std::string_view original_headers, std::string_view reporting_mta,
                     std::int64_t now, std::string_view boundary) {
  const std::string mta = safe_host(reporting_mta);
  const std::string b = safe_boundary(boundary);
  std::vector<RecipientReport> reports;
  std::vector<bool> seen(envelope.recipients.size(), false);
  for (std::size_t index : failed_rcpts) {
    if (index >= envelope.recipients.size() || seen[index]) continue;
    seen[index] = true;
    reports.push_back(report_for(envelope.recipients[index]));
  }

  std::string out;
  out += fmt::format("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", mta);
  out += fmt::format("To: <{}>\r\n", safe_address(envelope.mail_from));
  out += "Subject: Undelivered Mail Returned to Sender\r\n";
  out += fmt::format("Date: {}\r\n", rfc5322_date(now));
  out += fmt::format("Message-ID: <{}.{}.{}@{}>\r\n", std::max<std::int64_t>(now, 0),
                     id_part(envelope.id, 32), id_part(b, 32), mta);
  out += "Auto-Submitted: auto-replied\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += fmt::format(
      "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{}\"\r\n", b);
  out += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

  out += fmt::format("--{}\r\n", b);
  out += "Content-Description: Notification\r\n";
  out += "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
  out += fmt::format("This is the mail system at host {}.\r\n\r\n", mta);
  out += "I'm sorry to have to inform you that your message could not\r\n";
  out += "be delivered to one or more recipients. Its headers are attached below.\r\n\r\n";
  for (const RecipientReport& r : reports) {
    const std::string why = r.diagnostic.empty() ? std::string("delivery failed") : r.diagnostic;
    append_folded(out, "<" + r.address + ">: ", why, "    ");
    out += kCrlf;
  }

  out += fmt::format("--{}\r\n", b);
  out += "Content-Description: Delivery report\r\n";
  out += "Content-Type: message/delivery-status\r\n\r\n";
  out += fmt::format("Reporting-MTA: dns; {}\r\n", mta);
  if (!envelope.id.empty())
    append_folded(out, "X-Smtpguard-Queue-ID: ", id_part(envelope.id, 64), " ");
  out += fmt::format("Arrival-Date: {}\r\n", rfc5322_date(envelope.received_at));
  for (const RecipientReport& r : reports) {
    out += kCrlf;
    append_folded(out, "Final-Recipient: rfc822; ", r.address, " ");
    out += "Action: failed\r\n";
    out += fmt::format("Status: {}\r\n", r.status);
    if (!r.diagnostic_type.empty())
      append_folded(out, "Diagnostic-Code: " + r.diagnostic_type + "; ", r.diagnostic, " ");
  }
  out += kCrlf;

  out += fmt::format("--{}\r\n", b);
  out += "Content-Description: Undelivered Message Headers\r\n";
  out += "Content-Type: text/rfc822-headers\r\n\r\n";
  out += header_copy(original_headers, b);
  out += fmt::format("\r\n--{}--\r\n", b);
  return out;
}

}  // namespace sg::delivery
