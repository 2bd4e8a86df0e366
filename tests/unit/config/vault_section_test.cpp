// [vault] rotation_warn_days / rotation_max_days: defaults, ranges, and the
// rule that the warning comes no later than the deadline.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"

namespace sg::config {
namespace {

using ::testing::HasSubstr;

Result<Config> parse_vault(const std::string& body) {
  return parse("[vault]\n" + body, "cfg.toml");
}

TEST(VaultRotationDays, DefaultsAreAwsRecommendation) {
  auto none = parse("", "cfg.toml");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none->vault.rotation_warn_days, 80u);
  EXPECT_EQ(none->vault.rotation_max_days, 90u);
  auto empty = parse_vault("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->vault.rotation_warn_days, 80u);
  EXPECT_EQ(empty->vault.rotation_max_days, 90u);
}

TEST(VaultRotationDays, Configurable) {
  auto c = parse_vault("rotation_warn_days = 20\nrotation_max_days = 30\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->vault.rotation_warn_days, 20u);
  EXPECT_EQ(c->vault.rotation_max_days, 30u);
  auto equal = parse_vault("rotation_warn_days = 30\nrotation_max_days = 30\n");
  ASSERT_TRUE(equal.ok());
  auto longer = parse_vault("rotation_max_days = 365\n");
  ASSERT_TRUE(longer.ok());
  EXPECT_EQ(longer->vault.rotation_warn_days, 80u);
}

TEST(VaultRotationDays, OutOfRangeOrWrongType) {
  for (std::string bad :
       {"rotation_warn_days = 0", "rotation_max_days = 0", "rotation_max_days = 3651",
        "rotation_warn_days = -5", "rotation_warn_days = \"80\"", "rotation_max_days = 90.5"}) {
    auto c = parse_vault(bad + "\n");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.error().code, Errc::config);
    EXPECT_THAT(c.error().message, HasSubstr("cfg.toml:2:")) << bad;
    EXPECT_THAT(c.error().message, HasSubstr("vault.rotation_")) << c.error().message;
  }
}

TEST(VaultRotationDays, WarningMustNotComeAfterTheDeadline) {
  auto c = parse_vault("rotation_warn_days = 100\n");  // default max 90
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("vault.rotation_warn_days"));
  EXPECT_THAT(c.error().message,
              HasSubstr("rotation_warn_days (100) must not exceed rotation_max_days (90)"));
  auto m = parse_vault("rotation_max_days = 50\n");  // default warn 80: blame max
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.error().message, HasSubstr("vault.rotation_max_days"));
}

TEST(VaultRotationDays, TyposAreCaught) {
  auto c = parse_vault("rotation_warn_day = 10\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("rotation_warn_days"));
}

}  // namespace
}  // namespace sg::config
