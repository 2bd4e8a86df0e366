// ServerSession command handlers: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
// VRFY, HELP, QUIT, STARTTLS (RFC 3207) and AUTH PLAIN/LOGIN (RFC 4954).
// Replies never echo client text, so nothing a client sends (or a password it
// mistypes into a command) comes back in a reply or a log of our replies.
#include <sodium.h>

#include <charconv>
#include <string>

#include "base/secret.hpp"
#include "base/text.hpp"
#include "smtp/server_session.hpp"

namespace sg::smtp {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

// Printable ASCII without spaces at either end: what may go into a Received
// header later. Internal spaces are tolerated (some clients send them).
bool valid_helo(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  return true;
}

// RFC 5321 esmtp-keyword: (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
bool valid_keyword(std::string_view keyword) {
  if (keyword.empty() || keyword.front() == '-') return false;
  for (char c : keyword)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  return true;
}

// RFC 5321 esmtp-value: %d33-60 / %d62-126 (RFC 6531 adds UTF-8).
bool valid_value(std::string_view value) {
  if (value.empty()) return false;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 33 || u == '=' || u == 127) return false;
  }
  return valid_utf8(value);
}

// Decodes base64 straight into locked memory; nullopt when malformed.
std::optional<Secret> decode_secret(std::string_view base64) {
  if (base64.empty()) return Secret{};
  ensure_sodium();
  Secret out(base64.size() / 4 * 3 + 3);
  std::size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), base64.data(), base64.size(), nullptr, &length,
                        &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != base64.data() + base64.size())
    return std::nullopt;
  if (length == 0) return Secret{};
  out.truncate(length);
  return out;
}

bool printable_name(std::string_view name) {
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return valid_utf8(name);
}

}  // namespace

void ServerSession::command(std::string_view line) {
  const std::size_t space = line.find(' ');
  const std::string verb = upper(line.substr(0, space));
  const std::string_view argument =
      space == std::string_view::npos ? std::string_view{} : trim(line.substr(space + 1));

  if (verb == "EHLO" || verb == "HELO") return on_helo(argument, verb == "EHLO");
  if (verb == "MAIL") return on_mail(argument);
  if (verb == "RCPT") return on_rcpt(argument);
  if (verb == "DATA") return on_data(argument);
  if (verb == "STARTTLS") return on_starttls(argument);
  if (verb == "AUTH") return on_auth(argument);
  if (verb == "RSET") {
    if (!argument.empty()) return error(501, "5.5.4", "Syntax: RSET");
    end_transaction(false);
    emit(ServerEventType::Reset);
    return reply(250, "2.0.0", "Ok");
  }
  if (verb == "NOOP") return reply(250, "2.0.0", "Ok");
  if (verb == "VRFY") {
    if (argument.empty()) return error(501, "5.5.4", "Syntax: VRFY address");
    return reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
  }
  if (verb == "HELP")
    return reply(214, "2.0.0",
                 "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS AUTH");
  if (verb == "QUIT") {
    reply(221, "2.0.0", "Bye");
    emit(ServerEventType::Quit);
    phase_ = Phase::Closed;
    return;
  }
  // A web browser or proxy talking to us (cross-protocol attack): hang up.
  if (verb == "GET" || verb == "POST" || verb == "HEAD" || verb == "PUT" || verb == "CONNECT")
    return close_with(421, "4.7.0", "Error: this is an SMTP server");
  if (verb == "EXPN" || verb == "BDAT" || verb == "ETRN" || verb == "TURN")
    return error(502, "5.5.1", "Error: command not implemented");
  error(500, "5.5.2", "Error: command not recognized");
}

