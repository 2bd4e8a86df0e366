// The vault on disk: init, set, rm, list, rekey, locking, damaged files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.hpp"
#include "test_util.hpp"
#include "vault/vault.hpp"

namespace sg::vault {
namespace {

using test::clean_error;
using test::config_in;
using test::pipe_with;
using test::slurp;
using test::TempDir;
using test::update;

constexpr std::int64_t kNow = 1'700'000'000;
namespace fs = std::filesystem;

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

class VaultStore : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(init(cfg, {}).ok()); }
  fs::path key_path() const { return dir.path() / "state" / "master.key"; }
  TempDir dir;
  config::Config cfg = config_in(dir.path());
};

TEST_F(VaultStore, InitCreatesPrivateKeyAndEmptyVault) {
  EXPECT_EQ(mode_of(key_path()), 0600u);
  EXPECT_EQ(mode_of(cfg.vault.path), 0600u);
  EXPECT_EQ(mode_of(cfg.vault.path.parent_path()), 0700u);
  auto c = open(cfg, {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->entries.empty());
}

TEST_F(VaultStore, InitRefusesToOverwriteUnlessForced) {
  const std::string key_before = slurp(key_path());
  auto again = init(cfg, {});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::conflict);
  EXPECT_NE(again.error().message.find("--force"), std::string::npos);
  EXPECT_EQ(slurp(key_path()), key_before);
  fs::remove(cfg.vault.path);  // key alone is protected too
  EXPECT_FALSE(init(cfg, {}).ok());
  EXPECT_EQ(slurp(key_path()), key_before);
  InitOptions force;
  force.force = true;
  ASSERT_TRUE(init(cfg, force).ok());
  EXPECT_NE(slurp(key_path()), key_before);
}

