// The [delivery] section, config::parse_duration, and the upstream keys that
// came with the pooled deliverer (max_messages_per_connection,
// idle_timeout_seconds, configuration_set). Errors are asserted in full
// where the position matters: "FILE:LINE:COL: key: message".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"

namespace sg::config {
namespace {

using ::testing::HasSubstr;

std::string error_of(std::string_view text) {
  auto parsed = parse(text, "cfg.toml");
  EXPECT_FALSE(parsed.ok()) << "accepted:\n" << text;
  if (parsed.ok()) return {};
  EXPECT_EQ(parsed.error().code, Errc::config);
  return parsed.error().message;
}

Delivery delivery_of(std::string_view text) {
  auto parsed = parse(text, "cfg.toml");
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? parsed->delivery : Delivery{};
}

constexpr std::string_view kSesUpstream =
    "[upstream.ses]\nhost = \"email-smtp.eu-west-1.amazonaws.com\"\ncredential = \"ses\"\n";

// ---------------------------------------------------------------- parse_duration

TEST(ParseDuration, UnitsAndPlainSeconds) {
  EXPECT_EQ(parse_duration("30s").value(), 30u);
  EXPECT_EQ(parse_duration("15m").value(), 15u * 60);
  EXPECT_EQ(parse_duration("2h").value(), 2u * 3600);
  EXPECT_EQ(parse_duration("5d").value(), 5u * 86400);
  EXPECT_EQ(parse_duration("1w").value(), 7u * 86400);
  EXPECT_EQ(parse_duration("45").value(), 45u);
  EXPECT_EQ(parse_duration("0").value(), 0u);
  EXPECT_EQ(parse_duration(" 2h ").value(), 7200u);
  EXPECT_EQ(parse_duration("10 m").value(), 600u);
}

TEST(ParseDuration, RejectsWhatIsNotADuration) {
  for (std::string_view bad : {"", "s", "h2", "1.5h", "10x", "-5s", "5ms", "3 days", "1h30m",
                               "1000000000s" /* more than 9 digits */}) {
    auto r = parse_duration(bad);
    EXPECT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_THAT(r.error().message, HasSubstr("expected a duration such as \"30s\""));
      EXPECT_THAT(r.error().message, HasSubstr("got \"" + std::string(bad) + "\""));
    }
  }
  // The largest accepted number does not overflow.
  EXPECT_EQ(parse_duration("999999999w").value(), 999'999'999ull * 7 * 86400);
}

// ---------------------------------------------------------------- [delivery]

TEST(DeliverySection, DefaultsWithoutTheSectionOrWithAnEmptyOne) {
  for (std::string_view text : {"", "[delivery]\n"}) {
    Delivery d = delivery_of(text);
    EXPECT_EQ(d.queue_lifetime_seconds, 5u * 86400);
    EXPECT_EQ(d.first_retry_seconds, 30u);
    EXPECT_EQ(d.max_retry_interval_seconds, 3600u);
    EXPECT_TRUE(d.bounces);
  }
  EXPECT_EQ(defaults().delivery.queue_lifetime_seconds, 5u * 86400);
}

TEST(DeliverySection, AllKeysWithUnitsAndIntegers) {
  Delivery d = delivery_of(
      "[delivery]\nqueue_lifetime = \"2d\"\nfirst_retry = \"15m\"\n"
      "max_retry_interval = \"2h\"\nbounces = false\n");
  EXPECT_EQ(d.queue_lifetime_seconds, 2u * 86400);
  EXPECT_EQ(d.first_retry_seconds, 900u);
  EXPECT_EQ(d.max_retry_interval_seconds, 7200u);
  EXPECT_FALSE(d.bounces);

  d = delivery_of("[delivery]\nqueue_lifetime = 60\nfirst_retry = 1\nmax_retry_interval = 1\n");
  EXPECT_EQ(d.queue_lifetime_seconds, 60u) << "the minimum itself is allowed";
  EXPECT_EQ(d.first_retry_seconds, 1u);
  EXPECT_EQ(d.max_retry_interval_seconds, 1u) << "equal to first_retry is allowed";

  // The fast settings the interop tests use.
  d = delivery_of(
      "[delivery]\nfirst_retry = \"1s\"\nmax_retry_interval = \"2s\"\nqueue_lifetime = \"1h\"\n"
      "bounces = true\n");
  EXPECT_EQ(d.first_retry_seconds, 1u);
  EXPECT_EQ(d.max_retry_interval_seconds, 2u);
  EXPECT_EQ(d.queue_lifetime_seconds, 3600u);
  EXPECT_TRUE(d.bounces);

  // Upper bound: 366 days in any spelling.
  EXPECT_EQ(delivery_of("[delivery]\nqueue_lifetime = \"366d\"\n").queue_lifetime_seconds,
            366u * 86400);
  EXPECT_EQ(delivery_of("[delivery]\nqueue_lifetime = \"52w\"\n").queue_lifetime_seconds,
            52u * 7 * 86400);
}

TEST(DeliverySection, BadUnitsAndTypes) {
  EXPECT_EQ(error_of("[delivery]\nqueue_lifetime = \"5 fortnights\"\n"),
            "cfg.toml:2:18: delivery.queue_lifetime: expected a duration such as \"30s\", \"15m\", "
            "\"2h\", \"5d\", \"1w\" or a number of seconds, got \"5 fortnights\"");
  EXPECT_EQ(error_of("[delivery]\nfirst_retry = 1.5\n"),
            "cfg.toml:2:15: delivery.first_retry: expected a duration such as \"30s\", \"15m\", "
            "\"2h\", \"5d\", \"1w\" or a number of seconds, got 1.5");
  std::string m = error_of("[delivery]\nfirst_retry = -5\n");
  EXPECT_THAT(m, HasSubstr("cfg.toml:2:15: delivery.first_retry: expected a duration"));
  EXPECT_THAT(m, HasSubstr("got -5"));
  m = error_of("[delivery]\nmax_retry_interval = [\"1h\"]\n");
  EXPECT_THAT(m, HasSubstr("cfg.toml:2:22: delivery.max_retry_interval: expected a duration"));
  EXPECT_THAT(m, HasSubstr("got an array"));
}

TEST(DeliverySection, BelowMinimumAndAboveMaximum) {
  EXPECT_EQ(error_of("[delivery]\nqueue_lifetime = \"59s\"\n"),
            "cfg.toml:2:18: delivery.queue_lifetime: expected a duration between 60 s and 366 "
            "days, got \"59s\"");
  EXPECT_EQ(error_of("[delivery]\nqueue_lifetime = 59\n"),
            "cfg.toml:2:18: delivery.queue_lifetime: expected a duration between 60 s and 366 "
            "days, got 59");
  EXPECT_EQ(error_of("[delivery]\nfirst_retry = \"0s\"\n"),
            "cfg.toml:2:15: delivery.first_retry: expected a duration between 1 s and 366 days, "
            "got \"0s\"");
  EXPECT_THAT(error_of("[delivery]\nmax_retry_interval = 0\n"),
              HasSubstr("cfg.toml:2:22: delivery.max_retry_interval: expected a duration between "
                        "1 s and 366 days"));
  EXPECT_EQ(error_of("[delivery]\nqueue_lifetime = \"367d\"\n"),
            "cfg.toml:2:18: delivery.queue_lifetime: expected a duration between 60 s and 366 "
            "days, got \"367d\"");
  EXPECT_THAT(error_of("[delivery]\nqueue_lifetime = \"53w\"\n"),
              HasSubstr("delivery.queue_lifetime: expected a duration between 60 s and 366 days"));
  // One second past 366 days, as an integer; and an integer far beyond uint32.
  EXPECT_THAT(error_of("[delivery]\nqueue_lifetime = 31622401\n"),
              HasSubstr("cfg.toml:2:18: delivery.queue_lifetime: expected a duration between"));
  EXPECT_THAT(error_of("[delivery]\nfirst_retry = 5000000000\n"),
              HasSubstr("cfg.toml:2:15: delivery.first_retry: expected a duration between"));
  EXPECT_THAT(error_of("[delivery]\nmax_retry_interval = \"999999999w\"\n"),
              HasSubstr("delivery.max_retry_interval: expected a duration between"));
}

TEST(DeliverySection, MaxRetryIntervalMustNotBeShorterThanFirstRetry) {
  EXPECT_EQ(error_of("[delivery]\nfirst_retry = \"10m\"\nmax_retry_interval = \"5m\"\n"),
            "cfg.toml:3:22: delivery.max_retry_interval: must not be shorter than first_retry");
  // Without max_retry_interval in the file, its default (1 h) follows a
  // longer first_retry instead of blaming a key the file does not have.
  EXPECT_EQ(delivery_of("[delivery]\nfirst_retry = \"2h\"\n").max_retry_interval_seconds, 7200u);
  // And the other way round: max below the default first_retry (30 s).
  EXPECT_THAT(error_of("[delivery]\nmax_retry_interval = \"10s\"\n"),
              HasSubstr("delivery.max_retry_interval: must not be shorter than first_retry"));
}

TEST(DeliverySection, BouncesMustBeABoolean) {
  EXPECT_EQ(error_of("[delivery]\nbounces = \"yes\"\n"),
            "cfg.toml:2:11: delivery.bounces: expected true or false, got \"yes\"");
  EXPECT_EQ(error_of("[delivery]\nbounces = 1\n"),
            "cfg.toml:2:11: delivery.bounces: expected true or false, got 1");
}

TEST(DeliverySection, UnknownKeysSuggestTheNearestOne) {
  EXPECT_EQ(error_of("[delivery]\nfirst_rety = \"1s\"\n"),
            "cfg.toml:2:1: unknown key 'first_rety' in [delivery] (did you mean 'first_retry'?)");
  EXPECT_EQ(error_of("[delivery]\nqueue_lifetime = \"1h\"\nbounce = false\n"),
            "cfg.toml:3:1: unknown key 'bounce' in [delivery] (did you mean 'bounces'?)");
  std::string m = error_of("[delivery]\nwhatever_else = 1\n");
  EXPECT_THAT(m, HasSubstr("unknown key 'whatever_else' in [delivery]"));
  EXPECT_THAT(m, ::testing::Not(HasSubstr("did you mean")));
  // The section name itself is checked at the top level.
  EXPECT_EQ(error_of("[delivry]\nbounces = true\n"),
            "cfg.toml:1:2: unknown key 'delivry' at the top level (did you mean 'delivery'?)");
  EXPECT_THAT(error_of("delivery = 5\n"), HasSubstr("delivery: expected a table, got 5"));
}

// ---------------------------------------------------------------- new upstream keys

TEST(UpstreamPoolKeys, DefaultsAndBounds) {
  auto c = parse(kSesUpstream, "cfg.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->upstreams.at(0).max_messages_per_connection, 100u);
  EXPECT_EQ(c->upstreams.at(0).idle_timeout_seconds, 5u);
  EXPECT_EQ(c->upstreams.at(0).configuration_set, "");

  for (auto [mpc, idle] : {std::pair{0, 0}, std::pair{1000000, 3600}, std::pair{7, 42}}) {
    c = parse(std::string(kSesUpstream) + "max_messages_per_connection = " + std::to_string(mpc) +
                  "\nidle_timeout_seconds = " + std::to_string(idle) + "\n",
              "cfg.toml");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->upstreams.at(0).max_messages_per_connection, static_cast<std::uint32_t>(mpc));
    EXPECT_EQ(c->upstreams.at(0).idle_timeout_seconds, static_cast<std::uint32_t>(idle));
  }
}

TEST(UpstreamPoolKeys, OutOfRangeOrWrongType) {
  const std::string u(kSesUpstream);
  EXPECT_EQ(error_of(u + "max_messages_per_connection = 1000001\n"),
            "cfg.toml:4:31: upstream.ses.max_messages_per_connection: expected an integer "
            "0-1000000, got 1000001");
  EXPECT_EQ(error_of(u + "max_messages_per_connection = -1\n"),
            "cfg.toml:4:31: upstream.ses.max_messages_per_connection: expected an integer "
            "0-1000000, got -1");
  EXPECT_EQ(error_of(u + "idle_timeout_seconds = 3601\n"),
            "cfg.toml:4:24: upstream.ses.idle_timeout_seconds: expected an integer 0-3600, got "
            "3601");
  EXPECT_EQ(error_of(u + "idle_timeout_seconds = \"5s\"\n"),
            "cfg.toml:4:24: upstream.ses.idle_timeout_seconds: expected an integer 0-3600, got "
            "\"5s\"");
  EXPECT_EQ(error_of(u + "idle_timeout_secnds = 5\n"),
            "cfg.toml:4:1: unknown key 'idle_timeout_secnds' in [upstream.ses] (did you mean "
            "'idle_timeout_seconds'?)");
  EXPECT_THAT(error_of(u + "max_message_per_connection = 5\n"),
              HasSubstr("(did you mean 'max_messages_per_connection'?)"));
  EXPECT_THAT(error_of(u + "configuration_sets = \"x\"\n"),
              HasSubstr("(did you mean 'configuration_set'?)"));
}

TEST(UpstreamPoolKeys, ConfigurationSetName) {
  const std::string u(kSesUpstream);
  for (const std::string& good :
       {std::string(), std::string("tx"), std::string("Marketing-2024_eu"), std::string(64, 'a')}) {
    auto c = parse(u + "configuration_set = \"" + good + "\"\n", "cfg.toml");
    ASSERT_TRUE(c.ok()) << good << ": " << c.error().message;
    EXPECT_EQ(c->upstreams.at(0).configuration_set, good);
  }
  for (std::string_view bad : {"a b", "a.b", "set/1", "caf\\u00e9", "x\\ny"}) {
    std::string m = error_of(u + "configuration_set = \"" + std::string(bad) + "\"\n");
    EXPECT_THAT(m, HasSubstr("cfg.toml:4:21: upstream.ses.configuration_set: expected an SES "
                             "configuration set name (letters, digits, '-' and '_')"))
        << bad;
  }
  EXPECT_EQ(error_of(u + "configuration_set = \"" + std::string(65, 'a') + "\"\n"),
            "cfg.toml:4:21: upstream.ses.configuration_set: at most 64 characters");
  EXPECT_THAT(error_of(u + "configuration_set = 3\n"),
              HasSubstr("cfg.toml:4:21: upstream.ses.configuration_set: expected a string, got 3"));
}

}  // namespace
}  // namespace sg::config
