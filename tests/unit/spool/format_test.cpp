// Queue file codec: round trips, and every way a file can be torn or damaged.
#include <gtest/gtest.h>
#include <sodium.h>
#include <xxhash.h>

#include <string>

#include "spool/spool.hpp"

namespace sp = sg::spool;

namespace {

sp::Message sample(std::string data) {
  sp::Message m;
  m.envelope.id = "0123456789abcdef";
  m.envelope.received_at = 1700000000;
  m.envelope.identity = "shop";
  m.envelope.peer = "uid 1000";
  m.envelope.helo = "web1.example.com";
  m.envelope.mail_from = "orders@shop.example.com";
  m.envelope.recipients = {
      {"a@example.org"},
      {"b@example.org", sp::RecipientState::deferred, 3, "451 4.7.1 slow down", "", 1700000600}};
  m.envelope.verdict = "accept";
  m.envelope.submitter = "auth:info@shop.example.com";
  m.data = std::move(data);
  return m;
}

void expect_same(const sp::Message& a, const sp::Message& b) {
  const sp::Envelope &x = a.envelope, &y = b.envelope;
  EXPECT_EQ(x.id, y.id);
  EXPECT_EQ(x.received_at, y.received_at);
  EXPECT_EQ(x.identity, y.identity);
  EXPECT_EQ(x.peer, y.peer);
  EXPECT_EQ(x.helo, y.helo);
  EXPECT_EQ(x.mail_from, y.mail_from);
  EXPECT_EQ(x.verdict, y.verdict);
  EXPECT_EQ(x.rule, y.rule);
  EXPECT_EQ(x.submitter, y.submitter);
  EXPECT_EQ(x.held, y.held);
  EXPECT_EQ(x.in_flight, y.in_flight);
  ASSERT_EQ(x.recipients.size(), y.recipients.size());
  for (std::size_t i = 0; i < x.recipients.size(); ++i) {
    const sp::Recipient &r = x.recipients[i], &s = y.recipients[i];
    EXPECT_EQ(r.address, s.address);
    EXPECT_EQ(r.state, s.state);
    EXPECT_EQ(r.attempts, s.attempts);
    EXPECT_EQ(r.last_reply, s.last_reply);
    EXPECT_EQ(r.upstream_id, s.upstream_id);
    EXPECT_EQ(r.next_attempt, s.next_attempt);
  }
  EXPECT_EQ(a.data, b.data);
}

std::string blake(std::string_view s) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                     nullptr, 0);
  return std::string(reinterpret_cast<char*>(h), sizeof h);
}

std::string be(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

std::string xxh3(std::string_view s) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(s.data(), s.size()));
  return std::string(reinterpret_cast<const char*>(c.digest), sizeof c.digest);
}

// Builds a queue file by the documented layout, with valid checksums
// (version 1: BLAKE2b-256, otherwise XXH3-128).
std::string build_file(std::string_view json, std::string_view data, std::string magic = "SGQ2") {
  auto sum = [&](std::string_view s) { return magic == "SGQ1" ? blake(s) : xxh3(s); };
  std::string f = magic + be(json.size(), 4) + std::string(json);
  f += sum(f);
  f += be(data.size(), 8) + std::string(data);
  f += sum(f);
  return f;
}

