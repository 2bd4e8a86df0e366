// Exim main log parsing: one pass over each line, fields found by scanning and
// fixed prefixes (see exim_log.hpp). Field order follows Exim 4.96's
// receive.c/deliver.c; unknown fields are skipped, so added log_selector
// items (cPanel's, +all) do not matter.
#include "monitor/exim_log.hpp"

#include <array>
#include <cstring>

#include "base/find_byte.hpp"

namespace sg::monitor::exim {
namespace {

using sv = std::string_view;

bool digit(char c) {
  return c >= '0' && c <= '9';
}
// A table: message ids are checked on every line.
constexpr auto kAlnum = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return t;
}();
bool alnum(char c) {
  return kAlnum[static_cast<unsigned char>(c)];
}
int num2(const char* p) {
  return (p[0] - '0') * 10 + (p[1] - '0');
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return std::int64_t(era) * 146097 + doe - 719468;
}

// "YYYY-MM-DD HH:MM:SS" -> epoch seconds; false when the shape is wrong.
bool parse_stamp_slow(const char* p, std::int64_t& out) {
  static constexpr char shape[] = "dddd-dd-dd dd:dd:dd";
  for (int i = 0; i < 19; ++i) {
    if (shape[i] == 'd' ? !digit(p[i]) : p[i] != shape[i]) return false;
  }
  const int year = num2(p) * 100 + num2(p + 2), mon = num2(p + 5), day = num2(p + 8);
  const int h = num2(p + 11), m = num2(p + 14), s = num2(p + 17);
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return false;
  out = days_from_civil(year, mon, day) * 86400 + h * 3600 + m * 60 + s;
  return true;
}

// Consecutive lines mostly share their minute: the last one is remembered.
bool parse_stamp(const char* p, std::int64_t& out) {
  thread_local struct {
    char minute[16] = {};
    std::int64_t base = -1;  // epoch seconds of minute[] at :00
  } last;
  if (last.base >= 0 && std::memcmp(p, last.minute, 16) == 0 && p[16] == ':' && digit(p[17]) &&
      digit(p[18]) && num2(p + 17) <= 60) {
    out = last.base + num2(p + 17);
    return true;
  }
  if (!parse_stamp_slow(p, out)) return false;
  std::memcpy(last.minute, p, 16);
  last.base = out - num2(p + 17);
  return true;
}

// All of s[from, to) letters or digits.
bool all_alnum(sv s, std::size_t from, std::size_t to) {
  bool ok = true;
  for (std::size_t i = from; i < to; ++i) ok &= alnum(s[i]);
  return ok;
}

// Exim message ids: 4.96 "1xX8Pb-0000mp-0H" (6-6-2), 4.97+ (6-11-4).
// Those two shapes are checked directly (every line starts with the test);
// the general scan below gives the same answer for them.
std::size_t message_id_length(sv s) {
  if (s.size() > 16 && s[6] == '-' && s[13] == '-' && s[16] == ' ' && all_alnum(s, 0, 6) &&
      all_alnum(s, 7, 13) && all_alnum(s, 14, 16))
    return 16;
  if (s.size() > 23 && s[6] == '-' && s[18] == '-' && s[23] == ' ' && all_alnum(s, 0, 6) &&
      all_alnum(s, 7, 18) && all_alnum(s, 19, 23))
    return 23;
  std::size_t i = 0;
  while (i < s.size() && i < 6 && alnum(s[i])) ++i;
  if (i != 6 || i >= s.size() || s[i] != '-') return 0;
  std::size_t j = ++i;
  while (i < s.size() && alnum(s[i])) ++i;
  if (i - j < 6 || i - j > 11 || i >= s.size() || s[i] != '-') return 0;
  j = ++i;
  while (i < s.size() && alnum(s[i])) ++i;
  if (i - j < 2 || i - j > 4 || i >= s.size() || s[i] != ' ') return 0;
  return i;
}

// The first ' ' at or after pos, or s.size(). Words are short (about 8
// bytes): find_byte beats a memchr call per word.
std::size_t next_space(sv s, std::size_t pos) {
  return find_byte<' '>(s.data(), pos, s.size());
}

sv word_at(sv s, std::size_t pos) {
  if (pos >= s.size()) return {};
  return s.substr(pos, next_space(s, pos) - pos);
}

// End of a "..." value starting at s[pos] == '"' (Exim escapes \" inside).
std::size_t skip_quoted(sv s, std::size_t pos) {
  std::size_t i = pos + 1;
  while (i < s.size()) {
    const void* q = std::memchr(s.data() + i, '"', s.size() - i);
    if (q == nullptr) break;
    std::size_t at = static_cast<const char*>(q) - s.data(), slashes = 0;
    while (at - slashes > pos + 1 && s[at - slashes - 1] == '\\') ++slashes;
    if (slashes % 2 == 0) return at + 1;
    i = at + 1;
  }
  return s.size();
}

// "[1.2.3.4]:port" or "[::1]" -> the address.
sv bracketed(sv token) {
  if (token.size() < 3 || token[0] != '[') return {};
  auto close = token.find(']');
  return close == sv::npos ? sv{} : token.substr(1, close - 1);
}

std::uint32_t count_words(sv s) {
  std::uint32_t n = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t end = next_space(s, pos);
    n += end > pos;
    pos = end + 1;
  }
  return n;
}

