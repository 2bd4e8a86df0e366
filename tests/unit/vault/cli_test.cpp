// `smtpguard vault ...` end to end: the built binary with a temporary config.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

#ifndef SMTPGUARD_BINARY
#error "SMTPGUARD_BINARY must name the smtpguard executable"
#endif

namespace sg::vault {
namespace {

namespace fs = std::filesystem;
using test::slurp;
using test::TempDir;

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

class VaultCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(config_path()) << "[relay]\nstate_dir = \"" << state().string() << "\"\n";
  }
  fs::path config_path() const { return dir.path() / "smtpguard.toml"; }
  fs::path state() const { return dir.path() / "state"; }
  fs::path key() const { return state() / "master.key"; }
  fs::path vault() const { return state() / "vault.sealed"; }

  // Runs `smtpguard --config CFG ARGS` with `input` on stdin; `extra` is
  // appended to the shell command (e.g. a descriptor redirection).
  CliRun run(const std::string& args, const std::string& input = "",
             const std::string& extra = "") {
    std::ofstream(dir.path() / "stdin") << input;
    std::string cmd = std::string("'") + SMTPGUARD_BINARY + "' --config '" +
                      config_path().string() + "' " + args + " <'" +
                      (dir.path() / "stdin").string() + "' >'" + (dir.path() / "out").string() +
                      "' 2>'" + (dir.path() / "err").string() + "' " + extra;
    int status = std::system(cmd.c_str());
    CliRun r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(dir.path() / "out");
    r.err = slurp(dir.path() / "err");
    return r;
  }

  // One "smtpguard: ..." line on stderr and a failing exit code.
  static ::testing::AssertionResult failed_cleanly(const CliRun& r, int code,
                                                   std::string_view says) {
    if (r.exit_code != code)
      return ::testing::AssertionFailure() << "exit " << r.exit_code << ", stderr: " << r.err;
    if (r.err.rfind("smtpguard: ", 0) != 0 || r.err.find('\n') != r.err.size() - 1)
      return ::testing::AssertionFailure() << "not one line: " << r.err;
    if (r.err.find(says) == std::string::npos)
      return ::testing::AssertionFailure() << "missing '" << says << "': " << r.err;
    return ::testing::AssertionSuccess();
  }

  TempDir dir;
};