TEST(SpoolFormat, RoundTripsBinaryData) {
  std::string data;
  for (int i = 0; i < 4096; ++i) data.push_back(static_cast<char>(i * 7 % 256));
  auto m = sample(data);
  auto back = sp::decode(sp::encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(m, *back);
}

TEST(SpoolFormat, RoundTripsEmptyDataAndNonUtf8Text) {
  auto m = sample("");
  m.envelope.helo = std::string("h\xff\xfe\0x", 5);
  m.envelope.mail_from = "";
  m.envelope.rule = "b\xc3";                         // truncated UTF-8 sequence
  m.envelope.peer = "caf\xc3\xa9 \xf0\x9f\x93\xa7";  // valid UTF-8 stays text
  m.envelope.held = true;
  m.envelope.in_flight = true;
  std::string file = sp::encode(m);
  EXPECT_NE(file.find("caf\xc3\xa9"), std::string::npos);
  auto back = sp::decode(file);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(m, *back);
}

TEST(SpoolFormat, RoundTripsManyRecipients) {
  auto m = sample("Subject: x\r\n\r\nhi\r\n");
  m.envelope.recipients.clear();
  for (int i = 0; i < 2000; ++i)
    m.envelope.recipients.push_back({"user" + std::to_string(i) + "@example.net",
                                     static_cast<sp::RecipientState>(i % 4), i % 7,
                                     i % 3 ? "250 Ok 0100018c" : "", std::to_string(i), i * 60});
  auto back = sp::decode(sp::encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(m, *back);
}

TEST(SpoolFormat, EnvelopeOnlyNeedsJustThePrefix) {
  auto m = sample(std::string(10000, 'x'));
  std::string file = sp::encode(m);
  auto size = sp::envelope_prefix_size(std::string_view(file).substr(0, 8));
  ASSERT_TRUE(size.ok());
  ASSERT_LT(*size, 1000u);
  auto env = sp::decode_envelope_only(std::string_view(file).substr(0, *size));
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_EQ(env->mail_from, m.envelope.mail_from);
  EXPECT_EQ(env->recipients.size(), 2u);
  EXPECT_FALSE(sp::decode_envelope_only(std::string_view(file).substr(0, *size - 1)).ok());
}

TEST(SpoolFormat, EveryTruncationIsACleanError) {
  std::string file = sp::encode(sample("line one\r\nline two\r\n"));
  for (std::size_t n = 0; n < file.size(); ++n) {
    auto r = sp::decode(std::string_view(file).substr(0, n));
    ASSERT_FALSE(r.ok()) << "length " << n;
    EXPECT_EQ(r.error().code, sg::Errc::corrupt) << "length " << n;
  }
  EXPECT_FALSE(sp::decode(file + "x").ok());
}

TEST(SpoolFormat, EverySingleByteFlipIsACleanError) {
  std::string file = sp::encode(sample("line one\r\nline two\r\n"));
  for (std::size_t i = 0; i < file.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string bad = file;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto r = sp::decode(bad);
      ASSERT_FALSE(r.ok()) << "byte " << i << " mask " << int(mask);
      EXPECT_TRUE(r.error().code == sg::Errc::corrupt || r.error().code == sg::Errc::unsupported)
          << r.error().message;
      auto e = sp::decode_envelope_only(bad);
      auto prefix = sp::envelope_prefix_size(file.substr(0, 8));
      if (i < *prefix) {
        EXPECT_FALSE(e.ok()) << "byte " << i;
      }
    }
  }
}

TEST(SpoolFormat, ValidChecksumsDoNotMakeBadEnvelopesAcceptable) {
  auto ok = sp::decode(build_file(R"({"id":"0123456789abcdef","future_member":[1,2]})", "d"));
  ASSERT_TRUE(ok.ok()) << ok.error().message;  // unknown members: written by a newer v1
  EXPECT_EQ(ok->data, "d");
  for (const char* json :
       {R"([])", R"({})", R"({"id":"short"})", R"({"id":"0123456789ABCDEF"})",
        R"({"id":"0123456789abcdef","received_at":"now"})",
        R"({"id":"0123456789abcdef","recipients":{}})",
        R"({"id":"0123456789abcdef","recipients":[{"state":"lost"}]})",
        R"({"id":"0123456789abcdef","recipients":[{"attempts":3000000000}]})",
        R"({"id":"0123456789abcdef","received_at":18446744073709551615})",
        R"({"id":"0123456789abcdef","helo":{"b64":"!!"}})", R"({"id":"0123456789abcdef","held":1})",
        R"({"id":"0123456789abcdef","x":[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]})",
        "{\"id\":\"0123456789abcdef\"", "not json"}) {
    auto r = sp::decode(build_file(json, ""));
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.error().code, sg::Errc::corrupt) << json;
  }
  auto future = sp::decode(build_file(R"({"id":"0123456789abcdef"})", "", "SGQ3"));
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.error().code, sg::Errc::unsupported);
}

TEST(SpoolFormat, EncodeMatchesTheDocumentedLayout) {
  auto m = sample("body");
  std::string file = sp::encode(m);
  ASSERT_GT(file.size(), 8u);
  std::uint32_t n = 0;
  for (int i = 4; i < 8; ++i) n = (n << 8) | static_cast<unsigned char>(file[i]);
  EXPECT_EQ(file, build_file(file.substr(8, n), "body"));
}

// A queue written by a build before version 2 is still delivered.
TEST(SpoolFormat, ReadsVersion1Files) {
  auto m = sample("old body\r\n");
  std::string v2 = sp::encode(m);
  std::uint32_t n = 0;
  for (int i = 4; i < 8; ++i) n = (n << 8) | static_cast<unsigned char>(v2[i]);
  std::string v1 = build_file(v2.substr(8, n), m.data, "SGQ1");
  auto back = sp::decode(v1);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(m, *back);
  auto env = sp::decode_envelope_only(v1);
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_EQ(env->id, m.envelope.id);
  v1[v1.size() - 40] ^= 1;  // in the data: the whole-file BLAKE2b no longer matches
  auto damaged = sp::decode(v1);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.error().code, sg::Errc::corrupt);
}

TEST(SpoolIds, Validity) {
  EXPECT_TRUE(sp::is_valid_id("0123456789abcdef"));
  EXPECT_FALSE(sp::is_valid_id("0123456789abcdeF"));
  EXPECT_FALSE(sp::is_valid_id("0123456789abcdei"));  // not in Crockford's alphabet
  EXPECT_FALSE(sp::is_valid_id("../../etc/passwd"));
  EXPECT_FALSE(sp::is_valid_id("0123456789abcde"));
  EXPECT_FALSE(sp::is_valid_id(""));
}

}  // namespace
