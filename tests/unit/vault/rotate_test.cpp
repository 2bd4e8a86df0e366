// Rotation: NAME.previous naming, rotate_entry/rollback_entry on contents,
// the locked store operations, and a passphrase read once for several opens.
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_util.hpp"
#include "vault/vault.hpp"

namespace sg::vault {
namespace {

using test::config_in;
using test::pipe_with;
using test::slurp;
using test::TempDir;
using test::update;

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kT0 = 1'700'000'000;

TEST(PreviousEntryName, AppendsSuffixWithinTheNameRules) {
  EXPECT_EQ(previous_entry_name("ses").value(), "ses.previous");
  EXPECT_EQ(previous_entry_name(std::string(55, 'a')).value().size(), 64u);
  auto too_long = previous_entry_name(std::string(56, 'a'));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, Errc::invalid_input);
  EXPECT_FALSE(previous_entry_name("").ok());
  EXPECT_FALSE(previous_entry_name("-bad").ok());
  EXPECT_TRUE(is_previous_entry_name("ses.previous"));
  EXPECT_FALSE(is_previous_entry_name(".previous"));
  EXPECT_FALSE(is_previous_entry_name("ses"));
  EXPECT_FALSE(is_previous_entry_name("ses.previous2"));
}

class RotateEntry : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(put_entry(c, key, update("ses", "AKIAOLD", "old-pw", "h"), kT0).ok());
  }
  const Entry& at(std::string_view name) {
    const Entry* e = c.find(name);
    EXPECT_NE(e, nullptr) << name;
    static Entry none;
    return e ? *e : none;
  }
  MasterKey key = MasterKey::generate();
  Contents c;
};

TEST_F(RotateEntry, KeepsTheReplacedCredentialAsPrevious) {
  auto r = rotate_entry(c, key, update("ses", "AKIANEW", "new-pw"), kT0 + 30 * kDay);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->username, "AKIANEW");
  EXPECT_EQ(r->previous_username, "AKIAOLD");
  ASSERT_EQ(c.entries.size(), 2u);
  EXPECT_EQ(c.entries[0].name, "ses");  // still sorted
  EXPECT_EQ(c.entries[1].name, "ses.previous");

  const Entry& now = at("ses");
  EXPECT_EQ(now.username, "AKIANEW");
  EXPECT_EQ(now.password.view(), "new-pw");
  EXPECT_EQ(now.upstream_host, "h");  // kept: the update did not name one
  EXPECT_EQ(now.created_at, kT0);
  EXPECT_EQ(now.rotated_at, kT0 + 30 * kDay);
  EXPECT_EQ(now.fingerprint, key.fingerprint("new-pw"));
  EXPECT_EQ(now.previous_fingerprints, std::vector<std::string>{key.fingerprint("old-pw")});

  const Entry& prev = at("ses.previous");
  EXPECT_EQ(prev.username, "AKIAOLD");
  EXPECT_EQ(prev.password.view(), "old-pw");
  EXPECT_EQ(prev.created_at, kT0);  // its own times: its age stays honest
  EXPECT_EQ(prev.rotated_at, 0);
  EXPECT_TRUE(prev.previous_fingerprints.empty());

  // A second rotation replaces the rollback copy.
  ASSERT_TRUE(rotate_entry(c, key, update("ses", "AKIA3RD", "third-pw"), kT0 + 60 * kDay).ok());
  ASSERT_EQ(c.entries.size(), 2u);
  EXPECT_EQ(at("ses.previous").username, "AKIANEW");
  EXPECT_EQ(at("ses.previous").rotated_at, kT0 + 30 * kDay);
  EXPECT_EQ(at("ses").previous_fingerprints.size(), 2u);
}

TEST_F(RotateEntry, NewPasswordForTheSameUserIsARotation) {
  ASSERT_TRUE(rotate_entry(c, key, update("ses", "AKIAOLD", "other-pw"), kT0 + kDay).ok());
  EXPECT_EQ(at("ses.previous").password.view(), "old-pw");
  EXPECT_EQ(at("ses").password.view(), "other-pw");
}

TEST_F(RotateEntry, RefusesTheCredentialAlreadyInUse) {
  auto r = rotate_entry(c, key, update("ses", "AKIAOLD", "old-pw"), kT0 + kDay);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_TRUE(test::clean_error(r.error()));
  EXPECT_EQ(r.error().message.find("old-pw"), std::string::npos);
  EXPECT_EQ(c.entries.size(), 1u);
  EXPECT_EQ(at("ses").rotated_at, 0);
}

TEST_F(RotateEntry, InvalidUpdateChangesNothing) {
  EXPECT_FALSE(rotate_entry(c, key, update("ses", "", "pw"), kT0 + kDay).ok());
  EXPECT_FALSE(rotate_entry(c, key, update("ses", "u", ""), kT0 + kDay).ok());
  EXPECT_FALSE(rotate_entry(c, key, update(std::string(60, 'x'), "u", "pw"), kT0 + kDay).ok());
  ASSERT_EQ(c.entries.size(), 1u);
  EXPECT_EQ(at("ses").password.view(), "old-pw");
}

