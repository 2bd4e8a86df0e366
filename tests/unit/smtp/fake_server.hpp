// Scripted fake server for ClientSession transcripts: feeds server bytes
// (whole or one byte at a time) and hands back what the client wrote.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/smtp.hpp"

namespace sg::smtp {

// Readable event names in gtest failure messages.
inline void PrintTo(EventType type, std::ostream* os) {
  static const char* const names[] = {"Greeting",      "Capabilities", "StartTls",
                                      "Authenticated", "Ready",        "RecipientResult",
                                      "MessageDone",   "Closed",       "Failed"};
  *os << names[static_cast<int>(type)];
}

namespace testing {

class FakeServer {
 public:
  FakeServer(ClientOptions options, bool bytewise)
      : session_(std::move(options)), bytewise_(bytewise) {}

  // Server sends `bytes`; returns the client's bytes written in response.
  std::string say(std::string_view bytes) {
    if (bytewise_) {
      for (char c : bytes) session_.receive(std::string_view(&c, 1));
    } else {
      session_.receive(bytes);
    }
    return session_.take_output(&last_held_secret_);
  }
  // Whether the bytes the last say() returned held AUTH data.
  bool last_held_secret() const { return last_held_secret_; }

  std::vector<Event> events() {
    std::vector<Event> out;
    while (auto event = session_.next_event()) out.push_back(std::move(*event));
    return out;
  }
  std::vector<EventType> event_types() {
    std::vector<EventType> out;
    for (const Event& event : events()) out.push_back(event.type);
    return out;
  }

  ClientSession& session() { return session_; }

 private:
  ClientSession session_;
  bool bytewise_;
  bool last_held_secret_ = false;
};

inline Message make_message(std::string from, std::vector<std::string> to, std::string data) {
  Message message;
  message.envelope.mail_from = std::move(from);
  message.envelope.rcpt_to = std::move(to);
  message.data = std::move(data);
  return message;
}

}  // namespace testing
}  // namespace sg::smtp