void ServerSession::on_helo(std::string_view argument, bool extended) {
  if (!valid_helo(argument))
    return error(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
  end_transaction(true);
  helo_ = argument;
  esmtp_ = extended;
  if (!extended) return reply_raw("250 " + options_.hostname);
  std::vector<std::string> lines = {
      options_.hostname, "PIPELINING", "SIZE " + std::to_string(options_.max_message_size),
      "8BITMIME",        "SMTPUTF8",   "ENHANCEDSTATUSCODES"};
  if (options_.starttls_available && !tls_active_) lines.push_back("STARTTLS");
  if (options_.auth_offered && (tls_active_ || options_.auth_without_tls))
    lines.push_back("AUTH PLAIN LOGIN");
  lines.push_back("HELP");
  for (std::size_t i = 0; i < lines.size(); ++i)
    reply_raw((i + 1 < lines.size() ? "250-" : "250 ") + lines[i]);
}

bool ServerSession::parse_params(std::string_view text,
                                 std::vector<std::pair<std::string, std::string>>& out) {
  for (std::string_view item : split(text, ' ')) {
    if (item.empty()) continue;  // tolerate repeated spaces
    const std::size_t equals = item.find('=');
    const std::string_view keyword = item.substr(0, equals);
    const std::string_view value =
        equals == std::string_view::npos ? std::string_view{} : item.substr(equals + 1);
    if (!valid_keyword(keyword) || (equals != std::string_view::npos && !valid_value(value))) {
      error(501, "5.5.4", "Error: bad parameter syntax");
      return false;
    }
    std::string name = upper(keyword);
    for (const auto& [seen, unused] : out)
      if (seen == name) {
        error(501, "5.5.4", "Error: duplicate parameter");
        return false;
      }
    out.emplace_back(std::move(name), std::string(value));
  }
  return true;
}

void ServerSession::on_mail(std::string_view argument) {
  if (helo_.empty()) return error(503, "5.5.1", "Error: send HELO/EHLO first");
  if (mail_) return error(503, "5.5.1", "Error: nested MAIL command");
  if (!istarts_with(argument, "FROM:")) return error(501, "5.5.4", "Syntax: MAIL FROM:<address>");
  const std::string_view rest = trim(argument.substr(5));
  const std::size_t length = path_length(rest);
  if (length == std::string_view::npos || (length < rest.size() && rest[length] != ' '))
    return error(501, "5.5.4", "Syntax: MAIL FROM:<address>");

  ServerEvent event{ServerEventType::MailFrom};
  if (!parse_params(rest.substr(length), event.params)) return;
  if (!esmtp_ && !event.params.empty())
    return error(555, "5.5.4", "Error: MAIL parameters need EHLO");
  bool utf8 = false;
  for (const auto& [name, value] : event.params) {
    if (name == "SIZE") {
      std::uint64_t size = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), size);
      if (value.empty() || value[0] < '0' || value[0] > '9' ||
          (ec != std::errc{} && ec != std::errc::result_out_of_range) ||
          end != value.data() + value.size())
        return error(501, "5.5.4", "Error: bad SIZE parameter");
      if (ec == std::errc::result_out_of_range || size > options_.max_message_size)
        return error(552, "5.3.4", "Error: message size exceeds fixed maximum message size");
    } else if (name == "BODY") {
      if (!iequals(value, "7BIT") && !iequals(value, "8BITMIME"))
        return error(501, "5.5.4", "Error: BODY must be 7BIT or 8BITMIME");
    } else if (name == "SMTPUTF8") {
      if (!value.empty()) return error(501, "5.5.4", "Error: SMTPUTF8 takes no value");
      utf8 = true;
    } else if (name == "AUTH") {
      // RFC 4954 section 5: accepted and left to the driver (MTAs send AUTH=<>).
      if (value.empty()) return error(501, "5.5.4", "Error: AUTH parameter needs a value");
    } else {
      return error(555, "5.5.4", "Error: unsupported MAIL parameter");
    }
  }

  PathResult path = parse_path(rest.substr(0, length), true, utf8);
  if (!path) {
    const PathError& failure = path.error();
    // 5.1.3 is about destinations; the sender's syntax code is 5.1.7.
    return error(failure.code, failure.enhanced == "5.1.3" ? "5.1.7" : failure.enhanced,
                 failure.text);
  }
  event.address = std::move(path).value();
  pending_smtputf8_ = utf8;
  emit(std::move(event));
  pending_ = Pending::MailFrom;
}

void ServerSession::on_rcpt(std::string_view argument) {
  if (!mail_) return error(503, "5.5.1", "Error: need MAIL command");
  if (!istarts_with(argument, "TO:")) return error(501, "5.5.4", "Syntax: RCPT TO:<address>");
  const std::string_view rest = trim(argument.substr(3));
  const std::size_t length = path_length(rest);
  if (length == std::string_view::npos || (length < rest.size() && rest[length] != ' '))
    return error(501, "5.5.4", "Syntax: RCPT TO:<address>");

  ServerEvent event{ServerEventType::RcptTo};
  if (!parse_params(rest.substr(length), event.params)) return;
  if (!event.params.empty()) return error(555, "5.5.4", "Error: unsupported RCPT parameter");
  if (recipients_ >= options_.max_recipients)
    return error(452, "4.5.3", "Error: too many recipients");
  PathResult path = parse_path(rest.substr(0, length), false, smtputf8_);
  if (!path) return error(path.error().code, path.error().enhanced, path.error().text);
  event.address = std::move(path).value();
  emit(std::move(event));
  pending_ = Pending::RcptTo;
}

void ServerSession::on_data(std::string_view argument) {
  if (!argument.empty()) return error(501, "5.5.4", "Syntax: DATA");
  if (!mail_) return error(503, "5.5.1", "Error: need MAIL command");
  if (recipients_ == 0) return error(503, "5.5.1", "Error: need RCPT command");
  reply_raw("354 End data with <CR><LF>.<CR><LF>");
  data_ = DataState{};
  phase_ = Phase::Data;
}

