// The vault file format: round trip, integrity, entry binding, fingerprints.
#include <gtest/gtest.h>
#include <sodium.h>

#include "test_util.hpp"
#include "vault/vault.hpp"

namespace sg::vault {
namespace {

using test::clean_error;
using test::update;

constexpr std::int64_t kT0 = 1'700'000'000;

MasterKey key_from_byte(unsigned char b) {
  Secret raw(kMasterKeyBytes);
  for (std::size_t i = 0; i < raw.size(); ++i) raw.data()[i] = static_cast<unsigned char>(b + i);
  return std::move(MasterKey::from_secret(raw)).value();
}

Contents two_entries(const MasterKey& key) {
  Contents c;
  EXPECT_TRUE(
      put_entry(c, key, update("ses", "AKIAEXAMPLE1", "pass/word&1", "smtp.example"), kT0).ok());
  EXPECT_TRUE(put_entry(c, key, update("backup", "AKIAEXAMPLE2", "pass/word&2"), kT0 + 5).ok());
  return c;
}

// Recomputes the trailing MAC so that only the entry-level checks remain.
std::string with_fixed_mac(std::string file, const MasterKey& key) {
  std::string body = file.substr(0, file.size() - 32);
  unsigned char mac[32];
  crypto_generichash(mac, sizeof mac, reinterpret_cast<const unsigned char*>(body.data()),
                     body.size(), key.mac_key().data(), key.mac_key().size());
  return body + std::string(reinterpret_cast<const char*>(mac), sizeof mac);
}

TEST(VaultFormat, RoundTripKeepsEveryField) {
  MasterKey key = MasterKey::generate();
  Contents c = two_entries(key);
  auto back = unseal(seal(c, key), key);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->entries.size(), 2u);
  const Entry* ses = back->find("ses");
  ASSERT_NE(ses, nullptr);
  EXPECT_EQ(ses->username, "AKIAEXAMPLE1");
  EXPECT_EQ(ses->password.view(), "pass/word&1");
  EXPECT_EQ(ses->upstream_host, "smtp.example");
  EXPECT_EQ(ses->created_at, kT0);
  EXPECT_EQ(ses->rotated_at, 0);
  const Entry* backup = back->find("backup");
  ASSERT_NE(backup, nullptr);
  EXPECT_EQ(backup->upstream_host, "");
  EXPECT_EQ(backup->created_at, kT0 + 5);
  EXPECT_FALSE(back->kdf.has_value());
}

TEST(VaultFormat, EmptyVaultRoundTrips) {
  MasterKey key = MasterKey::generate();
  auto back = unseal(seal(Contents{}, key), key);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->entries.empty());
}

TEST(VaultFormat, SealingTwiceUsesFreshNonces) {
  MasterKey key = MasterKey::generate();
  Contents c = two_entries(key);
  EXPECT_NE(seal(c, key), seal(c, key));
}

TEST(VaultFormat, PasswordNotInFileInClear) {
  MasterKey key = MasterKey::generate();
  std::string file = seal(two_entries(key), key);
  EXPECT_EQ(file.find("pass/word&1"), std::string::npos);
  EXPECT_EQ(file.find("AKIAEXAMPLE1"), std::string::npos);
}

TEST(VaultFormat, EveryFlippedByteIsDetected) {
  MasterKey key = MasterKey::generate();
  const std::string file = seal(two_entries(key), key);
  for (std::size_t i = 0; i < file.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80}) {
      std::string bad = file;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto r = unseal(bad, key);
      ASSERT_FALSE(r.ok()) << "flip at byte " << i;
      EXPECT_TRUE(clean_error(r.error())) << "byte " << i;
      Errc c = r.error().code;
      EXPECT_TRUE(c == Errc::corrupt || c == Errc::crypto || c == Errc::unsupported) << i;
    }
  }
}

