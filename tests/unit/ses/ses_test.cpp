#include "ses/ses.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sg::ses {
namespace {

// AWS's documented example secret access key.
constexpr std::string_view kExampleKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

std::string str(const Secret& s) {
  return std::string(s.view());
}

TEST(SesPassword, V4MatchesAwsVector) {
  Secret key = Secret::copy_of(kExampleKey);
  EXPECT_EQ(str(smtp_password_v4(key, "us-east-2")),
            "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS");
}

TEST(SesPassword, V4OtherRegions) {
  // Expected values from AWS's published Python derivation script (hmac +
  // hashlib), run independently of this code.
  Secret key = Secret::copy_of(kExampleKey);
  EXPECT_EQ(str(smtp_password_v4(key, "eu-west-1")),
            "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk");
  EXPECT_EQ(str(smtp_password_v4(key, "us-east-1")),
            "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9");
  // The password depends on the region and on every byte of the key.
  EXPECT_NE(str(smtp_password_v4(key, "us-east-1")), str(smtp_password_v4(key, "us-east-2")));
  std::string altered(kExampleKey);
  altered.back() = 'X';
  EXPECT_NE(str(smtp_password_v4(Secret::copy_of(altered), "us-east-2")),
            str(smtp_password_v4(key, "us-east-2")));
}

TEST(SesPassword, V2MatchesAwsVector) {
  Secret key = Secret::copy_of(kExampleKey);
  Secret password = smtp_password_v2(key);
  EXPECT_EQ(str(password), "An60U4ZD3sd4fg+FvXUjayOipTt8LO4rUUmhpdX6ctDy");
}

TEST(SesPassword, EmptyKeyStillDerives) {
  // Degenerate but defined: HMAC over "AWS4" alone (checked with Python).
  EXPECT_EQ(str(smtp_password_v4(Secret(), "us-east-1")),
            "BOW79JVhDT89FyiFKOdz7GgFSn54m/kvJC9qQ6Zd5iK0");
}

TEST(SesRegions, KnownRegions) {
  auto regions = known_regions();
  EXPECT_GE(regions.size(), 20u);
  std::set<std::string_view> unique(regions.begin(), regions.end());
  EXPECT_EQ(unique.size(), regions.size()) << "duplicate region";
  for (std::string_view r : {"us-east-1", "us-east-2", "eu-west-1", "eu-central-1",
                             "ap-southeast-2", "sa-east-1", "us-gov-west-1", "il-central-1"})
    EXPECT_TRUE(is_known_region(r)) << r;
  for (std::string_view r : {"", "US-EAST-1", "us-east-9", "mars-north-1", "us-east-1 "})
    EXPECT_FALSE(is_known_region(r)) << r;
  EXPECT_EQ(smtp_host_for("eu-west-1"), "email-smtp.eu-west-1.amazonaws.com");
}

TEST(SesHosts, RecognisesSmtpEndpoints) {
  EXPECT_EQ(region_of_host("email-smtp.us-east-1.amazonaws.com"), "us-east-1");
  EXPECT_EQ(region_of_host("EMAIL-SMTP.EU-WEST-1.AMAZONAWS.COM."), "eu-west-1");
  EXPECT_EQ(region_of_host("email-smtp-fips.us-gov-west-1.amazonaws.com"), "us-gov-west-1");
  EXPECT_EQ(region_of_host("email-smtp.ap-southeast-7.amazonaws.com"), "ap-southeast-7");
  EXPECT_TRUE(is_ses_host("email-smtp.us-west-2.amazonaws.com"));
  for (std::string_view h :
       {"", "smtp.gmail.com", "email.us-east-1.amazonaws.com", "email-smtp.amazonaws.com",
        "email-smtp.us-east-1.amazonaws.com.evil.example", "xemail-smtp.us-east-1.amazonaws.com",
        "email-smtp.us_east_1.amazonaws.com", "email-smtp.us-east-1.evil.amazonaws.com",
        "email-smtp.-.amazonaws.com", "inbound-smtp.us-east-1.amazonaws.com"}) {
    EXPECT_FALSE(is_ses_host(h)) << h;
    EXPECT_FALSE(region_of_host(h).has_value()) << h;
  }
}

struct ReplyCase {
  int code;
  std::string_view text;
  ReplyClass cls;
  bool retry;
};

// Reply texts as SES sends them (SES developer guide: "SMTP response codes"
// and "Errors related to the sending quotas"; the 554 "not verified" lines are
// from real Exim and Django logs). Lines marked "constructed" are plausible
// variants that exercise the fallbacks.
TEST(SesReplies, ClassifiesRealSesReplies) {
  const ReplyCase cases[] = {
      {250, "Ok 0100018b2b5d0c31-2f5e-4f6a-9c1e-5bd6a8c0a1f2-000000", ReplyClass::ok, false},
      {235, "Authentication successful", ReplyClass::ok, false},
      {454, "Throttling failure: Maximum sending rate exceeded", ReplyClass::throttled_rate, true},
      {454, "Throttling failure: Daily message quota exceeded", ReplyClass::throttled_daily_quota,
       true},
      {535, "Authentication Credentials Invalid", ReplyClass::bad_credentials, false},
      {554,
       "Message rejected: Email address is not verified. The following identities failed the "
       "check in region US-WEST-2: webmaster@localhost",
       ReplyClass::unverified_identity, false},
      {554,
       "Message rejected: Email address is not verified. The following identities failed the "
       "check in region EU-WEST-1: root@ip-172-31-38-21.eu-west-1.compute.internal",
       ReplyClass::unverified_identity, false},
      {421, "Too many concurrent SMTP connections", ReplyClass::session_limit, true},
      {421, "Maximum SMTP session time exceeded", ReplyClass::session_limit, true},  // constructed
      {421, "Timeout waiting for data from client.", ReplyClass::session_limit,
       true},                                                      // constructed
      {554, "Message rejected: Sending paused for this account.",  // constructed
       ReplyClass::message_rejected, false},
      {421, "Service not available", ReplyClass::temporary, true},  // constructed
      {451, "Temporary service failure", ReplyClass::temporary, true},
      {451, "Timeout waiting for data from client", ReplyClass::temporary, true},
      {454, "Temporary service failure", ReplyClass::temporary, true},
      {530, "Authentication required", ReplyClass::permanent, false},
      {552, "Message is too long", ReplyClass::permanent, false},
      {554, "Transaction failed: Missing final '@domain'", ReplyClass::permanent, false},
      {354, "End data with <CR><LF>.<CR><LF>", ReplyClass::other, false},
      {0, "", ReplyClass::other, false},
      {999, "garbage", ReplyClass::other, false},
  };
  for (const auto& c : cases) {
    Classification got = classify_reply(c.code, c.text);
    EXPECT_EQ(got.cls, c.cls) << c.code << " " << c.text << " -> " << to_string(got.cls);
    EXPECT_EQ(got.retry, c.retry) << c.code << " " << c.text;
  }
}

TEST(SesReplies, HintsTellTheOperatorWhatToDo) {
  auto creds = classify_reply(535, "Authentication Credentials Invalid");
  EXPECT_NE(creds.hint.find("not the SMTP password"), std::string::npos) << creds.hint;
  EXPECT_NE(creds.hint.find("smtpguard ses smtp-password --region"), std::string::npos);
  auto unverified = classify_reply(554, "Message rejected: Email address is not verified.");
  EXPECT_NE(unverified.hint.find("verify"), std::string::npos) << unverified.hint;
  EXPECT_NE(unverified.hint.find("sandbox"), std::string::npos) << unverified.hint;
  auto rate = classify_reply(454, "Throttling failure: Maximum sending rate exceeded");
  EXPECT_NE(rate.hint.find("slow down"), std::string::npos) << rate.hint;
  auto quota = classify_reply(454, "throttling failure: daily message quota exceeded");
  EXPECT_EQ(quota.cls, ReplyClass::throttled_daily_quota) << "matching is case-insensitive";
  EXPECT_NE(quota.hint.find("quota"), std::string::npos);
}

TEST(SesReplies, NamesAreDistinct) {
  std::set<std::string_view> names;
  for (ReplyClass c :
       {ReplyClass::ok, ReplyClass::throttled_rate, ReplyClass::throttled_daily_quota,
        ReplyClass::bad_credentials, ReplyClass::unverified_identity, ReplyClass::session_limit,
        ReplyClass::message_rejected, ReplyClass::temporary, ReplyClass::permanent,
        ReplyClass::other})
    names.insert(to_string(c));
  EXPECT_EQ(names.size(), 10u);
}

}  // namespace
}  // namespace sg::ses