void ServerSession::on_starttls(std::string_view argument) {
  if (!argument.empty()) return error(501, "5.5.4", "Syntax: STARTTLS");
  if (tls_active_) return error(503, "5.5.1", "Error: TLS already active");
  if (!options_.starttls_available) return error(502, "5.5.1", "Error: command not implemented");
  if (helo_.empty()) return error(503, "5.5.1", "Error: send EHLO first");
  if (mail_) return error(503, "5.5.1", "Error: MAIL transaction in progress");
  // CVE-2011-0411 class: anything after STARTTLS in the same read would be
  // taken as sent inside TLS. Refuse and hang up; nothing was accepted yet.
  if (consumed_ < input_.size())
    return close_with(554, "5.5.1", "Error: command pipelined after STARTTLS");
  reply(220, "2.0.0", "Ready to start TLS");
  emit(ServerEventType::StartTls);
  phase_ = Phase::TlsHandshake;
}

void ServerSession::on_auth(std::string_view argument) {
  if (!options_.auth_offered) return error(503, "5.5.1", "Error: authentication not enabled");
  if (!tls_active_ && !options_.auth_without_tls) {
    if (options_.starttls_available)
      return error(538, "5.7.11", "Encryption required for requested authentication mechanism");
    return error(503, "5.5.1", "Error: authentication not enabled");
  }
  if (!esmtp_) return error(503, "5.5.1", "Error: send EHLO first");
  if (authenticated_) return error(503, "5.5.1", "Error: already authenticated");
  if (mail_) return error(503, "5.5.1", "Error: MAIL transaction in progress");
  const std::size_t space = argument.find(' ');
  const std::string mechanism = upper(argument.substr(0, space));
  const std::string_view initial =
      space == std::string_view::npos ? std::string_view{} : argument.substr(space + 1);
  if (mechanism.empty() || initial.find(' ') != std::string_view::npos)
    return error(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
  const bool has_initial = space != std::string_view::npos;
  // "=" is an empty initial response (RFC 4954 section 4).
  const std::string_view response = initial == "=" ? std::string_view{} : initial;
  if (mechanism == "PLAIN") {
    if (has_initial) return auth_plain(response);
    reply_raw("334 ");
    phase_ = Phase::AuthPlain;
  } else if (mechanism == "LOGIN") {
    if (has_initial) return auth_login_user(response);
    reply_raw("334 VXNlcm5hbWU6");  // "Username:"
    phase_ = Phase::AuthLoginUser;
  } else {
    error(504, "5.5.4", "Error: unrecognized authentication type");
  }
}

void ServerSession::auth_continuation(std::string_view line) {
  const Phase step = phase_;
  phase_ = Phase::Command;
  if (line == "*") {
    pending_user_.clear();
    return error(501, "5.7.0", "Authentication cancelled");
  }
  if (step == Phase::AuthPlain) return auth_plain(line);
  if (step == Phase::AuthLoginUser) return auth_login_user(line);
  auth_login_password(line);
}

void ServerSession::auth_plain(std::string_view base64) {
  const std::optional<Secret> blob = decode_secret(base64);
  if (!blob) return error(501, "5.5.2", "Error: invalid base64 data");
  // authzid NUL authcid NUL passwd (RFC 4616)
  const std::string_view message = blob->view();
  const std::size_t first = message.find('\0');
  const std::size_t second =
      first == std::string_view::npos ? first : message.find('\0', first + 1);
  if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos)
    return error(501, "5.5.2", "Error: malformed PLAIN response");
  const std::string_view authzid = message.substr(0, first);
  const std::string_view authcid = message.substr(first + 1, second - first - 1);
  if (authcid.empty() || !printable_name(authcid) || second + 1 == message.size())
    return error(535, "5.7.8", "Authentication credentials invalid");
  if (!authzid.empty() && authzid != authcid)
    return error(535, "5.7.8", "Error: authorization identity must be empty or the user name");
  ServerEvent event{ServerEventType::Auth};
  event.mechanism = "PLAIN";
  event.username = authcid;
  event.password = Secret::copy_of(message.substr(second + 1));
  pending_user_ = authcid;
  emit(std::move(event));
  pending_ = Pending::Auth;
}

void ServerSession::auth_login_user(std::string_view base64) {
  const std::optional<Secret> user = decode_secret(base64);
  if (!user) return error(501, "5.5.2", "Error: invalid base64 data");
  if (user->empty() || !printable_name(user->view()))
    return error(535, "5.7.8", "Authentication credentials invalid");
  pending_user_ = user->view();
  reply_raw("334 UGFzc3dvcmQ6");  // "Password:"
  phase_ = Phase::AuthLoginPassword;
}

void ServerSession::auth_login_password(std::string_view base64) {
  std::optional<Secret> password = decode_secret(base64);
  if (!password) {
    pending_user_.clear();
    return error(501, "5.5.2", "Error: invalid base64 data");
  }
  if (password->empty()) {
    pending_user_.clear();
    return error(535, "5.7.8", "Authentication credentials invalid");
  }
  ServerEvent event{ServerEventType::Auth};
  event.mechanism = "LOGIN";
  event.username = pending_user_;
  event.password = std::move(*password);
  emit(std::move(event));
  pending_ = Pending::Auth;
}

}  // namespace sg::smtp
