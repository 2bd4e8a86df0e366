// Fuzzes what the deliverer builds from untrusted text: DSNs (from replies,
// addresses and original headers), upstream ids, SES headers. Input is
// NUL-separated fields: sender, reporting MTA, boundary, original headers,
// then address/last-reply pairs. A DSN must keep CRLF line ends, lines under
// 998 octets, printable ASCII only, and exactly one To header.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "delivery/delivery.hpp"
#include "smtp/message_headers.hpp"
#include "smtp/reply.hpp"

namespace {

void check_wire_safe(const std::string& dsn) {
  std::size_t line = 0;
  for (std::size_t i = 0; i < dsn.size(); ++i) {
    const auto c = static_cast<unsigned char>(dsn[i]);
    if (c == '\r') {
      if (i + 1 >= dsn.size() || dsn[i + 1] != '\n') std::abort();
      continue;
    }
    if (c == '\n') {
      if (i == 0 || dsn[i - 1] != '\r') std::abort();
      line = 0;
      continue;
    }
    if (c != '\t' && (c < 0x20 || c >= 0x7f)) std::abort();
    if (++line >= 998) std::abort();
  }
  if (!dsn.ends_with("\r\n")) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sg;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> fields;
  for (std::size_t pos = 0; pos <= input.size();) {
    std::size_t end = input.find('\0', pos);
    if (end == std::string_view::npos) end = input.size();
    fields.push_back(input.substr(pos, end - pos));
    pos = end + 1;
  }
  auto field = [&](std::size_t i) { return i < fields.size() ? fields[i] : std::string_view{}; };

  spool::Envelope envelope;
  envelope.id = "0abcdefghjk12345";
  envelope.received_at = static_cast<std::int64_t>(size) * 1000;
  envelope.mail_from = std::string(field(0));
  std::vector<std::size_t> failed;
  for (std::size_t i = 4; i + 1 < fields.size() + 1 && i < 4 + 2 * 60; i += 2) {
    spool::Recipient r;
    r.address = std::string(field(i));
    r.last_reply = std::string(field(i + 1));
    r.state = spool::RecipientState::failed;
    failed.push_back(envelope.recipients.size());
    envelope.recipients.push_back(std::move(r));
  }
  const std::string dsn =
      delivery::make_dsn(envelope, failed, field(3), field(1), envelope.received_at, field(2));
  check_wire_safe(dsn);
  if (sg::smtp::header_values(dsn, "To").size() != 1) std::abort();
  if (delivery::should_bounce(envelope, dsn)) std::abort();  // a DSN is never bounced
  (void)delivery::should_bounce(envelope, field(3));

  // Replies from the same bytes: outcomes never resurrect a finished recipient.
  smtp::ReplyParser parser;
  if (parser.feed(field(3))) {
    delivery::SodiumRng rng;
    while (auto reply = parser.next()) {
      (void)delivery::parse_upstream_id(*reply);
      spool::Recipient r;
      const auto outcome = delivery::apply_rcpt_reply(r, *reply, 1'700'000'000, {}, rng);
      if (outcome == delivery::Outcome::delivered && r.state != spool::RecipientState::delivered)
        std::abort();
      if (delivery::apply_rcpt_reply(r, *reply, 1'700'000'000, {}, rng) !=
              delivery::Outcome::unchanged &&
          r.state != spool::RecipientState::deferred)
        std::abort();
      if (r.upstream_id.size() > 128) std::abort();
    }
  }

  const std::string tagged = delivery::add_ses_headers(field(3), field(1), field(2));
  if (sg::smtp::header_values(tagged, "X-SES-CONFIGURATION-SET").size() !=
      (field(1).empty() ? sg::smtp::header_values(field(3), "X-SES-CONFIGURATION-SET").size() : 1))
    std::abort();
  if (delivery::strip_header(std::string(field(3))).size() > field(3).size()) std::abort();
  return 0;
}
