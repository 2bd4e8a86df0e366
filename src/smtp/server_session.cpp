// ServerSession plumbing: input framing (command lines, DATA), decisions,
// replies and error counting. Command handlers are in server_commands.cpp.
#include "smtp/server_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "base/text.hpp"
#include "smtp/dot_stuff.hpp"

namespace sg::smtp {

namespace {

// "X.Y.Z" whose class matches the reply code; anything else is left out of
// the reply rather than sent malformed.
bool valid_enhanced(std::string_view enhanced, int code) {
  if (enhanced.size() < 5 || enhanced[0] != static_cast<char>('0' + code / 100) ||
      enhanced[1] != '.')
    return false;
  int dots = 0;
  std::size_t digits = 0;
  for (char c : enhanced.substr(2)) {
    if (c == '.') {
      if (digits == 0 || ++dots > 1) return false;
      digits = 0;
    } else if (c >= '0' && c <= '9' && ++digits <= 3) {
    } else {
      return false;
    }
  }
  return dots == 1 && digits > 0;
}

// Reply text from the driver may come from anywhere: keep it one printable line.
std::string printable(std::string_view text) {
  std::string out(text.substr(0, 400));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return out;
}

}  // namespace

ServerSession::ServerSession(ServerOptions options)
    : options_(std::move(options)), tls_active_(options_.tls_active) {}

ServerSession::~ServerSession() {
  // Unprocessed input may hold AUTH data.
  wipe(input_.data(), input_.size());
}

void ServerSession::start() {
  if (phase_ != Phase::NotStarted) return;
  phase_ = Phase::Command;
  reply_raw(fmt::format("220 {} ESMTP", options_.hostname));
  process();
}

void ServerSession::receive(std::string_view bytes) {
  if (phase_ == Phase::Closed) return;
  if (phase_ == Phase::TlsHandshake) {
    // Plaintext after our 220 to STARTTLS: the driver must hand these bytes to
    // TLS, never to us. Treat it as injection and give up on the connection.
    phase_ = Phase::Closed;
    return;
  }
  append_input(bytes);
  if (input_.size() - consumed_ > kMaxPendingInput && pending_ != Pending::None)
    return close_with(421, "4.7.0", "Error: too much pipelined input");
  process();
}

std::optional<ServerEvent> ServerSession::next_event() {
  if (events_.empty()) return std::nullopt;
  ServerEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

std::string ServerSession::take_output() {
  std::string out;
  out.swap(output_);
  return out;
}

void ServerSession::answer_auth(bool ok) {
  if (pending_ != Pending::Auth) return;
  pending_ = Pending::None;
  if (ok) {
    authenticated_ = true;
    auth_user_ = std::move(pending_user_);
    reply(235, "2.7.0", "Authentication successful");
  } else {
    error(535, "5.7.8", "Authentication credentials invalid");
  }
  pending_user_.clear();
  process();
}

void ServerSession::accept(std::string_view enhanced, std::string_view text) {
  switch (pending_) {
    case Pending::None:
    case Pending::Auth:
      return;
    case Pending::MailFrom:
      mail_ = true;
      smtputf8_ = pending_smtputf8_;
      break;
    case Pending::RcptTo:
      ++recipients_;
      break;
    case Pending::Message:
      end_transaction(false);
      break;
  }
  pending_ = Pending::None;
  reply(250, enhanced, text);
  process();
}

void ServerSession::reject(int code, std::string_view enhanced, std::string_view text) {
  if (pending_ == Pending::None || pending_ == Pending::Auth) return;
  if (pending_ == Pending::Message) end_transaction(false);
  pending_ = Pending::None;
  if (code < 400 || code > 599) code = 554;
  if (code == 421) return close_with(code, enhanced, text);
  error(code, enhanced, text);
  process();
}

void ServerSession::tls_established() {
  if (phase_ != Phase::TlsHandshake) return;
  tls_active_ = true;
  // RFC 3207 section 4.2: forget everything the client said before TLS.
  reset_connection_state();
  phase_ = Phase::Command;
  process();
}

void ServerSession::timeout() {
  if (phase_ == Phase::Closed) return;
  if (phase_ == Phase::TlsHandshake) {
    phase_ = Phase::Closed;
    return;
  }
  close_with(421, "4.4.2", fmt::format("{} Error: timeout exceeded", options_.hostname));
}

void ServerSession::shutdown() {
  if (phase_ == Phase::Closed) return;
  if (phase_ == Phase::NotStarted || phase_ == Phase::TlsHandshake) {
    phase_ = Phase::Closed;
    return;
  }
  shutdown_requested_ = true;
  process();
}

void ServerSession::process() {
  while (pending_ == Pending::None) {
    if (phase_ == Phase::Data) {
      if (!read_data()) break;
      end_of_data();
      continue;
    }
    if (phase_ != Phase::Command && phase_ != Phase::AuthPlain && phase_ != Phase::AuthLoginUser &&
        phase_ != Phase::AuthLoginPassword)
      break;
    if (shutdown_requested_) {
      close_with(421, "4.3.2", fmt::format("{} Service shutting down", options_.hostname));
      break;
    }
    const std::optional<Line> line = next_line();
    if (!line) break;
    handle_line(*line);
  }
  if (phase_ == Phase::Closed) {
    wipe(input_.data(), input_.size());
    input_.clear();
    consumed_ = 0;
  } else if (consumed_ > 0 && consumed_ >= input_.size() / 2) {
    // Only when at least half is consumed, so that a long pipelined backlog is
    // not copied once per command. Copy the rest out and wipe the old buffer:
    // it may hold a partial AUTH line.
    std::string rest = input_.substr(consumed_);
    wipe(input_.data(), input_.size());
    input_.swap(rest);
    consumed_ = 0;
  }
}

void ServerSession::append_input(std::string_view bytes) {
  if (input_.size() + bytes.size() > input_.capacity()) {
    // Grow by hand so that no reallocation leaves AUTH bytes behind unwiped.
    std::string grown;
    grown.reserve(std::max(input_.size() + bytes.size(), 2 * input_.capacity()));
    grown.append(input_);
    wipe(input_.data(), input_.size());
    input_.swap(grown);
  }
  input_.append(bytes);
}

std::optional<ServerSession::Line> ServerSession::next_line() {
  const std::string_view rest = std::string_view(input_).substr(consumed_);
  const bool auth = phase_ != Phase::Command || istarts_with(rest, "AUTH ");
  const std::size_t limit = auth ? kMaxAuthLine : kMaxCommandLine;
  const std::size_t newline = rest.find('\n');
  if (newline == std::string_view::npos) {
    if (discarding_ || rest.size() >= limit) {
      // Over-long line: drop what we have (it may be AUTH data) and keep
      // dropping up to its end, where it gets one error reply.
      wipe(input_.data() + consumed_, rest.size());
      consumed_ = input_.size();
      discarding_ = true;
    }
    return std::nullopt;
  }
  Line line;
  line.offset = consumed_;
  line.length = newline + 1;
  consumed_ += line.length;
  line.too_long = discarding_ || line.length > limit;
  discarding_ = false;
  line.bare_lf = newline == 0 || rest[newline - 1] != '\r';
  line.text = rest.substr(0, line.bare_lf ? newline : newline - 1);
  return line;
}

void ServerSession::handle_line(const Line& line) {
  const bool auth = phase_ != Phase::Command || istarts_with(line.text, "AUTH");
  const bool in_auth = phase_ != Phase::Command;
  if (line.too_long || line.bare_lf ||
      line.text.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos) {
    phase_ = Phase::Command;  // cancels an AUTH exchange
    pending_user_.clear();
    if (line.too_long)
      error(500, "5.5.2", "Error: line too long");
    else if (line.bare_lf)
      error(500, "5.5.1", "Error: bare LF received; lines must end with CRLF");
    else
      error(500, "5.5.2", "Error: bare CR or NUL in command line");
  } else if (in_auth) {
    auth_continuation(line.text);
  } else {
    command(line.text);
  }
  if (auth && phase_ != Phase::Closed) wipe(input_.data() + line.offset, line.length);
}

bool ServerSession::read_data() {
  DataState& d = data_;
  const std::string_view rest = std::string_view(input_).substr(consumed_);
  // Appends message octets unless the message is already refused.
  const auto keep = [&](std::string_view bytes) {
    if (d.bare || d.too_long || d.too_big) return;
    if (d.message.size() + bytes.size() > options_.max_message_size) {
      d.too_big = true;
      std::string().swap(d.message);
      return;
    }
    d.message.append(bytes);
  };
  for (std::size_t i = 0; i < rest.size();) {
    const char c = rest[i];
    if (c == '\n') {
      if (!d.cr) {
        d.bare = true;  // bare LF: never a line end, so "\n.\n" ends nothing
        d.after_crlf = false;
      } else if (d.after_crlf && d.line_dot && d.line_length == 1) {
        consumed_ += i + 1;
        return true;
      } else {
        keep("\r\n");
        d.after_crlf = true;
      }
      d.cr = false;
      d.line_length = 0;
      d.line_dot = false;
      ++i;
      continue;
    }
    if (d.cr) {  // the CR before this octet was not part of a CRLF
      d.bare = true;
      ++d.line_length;
    }
    d.cr = c == '\r';
    if (d.cr) {
      ++i;
      continue;
    }
    if (c == '\0') d.bare = true;
    if (d.line_length == 0 && c == '.') {
      d.line_dot = true;  // transparency (RFC 5321 4.5.2): drop the first dot
      d.line_length = 1;
      ++i;
      continue;
    }
    // A run of ordinary octets is taken in one go.
    const std::size_t end = find_line_special(rest.data(), i + 1, rest.size());
    d.line_length += end - i;
    if (d.line_length > kMaxTextLine - 2) d.too_long = true;
    keep(rest.substr(i, end - i));
    i = end;
  }
  consumed_ = input_.size();
  return false;
}

void ServerSession::end_of_data() {
  phase_ = Phase::Command;
  DataState finished = std::exchange(data_, DataState{});
  if (finished.too_big || finished.bare || finished.too_long) {
    end_transaction(true);
    if (finished.too_big)
      error(552, "5.3.4", "Error: message size exceeds fixed maximum message size");
    else if (finished.bare)
      error(550, "5.5.2", "Error: bare CR, bare LF or NUL in message data; message refused");
    else
      error(500, "5.5.2", "Error: message has a line longer than 1000 octets; message refused");
    return;
  }
  ServerEvent event{ServerEventType::Message};
  event.data = std::move(finished.message);
  emit(std::move(event));
  pending_ = Pending::Message;
}

void ServerSession::reply(int code, std::string_view enhanced, std::string_view text) {
  std::string line = std::to_string(code);
  if (valid_enhanced(enhanced, code)) (line += ' ') += enhanced;
  if (!text.empty()) (line += ' ') += printable(text);
  reply_raw(line);
}

void ServerSession::reply_raw(std::string_view line) {
  output_.append(line);
  output_.append("\r\n");
}

void ServerSession::error(int code, std::string_view enhanced, std::string_view text) {
  reply(code, enhanced, text);
  if (options_.max_errors > 0 && ++errors_ >= options_.max_errors)
    close_with(421, "4.7.0", fmt::format("{} Error: too many errors", options_.hostname));
}

void ServerSession::close_with(int code, std::string_view enhanced, std::string_view text) {
  if (phase_ == Phase::Closed) return;
  reply(code, enhanced, text);
  phase_ = Phase::Closed;
  pending_ = Pending::None;
  pending_user_.clear();
}

void ServerSession::emit(ServerEventType type) {
  emit(ServerEvent{type});
}

void ServerSession::emit(ServerEvent event) {
  event.helo = helo_;
  events_.push_back(std::move(event));
}

void ServerSession::end_transaction(bool notify) {
  if (notify && mail_) emit(ServerEventType::Reset);
  mail_ = false;
  smtputf8_ = false;
  recipients_ = 0;
}

void ServerSession::reset_connection_state() {
  end_transaction(false);
  helo_.clear();
  esmtp_ = false;
  authenticated_ = false;
  auth_user_.clear();
  pending_user_.clear();
}

}  // namespace sg::smtp