TEST(VaultFormat, EveryTruncationIsDetected) {
  MasterKey key = MasterKey::generate();
  const std::string file = seal(two_entries(key), key);
  for (std::size_t n = 0; n < file.size(); ++n) {
    auto r = unseal(std::string_view(file).substr(0, n), key);
    ASSERT_FALSE(r.ok()) << "length " << n;
    EXPECT_TRUE(clean_error(r.error()));
  }
  EXPECT_FALSE(unseal(file + "x", key).ok());
}

// Layout knowledge for the splicing tests: header is 28 bytes + u32 count.
struct Span {
  std::size_t begin, meta_end, end;
};
std::vector<Span> entry_spans(const std::string& f) {
  std::vector<Span> spans;
  std::size_t pos = 32;
  for (int i = 0; i < 2; ++i) {
    std::size_t b = pos;
    pos += 1 + static_cast<unsigned char>(f[pos]);
    pos += 1 + static_cast<unsigned char>(f[pos]);
    pos += 16 + 32;
    std::size_t prev = static_cast<unsigned char>(f[pos]) | static_cast<unsigned char>(f[pos + 1])
                                                                << 8;
    pos += 2 + 32 * prev;
    std::size_t meta_end = pos;
    pos += 24;
    std::size_t len = static_cast<unsigned char>(f[pos]) | static_cast<unsigned char>(f[pos + 1])
                                                               << 8;
    pos += 4 + len;
    spans.push_back({b, meta_end, pos});
  }
  EXPECT_EQ(pos, f.size() - 32);
  return spans;
}

TEST(VaultFormat, SwappedCiphertextsFailEvenWithValidFileMac) {
  MasterKey key = MasterKey::generate();
  const std::string file = seal(two_entries(key), key);  // same-length secrets
  auto s = entry_spans(file);
  std::string a = file.substr(s[0].meta_end, s[0].end - s[0].meta_end);
  std::string b = file.substr(s[1].meta_end, s[1].end - s[1].meta_end);
  ASSERT_EQ(a.size(), b.size());
  std::string swapped = file;
  swapped.replace(s[0].meta_end, a.size(), b);
  swapped.replace(s[1].meta_end, b.size(), a);
  auto r = unseal(swapped, key);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::corrupt);
  auto r2 = unseal(with_fixed_mac(swapped, key), key);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("failed authentication"), std::string::npos)
      << r2.error().message;
}

TEST(VaultFormat, RemovedOrDuplicatedEntryIsDetected) {
  MasterKey key = MasterKey::generate();
  const std::string file = seal(two_entries(key), key);
  auto s = entry_spans(file);
  std::string one = file;
  one.erase(s[1].begin, s[1].end - s[1].begin);
  one[28] = 1;  // entry count
  EXPECT_FALSE(unseal(one, key).ok());
  std::string dup = file;
  dup.insert(s[1].end, file.substr(s[1].begin, s[1].end - s[1].begin));
  dup[28] = 3;
  EXPECT_FALSE(unseal(dup, key).ok());
  auto fixed = unseal(with_fixed_mac(dup, key), key);
  ASSERT_FALSE(fixed.ok());
  EXPECT_NE(fixed.error().message.find("duplicated"), std::string::npos) << fixed.error().message;
}

TEST(VaultFormat, EditedMetadataFailsEntryAuthentication) {
  MasterKey key = MasterKey::generate();
  std::string file = seal(two_entries(key), key);
  auto s = entry_spans(file);
  // The second entry is "ses" (sorted): name 3 bytes, host "smtp.example" 12 bytes.
  const std::size_t created_at = s[1].begin + 1 + 3 + 1 + 12;
  file[created_at] = static_cast<char>(file[created_at] ^ 1);
  auto r = unseal(with_fixed_mac(file, key), key);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'ses' failed authentication"), std::string::npos)
      << r.error().message;
}

TEST(VaultFormat, WrongKeySaysWrongKey) {
  MasterKey key = MasterKey::generate();
  MasterKey other = MasterKey::generate();
  auto r = unseal(seal(two_entries(key), key), other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::crypto);
  EXPECT_NE(r.error().message.find("wrong key"), std::string::npos);
}