TEST_F(RotateEntry, FirstCredentialHasNoPrevious) {
  auto r = rotate_entry(c, key, update("other", "u", "pw"), kT0 + kDay);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->previous_username);
  EXPECT_EQ(c.find("other.previous"), nullptr);
  EXPECT_EQ(at("other").created_at, kT0 + kDay);
  EXPECT_EQ(at("other").rotated_at, kT0 + kDay);  // the rotation is recorded
}

TEST_F(RotateEntry, RollbackSwapsAndASecondRollbackRedoes) {
  EXPECT_EQ(rollback_entry(c, "ses").error().code, Errc::not_found);
  ASSERT_TRUE(rotate_entry(c, key, update("ses", "AKIANEW", "new-pw"), kT0 + 30 * kDay).ok());
  auto r = rollback_entry(c, "ses");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->username, "AKIAOLD");
  EXPECT_EQ(r->previous_username, "AKIANEW");
  EXPECT_EQ(at("ses").password.view(), "old-pw");
  EXPECT_EQ(at("ses").rotated_at, 0);
  EXPECT_EQ(at("ses").created_at, kT0);
  // The history of NAME now holds the password rolled back from, not its own.
  EXPECT_EQ(at("ses").previous_fingerprints, std::vector<std::string>{key.fingerprint("new-pw")});
  EXPECT_EQ(at("ses.previous").password.view(), "new-pw");
  EXPECT_EQ(at("ses.previous").rotated_at, kT0 + 30 * kDay);
  ASSERT_TRUE(rollback_entry(c, "ses").ok());
  EXPECT_EQ(at("ses").password.view(), "new-pw");
  EXPECT_EQ(at("ses.previous").password.view(), "old-pw");
  EXPECT_EQ(c.entries.size(), 2u);
}

TEST_F(RotateEntry, RollbackWithoutCurrentPromotesThePrevious) {
  ASSERT_TRUE(rotate_entry(c, key, update("ses", "AKIANEW", "new-pw"), kT0 + kDay).ok());
  ASSERT_TRUE(remove_entry(c, "ses"));
  auto r = rollback_entry(c, "ses");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->previous_username);
  ASSERT_EQ(c.entries.size(), 1u);
  EXPECT_EQ(at("ses").password.view(), "old-pw");
}

// The store: rotate and rollback under the lock, surviving a reseal.
TEST(VaultRotateStore, RotateAndRollbackOnDisk) {
  TempDir dir;
  auto cfg = config_in(dir.path());
  ASSERT_TRUE(init(cfg, {}).ok());
  ASSERT_TRUE(set(cfg, update("ses", "AKIAOLD", "old-pw"), {}, kT0).ok());
  auto r = rotate(cfg, update("ses", "AKIANEW", "new-pw"), {}, kT0 + kDay);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto cur = load_credential(cfg, "ses", {});
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(cur->username, "AKIANEW");
  EXPECT_EQ(cur->password.view(), "new-pw");
  EXPECT_EQ(cur->rotated_at, kT0 + kDay);
  auto prev = load_credential(cfg, "ses.previous", {});
  ASSERT_TRUE(prev.ok());
  EXPECT_EQ(prev->password.view(), "old-pw");

  const std::string sealed = slurp(cfg.vault.path);
  auto same = rotate(cfg, update("ses", "AKIANEW", "new-pw"), {}, kT0 + 2 * kDay);
  ASSERT_FALSE(same.ok());
  EXPECT_EQ(same.error().code, Errc::conflict);
  EXPECT_EQ(slurp(cfg.vault.path), sealed);  // a failed change writes nothing

  ASSERT_TRUE(rollback(cfg, "ses", {}).ok());
  EXPECT_EQ(load_credential(cfg, "ses", {})->password.view(), "old-pw");
  EXPECT_EQ(load_credential(cfg, "ses.previous", {})->password.view(), "new-pw");
  EXPECT_EQ(rollback(cfg, "nothing", {}).error().code, Errc::not_found);
}

TEST(VaultRotateStore, PassphraseGivenOnceOpensSeveralTimes) {
  TempDir dir;
  auto cfg = config_in(dir.path(), "passphrase");
  InitOptions io;
  io.passphrase_fd = pipe_with("pass\n");
  ASSERT_TRUE(init(cfg, io).ok());
  ::close(*io.passphrase_fd);
  Secret pass = Secret::copy_of("pass");
  KeyOptions k;
  k.passphrase = &pass;
  ASSERT_TRUE(set(cfg, update("ses", "AKIAOLD", "old-pw"), k, kT0).ok());
  ASSERT_TRUE(open(cfg, k).ok());
  ASSERT_TRUE(rotate(cfg, update("ses", "AKIANEW", "new-pw"), k, kT0 + kDay).ok());
  EXPECT_EQ(load_credential(cfg, "ses.previous", k)->username, "AKIAOLD");
  Secret wrong = Secret::copy_of("nope");
  k.passphrase = &wrong;
  auto bad = open(cfg, k);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("wrong passphrase"), std::string::npos);
}

}  // namespace
}  // namespace sg::vault
