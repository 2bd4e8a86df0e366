// Helpers for the delivery tests: replies from wire text, a scripted Rng.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "delivery/delivery.hpp"
#include "smtp/reply.hpp"

namespace sg::delivery::testing {

// A reply as the real parser reads it from "550 5.1.1 text" (one or more
// lines separated by "\r\n").
inline smtp::Reply reply(std::string_view wire) {
  smtp::ReplyParser parser;
  EXPECT_TRUE(parser.feed(std::string(wire) + "\r\n").ok()) << wire;
  auto r = parser.next();
  EXPECT_TRUE(r.has_value()) << wire;
  return r ? *r : smtp::Reply{};
}

// Returns the given values in turn, then repeats the last.
class ScriptedRng final : public Rng {
 public:
  explicit ScriptedRng(std::vector<double> values) : values_(std::move(values)) {}
  double unit() override {
    const double v = values_[std::min(next_, values_.size() - 1)];
    ++next_;
    return v;
  }
  std::size_t calls() const { return next_; }

 private:
  std::vector<double> values_;
  std::size_t next_ = 0;
};

inline spool::Envelope envelope_with(std::vector<std::string> addresses, std::int64_t received_at) {
  spool::Envelope e;
  e.id = "0abcdefghjk12345";
  e.received_at = received_at;
  e.mail_from = "alice@shop.example";
  for (auto& a : addresses) e.recipients.push_back(spool::Recipient{.address = std::move(a)});
  return e;
}

}  // namespace sg::delivery::testing