TEST(VaultFormat, UnknownVersionIsUnsupported) {
  MasterKey key = MasterKey::generate();
  std::string file = seal(two_entries(key), key);
  file[8] = 2;
  auto r = unseal(with_fixed_mac(file, key), key);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unsupported);
  EXPECT_NE(r.error().message.find("version 2"), std::string::npos) << r.error().message;
  auto h = read_header(file);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, Errc::unsupported);
}

TEST(VaultFormat, NotAVault) {
  MasterKey key = MasterKey::generate();
  auto r = unseal("[vault]\nkey = 1\n# this is a TOML file, not a vault\n", key);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bad magic"), std::string::npos);
}

TEST(VaultFormat, KeyIdIsDeterministicPerKey) {
  EXPECT_EQ(key_from_byte(1).id(), key_from_byte(1).id());
  EXPECT_NE(key_from_byte(1).id(), key_from_byte(2).id());
  EXPECT_EQ(key_from_byte(1).id().size(), kKeyIdBytes);
}

TEST(VaultFormat, FingerprintsStableAcrossSaveLoadAndKeyedByMasterKey) {
  MasterKey key = key_from_byte(7);
  Contents c = two_entries(key);
  std::string before = c.find("ses")->fingerprint;
  EXPECT_EQ(before.size(), 64u);
  EXPECT_EQ(before, key.fingerprint("pass/word&1"));
  auto back = unseal(seal(c, key), key);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->find("ses")->fingerprint, before);
  EXPECT_EQ(key_from_byte(7).fingerprint("pass/word&1"), before);  // same key, same print
  EXPECT_NE(key_from_byte(8).fingerprint("pass/word&1"), before);
  EXPECT_NE(key.fingerprint("pass/word&2"), before);
}

TEST(VaultFormat, UpdateKeepsCreatedAtAndTracksPreviousFingerprints) {
  MasterKey key = MasterKey::generate();
  Contents c = two_entries(key);
  std::string first = c.find("ses")->fingerprint;
  auto r = put_entry(c, key, update("ses", "AKIANEW", "new-password"), kT0 + 100);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  auto back = unseal(seal(c, key), key);
  ASSERT_TRUE(back.ok());
  const Entry* e = back->find("ses");
  EXPECT_EQ(e->created_at, kT0);
  EXPECT_EQ(e->rotated_at, kT0 + 100);
  EXPECT_EQ(e->username, "AKIANEW");
  EXPECT_EQ(e->upstream_host, "smtp.example");  // kept when not given
  EXPECT_EQ(e->fingerprint, key.fingerprint("new-password"));
  ASSERT_EQ(e->previous_fingerprints.size(), 1u);
  EXPECT_EQ(e->previous_fingerprints[0], first);
  // Same password again: rotated_at moves, history does not grow.
  ASSERT_TRUE(put_entry(c, key, update("ses", "AKIANEW", "new-password"), kT0 + 200).ok());
  EXPECT_EQ(c.find("ses")->previous_fingerprints.size(), 1u);
  EXPECT_EQ(c.find("ses")->rotated_at, kT0 + 200);
}

TEST(VaultFormat, PutEntryRejectsBadInput) {
  MasterKey key = MasterKey::generate();
  Contents c;
  EXPECT_FALSE(put_entry(c, key, update("bad name", "u", "p"), kT0).ok());
  EXPECT_FALSE(put_entry(c, key, update("../x", "u", "p"), kT0).ok());
  EXPECT_FALSE(put_entry(c, key, update("ok", "", "p"), kT0).ok());
  EXPECT_FALSE(put_entry(c, key, update("ok", "u", ""), kT0).ok());
  EXPECT_FALSE(put_entry(c, key, update("ok", "u", "p", "bad host"), kT0).ok());
  EXPECT_TRUE(c.entries.empty());
  EXPECT_TRUE(remove_entry(c, "nope") == false);
}

}  // namespace
}  // namespace sg::vault
