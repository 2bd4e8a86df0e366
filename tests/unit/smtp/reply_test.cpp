#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/smtp.hpp"

namespace {

using sg::smtp::EnhancedStatus;
using sg::smtp::parse_enhanced_status;
using sg::smtp::Reply;
using sg::smtp::ReplyParser;

std::vector<Reply> parse_all(std::string_view bytes, bool bytewise) {
  ReplyParser parser;
  std::vector<Reply> replies;
  auto drain = [&] {
    while (auto reply = parser.next()) replies.push_back(std::move(*reply));
  };
  if (bytewise) {
    for (char c : bytes) {
      EXPECT_TRUE(parser.feed(std::string_view(&c, 1)).ok());
      drain();
    }
  } else {
    EXPECT_TRUE(parser.feed(bytes).ok());
    drain();
  }
  return replies;
}

class ReplyChunking : public testing::TestWithParam<bool> {};

TEST_P(ReplyChunking, ParsesMultiLineRepliesInOrder) {
  const std::string bytes =
      "220 mx.example ESMTP ready\r\n"
      "250-mx.example greets you\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250 8BITMIME\r\n"
      "550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n";
  const std::vector<Reply> replies = parse_all(bytes, GetParam());
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].code, 220);
  EXPECT_EQ(replies[0].lines, std::vector<std::string>{"mx.example ESMTP ready"});
  EXPECT_EQ(replies[1].code, 250);
  EXPECT_EQ(replies[1].lines, (std::vector<std::string>{"mx.example greets you", "PIPELINING",
                                                        "SIZE 35882577", "8BITMIME"}));
  EXPECT_FALSE(replies[1].enhanced.has_value());
  EXPECT_EQ(replies[2].code, 550);
  ASSERT_TRUE(replies[2].enhanced.has_value());
  EXPECT_EQ(*replies[2].enhanced, (EnhancedStatus{5, 1, 1}));
  EXPECT_TRUE(replies[2].permanent());
  EXPECT_FALSE(replies[2].positive());
}

TEST_P(ReplyChunking, AcceptsBareLfAndCodeOnlyLines) {
  const std::vector<Reply> replies = parse_all("250-first\n250 second\n354\r\n", GetParam());
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].lines, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(replies[1].code, 354);
  EXPECT_EQ(replies[1].lines, std::vector<std::string>{""});
}

INSTANTIATE_TEST_SUITE_P(WholeAndBytewise, ReplyChunking, testing::Bool());

TEST(ReplyParser, HoldsIncompleteReplyUntilLastLine) {
  ReplyParser parser;
  ASSERT_TRUE(parser.feed("250-a\r\n250-b\r").ok());
  EXPECT_FALSE(parser.next().has_value());
  EXPECT_TRUE(parser.has_pending());
  ASSERT_TRUE(parser.feed("\n250 c\r\n").ok());
  auto reply = parser.next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->lines.size(), 3u);
  EXPECT_FALSE(parser.has_pending());
}

TEST(ReplyParser, RejectsMalformedLines) {
  for (const char* bad : {"abc\r\n", "25\r\n", "2500 x\r\n", "250_x\r\n", "600 x\r\n", "199 x\r\n",
                          "25a ok\r\n", " 250 ok\r\n", "\r\n"}) {
    ReplyParser parser;
    const auto result = parser.feed(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.error().code, sg::Errc::protocol);
    EXPECT_FALSE(parser.next().has_value());
  }
}

TEST(ReplyParser, RejectsMixedCodesInMultiLineReply) {
  ReplyParser parser;
  const auto result = parser.feed("250-a\r\n251 b\r\n");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("mixes codes 250 and 251"), std::string::npos);
}

TEST(ReplyParser, RejectsOverlongLinesEvenWithoutLineEnd) {
  ReplyParser complete;
  EXPECT_TRUE(complete.feed("250 " + std::string(2044, 'x') + "\r\n").ok());
  EXPECT_TRUE(complete.next().has_value());
  ReplyParser with_end;
  EXPECT_FALSE(with_end.feed("250 " + std::string(2045, 'x') + "\r\n").ok());
  ReplyParser without_end;
  EXPECT_TRUE(without_end.feed("250 " + std::string(2000, 'x')).ok());
  EXPECT_FALSE(without_end.feed(std::string(100, 'x')).ok());
}

TEST(ReplyParser, RejectsEndlessMultiLineReply) {
  ReplyParser parser;
  std::string many;
  for (std::size_t i = 0; i <= ReplyParser::kMaxLines; ++i) many += "250-x\r\n";
  EXPECT_FALSE(parser.feed(many).ok());
}

TEST(ReplyParser, StaysFailedAfterError) {
  ReplyParser parser;
  EXPECT_FALSE(parser.feed("hello\r\n").ok());
  EXPECT_FALSE(parser.feed("250 ok\r\n").ok());
  EXPECT_FALSE(parser.next().has_value());
}

TEST(EnhancedStatus, ParsesOnlyWellFormedMatchingClass) {
  EXPECT_EQ(parse_enhanced_status("5.7.8 Authentication credentials invalid", 535),
            (EnhancedStatus{5, 7, 8}));
  EXPECT_EQ(parse_enhanced_status("2.0.0", 250), (EnhancedStatus{2, 0, 0}));
  EXPECT_EQ(parse_enhanced_status("4.123.999 busy", 451), (EnhancedStatus{4, 123, 999}));
  EXPECT_FALSE(parse_enhanced_status("2.1.1 class differs from code", 550));
  EXPECT_FALSE(parse_enhanced_status("3.0.0 no class 3", 354));
  EXPECT_FALSE(parse_enhanced_status("5.1234.1 too long", 550));
  EXPECT_FALSE(parse_enhanced_status("5.1.1x glued", 550));
  EXPECT_FALSE(parse_enhanced_status("5.1. missing", 550));
  EXPECT_FALSE(parse_enhanced_status("Ok", 250));
  EXPECT_EQ(EnhancedStatus({5, 7, 8}).to_string(), "5.7.8");
}

TEST(Reply, TextAndToStringAreOneSanitisedLine) {
  Reply reply;
  reply.code = 535;
  reply.lines = {"5.7.8 Authentication credentials invalid"};
  EXPECT_EQ(reply.to_string(), "535 5.7.8 Authentication credentials invalid");
  reply.lines = {"first", "fake\x1b[31m log\xff"};
  EXPECT_EQ(reply.text(), "first / fake?[31m log?");
  EXPECT_EQ(reply.to_string(), "535 first / fake?[31m log?");
  reply.lines = {std::string(5000, 'a')};
  EXPECT_EQ(reply.to_string().size(), Reply::kMaxDescription);
  Reply bare;
  bare.code = 250;
  bare.lines = {""};
  EXPECT_EQ(bare.to_string(), "250");
}

}  // namespace