TEST_F(VaultCli, InitSetListRmRekey) {
  CliRun init = run("vault init");
  ASSERT_EQ(init.exit_code, 0) << init.err;
  struct stat st {};
  ASSERT_EQ(::stat(key().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(failed_cleanly(run("vault init"), 73, "--force"));

  CliRun set = run("vault set ses --username AKIAEXAMPLE --upstream-host email-smtp.example",
                   "s3cret/&pw\n");
  ASSERT_EQ(set.exit_code, 0) << set.err;
  ASSERT_EQ(run("vault set backup --username bob", "other-pw").exit_code, 0);

  CliRun list = run("vault list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("AKIAEXAMPLE"), std::string::npos);
  EXPECT_NE(list.out.find("email-smtp.example"), std::string::npos);
  EXPECT_NE(list.out.find("backup"), std::string::npos);
  EXPECT_EQ(list.out.find("s3cret"), std::string::npos);

  CliRun json = run("vault list --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[1]["name"], "ses");
  EXPECT_EQ(parsed[1]["username"], "AKIAEXAMPLE");
  EXPECT_EQ(parsed[1]["age_days"], 0);
  EXPECT_EQ(json.out.find("s3cret"), std::string::npos);

  ASSERT_EQ(run("vault rm backup").exit_code, 0);
  EXPECT_TRUE(failed_cleanly(run("vault rm backup"), 66, "vault has no entry 'backup'"));

  const std::string key_before = slurp(key());
  CliRun rekey = run("vault rekey");
  ASSERT_EQ(rekey.exit_code, 0) << rekey.err;
  EXPECT_NE(slurp(key()), key_before);
  CliRun after = run("vault list");
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_NE(after.out.find("ses"), std::string::npos);
  EXPECT_EQ(after.out.find("backup"), std::string::npos);
}

TEST_F(VaultCli, NoSecretInArgv) {
  ASSERT_EQ(run("vault init").exit_code, 0);
  CliRun r = run("vault set ses --username u --password hunter2");
  EXPECT_EQ(r.exit_code, 64);
}

TEST_F(VaultCli, BadInputGivesOneLineAndLeavesVaultAlone) {
  ASSERT_EQ(run("vault init").exit_code, 0);
  ASSERT_EQ(run("vault set ses --username u", "pw").exit_code, 0);
  const std::string good = slurp(vault());

  std::string flipped = good;
  flipped[flipped.size() - 40] ^= 0x04;
  ASSERT_TRUE(write_file_atomic(vault(), flipped, 0600).ok());
  EXPECT_TRUE(failed_cleanly(run("vault set x --username u", "pw"), 65, "integrity"));
  EXPECT_EQ(slurp(vault()), flipped);  // nothing written

  ASSERT_TRUE(write_file_atomic(vault(), good.substr(0, good.size() / 2), 0600).ok());
  EXPECT_TRUE(failed_cleanly(run("vault list"), 65, vault().string()));

  std::string future = good;
  future[8] = 9;
  ASSERT_TRUE(write_file_atomic(vault(), future, 0600).ok());
  EXPECT_TRUE(failed_cleanly(run("vault list"), 65, "version 9"));

  ASSERT_TRUE(write_file_atomic(vault(), good, 0600).ok());
  ASSERT_EQ(::chmod(key().c_str(), 0644), 0);
  EXPECT_TRUE(failed_cleanly(run("vault list"), 77, "chmod 600 " + key().string()));
  ASSERT_EQ(::chmod(key().c_str(), 0600), 0);

  const std::string key_text = slurp(key());
  ASSERT_TRUE(write_key_file(key(), MasterKey::generate().bytes()).ok());
  EXPECT_TRUE(failed_cleanly(run("vault list"), 65, "wrong key"));
  fs::remove(key());
  EXPECT_TRUE(failed_cleanly(run("vault list"), 66, "does not exist"));
  ASSERT_TRUE(write_file_atomic(key(), key_text, 0600).ok());
  EXPECT_EQ(run("vault list").exit_code, 0);
}

TEST_F(VaultCli, PassphraseFromDescriptors) {
  std::ofstream(config_path()) << "[relay]\nstate_dir = \"" << state().string()
                               << "\"\n[vault]\nkey = \"passphrase\"\n";
  const std::string pass = (dir.path() / "pass").string();
  const std::string next = (dir.path() / "next").string();
  std::ofstream(pass) << "first passphrase\n";
  std::ofstream(next) << "second passphrase\n";
  ASSERT_EQ(run("vault init --passphrase-fd 3", "", "3<'" + pass + "'").exit_code, 0);
  // The password comes on stdin, so the passphrase must come another way.
  EXPECT_TRUE(failed_cleanly(run("vault set ses --username u", "pw"), 64, "--passphrase-fd"));
  CliRun set = run("vault set ses --username u --passphrase-fd 3", "pw", "3<'" + pass + "'");
  ASSERT_EQ(set.exit_code, 0) << set.err;
  CliRun rekey = run("vault rekey --passphrase-fd 3 --new-passphrase-fd 4", "",
                     "3<'" + pass + "' 4<'" + next + "'");
  ASSERT_EQ(rekey.exit_code, 0) << rekey.err;
  EXPECT_TRUE(failed_cleanly(run("vault list --passphrase-fd 3", "", "3<'" + pass + "'"), 65,
                             "wrong passphrase"));
  CliRun list = run("vault list --passphrase-fd 3", "", "3<'" + next + "'");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("ses"), std::string::npos);
}

}  // namespace
}  // namespace sg::vault