TEST_F(VaultStore, SetListRemove) {
  auto first =
      set(cfg, update("ses", "AKIA1", "pw-1", "email-smtp.us-east-1.amazonaws.com"), {}, kNow);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(*first);
  auto second = set(cfg, update("ses", "AKIA1", "pw-2"), {}, kNow + 86400);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(*second);
  ASSERT_TRUE(set(cfg, update("backup", "user", "pw-3"), {}, kNow).ok());

  auto c = load_credential(cfg, "ses", {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->username, "AKIA1");
  EXPECT_EQ(c->password.view(), "pw-2");
  EXPECT_EQ(c->upstream_host, "email-smtp.us-east-1.amazonaws.com");
  EXPECT_EQ(c->created_at, kNow);
  EXPECT_EQ(c->rotated_at, kNow + 86400);

  ASSERT_TRUE(remove(cfg, "backup", {}).ok());
  auto all = open(cfg, {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->entries.size(), 1u);
  EXPECT_EQ(all->entries[0].name, "ses");

  auto gone = remove(cfg, "backup", {});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::not_found);
  auto missing = load_credential(cfg, "nope", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_EQ(missing.error().message, "vault has no entry 'nope' (see: smtpguard vault list)");
}

TEST_F(VaultStore, ConcurrentSetsFromTwoProcessesBothSurvive) {
  constexpr int kPerChild = 12;
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = ::fork();
    ASSERT_GE(kids[k], 0);
    if (kids[k] == 0) {
      int failures = 0;
      for (int i = 0; i < kPerChild; ++i) {
        std::string name = "p" + std::to_string(k) + "-" + std::to_string(i);
        if (!set(cfg, update(name, "user", "pw-" + name), {}, kNow + i).ok()) ++failures;
      }
      ::_exit(failures == 0 ? 0 : 1);
    }
  }
  for (pid_t kid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(kid, &status, 0), kid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  auto c = open(cfg, {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->entries.size(), 2u * kPerChild);
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < kPerChild; ++i) {
      std::string name = "p" + std::to_string(k) + "-" + std::to_string(i);
      const Entry* e = c->find(name);
      ASSERT_NE(e, nullptr) << name;
      EXPECT_EQ(e->password.view(), "pw-" + name);
    }
}

TEST_F(VaultStore, WrongKeyFileSaysWrongKey) {
  ASSERT_TRUE(write_key_file(key_path(), MasterKey::generate().bytes()).ok());
  auto r = open(cfg, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::crypto);
  EXPECT_NE(r.error().message.find("wrong key"), std::string::npos) << r.error().message;
  EXPECT_TRUE(clean_error(r.error()));
}

TEST_F(VaultStore, MissingFilesAreNamed) {
  fs::remove(key_path());
  auto r = open(cfg, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_NE(r.error().message.find(key_path().string()), std::string::npos);
  fs::remove(cfg.vault.path);
  auto v = set(cfg, update("ses", "u", "p"), {}, kNow);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, Errc::not_found);
  EXPECT_NE(v.error().message.find("smtpguard vault init"), std::string::npos);
}

TEST_F(VaultStore, DamagedVaultIsReportedAndNeverRewritten) {
  ASSERT_TRUE(set(cfg, update("ses", "AKIA1", "pw-1"), {}, kNow).ok());
  std::string file = slurp(cfg.vault.path);
  file[file.size() / 2] = static_cast<char>(file[file.size() / 2] ^ 0x20);
  ASSERT_TRUE(write_file_atomic(cfg.vault.path, file, 0600).ok());
  auto r = set(cfg, update("other", "u", "p"), {}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::corrupt);
  EXPECT_NE(r.error().message.find(cfg.vault.path.string()), std::string::npos);
  EXPECT_EQ(slurp(cfg.vault.path), file);
  ASSERT_TRUE(write_file_atomic(cfg.vault.path, file.substr(0, 40), 0600).ok());
  auto t = load_credential(cfg, "ses", {});
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(clean_error(t.error()));
}

TEST_F(VaultStore, RekeyFileKeyOpensOnlyWithNewKey) {
  ASSERT_TRUE(set(cfg, update("ses", "AKIA1", "pw-1"), {}, kNow).ok());
  ASSERT_TRUE(set(cfg, update("ses", "AKIA1", "pw-2"), {}, kNow + 1).ok());
  auto old_key = read_key_file(key_path());
  ASSERT_TRUE(old_key.ok());
  auto report = rekey(cfg, {}, {});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->entries, 1u);
  EXPECT_EQ(report->dropped_previous_fingerprints, 1u);
  EXPECT_FALSE(fs::exists(key_path().string() + ".old"));
  EXPECT_EQ(mode_of(key_path()), 0600u);

  auto new_key = read_key_file(key_path());
  ASSERT_TRUE(new_key.ok());
  EXPECT_FALSE(new_key->equals(*old_key));
  const std::string file = slurp(cfg.vault.path);
  auto with_old = unseal(file, std::move(MasterKey::from_secret(*old_key)).value());
  ASSERT_FALSE(with_old.ok());
  EXPECT_NE(with_old.error().message.find("wrong key"), std::string::npos);
  MasterKey nk = std::move(MasterKey::from_secret(*new_key)).value();
  auto with_new = unseal(file, nk);
  ASSERT_TRUE(with_new.ok());
  EXPECT_EQ(with_new->find("ses")->password.view(), "pw-2");
  EXPECT_EQ(with_new->find("ses")->fingerprint, nk.fingerprint("pw-2"));
  EXPECT_EQ(with_new->find("ses")->created_at, kNow);
}

TEST_F(VaultStore, InterruptedRekeyStillOpensThroughOldKey) {
  ASSERT_TRUE(set(cfg, update("ses", "AKIA1", "pw-1"), {}, kNow).ok());
  // State after step 2 of rekey: KEY.old = current key, KEY = new key, old vault.
  fs::path old = key_path().string() + ".old";
  fs::copy_file(key_path(), old);
  ASSERT_TRUE(write_key_file(key_path(), MasterKey::generate().bytes()).ok());
  ::testing::internal::CaptureStderr();
  auto c = load_credential(cfg, "ses", {});
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->password.view(), "pw-1");
  EXPECT_NE(err.find("interrupted rekey"), std::string::npos);
  // Rekey again completes the job.
  ::testing::internal::CaptureStderr();
  auto r = rekey(cfg, {}, {});
  ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(fs::exists(old));
  auto after = load_credential(cfg, "ses", {});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->password.view(), "pw-1");
}

TEST(VaultStorePassphrase, RekeyAsksForNewPassphrase) {
  TempDir dir;
  auto cfg = config_in(dir.path(), "passphrase");
  InitOptions io;
  io.passphrase_fd = pipe_with("old pass\n");
  ASSERT_TRUE(init(cfg, io).ok());
  KeyOptions old1{pipe_with("old pass\n")};
  ASSERT_TRUE(set(cfg, update("ses", "AKIA1", "pw-1"), old1, kNow).ok());
  KeyOptions old2{pipe_with("old pass\n")};
  RekeyOptions ro{pipe_with("new pass\n")};
  auto r = rekey(cfg, old2, ro);
  ASSERT_TRUE(r.ok()) << r.error().message;
  KeyOptions stale{pipe_with("old pass\n")};
  auto with_old = load_credential(cfg, "ses", stale);
  ASSERT_FALSE(with_old.ok());
  EXPECT_NE(with_old.error().message.find("wrong passphrase"), std::string::npos);
  KeyOptions fresh{pipe_with("new pass\n")};
  auto with_new = load_credential(cfg, "ses", fresh);
  ASSERT_TRUE(with_new.ok()) << with_new.error().message;
  EXPECT_EQ(with_new->password.view(), "pw-1");
  for (int fd : {*io.passphrase_fd, *old1.passphrase_fd, *old2.passphrase_fd, *ro.new_passphrase_fd,
                 *stale.passphrase_fd, *fresh.passphrase_fd})
    ::close(fd);
}

}  // namespace
}  // namespace sg::vault
