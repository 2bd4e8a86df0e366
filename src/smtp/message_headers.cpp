#include "smtp/message_headers.hpp"

#include "base/text.hpp"

namespace sg::smtp {
namespace {

// One header field: its raw lines (with their line endings) and its name.
struct Field {
  std::string_view raw;
  std::string_view name;
};

// Splits the header section into fields; stops at the first empty line.
std::vector<Field> fields_of(std::string_view message, std::size_t* header_end = nullptr) {
  std::vector<Field> out;
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find('\n', pos);
    std::size_t next = eol == std::string_view::npos ? message.size() : eol + 1;
    std::string_view line = message.substr(pos, next - pos);
    if (trim(line).empty() && (line.empty() || line[0] == '\r' || line[0] == '\n')) {
      pos = next;
      break;  // end of headers
    }
    if ((line[0] == ' ' || line[0] == '\t') && !out.empty()) {
      // continuation: extend the previous field
      out.back().raw = message.substr(out.back().raw.data() - message.data(),
                                      next - (out.back().raw.data() - message.data()));
    } else {
      std::size_t colon = line.find(':');
      std::string_view name =
          colon == std::string_view::npos ? std::string_view{} : trim(line.substr(0, colon));
      out.push_back(Field{line, name});
    }
    pos = next;
  }
  if (header_end) *header_end = pos;
  return out;
}

std::string unfold(std::string_view raw) {
  std::string v;
  std::size_t colon = raw.find(':');
  raw = colon == std::string_view::npos ? std::string_view{} : raw.substr(colon + 1);
  for (char c : raw) {
    if (c == '\r' || c == '\n') continue;
    v.push_back(c == '\t' ? ' ' : c);
  }
  return std::string(trim(v));
}

}  // namespace

std::vector<std::string> header_values(std::string_view message, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& f : fields_of(message))
    if (iequals(f.name, name)) out.push_back(unfold(f.raw));
  return out;
}

std::vector<std::string> parse_address_list(std::string_view value) {
  std::vector<std::string> out;
  std::string current;  // text of the current mailbox outside <>
  std::string angle;    // text inside <>
  bool in_angle = false, have_angle = false, in_quote = false;
  int comment_depth = 0;
  auto finish = [&] {
    std::string addr = have_angle ? angle : std::string(trim(current));
    // A bare display name without '@' is not an address.
    if (!addr.empty() && addr.find('@') != std::string::npos) out.push_back(addr);
    current.clear();
    angle.clear();
    have_angle = in_angle = false;
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (in_quote) {
      if (c == '\\' && i + 1 < value.size()) {
        (in_angle ? angle : current) += value[++i];
      } else if (c == '"') {
        in_quote = false;
        if (in_angle) angle += c;
      } else {
        (in_angle ? angle : current) += c;
      }
      continue;
    }
    if (comment_depth > 0) {
      if (c == '\\')
        ++i;
      else if (c == '(')
        ++comment_depth;
      else if (c == ')')
        --comment_depth;
      continue;
    }
    switch (c) {
      case '"':
        in_quote = true;
        if (in_angle) angle += c;
        break;
      case '(':
        comment_depth = 1;
        break;
      case '<':
        in_angle = true;
        have_angle = true;
        angle.clear();
        break;
      case '>':
        in_angle = false;
        break;
      case ':':  // group name ends; what came before was its display name
        if (!in_angle)
          current.clear();
        else
          angle += c;
        break;
      case ',':
      case ';':
        if (in_angle)
          angle += c;
        else
          finish();
        break;
      default:
        if (in_angle) {
          if (c != ' ' && c != '\t') angle += c;
        } else {
          current += c;
        }
    }
  }
  finish();
  return out;
}

std::string remove_header(std::string_view message, std::string_view name) {
  std::size_t header_end = 0;
  auto fields = fields_of(message, &header_end);
  std::string out;
  out.reserve(message.size());
  std::size_t copied = 0;  // offset in message up to which output is complete
  for (const auto& f : fields) {
    std::size_t start = static_cast<std::size_t>(f.raw.data() - message.data());
    if (iequals(f.name, name)) {
      out.append(message.substr(copied, start - copied));
      copied = start + f.raw.size();
    }
  }
  out.append(message.substr(copied));
  return out;
}

}  // namespace sg::smtp
