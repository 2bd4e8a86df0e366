// [detect.*] parsing: defaults with no section, every key, and the located
// errors ("FILE:LINE:COL: key: message") for wrong values.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"

namespace sg::config {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string error_of(std::string_view text) {
  auto parsed = parse(text, "cfg.toml");
  EXPECT_FALSE(parsed.ok()) << "accepted:\n" << text;
  if (parsed.ok()) return {};
  EXPECT_EQ(parsed.error().code, Errc::config);
  return parsed.error().message;
}

Detect detect_of(std::string_view text) {
  auto parsed = parse(text, "cfg.toml");
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? parsed->detect : Detect{};
}

TEST(DetectConfig, DefaultsWithoutASection) {
  Detect d = detect_of("");
  EXPECT_TRUE(d.rate.enabled);
  EXPECT_EQ(d.rate.action, DetectAction::hold);
  EXPECT_EQ(d.rate.floor_per_minute, 20u);
  EXPECT_EQ(d.recipients.floor_per_10min, 40u);
  EXPECT_EQ(d.new_sender.action, DetectAction::alert);
  EXPECT_EQ(d.new_sender.learning_seconds, 7u * 86400);
  EXPECT_EQ(d.bounces.action, DetectAction::pause);
  EXPECT_EQ(d.bounces.identity_action, DetectAction::hold);
  EXPECT_DOUBLE_EQ(d.bounces.alert_ratio, 0.03);
  EXPECT_DOUBLE_EQ(d.bounces.pause_ratio, 0.08);
  EXPECT_EQ(d.auth.action, DetectAction::block);
  EXPECT_EQ(d.auth.block_seconds, 3600u);
  EXPECT_EQ(d.max_subjects, 10000u);
  EXPECT_EQ(defaults().detect.rate.floor_per_minute, 20u);
}

TEST(DetectConfig, EveryKey) {
  Detect d = detect_of(R"(
[detect]
max_subjects = 500
[detect.rate]
enabled = true
action = "alert"
floor_per_minute = 50
factor = 3.5
hard_per_minute = 900
[detect.recipients]
action = "pause"
floor_per_10min = 100
factor = 4
hard_per_10min = 1000
[detect.new_sender]
enabled = false
action = "hold"
learning = "3d"
[detect.bounces]
action = "alert"
identity_action = "alert"
alert_ratio = 0.02
pause_ratio = 0.05
deferral_alert_ratio = 0.5
min_volume = 500
[detect.throttle]
action = "pause"
[detect.auth]
action = "alert"
max_failures = 10
window = "1h"
block_for = 7200
)");
  EXPECT_EQ(d.max_subjects, 500u);
  EXPECT_EQ(d.rate.action, DetectAction::alert);
  EXPECT_EQ(d.rate.floor_per_minute, 50u);
  EXPECT_DOUBLE_EQ(d.rate.factor, 3.5);
  EXPECT_EQ(d.rate.hard_per_minute, 900u);
  EXPECT_EQ(d.recipients.action, DetectAction::pause);
  EXPECT_EQ(d.recipients.hard_per_10min, 1000u);
  EXPECT_FALSE(d.new_sender.enabled);
  EXPECT_EQ(d.new_sender.action, DetectAction::hold);
  EXPECT_EQ(d.new_sender.learning_seconds, 3u * 86400);
  EXPECT_EQ(d.bounces.action, DetectAction::alert);
  EXPECT_DOUBLE_EQ(d.bounces.pause_ratio, 0.05);
  EXPECT_EQ(d.bounces.min_volume, 500u);
  EXPECT_EQ(d.throttle.action, DetectAction::pause);
  EXPECT_EQ(d.auth.max_failures, 10u);
  EXPECT_EQ(d.auth.window_seconds, 3600u);
  EXPECT_EQ(d.auth.block_seconds, 7200u);
}

TEST(DetectConfig, LocatedErrors) {
  EXPECT_EQ(error_of("[detect.rate]\naction = \"block\"\n"),
            "cfg.toml:2:10: detect.rate.action: expected one of \"alert\", \"hold\", \"pause\", "
            "got \"block\"");
  EXPECT_EQ(error_of("[detect.auth]\naction = \"hold\"\n"),
            "cfg.toml:2:10: detect.auth.action: expected one of \"alert\", \"block\", got "
            "\"hold\"");
  EXPECT_THAT(error_of("[detect.rate]\nfloor_per_minut = 5\n"),
              AllOf(StartsWith("cfg.toml:2:"), HasSubstr("floor_per_minute")));
  EXPECT_THAT(error_of("[detect]\nrates = 1\n"),
              AllOf(StartsWith("cfg.toml:2:"), HasSubstr("rate")));
  EXPECT_THAT(error_of("[detect.rate]\nfloor_per_minute = 0\n"),
              StartsWith("cfg.toml:2:20: detect.rate.floor_per_minute: expected an integer"));
  EXPECT_EQ(error_of("[detect.rate]\nhard_per_minute = 10\n"),
            "cfg.toml:2:19: detect.rate.hard_per_minute: must not be below floor_per_minute (20)");
  EXPECT_EQ(error_of("[detect.rate]\nfloor_per_minute = 700\n"),
            "cfg.toml:2:20: detect.rate.floor_per_minute: must not be above hard_per_minute (600)");
  EXPECT_THAT(error_of("[detect.rate]\nfactor = 0.5\n"),
              StartsWith("cfg.toml:2:10: detect.rate.factor: expected a number >= 1"));
  EXPECT_THAT(error_of("[detect.rate]\nenabled = \"yes\"\n"),
              StartsWith("cfg.toml:2:11: detect.rate.enabled: expected true or false"));
  EXPECT_EQ(error_of("[detect.bounces]\nalert_ratio = 3\n"),
            "cfg.toml:2:15: detect.bounces.alert_ratio: expected a fraction above 0 and at most 1 "
            "(0.03 = 3%)");
  EXPECT_EQ(error_of("[detect.bounces]\npause_ratio = 0.01\n"),
            "cfg.toml:2:15: detect.bounces.pause_ratio: pause_ratio must not be below alert_ratio");
  EXPECT_THAT(error_of("[detect.auth]\nwindow = \"2d\"\n"),
              StartsWith("cfg.toml:2:10: detect.auth.window: expected a duration"));
  EXPECT_THAT(error_of("[detect.new_sender]\nlearning = \"soon\"\n"),
              StartsWith("cfg.toml:2:12: detect.new_sender.learning: expected a duration"));
  EXPECT_THAT(error_of("[detect]\nmax_subjects = 5\n"),
              StartsWith("cfg.toml:2:16: detect.max_subjects: expected an integer"));
  EXPECT_THAT(error_of("detect = 5\n"), StartsWith("cfg.toml:1:"));
}

}  // namespace
}  // namespace sg::config
