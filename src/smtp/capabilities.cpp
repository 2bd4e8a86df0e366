#include <charconv>

#include "base/text.hpp"
#include "smtp/client_session.hpp"

namespace sg::smtp {

namespace {

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> words;
  for (std::string_view word : split(line, ' '))
    if (!trim(word).empty()) words.push_back(trim(word));
  return words;
}

void add_mechanism(Capabilities& caps, std::string_view word) {
  std::string mechanism = to_upper(word);
  if (mechanism.empty()) return;
  if (mechanism == "PLAIN") caps.auth_plain = true;
  if (mechanism == "LOGIN") caps.auth_login = true;
  for (const std::string& known : caps.auth_mechanisms)
    if (known == mechanism) return;
  caps.auth_mechanisms.push_back(std::move(mechanism));
}

}  // namespace

Capabilities parse_capabilities(const Reply& ehlo_reply) {
  Capabilities caps;
  for (std::size_t i = 1; i < ehlo_reply.lines.size(); ++i) {
    const std::string& line = ehlo_reply.lines[i];
    caps.keywords.push_back(line);
    const std::vector<std::string_view> words = words_of(line);
    if (words.empty()) continue;
    const std::string keyword = to_upper(words[0]);
    if (keyword == "PIPELINING") {
      caps.pipelining = true;
    } else if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "8BITMIME") {
      caps.eightbitmime = true;
    } else if (keyword == "SMTPUTF8") {
      caps.smtputf8 = true;
    } else if (keyword == "ENHANCEDSTATUSCODES") {
      caps.enhanced_status_codes = true;
    } else if (keyword == "CHUNKING") {
      caps.chunking = true;
    } else if (keyword == "SIZE") {
      std::uint64_t limit = 0;
      if (words.size() > 1) {
        const std::string_view value = words[1];
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
        if (ec != std::errc{} || end != value.data() + value.size()) limit = 0;
      }
      caps.size = limit;
    } else if (keyword == "AUTH" || keyword.starts_with("AUTH=")) {
      // "AUTH=LOGIN PLAIN" is the pre-RFC 4954 form some servers still send.
      if (keyword.size() > 5) add_mechanism(caps, words[0].substr(5));
      for (std::size_t w = 1; w < words.size(); ++w) add_mechanism(caps, words[w]);
    }
  }
  return caps;
}

}  // namespace sg::smtp