// "=> a <a@example.com> R=..." (a local part, or a file or pipe, then the
// address as the sender gave it) or "=> b@example.net R=...".
sv recipient(sv body) {
  sv first = word_at(body, 0);
  sv second = word_at(body, first.size() + 1);
  if (second.size() > 2 && second.front() == '<' && second.back() == '>')
    return second.substr(1, second.size() - 2);
  return first;
}

// Fields of "ID <= sender ...". The host part of H= spans several words:
// "H=name (helo) [ip]:port", the address is the first word starting with '['.
void parse_arrival(sv s, Line& out) {
  out.address = word_at(s, 0);
  std::size_t pos = out.address.size() + 1;
  bool in_host = false;
  while (pos < s.size()) {
    if (s[pos] == ' ') {
      ++pos;
      continue;
    }
    sv w = word_at(s, pos);
    if (in_host && w[0] == '[') {
      out.host_ip = bracketed(w);
      in_host = false;
      pos += w.size();
      continue;
    }
    // A field name is at most 3 bytes ("id=", "QT="): only those are looked at.
    std::size_t eq = sv::npos;
    for (std::size_t i = 0; i < w.size() && i < 4; ++i) {
      if (w[i] == '=') {
        eq = i;
        break;
      }
    }
    if (eq == sv::npos) {
      if (w == "for") {
        out.recipient_list = s.substr(std::min(s.size(), pos + 4));
        out.recipients = count_words(out.recipient_list);
        return;
      }
      pos += w.size();  // "K", "L.-", "(helo)", "from", "<addr>", a host name
      continue;
    }
    if (eq + 1 < w.size() && w[eq + 1] == '"') {  // T="subject", DN="..."
      pos = skip_quoted(s, pos + eq + 1);
      continue;
    }
    sv name = w.substr(0, eq), value = w.substr(eq + 1);
    in_host = false;
    switch (name.size() == 1 ? name[0] : name.size() == 2 && name == "id" ? 'i' : 0) {
      case 'H':
        in_host = true;
        if (!value.empty() && value[0] == '[') {
          out.host_ip = bracketed(value);
          in_host = false;
        }
        break;
      case 'A': {
        auto colon = value.find(':');
        if (colon == sv::npos) {
          out.authenticator = value;
        } else {
          out.authenticator = value.substr(0, colon);
          out.auth = value.substr(colon + 1);
        }
        break;
      }
      case 'U':
        out.local_user = value;
        break;
      case 'P':
        out.protocol = value;
        break;
      case 'R':
        out.bounce_of = value;
        break;
      case 'i':
        out.message_id = value;
        break;
      case 'S': {
        std::uint64_t n = 0;
        for (char c : value) {
          if (!digit(c) || n > (1ull << 60)) break;
          n = n * 10 + unsigned(c - '0');
        }
        out.size = n;
        break;
      }
      default:
        break;
    }
    pos += w.size();
  }
}

