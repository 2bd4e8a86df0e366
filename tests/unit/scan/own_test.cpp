// Own credentials: digest_variants() and finding their copies (plain, base64,
// URL-encoded, AUTH PLAIN, user:pass base64) from the digests alone.
#include <sodium.h>

#include "base/encoding.hpp"
#include "test_util.hpp"

namespace sg::scan {
namespace {

using namespace test;

std::array<unsigned char, 32> test_key() {
  std::array<unsigned char, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i * 7 + 1);
  return k;
}

OwnSecrets own_for(const std::string& pw, std::string_view user, std::string_view label) {
  OwnSecrets own;
  own.key = test_key();
  own.digests = digest_variants(Secret::copy_of(pw), user, label, own.key);
  return own;
}

std::string url_upper(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

TEST(ScanOwn, DigestVariantsForms) {
  const std::string pw = ses_v4(11);
  const auto d =
      digest_variants(Secret::copy_of(pw), "AKIAUSER", "vault entry ses (current)", test_key());
  std::vector<std::string> forms;
  for (const OwnDigest& x : d) {
    forms.push_back(x.form);
    EXPECT_EQ(x.label, "vault entry ses (current)");
    EXPECT_GT(x.length, 0u);
  }
  // (57 bytes of AUTH PLAIN need no padding: its unpadded form is the same digest.)
  for (std::string_view want : {"plain", "base64", "base64-unpadded", "auth-plain",
                                "user-password-base64", "user-password-base64-unpadded"})
    EXPECT_NE(std::find(forms.begin(), forms.end(), want), forms.end()) << want;
  // The plain digest is the keyed BLAKE2b of the secret; nothing holds the secret.
  const auto key = test_key();
  std::array<unsigned char, 32> h{};
  crypto_generichash(h.data(), 32, reinterpret_cast<const unsigned char*>(pw.data()), pw.size(),
                     key.data(), key.size());
  EXPECT_EQ(d[0].form, "plain");
  EXPECT_EQ(d[0].digest, h);
  EXPECT_EQ(d[0].length, 44u);
  for (const OwnDigest& x : d) EXPECT_EQ(x.form.find(pw), std::string::npos);
  EXPECT_TRUE(digest_variants(Secret{}, "u", "l", key).empty());
}

TEST(ScanOwn, FindsEveryEncodedCopy) {
  const std::string pw = ses_v4(12);  // has + or / most of the time; check below
  const std::string user = "AKIAOWNUSER";
  auto s = Scanner::create(own_for(pw, user, "vault entry ses (current)"));
  ASSERT_TRUE(s);
  std::string auth = std::string(1, '\0') + user + std::string(1, '\0') + pw;
  const std::string b64 = base64_encode(pw);
  std::string b64_bare = b64;
  while (b64_bare.back() == '=') b64_bare.pop_back();
  const std::string copies[] = {
      pw, b64, b64_bare, url_upper(pw), base64_encode(auth), base64_encode(user + ":" + pw)};
  for (const std::string& copy : copies) {
    SCOPED_TRACE(copy);
    for (std::string text : {"x = '" + copy + "';", copy, "AUTH PLAIN " + copy + "\r\n",
                             "smtp://" + user + ":" + copy + "@host"}) {
      const auto f = scan_with(*s, text, "www/leak.txt");
      const auto own = with_rule(f, "own-credential");
      ASSERT_EQ(own.size(), 1u) << text;
      EXPECT_EQ(value_of(text, own[0]), copy);
      EXPECT_EQ(own[0].severity, Severity::critical);
      EXPECT_EQ(own[0].message, "ACTIVE credential exposed: vault entry ses (current)");
      expect_no_plaintext(f, pw);
    }
  }
  // The same text without our secret, and a different SES password: no own finding.
  EXPECT_TRUE(with_rule(scan_with(*s, "x = '" + ses_v4(13) + "';", "a"), "own-credential").empty());
  const std::string near_miss = pw.substr(0, 43) + (pw[43] == 'A' ? "B" : "A");
  EXPECT_TRUE(with_rule(scan_with(*s, near_miss, "a"), "own-credential").empty());
}

TEST(ScanOwn, SupersedesTheShapeRuleAndKeepsContext) {
  const std::string pw = ses_v4(14);
  auto s = Scanner::create(own_for(pw, "", "vault entry ses.previous"));
  ASSERT_TRUE(s);
  const std::string env =
      "MAIL_HOST=smtp.example.com\nMAIL_USERNAME=AKIAPREV\nMAIL_PASSWORD=" + pw + "\n";
  const auto f = scan_with(*s, env, ".env");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].rule_id, "own-credential");
  EXPECT_EQ(f[0].message, "ACTIVE credential exposed: vault entry ses.previous");
  EXPECT_EQ(f[0].username, "AKIAPREV");
  EXPECT_EQ(f[0].host, "smtp.example.com");
  expect_no_plaintext(f, pw);
}

TEST(ScanOwn, PasswordsWithOtherCharacters) {
  for (std::string pw : {std::string("p@ss:w0rd/with&odd=chars!"), std::string("url-safe.pass_1~"),
                         std::string("short1")}) {
    SCOPED_TRACE(pw);
    auto s = Scanner::create(own_for(pw, "me@example.com", "vault entry smarthost (current)"));
    ASSERT_TRUE(s);
    for (std::string text :
         {"pw: \"" + pw + "\"\n", "SMTP_SECRET=" + pw + "\n", "PASS=" + pw + ";\n",
          "smtp://me%40example.com:" + url_upper(pw) + "@h\n"}) {
      const auto own = with_rule(scan_with(*s, text, "f"), "own-credential");
      ASSERT_EQ(own.size(), 1u) << text;
      const std::string_view got = value_of(text, own[0]);
      EXPECT_TRUE(got == pw || got == url_upper(pw)) << got;
      EXPECT_EQ(own[0].redacted, redact(got));
    }
  }
}

}  // namespace
}  // namespace sg::scan
