// Key sources: parsing [vault] key, key files and their permissions, systemd
// credentials, environment variables, passphrases from a descriptor.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "base/encoding.hpp"
#include "test_util.hpp"
#include "vault/vault.hpp"

namespace sg::vault {
namespace {

using test::clean_error;
using test::config_in;
using test::pipe_with;
using test::TempDir;
using test::update;

constexpr std::int64_t kNow = 1'700'000'000;

TEST(KeySource, ParsesEveryKind) {
  auto f = parse_key_source("file:/etc/smtpguard/master.key");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, KeySource::Kind::file);
  EXPECT_EQ(f->arg, "/etc/smtpguard/master.key");
  auto s = parse_key_source("systemd:smtpguard-master");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, KeySource::Kind::systemd);
  EXPECT_EQ(s->arg, "smtpguard-master");
  auto p = parse_key_source("passphrase");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->kind, KeySource::Kind::passphrase);
  auto e = parse_key_source("env:SMTPGUARD_KEY");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, KeySource::Kind::env);
  for (const char* bad : {"", "file:", "systemd:a/b", "env:1X", "env:", "tpm:x", "Passphrase"}) {
    auto r = parse_key_source(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::config);
  }
}

TEST(KeySource, KeyTextAcceptsBase64AndRaw) {
  MasterKey key = MasterKey::generate();
  std::string raw(key.bytes().view());
  auto from_raw = decode_key_text(raw);
  ASSERT_TRUE(from_raw.ok());
  EXPECT_TRUE(from_raw->equals(key.bytes()));
  auto from_b64 = decode_key_text(base64_encode(raw) + "\n");
  ASSERT_TRUE(from_b64.ok());
  EXPECT_TRUE(from_b64->equals(key.bytes()));
  EXPECT_FALSE(decode_key_text("").ok());
  EXPECT_FALSE(decode_key_text("not base64 at all!\n").ok());
  EXPECT_FALSE(decode_key_text(base64_encode(raw.substr(0, 16)) + "\n").ok());  // short
}

TEST(KeySource, KeyFileWrittenPrivateAndReadBack) {
  TempDir dir;
  auto path = dir.path() / "etc" / "master.key";
  MasterKey key = MasterKey::generate();
  ASSERT_TRUE(write_key_file(path, key.bytes()).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(path.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  std::string text = test::slurp(path);
  EXPECT_EQ(text.size(), 45u);  // 44 base64 characters + newline
  EXPECT_EQ(text.back(), '\n');
  auto back = read_key_file(path);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->equals(key.bytes()));
}

TEST(KeySource, KeyFileReadableByOthersIsRefusedWithChmodHint) {
  TempDir dir;
  auto path = dir.path() / "master.key";
  ASSERT_TRUE(write_key_file(path, MasterKey::generate().bytes()).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto r = read_key_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::permission);
  EXPECT_NE(r.error().message.find("chmod 600 " + path.string()), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("0644"), std::string::npos);
  ASSERT_EQ(::chmod(path.c_str(), 0620), 0);  // group-writable is refused too
  EXPECT_FALSE(read_key_file(path).ok());
}

TEST(KeySource, KeyFileOwnedBySomeoneElseIsRefusedWithChownHint) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  TempDir dir;
  auto path = dir.path() / "master.key";
  ASSERT_TRUE(write_key_file(path, MasterKey::generate().bytes()).ok());
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  auto r = read_key_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::permission);
  EXPECT_NE(r.error().message.find("chown root: " + path.string()), std::string::npos)
      << r.error().message;
}

TEST(KeySource, MissingKeyFileIsNotFound) {
  TempDir dir;
  auto r = read_key_file(dir.path() / "nope.key");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_NE(r.error().message.find("does not exist"), std::string::npos);
  EXPECT_TRUE(clean_error(r.error()));
}

class EnvGuard {
 public:
  EnvGuard(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvGuard() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(KeySource, SystemdCredentialOpensTheVault) {
  TempDir dir;
  auto creds = dir.path() / "creds";
  MasterKey key = MasterKey::generate();
  ASSERT_TRUE(write_key_file(creds / "smtpguard-master", key.bytes()).ok());
  auto cfg = config_in(dir.path(), "systemd:smtpguard-master");
  {
    ::unsetenv("CREDENTIALS_DIRECTORY");
    auto r = init(cfg, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::config);
    EXPECT_NE(r.error().message.find("CREDENTIALS_DIRECTORY is not set"), std::string::npos);
  }
  EnvGuard env("CREDENTIALS_DIRECTORY", creds.string());
  ASSERT_TRUE(init(cfg, {}).ok());
  ASSERT_TRUE(set(cfg, update("ses", "AKIA1", "secret-1"), {}, kNow).ok());
  auto c = load_credential(cfg, "ses", {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->password.view(), "secret-1");
  // The vault is sealed with exactly that key.
  auto direct = unseal(test::slurp(cfg.vault.path), key);
  EXPECT_TRUE(direct.ok());
  auto missing = config_in(dir.path(), "systemd:other-name");
  auto r = load_credential(missing, "ses", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found);
}

TEST(KeySource, EnvKeyWorksWithAWarning) {
  TempDir dir;
  MasterKey key = MasterKey::generate();
  EnvGuard env("SG_TEST_VAULT_KEY", base64_encode(key.bytes().view()));
  auto cfg = config_in(dir.path(), "env:SG_TEST_VAULT_KEY");
  ::testing::internal::CaptureStderr();
  auto r = init(cfg, {});
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(err.find("warning"), std::string::npos);
  EXPECT_NE(err.find("SG_TEST_VAULT_KEY"), std::string::npos);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(set(cfg, update("ses", "AKIA1", "secret-1"), {}, kNow).ok());
  ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(unseal(test::slurp(cfg.vault.path), key).ok());
  ::unsetenv("SG_TEST_VAULT_KEY");
  auto unset = open(cfg, {});
  ASSERT_FALSE(unset.ok());
  EXPECT_EQ(unset.error().code, Errc::config);
}

TEST(KeySource, PassphraseFromDescriptor) {
  TempDir dir;
  auto cfg = config_in(dir.path(), "passphrase");
  InitOptions io;
  io.passphrase_fd = pipe_with("correct horse battery staple\n");
  ASSERT_TRUE(init(cfg, io).ok());
  ::close(*io.passphrase_fd);
  auto header = read_header(test::slurp(cfg.vault.path));
  ASSERT_TRUE(header.ok());
  ASSERT_TRUE(header->kdf.has_value());
  EXPECT_EQ(header->kdf->salt.size(), 16u);

  KeyOptions good{pipe_with("correct horse battery staple\n")};
  ASSERT_TRUE(set(cfg, update("ses", "AKIA1", "secret-1"), good, kNow).ok());
  ::close(*good.passphrase_fd);
  KeyOptions again{pipe_with("correct horse battery staple")};
  auto c = load_credential(cfg, "ses", again);
  ::close(*again.passphrase_fd);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->password.view(), "secret-1");

  KeyOptions bad{pipe_with("wrong horse\n")};
  auto r = load_credential(cfg, "ses", bad);
  ::close(*bad.passphrase_fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::crypto);
  EXPECT_NE(r.error().message.find("wrong passphrase"), std::string::npos);

  // A passphrase vault opened with a key-file configuration says so.
  auto as_file = config_in(dir.path());
  auto mismatch = open(as_file, {});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("sealed with a passphrase"), std::string::npos);
}

}  // namespace
}  // namespace sg::vault
