// RFC 3464 bounces: structure, fields, and what untrusted text cannot do.
#include <gtest/gtest.h>

#include <limits>

#include "delivery/delivery.hpp"
#include "smtp/message_headers.hpp"
#include "test_util.hpp"

namespace sg::delivery {
namespace {

using spool::RecipientState;
using testing::envelope_with;

constexpr std::int64_t kNow = 1'700'000'000;  // Tue, 14 Nov 2023 22:13:20 +0000
constexpr std::string_view kBoundary = "sg-7Hq2kP9xW4";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find("\r\n", pos);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

// CRLF everywhere, no bare CR or LF, no line of 998 octets or more.
void expect_wire_safe(const std::string& dsn) {
  for (std::size_t i = 0; i < dsn.size(); ++i) {
    if (dsn[i] == '\n') {
      ASSERT_TRUE(i > 0 && dsn[i - 1] == '\r') << "bare LF at " << i;
    }
    if (dsn[i] == '\r') {
      ASSERT_TRUE(i + 1 < dsn.size() && dsn[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  ASSERT_TRUE(dsn.ends_with("\r\n"));
  for (const auto& line : lines_of(dsn)) ASSERT_LT(line.size(), 998u) << line.substr(0, 80);
}

// The MIME parts between "--boundary" lines (without the closing one).
std::vector<std::string> parts_of(const std::string& dsn, std::string_view boundary) {
  const std::string delimiter = "\r\n--" + std::string(boundary);
  std::vector<std::string> parts;
  std::size_t pos = dsn.find(delimiter);
  while (pos != std::string::npos) {
    std::size_t start = pos + delimiter.size();
    if (dsn.compare(start, 2, "--") == 0) break;
    std::size_t next = dsn.find(delimiter, start);
    parts.push_back(
        dsn.substr(start + 2, next == std::string::npos ? std::string::npos : next - start - 2));
    pos = next;
  }
  return parts;
}

spool::Envelope failed_envelope() {
  auto e = envelope_with({"ok@example.net", "bob@example.net", "slow@example.org",
                          "gone@example.com", "plain@example.com"},
                         kNow - 5 * 86400);
  e.recipients[0].state = RecipientState::delivered;
  e.recipients[0].last_reply = "250 Ok 0100-abc";
  e.recipients[1].state = RecipientState::failed;
  e.recipients[1].last_reply = "550 5.1.1 <bob@example.net>: Recipient address rejected";
  e.recipients[2].state = RecipientState::failed;
  e.recipients[2].last_reply = "451 4.4.1 no answer from host";
  e.recipients[3].state = RecipientState::failed;
  e.recipients[3].last_reply = "connection refused";
  e.recipients[4].state = RecipientState::failed;
  e.recipients[4].last_reply = "554 Message rejected";
  return e;
}

constexpr std::string_view kOriginal =
    "From: Alice <alice@shop.example>\r\nTo: bob@example.net\r\nSubject: Your order\r\n"
    "Message-ID: <order-1@shop.example>\r\n\r\nsecret body text\r\n";

TEST(Dsn, IsAMultipartReportWithTheRequiredFields) {
  const std::vector<std::size_t> failed{1, 2, 3, 4};
  const std::string dsn =
      make_dsn(failed_envelope(), failed, kOriginal, "mx.shop.example", kNow, kBoundary);
  expect_wire_safe(dsn);

  EXPECT_EQ(smtp::header_values(dsn, "From"),
            std::vector<std::string>{"Mail Delivery System <MAILER-DAEMON@mx.shop.example>"});
  EXPECT_EQ(smtp::header_values(dsn, "To"), std::vector<std::string>{"<alice@shop.example>"});
  EXPECT_EQ(smtp::header_values(dsn, "Subject"),
            std::vector<std::string>{"Undelivered Mail Returned to Sender"});
  EXPECT_EQ(smtp::header_values(dsn, "Auto-Submitted"), std::vector<std::string>{"auto-replied"});
  EXPECT_EQ(smtp::header_values(dsn, "Date"),
            std::vector<std::string>{"Tue, 14 Nov 2023 22:13:20 +0000"});
  EXPECT_EQ(smtp::header_values(dsn, "MIME-Version"), std::vector<std::string>{"1.0"});
  EXPECT_EQ(smtp::header_values(dsn, "Content-Type"),
            std::vector<std::string>{
                "multipart/report; report-type=delivery-status; boundary=\"sg-7Hq2kP9xW4\""});
  ASSERT_EQ(smtp::header_values(dsn, "Message-ID").size(), 1u);
  EXPECT_TRUE(dsn.ends_with("\r\n--sg-7Hq2kP9xW4--\r\n"));

  auto parts = parts_of(dsn, kBoundary);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(parts[0].starts_with("Content-Description: Notification\r\n"));
  EXPECT_NE(parts[0].find("Content-Type: text/plain; charset=us-ascii\r\n"), std::string::npos);
  EXPECT_NE(parts[0].find("<bob@example.net>: 550 5.1.1"), std::string::npos);
  EXPECT_EQ(parts[0].find("ok@example.net"), std::string::npos);

  const std::string& status = parts[1];
  EXPECT_NE(status.find("Content-Type: message/delivery-status\r\n\r\n"
                        "Reporting-MTA: dns; mx.shop.example\r\n"),
            std::string::npos);
  EXPECT_NE(status.find("Arrival-Date: Thu, 09 Nov 2023 22:13:20 +0000\r\n"), std::string::npos);
  EXPECT_NE(
      status.find("\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: failed\r\n"
                  "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient "
                  "address rejected\r\n"),
      std::string::npos)
      << status;
  EXPECT_NE(status.find("Final-Recipient: rfc822; slow@example.org\r\nAction: failed\r\n"
                        "Status: 5.4.7\r\nDiagnostic-Code: smtp; 451 4.4.1 no answer from host"),
            std::string::npos);
  EXPECT_NE(status.find("Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\n"
                        "Status: 5.4.7\r\nDiagnostic-Code: X-Smtpguard; connection refused"),
            std::string::npos);
  EXPECT_NE(status.find("Final-Recipient: rfc822; plain@example.com\r\nAction: failed\r\n"
                        "Status: 5.0.0\r\n"),
            std::string::npos);
  EXPECT_EQ(status.find("ok@example.net"), std::string::npos);

  EXPECT_TRUE(
      parts[2].starts_with("Content-Description: Undelivered Message Headers\r\n"
                           "Content-Type: text/rfc822-headers\r\n\r\n"
                           "From: Alice <alice@shop.example>\r\nTo: bob@example.net\r\n"
                           "Subject: Your order\r\n"));
  EXPECT_EQ(dsn.find("secret body text"), std::string::npos);
}

TEST(Dsn, OnlyTheListedRecipientsOnceEach) {
  const std::vector<std::size_t> failed{1, 1, 99};
  const std::string dsn = make_dsn(failed_envelope(), failed, kOriginal, "mx", kNow, kBoundary);
  std::size_t count = 0;
  for (std::size_t p = dsn.find("Final-Recipient:"); p != std::string::npos;
       p = dsn.find("Final-Recipient:", p + 1))
    ++count;
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(dsn.find("slow@example.org"), std::string::npos);
}

TEST(Dsn, UntrustedTextCannotInjectHeadersOrBreakLines) {
  auto e = envelope_with({"evil@x\r\nBcc: victim@y"}, kNow);
  e.mail_from = "alice@shop.example>\r\nBcc: other@z";
  e.recipients[0].state = RecipientState::failed;
  e.recipients[0].last_reply = "550 5.7.1 " + std::string(5000, 'A') + "\r\nX-Evil: 1 " +
                               std::string(300, 'b') + " \xff\x01 tail";
  const std::string original =
      "Subject: hi\nX-Long: " + std::string(3000, 'h') + "\nX-Bin: caf\xc3\xa9\r\n\r\nbody";
  const std::vector<std::size_t> failed{0};
  const std::string dsn =
      make_dsn(e, failed, original, "mx.example\r\nX: y", kNow, "bad\"boundary\r\nX-Injected: 1");
  expect_wire_safe(dsn);
  for (const auto& line : lines_of(dsn)) {
    EXPECT_FALSE(line.starts_with("Bcc:")) << line;
    EXPECT_FALSE(line.starts_with("X-Evil:")) << line;
    EXPECT_FALSE(line.starts_with("X-Injected:")) << line;
    EXPECT_FALSE(line.starts_with("X: y")) << line;
    for (char c : line) EXPECT_TRUE(c == '\t' || (c >= 0x20 && c < 0x7f)) << line.substr(0, 60);
  }
  EXPECT_EQ(smtp::header_values(dsn, "To").size(), 1u);
  EXPECT_EQ(smtp::header_values(dsn, "Bcc").size(), 0u);
  EXPECT_NE(dsn.find("Status: 5.7.1\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("X-Bin: caf??\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Subject: hi\r\n"), std::string::npos);
  EXPECT_EQ(dsn.find("body"), std::string::npos);
  // The boundary stays a valid quoted parameter and the copied headers
  // cannot close a part early: exactly three parts.
  const auto ct = smtp::header_values(dsn, "Content-Type");
  ASSERT_EQ(ct.size(), 1u);
  const std::size_t b = ct[0].find("boundary=\"");
  ASSERT_NE(b, std::string::npos);
  const std::string boundary = ct[0].substr(b + 10, ct[0].size() - b - 11);
  EXPECT_EQ(boundary.find_first_of("\"\r\n"), std::string::npos);
  EXPECT_EQ(parts_of(dsn, boundary).size(), 3u);
}

TEST(Dsn, LongDiagnosticsAreFoldedAtSpaces) {
  auto e = envelope_with({"a@x"}, kNow);
  e.recipients[0].state = RecipientState::failed;
  std::string text = "550 5.2.2";
  for (int i = 0; i < 40; ++i) text += " mailbox" + std::to_string(i) + " full";
  e.recipients[0].last_reply = text;
  const std::vector<std::size_t> failed{0};
  const std::string dsn = make_dsn(e, failed, kOriginal, "mx", kNow, kBoundary);
  expect_wire_safe(dsn);
  const std::size_t start = dsn.find("Diagnostic-Code: smtp; ");
  ASSERT_NE(start, std::string::npos);
  std::string unfolded;
  std::size_t folds = 0;
  for (const auto& line : lines_of(dsn.substr(start))) {
    if (!unfolded.empty() && !line.starts_with(" ")) break;
    if (!unfolded.empty()) ++folds;
    EXPECT_LE(line.size(), 78u) << line;
    unfolded += line;
  }
  EXPECT_GT(folds, 3u);
  EXPECT_EQ(unfolded, "Diagnostic-Code: smtp; " + text);
}

TEST(Dsn, CopiedHeadersCannotEndThePartEarly) {
  const std::string original = "Subject: hi\r\n--" + std::string(kBoundary) + "--\r\n--" +
                               std::string(kBoundary) + "\r\nX-After: 1\n\nbody";
  const std::vector<std::size_t> failed{1};
  const std::string dsn = make_dsn(failed_envelope(), failed, original, "mx", kNow, kBoundary);
  expect_wire_safe(dsn);
  auto parts = parts_of(dsn, kBoundary);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(parts[2].ends_with("text/rfc822-headers\r\n\r\nSubject: hi\r\nX-After: 1\r\n"))
      << parts[2];
}

TEST(Dsn, DateFormat) {
  EXPECT_EQ(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(kNow), "Tue, 14 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(rfc5322_date(-5), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(std::numeric_limits<std::int64_t>::max()),
            "Fri, 31 Dec 9999 23:59:59 +0000");
}

TEST(ShouldBounce, NeverForNullSenderOrAutomaticMail) {
  auto e = envelope_with({"a@x"}, kNow);
  EXPECT_TRUE(should_bounce(e));
  EXPECT_TRUE(should_bounce(e, kOriginal));
  EXPECT_TRUE(should_bounce(e, "Auto-Submitted: no (a person)\r\n\r\nx"));
  EXPECT_TRUE(should_bounce(e, "Content-Type: multipart/mixed; boundary=x\r\n\r\n"));
  EXPECT_FALSE(should_bounce(e, "Auto-Submitted: auto-replied\r\n\r\n"));
  EXPECT_FALSE(should_bounce(e, "auto-submitted:   Auto-Generated; x=y\r\n\r\n"));
  EXPECT_FALSE(should_bounce(
      e,
      "Content-Type: multipart/report;\r\n report-type=\"delivery-status\"; boundary=b\r\n\r\n"));
  EXPECT_FALSE(should_bounce(
      e, "Content-Type: Multipart/Report; report-type=disposition-notification\r\n\r\n"));
  // Only the header section counts.
  EXPECT_TRUE(should_bounce(e, "Subject: x\r\n\r\nAuto-Submitted: auto-replied\r\n"));
  e.mail_from = "";
  EXPECT_FALSE(should_bounce(e));
  EXPECT_FALSE(should_bounce(e, kOriginal));
}

TEST(ShouldBounce, OurOwnDsnIsNeverBouncedAgain) {
  const std::vector<std::size_t> failed{1};
  const std::string dsn = make_dsn(failed_envelope(), failed, kOriginal, "mx", kNow, kBoundary);
  auto e = envelope_with({"alice@shop.example"}, kNow);
  e.mail_from = "someone@else.example";  // even with a non-null sender
  EXPECT_FALSE(should_bounce(e, dsn));
}

}  // namespace
}  // namespace sg::delivery
