// SES configuration-set headers and the submitter header.
#include <gtest/gtest.h>

#include "delivery/delivery.hpp"
#include "smtp/message_headers.hpp"

namespace sg::delivery {
namespace {

constexpr std::string_view kMessage =
    "From: shop@example.com\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\n"
    "X-SES-CONFIGURATION-SET: body text, not a header\r\n";

TEST(SesHeaders, NothingChangesWithoutAConfigurationSet) {
  EXPECT_EQ(add_ses_headers(kMessage, "", "shop"), kMessage);
}

TEST(SesHeaders, AddsSetAndIdentityTagAtTheTop) {
  const std::string out = add_ses_headers(kMessage, "prod-mail", "shop");
  EXPECT_EQ(out, "X-SES-CONFIGURATION-SET: prod-mail\r\nX-SES-MESSAGE-TAGS: identity=shop\r\n" +
                     std::string(kMessage));
  EXPECT_EQ(add_ses_headers(kMessage, "prod-mail", ""),
            "X-SES-CONFIGURATION-SET: prod-mail\r\n" + std::string(kMessage));
}

TEST(SesHeaders, ValuesAreLimitedToSesCharacters) {
  const std::string out =
      add_ses_headers(kMessage, "set one\r\nBcc: x@y", "shop.example com\r\nX-Evil: 1");
  EXPECT_EQ(smtp::header_values(out, "X-SES-CONFIGURATION-SET"),
            std::vector<std::string>{"set_one__Bcc__x_y"});
  EXPECT_EQ(smtp::header_values(out, "X-SES-MESSAGE-TAGS"),
            std::vector<std::string>{"identity=shop_example_com__X-Evil__1"});
  EXPECT_TRUE(smtp::header_values(out, "Bcc").empty());
  EXPECT_TRUE(smtp::header_values(out, "X-Evil").empty());
  const std::string long_set =
      add_ses_headers(kMessage, std::string(100, 's'), std::string(300, 'i'));
  EXPECT_EQ(smtp::header_values(long_set, "X-SES-CONFIGURATION-SET")[0].size(), 64u);
  EXPECT_EQ(smtp::header_values(long_set, "X-SES-MESSAGE-TAGS")[0],
            "identity=" + std::string(256, 'i'));
}

TEST(SesHeaders, ClientCannotChooseItsOwnSetOrTags) {
  const std::string forged =
      "x-ses-configuration-set: no-tracking\r\nX-SES-MESSAGE-TAGS: identity=other,\r\n"
      " campaign=x\r\nSubject: hi\r\n\r\nX-SES-MESSAGE-TAGS: stays in the body\r\n";
  const std::string out = add_ses_headers(forged, "prod", "shop");
  EXPECT_EQ(out,
            "X-SES-CONFIGURATION-SET: prod\r\nX-SES-MESSAGE-TAGS: identity=shop\r\n"
            "Subject: hi\r\n\r\nX-SES-MESSAGE-TAGS: stays in the body\r\n");
}

TEST(SesHeaders, LeadingContinuationLinesCannotExtendOurHeaders) {
  const std::string out =
      add_ses_headers(" other-set\r\n\tmore\r\nSubject: hi\r\n\r\nb", "prod", "");
  EXPECT_EQ(out, "X-SES-CONFIGURATION-SET: prod\r\nSubject: hi\r\n\r\nb");
}

TEST(StripHeader, RemovesTheSubmitterHeaderOnly) {
  const std::string in =
      "x-smtpguard-submitter: forged\r\n\tcontinued\r\nSubject: s\r\n"
      "X-Smtpguard-Submitter: again\r\n\r\nX-Smtpguard-Submitter: body line\r\n";
  EXPECT_EQ(strip_header(in), "Subject: s\r\n\r\nX-Smtpguard-Submitter: body line\r\n");
  EXPECT_EQ(strip_header(in, "Subject"),
            "x-smtpguard-submitter: forged\r\n\tcontinued\r\n"
            "X-Smtpguard-Submitter: again\r\n\r\nX-Smtpguard-Submitter: body line\r\n");
  EXPECT_EQ(strip_header(std::string(kMessage)), kMessage);
  // A field with an empty value is a field too.
  EXPECT_EQ(strip_header("X-Smtpguard-Submitter:\r\nSubject: s\r\n\r\nb"), "Subject: s\r\n\r\nb");
}

TEST(StripHeader, DataWithoutTheFieldIsReturnedNotCopied) {
  std::string big = "Subject: s\r\n\r\n" + std::string(200000, 'x');
  const char* buffer = big.data();
  const std::string out = strip_header(std::move(big));
  EXPECT_EQ(out.data(), buffer);
  EXPECT_EQ(out.size(), 200000u + 14);
}

}  // namespace
}  // namespace sg::delivery