// "NAME authenticator failed for (helo) [ip]:port I=[..]:..: 535 ... (set_id=USER)"
bool parse_auth_failure(sv rest, Line& out) {
  static constexpr sv marker = " authenticator failed for ";
  const void* sp = std::memchr(rest.data(), ' ', rest.size());
  if (sp == nullptr) return false;
  std::size_t name_end = static_cast<const char*>(sp) - rest.data();
  if (rest.compare(name_end, marker.size(), marker) != 0) return false;
  out.kind = Kind::auth_failure;
  out.authenticator = rest.substr(0, name_end);
  std::size_t pos = name_end + marker.size();
  for (int words = 0; pos < rest.size() && words < 8; ++words) {
    sv w = word_at(rest, pos);
    if (!w.empty() && w[0] == '[') {
      out.host_ip = bracketed(w);
      break;
    }
    if (w.starts_with("H=[")) {  // some builds prefix the host with H=
      out.host_ip = bracketed(w.substr(2));
      break;
    }
    pos += w.size() + 1;
  }
  static constexpr sv set_id = "(set_id=";
  if (rest.ends_with(')')) {
    auto at = rest.rfind(set_id);
    if (at != sv::npos)
      out.address = rest.substr(at + set_id.size(), rest.size() - 1 - at - set_id.size());
  }
  return true;
}

// "cwd=/home/u/public_html 3 args: /usr/sbin/sendmail -t -i"
void parse_cwd(sv rest, Line& out) {
  static constexpr sv marker = " args: ";
  auto at = rest.find(marker);
  if (at == sv::npos) return;
  std::size_t end = at;
  while (end > 4 && digit(rest[end - 1])) --end;
  if (end == at || end <= 4 || rest[end - 1] != ' ') return;
  out.kind = Kind::cwd;
  out.cwd = rest.substr(4, end - 1 - 4);
  out.args = rest.substr(at + marker.size());
}

}  // namespace

bool parse_line(sv line, Line& out) {
  out = Line{};
  if (line.size() < 21 || !parse_stamp(line.data(), out.time)) return false;
  std::size_t p = 19;
  if (line[p] == '.' && p + 4 <= line.size()) p += 4;  // +millisec
  if (p + 6 < line.size() && line[p] == ' ' && (line[p + 1] == '+' || line[p + 1] == '-') &&
      digit(line[p + 2]) && digit(line[p + 5])) {  // log_timezone
    const int minutes = num2(&line[p + 2]) * 60 + num2(&line[p + 4]);
    out.time -= (line[p + 1] == '+' ? 60 : -60) * minutes;
    p += 6;
  }
  if (p >= line.size() || line[p] != ' ') return false;
  ++p;
  if (p < line.size() && line[p] == '[') {  // +pid
    auto close = line.find("] ", p);
    if (close == sv::npos || close - p > 12) return false;
    out.pid = line.substr(p + 1, close - p - 1);
    p = close + 2;
  }
  sv rest = line.substr(p);
  if (std::size_t n = message_id_length(rest); n != 0) {
    out.id = rest.substr(0, n);
    sv tail = rest.substr(n + 1);
    if (tail.size() >= 3 && tail[2] == ' ') {
      const char a = tail[0], b = tail[1];
      sv body = tail.substr(3);
      if (a == '<' && b == '=') {
        out.kind = Kind::arrival;
        parse_arrival(body, out);
      } else if ((a == '=' || a == '-' || a == '*') && b == '>') {
        out.kind = Kind::delivery;
        out.address = recipient(body);
      } else if (a == '*' && b == '*') {
        out.kind = Kind::failure;
        out.address = recipient(body);
      } else if (a == '=' && b == '=') {
        out.kind = Kind::deferral;
        out.address = recipient(body);
      }
    } else if (tail.starts_with("Completed")) {
      out.kind = Kind::completed;
    }
    return true;
  }
  if (rest.starts_with("cwd=")) {
    parse_cwd(rest, out);
  } else {
    parse_auth_failure(rest, out);
  }
  return true;
}

}  // namespace sg::monitor::exim
