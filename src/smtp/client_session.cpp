// Connection phase of ClientSession: greeting, EHLO/HELO, STARTTLS, AUTH,
// QUIT and the plumbing shared with the transaction phase
// (client_transaction.cpp).
#include "smtp/client_session.hpp"

#include <fmt/format.h>

#include <utility>

#include "base/encoding.hpp"

namespace sg::smtp {

namespace {

bool is_2xx(const Reply& reply) {
  return reply.code >= 200 && reply.code < 300;
}

// A hostname or address literal: printable ASCII without spaces.
bool valid_ehlo_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

}  // namespace

ClientSession::ClientSession(ClientOptions options)
    : options_(std::move(options)), tls_active_(options_.implicit_tls) {}

ClientSession::~ClientSession() {
  wipe(output_.data(), output_.size());
}

void ClientSession::receive(std::string_view bytes) {
  // One line at a time, so that bytes following the 220 to STARTTLS in the
  // same read are caught before they can be parsed as replies.
  while (!bytes.empty() && !finished()) {
    if (state_ == State::TlsHandshake)
      return fail(Errc::tls,
                  "server sent data after its 220 to STARTTLS, before the TLS handshake "
                  "(possible response injection)");
    const std::size_t newline = bytes.find('\n');
    const std::size_t length = newline == std::string_view::npos ? bytes.size() : newline + 1;
    if (auto fed = parser_.feed(bytes.substr(0, length)); !fed)
      return fail(Errc::protocol, fed.error().message);
    bytes.remove_prefix(length);
    input_follows_ = !bytes.empty();
    while (!finished() && state_ != State::TlsHandshake) {
      std::optional<Reply> reply = parser_.next();
      if (!reply) break;
      handle(*reply);
    }
  }
}

void ClientSession::tls_established() {
  if (finished()) return;
  if (state_ != State::TlsHandshake)
    return fail(Errc::protocol, "tls_established() called without a STARTTLS in progress");
  // RFC 3207: forget everything learnt before TLS and ask again.
  parser_ = ReplyParser{};
  caps_ = Capabilities{};
  tls_active_ = true;
  send("EHLO " + options_.ehlo_name);
  state_ = State::Ehlo;
}

void ClientSession::connection_lost() {
  if (finished()) return;
  if (state_ == State::Quit) {
    state_ = State::Closed;
    events_.push_back(Event{EventType::Closed});
    return;
  }
  fail(Errc::temp_failure, state_ == State::Transaction
                               ? "connection closed by server during a mail transaction"
                               : "connection closed by server");
}

void ClientSession::quit() {
  if (finished() || state_ == State::Quit) return;
  if (state_ != State::Ready) {
    quit_pending_ = true;
    return;
  }
  send("QUIT");
  state_ = State::Quit;
}

std::string ClientSession::take_output(bool* holds_secret) {
  if (holds_secret != nullptr) *holds_secret = output_holds_secret_;
  output_holds_secret_ = false;
  std::string out;
  out.swap(output_);
  return out;
}

std::optional<Event> ClientSession::next_event() {
  if (events_.empty()) return std::nullopt;
  Event event = std::move(events_.front());
  events_.pop_front();
  return event;
}

void ClientSession::handle(const Reply& reply) {
  if (state_ == State::Quit) {
    // Whatever the server answers to QUIT, the session is over.
    state_ = State::Closed;
    return emit(EventType::Closed, reply);
  }
  if (reply.code == 421)
    return fail(Errc::temp_failure,
                fmt::format("server is closing the connection: {}", reply.to_string()), reply);
  switch (state_) {
    case State::Greeting:
      return on_greeting(reply);
    case State::Ehlo:
      return on_ehlo(reply);
    case State::Helo:
      return on_helo(reply);
    case State::StartTls:
      return on_starttls(reply);
    case State::AuthPlain:
    case State::AuthLoginUser:
    case State::AuthLoginPassword:
    case State::AuthLoginResult:
      return on_auth(reply);
    case State::Transaction:
      return on_transaction(reply);
    default:
      return fail(Errc::protocol,
                  fmt::format("unexpected server reply while idle: {}", reply.to_string()), reply);
  }
}

void ClientSession::on_greeting(const Reply& reply) {
  if (reply.code != 220) {
    const Errc code = reply.transient()   ? Errc::temp_failure
                      : reply.permanent() ? Errc::perm_failure
                                          : Errc::protocol;
    return fail(code, fmt::format("server refused the connection: {}", reply.to_string()), reply);
  }
  emit(EventType::Greeting, reply);
  if (!valid_ehlo_name(options_.ehlo_name))
    return fail(Errc::invalid_input, "EHLO name must be printable ASCII without spaces");
  send("EHLO " + options_.ehlo_name);
  state_ = State::Ehlo;
}

void ClientSession::on_ehlo(const Reply& reply) {
  if (is_2xx(reply)) {
    ehlo_succeeded_ = true;
    caps_ = parse_capabilities(reply);
    emit(EventType::Capabilities, reply);
    return after_capabilities();
  }
  if (reply.permanent() && !ehlo_succeeded_) {
    send("HELO " + options_.ehlo_name);  // RFC 5321 4.1.4: old server, no extensions
    state_ = State::Helo;
    return;
  }
  const Errc code = reply.transient()   ? Errc::temp_failure
                    : reply.permanent() ? Errc::perm_failure
                                        : Errc::protocol;
  fail(code, fmt::format("server rejected EHLO: {}", reply.to_string()), reply);
}

void ClientSession::on_helo(const Reply& reply) {
  if (is_2xx(reply)) {
    caps_ = Capabilities{};
    emit(EventType::Capabilities, reply);
    return after_capabilities();
  }
  const Errc code = reply.transient()   ? Errc::temp_failure
                    : reply.permanent() ? Errc::perm_failure
                                        : Errc::protocol;
  fail(code, fmt::format("server rejected HELO: {}", reply.to_string()), reply);
}

void ClientSession::after_capabilities() {
  if (options_.starttls && !tls_active_) {
    if (!caps_.starttls) return fail(Errc::tls, "server does not offer STARTTLS");
    send("STARTTLS");
    state_ = State::StartTls;
    return;
  }
  begin_auth();
}

void ClientSession::on_starttls(const Reply& reply) {
  if (reply.code == 220) {
    if (parser_.has_pending() || input_follows_)
      return fail(Errc::tls,
                  "server sent data after its 220 to STARTTLS, before the TLS handshake "
                  "(possible response injection)",
                  reply);
    state_ = State::TlsHandshake;
    return emit(EventType::StartTls, reply);
  }
  fail(reply.code >= 400 ? Errc::tls : Errc::protocol,
       fmt::format("server refused STARTTLS: {}", reply.to_string()), reply);
}

void ClientSession::begin_auth() {
  if (options_.username.empty()) return enter_ready();
  const std::string_view password =
      options_.password != nullptr ? options_.password->view() : std::string_view{};
  if (caps_.auth_plain) {
    // RFC 4616: authzid (empty) NUL authcid NUL passwd, sent as initial response.
    Secret plain(options_.username.size() + password.size() + 2);
    auto* out = reinterpret_cast<char*>(plain.data());
    out[0] = '\0';
    options_.username.copy(out + 1, options_.username.size());
    out[1 + options_.username.size()] = '\0';
    password.copy(out + 2 + options_.username.size(), password.size());
    send_secret_base64("AUTH PLAIN ", plain.view());
    state_ = State::AuthPlain;
  } else if (caps_.auth_login) {
    send("AUTH LOGIN");
    state_ = State::AuthLoginUser;
  } else if (options_.require_auth) {
    std::string offered;
    for (const std::string& mechanism : caps_.auth_mechanisms)
      offered += (offered.empty() ? "" : " ") + mechanism;
    fail(Errc::auth, fmt::format("server offers no usable AUTH mechanism (offered: {})",
                                 offered.empty() ? "none" : offered));
  } else {
    enter_ready();
  }
}

void ClientSession::on_auth(const Reply& reply) {
  const bool challenge = reply.code == 334;
  if (challenge && state_ == State::AuthLoginUser) {
    send_secret_base64("", options_.username);
    state_ = State::AuthLoginPassword;
    return;
  }
  if (challenge && state_ == State::AuthLoginPassword) {
    send_secret_base64(
        "", options_.password != nullptr ? options_.password->view() : std::string_view{});
    state_ = State::AuthLoginResult;
    return;
  }
  const bool waiting_for_result = state_ == State::AuthPlain || state_ == State::AuthLoginResult;
  if (is_2xx(reply) && waiting_for_result) {
    emit(EventType::Authenticated, reply);
    return enter_ready();
  }
  if (reply.transient())
    return fail(Errc::temp_failure,
                fmt::format("authentication temporarily failed: {}", reply.to_string()), reply);
  if (reply.permanent())
    return fail(Errc::auth, fmt::format("authentication failed: {}", reply.to_string()), reply);
  fail(Errc::protocol, fmt::format("unexpected reply to AUTH: {}", reply.to_string()), reply);
}

void ClientSession::enter_ready() {
  if (quit_pending_) {
    send("QUIT");
    state_ = State::Quit;
    return;
  }
  state_ = State::Ready;
  emit(EventType::Ready);
}

void ClientSession::send(std::string_view line) {
  output_.append(line);
  output_.append("\r\n");
}

void ClientSession::send_secret_base64(std::string_view prefix, std::string_view secret) {
  std::string encoded = base64_encode(secret);
  // Reserve first so the secret is never left behind in a freed buffer.
  output_.reserve(output_.size() + prefix.size() + encoded.size() + 2);
  output_holds_secret_ = true;
  output_.append(prefix);
  output_.append(encoded);
  output_.append("\r\n");
  wipe(encoded.data(), encoded.size());
}

void ClientSession::emit(EventType type, Reply reply) {
  Event event{type};
  event.reply = std::move(reply);
  events_.push_back(std::move(event));
}

void ClientSession::fail(Errc code, std::string message, Reply reply) {
  Event event{EventType::Failed};
  event.reply = std::move(reply);
  event.error = Error{code, std::move(message)};
  events_.push_back(std::move(event));
  state_ = State::Failed;
  // Nothing queued is worth sending to a server we give up on.
  wipe(output_.data(), output_.size());
  output_.clear();
  queued_.clear();
  awaiting_.clear();
  tx_ = Transaction{};
}

}  // namespace sg::smtp
