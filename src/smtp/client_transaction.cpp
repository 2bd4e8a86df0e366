// Transaction phase of ClientSession: MAIL/RCPT/DATA with or without
// PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
// (RFC 6531), and RSET after a failed transaction.
#include <fmt/format.h>

#include <utility>

#include "smtp/client_session.hpp"
#include "smtp/dot_stuff.hpp"

namespace sg::smtp {

namespace {

bool is_2xx(const Reply& reply) {
  return reply.code >= 200 && reply.code < 300;
}

// Anything that could end the command line or the <path> early is refused so
// no envelope address can inject a command or a parameter.
bool safe_address(std::string_view address) {
  for (char c : address) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '<' || c == '>') return false;
  }
  return true;
}

const char* command_name(int expect_index) {
  static const char* const names[] = {"RSET", "MAIL FROM",   "RCPT TO",
                                      "DATA", "end of data", "end of data"};
  return names[expect_index];
}

}  // namespace

void ClientSession::submit(Message message) {
  body_sent_ = false;
  if (finished()) return;
  if (state_ != State::Ready)
    return fail(Errc::invalid_input, "submit() called while the session is not ready");

  const Envelope& envelope = message.envelope;
  if (envelope.rcpt_to.empty()) return local_failure(501, "5.5.4 no recipients");
  bool utf8 = has_8bit(envelope.mail_from);
  if (!safe_address(envelope.mail_from))
    return local_failure(501, "5.1.7 invalid character in sender address");
  for (const std::string& rcpt : envelope.rcpt_to) {
    if (rcpt.empty() || !safe_address(rcpt))
      return local_failure(501, "5.1.3 empty recipient address or invalid character in it");
    utf8 = utf8 || has_8bit(rcpt);
  }
  if (utf8 && !caps_.smtputf8)
    return local_failure(553, "5.6.7 non-ASCII address but the server does not offer SMTPUTF8");

  tx_ = Transaction{};
  tx_.data = encode_data(message.data);
  tx_.recipients = envelope.rcpt_to.size();
  // SIZE counts the message, not the final "." line.
  const std::uint64_t size = tx_.data.size() - 3;
  if (caps_.size && *caps_.size > 0 && size > *caps_.size) {
    tx_ = Transaction{};
    return local_failure(
        552, fmt::format("5.3.4 message size {} exceeds the server limit {}", size, *caps_.size));
  }

  std::string mail = "MAIL FROM:<" + envelope.mail_from + ">";
  if (caps_.size) mail += fmt::format(" SIZE={}", size);
  // Without 8BITMIME the message goes as is, like other MTAs do; most servers take it.
  if (caps_.eightbitmime && has_8bit(message.data)) mail += " BODY=8BITMIME";
  if (utf8) mail += " SMTPUTF8";

  if (need_rset_) queued_.push_back(Command{"RSET\r\n", Expect::Rset});
  need_rset_ = false;
  queued_.push_back(Command{mail + "\r\n", Expect::Mail});
  for (std::size_t i = 0; i < envelope.rcpt_to.size(); ++i)
    queued_.push_back(Command{"RCPT TO:<" + envelope.rcpt_to[i] + ">\r\n", Expect::Rcpt, i});
  queued_.push_back(Command{"DATA\r\n", Expect::Data});
  state_ = State::Transaction;
  flush_commands();
}

void ClientSession::flush_commands() {
  // With PIPELINING everything goes in one write; otherwise lock-step.
  while (!queued_.empty() && (caps_.pipelining || awaiting_.empty())) {
    output_.append(queued_.front().line);
    awaiting_.push_back(std::move(queued_.front()));
    queued_.pop_front();
  }
}

void ClientSession::on_transaction(const Reply& reply) {
  if (awaiting_.empty())
    return fail(Errc::protocol, fmt::format("unexpected server reply: {}", reply.to_string()),
                reply);
  const Command command = std::move(awaiting_.front());
  awaiting_.pop_front();
  // Only 2xx, 354 to DATA and 4xx/5xx make sense here.
  const bool expected_code =
      reply.code >= 400 || (command.expect == Expect::Data ? reply.code == 354 : is_2xx(reply));
  if (!expected_code)
    return fail(Errc::protocol,
                fmt::format("unexpected reply to {}: {}",
                            command_name(static_cast<int>(command.expect)), reply.to_string()),
                reply);

  switch (command.expect) {
    case Expect::Rset:
      if (!is_2xx(reply))
        return fail(Errc::protocol, fmt::format("server rejected RSET: {}", reply.to_string()),
                    reply);
      break;
    case Expect::Mail:
      if (is_2xx(reply)) {
        tx_.mail_ok = true;
      } else {
        tx_.failure = reply;
        // With PIPELINING the RCPT and DATA replies are still on their way.
        if (!caps_.pipelining) return finish_transaction(false, reply);
      }
      break;
    case Expect::Rcpt: {
      Event event{EventType::RecipientResult};
      event.reply = reply;
      event.index = command.index;
      events_.push_back(std::move(event));
      if (is_2xx(reply))
        ++tx_.accepted;
      else if (!tx_.failure)
        tx_.failure = reply;
      const bool last = command.index + 1 == tx_.recipients;
      if (last && tx_.accepted == 0 && !caps_.pipelining)
        return finish_transaction(false, *tx_.failure);
      break;
    }
    case Expect::Data: {
      const bool deliverable = tx_.mail_ok && tx_.accepted > 0;
      if (reply.code == 354) {
        // RFC 2920 3.1: if nobody is left to receive it, end DATA with no content.
        // The body is most of what a session writes: hand it over, not a copy.
        if (deliverable && output_.empty())
          output_.swap(tx_.data);
        else
          output_.append(deliverable ? std::string_view(tx_.data) : std::string_view(".\r\n"));
        body_sent_ = body_sent_ || deliverable;
        awaiting_.push_back(Command{"", deliverable ? Expect::DataEnd : Expect::DataDiscard});
        tx_.data = std::string{};
      } else {
        return finish_transaction(false, deliverable || !tx_.failure ? reply : *tx_.failure);
      }
      break;
    }
    case Expect::DataEnd:
      return finish_transaction(is_2xx(reply), reply);
    case Expect::DataDiscard:
      return finish_transaction(false, tx_.failure ? *tx_.failure : reply);
  }
  flush_commands();
}

void ClientSession::finish_transaction(bool accepted, Reply reply) {
  Event event{EventType::MessageDone};
  event.reply = std::move(reply);
  event.accepted = accepted;
  events_.push_back(std::move(event));
  // A failed transaction may have left sender or recipients behind on the server.
  need_rset_ = !accepted;
  queued_.clear();
  awaiting_.clear();
  tx_ = Transaction{};
  enter_ready();
}

void ClientSession::local_failure(int code, std::string_view text) {
  Reply reply;
  reply.code = code;
  reply.lines.emplace_back(fmt::format("{} (local check, nothing sent)", text));
  reply.enhanced = parse_enhanced_status(reply.lines.front(), code);
  Event event{EventType::MessageDone};
  event.reply = std::move(reply);
  events_.push_back(std::move(event));
  enter_ready();
}

}  // namespace sg::smtp
