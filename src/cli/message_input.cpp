#include "cli/message_input.hpp"

#include <unistd.h>

#include <cerrno>

namespace sg::cli {

Result<std::string> read_message(int fd, std::uint64_t limit, bool dot_ends_input) {
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::io, "cannot read the message from stdin");
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > limit)
      return make_error(Errc::invalid_input, "message larger than max_message_size (" +
                                                 std::to_string(limit) + " bytes)");
  }
  if (dot_ends_input) {
    // A line holding only "." ends the message (sendmail without -i).
    for (std::string_view end : {"\n.\n", "\n.\r\n"}) {
      if (data.rfind(end.substr(1), 0) == 0) return std::string();
      if (auto pos = data.find(end); pos != std::string::npos) data.resize(pos + 1);
    }
  }
  return data;
}

Result<smtp::Message> build_message(const EnvelopeRequest& req, std::string data,
                                    const std::string& fallback_sender) {
  smtp::Message msg;
  msg.envelope.rcpt_to = req.recipients;
  if (req.read_recipients) {
    for (const char* field : {"To", "Cc", "Bcc"})
      for (const auto& value : smtp::header_values(data, field))
        for (auto& a : smtp::parse_address_list(value)) msg.envelope.rcpt_to.push_back(a);
    data = smtp::remove_header(data, "Bcc");
  }
  if (msg.envelope.rcpt_to.empty())
    return make_error(Errc::invalid_input, "no recipients: name them as arguments or use -t");
  if (req.from_given) {
    msg.envelope.mail_from = req.from == "<>" ? "" : req.from;
  } else {
    auto from = smtp::header_values(data, "From");
    auto addrs = from.empty() ? std::vector<std::string>{} : smtp::parse_address_list(from.front());
    if (!addrs.empty())
      msg.envelope.mail_from = addrs.front();
    else if (!fallback_sender.empty())
      msg.envelope.mail_from = fallback_sender;
    else
      return make_error(Errc::invalid_input, "no sender: give -f ADDRESS or a From: header");
  }
  msg.data = std::move(data);
  return msg;
}

}  // namespace sg::cli
