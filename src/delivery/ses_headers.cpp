// Header edits on the message data before it goes upstream.
#include "delivery/delivery.hpp"
#include "smtp/message_headers.hpp"

namespace sg::delivery {
namespace {

constexpr std::size_t kMaxConfigurationSet = 64;  // SES limits
constexpr std::size_t kMaxTagValue = 256;

// SES accepts only [A-Za-z0-9_-] in configuration set names and tag values.
std::string ses_token(std::string_view text, std::size_t limit) {
  std::string out;
  for (char c : text.substr(0, limit)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    out.push_back(ok ? c : '_');
  }
  return out;
}

}  // namespace

std::string add_ses_headers(std::string_view data, std::string_view configuration_set,
                            std::string_view identity) {
  if (configuration_set.empty()) return std::string(data);
  // A client must not pick another configuration set or forge its tags.
  std::string body = smtp::remove_header(data, "X-SES-CONFIGURATION-SET");
  body = smtp::remove_header(body, "X-SES-MESSAGE-TAGS");
  // Leading whitespace lines belong to no field; after our headers they
  // would fold into them, so they go.
  std::size_t start = 0;
  while (start < body.size() && (body[start] == ' ' || body[start] == '\t')) {
    const std::size_t eol = body.find('\n', start);
    start = eol == std::string::npos ? body.size() : eol + 1;
  }
  body.erase(0, start);
  std::string out =
      "X-SES-CONFIGURATION-SET: " + ses_token(configuration_set, kMaxConfigurationSet);
  out += "\r\n";
  if (!identity.empty())
    out += "X-SES-MESSAGE-TAGS: identity=" + ses_token(identity, kMaxTagValue) + "\r\n";
  out += body;
  return out;
}

std::string strip_header(std::string data, std::string_view name) {
  if (smtp::header_values(data, name).empty()) return data;
  return smtp::remove_header(data, name);
}

}  // namespace sg::delivery
