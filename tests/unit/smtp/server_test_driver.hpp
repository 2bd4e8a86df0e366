// Test driver for ServerSession transcripts: feeds client bytes one octet at
// a time, line by line, or all at once (pipelined), answers decisions with a
// pluggable policy and collects the replies and events.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "smtp/smtp.hpp"

namespace sg::smtp {

inline void PrintTo(ServerEventType type, std::ostream* os) {
  static const char* const names[] = {"Auth",     "MailFrom", "RcptTo", "Message",
                                      "StartTls", "Reset",    "Quit"};
  *os << names[static_cast<int>(type)];
}

namespace testing {

enum class Feed { Bytewise, Lines, AllAtOnce };

inline std::string feed_name(const ::testing::TestParamInfo<Feed>& info) {
  static const char* const names[] = {"Bytewise", "Lines", "AllAtOnce"};
  return names[static_cast<int>(info.param)];
}

// The decisions a relay would take for a well-behaved client: user/pass is
// the only valid login, everything else is accepted; messages get queue ids
// Q1, Q2, ...; STARTTLS "handshakes" at once.
class Driver {
 public:
  using Decide = std::function<void(Driver&, const ServerEvent&)>;

  Driver(ServerOptions options, Feed feed, Decide decide = {})
      : session_(std::move(options)), feed_(feed), decide_(std::move(decide)) {}

  static ServerOptions loopback() {
    ServerOptions options;
    options.hostname = "mx.test";
    options.auth_without_tls = true;
    return options;
  }

  void accept_all(const ServerEvent& event) {
    switch (event.type) {
      case ServerEventType::Auth:
        return session_.answer_auth(event.username == "user" && event.password.view() == "pass");
      case ServerEventType::MailFrom:
        return session_.accept();
      case ServerEventType::RcptTo:
        return session_.accept("2.1.5", "Ok");
      case ServerEventType::Message:
        return session_.accept("2.0.0", "queued as Q" + std::to_string(++queued_));
      case ServerEventType::StartTls:
        return session_.tls_established();
      default:
        return;
    }
  }

  std::string start() {
    session_.start();
    pump();
    return session_.take_output();
  }

  // Client sends `bytes`; returns everything the server wrote meanwhile.
  std::string send(std::string_view bytes) {
    if (feed_ == Feed::Bytewise) {
      for (char c : bytes) receive(std::string_view(&c, 1));
    } else if (feed_ == Feed::Lines) {
      while (!bytes.empty()) {
        const std::size_t newline = bytes.find('\n');
        const std::size_t length = newline == std::string_view::npos ? bytes.size() : newline + 1;
        receive(bytes.substr(0, length));
        bytes.remove_prefix(length);
      }
    } else {
      receive(bytes);
    }
    return session_.take_output();
  }

  // Answers decisions that were left pending (manual policies).
  std::string pump_output() {
    pump();
    return session_.take_output();
  }

  std::vector<ServerEvent> events() { return std::exchange(events_, {}); }
  std::vector<ServerEventType> event_types() {
    std::vector<ServerEventType> out;
    for (const ServerEvent& event : events()) out.push_back(event.type);
    return out;
  }
  ServerSession& session() { return session_; }

 private:
  void receive(std::string_view bytes) {
    session_.receive(bytes);
    pump();
  }
  void pump() {
    while (auto event = session_.next_event()) {
      if (decide_)
        decide_(*this, *event);
      else
        accept_all(*event);
      events_.push_back(std::move(*event));
    }
  }

  ServerSession session_;
  Feed feed_;
  Decide decide_;
  std::vector<ServerEvent> events_;
  int queued_ = 0;
};

inline constexpr std::string_view kGreeting = "220 mx.test ESMTP\r\n";
inline constexpr std::string_view kEhloReply =
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 40000000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n";
inline constexpr std::string_view kAuthPlainUserPass = "AUTH PLAIN AHVzZXIAcGFzcw==\r\n";

}  // namespace testing
}  // namespace sg::smtp
