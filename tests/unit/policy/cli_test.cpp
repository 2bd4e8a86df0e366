// `smtpguard client ...` end to end: the built binary with a temporary config.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/config.hpp"
#include "policy/policy.hpp"

#ifndef SMTPGUARD_BINARY
#error "SMTPGUARD_BINARY must name the smtpguard executable"
#endif

namespace sg::policy {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ClientCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sgclientcli.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir = tmpl;
    write_config("");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void write_config(const std::string& extra) {
    std::ofstream(dir / "smtpguard.toml")
        << "[relay]\nstate_dir = \"" << (dir / "state").string() << "\"\n"
        << extra;
  }
  fs::path store_path() const { return dir / "state" / "clients.json"; }

  CliRun run(const std::string& args, const std::string& input = "") {
    std::ofstream(dir / "stdin") << input;
    std::string cmd = std::string("'") + SMTPGUARD_BINARY + "' --config '" +
                      (dir / "smtpguard.toml").string() + "' " + args + " <'" +
                      (dir / "stdin").string() + "' >'" + (dir / "out").string() + "' 2>'" +
                      (dir / "err").string() + "'";
    int status = std::system(cmd.c_str());
    CliRun r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(dir / "out");
    r.err = slurp(dir / "err");
    return r;
  }

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

  // The identities the relay would load from this config and store.
  IdentityTable table() {
    auto cfg = config::load_file(dir / "smtpguard.toml");
    EXPECT_TRUE(cfg.ok());
    auto stored = ClientStore::open(cfg->relay.state_dir)->load();
    EXPECT_TRUE(stored.ok()) << (stored.ok() ? "" : stored.error().message);
    auto t = IdentityTable::build(*cfg, *stored);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    return t.ok() ? std::move(t).value() : IdentityTable{};
  }

  fs::path dir;
};

TEST_F(ClientCli, AddListRmPasswd) {
  CliRun add =
      run("client add shop --allowed-sender '*@shop.example.com' --per-minute 30 "
          "--per-hour 500 --recipients-per-day 1000 --max-recipients 20 --max-size 5MB "
          "--on-limit hold",
          "first-password\n");
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_THAT(add.out, HasSubstr("added client 'shop' (password)"));
  EXPECT_EQ(add.out.find("first-password"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(store_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(slurp(store_path()).find("first-password"), std::string::npos);

  ASSERT_EQ(run("client add lan --ip 10.0.0.0/8 --ip ::1").exit_code, 0);
  {
    IdentityTable t = table();
    const Identity* shop = t.authenticate("shop", Secret::copy_of("first-password"));
    ASSERT_NE(shop, nullptr);
    EXPECT_EQ(shop->max_recipients, 20u);
    EXPECT_EQ(shop->max_message_size, 5'000'000u);
    EXPECT_EQ(shop->messages.per_hour, 500u);
    EXPECT_EQ(shop->recipients.per_day, 1000u);
    EXPECT_EQ(shop->on_limit, config::OnLimit::hold);
    ASSERT_NE(t.by_peer(Peer{false, std::nullopt, "10.2.3.4"}), nullptr);
    EXPECT_EQ(t.by_peer(Peer{false, std::nullopt, "10.2.3.4"})->name, "lan");
  }

  CliRun list = run("client list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("*@shop.example.com"));
  EXPECT_THAT(list.out, HasSubstr("(none: may send nothing)"));  // lan has no senders
  EXPECT_EQ(list.out.find("argon2"), std::string::npos);
  CliRun json = run("client list --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0]["name"], "shop");
  EXPECT_EQ(parsed[0]["password_set"], true);
  EXPECT_EQ(parsed[0]["rate"]["per_minute"], 30);
  EXPECT_EQ(parsed[1]["ip"][1], "::1");
  EXPECT_EQ(json.out.find("argon2"), std::string::npos);

  // passwd with nothing on stdin generates and prints a password once.
  CliRun passwd = run("client passwd shop");
  ASSERT_EQ(passwd.exit_code, 0) << passwd.err;
  std::istringstream lines(passwd.out);
  std::string line, generated;
  while (std::getline(lines, line))
    if (line.size() == 24 &&
        line.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") ==
            std::string::npos)
      generated = line;
  ASSERT_EQ(generated.size(), 24u) << passwd.out;
  {
    IdentityTable t = table();
    EXPECT_EQ(t.authenticate("shop", Secret::copy_of("first-password")), nullptr);
    EXPECT_NE(t.authenticate("shop", Secret::copy_of(generated)), nullptr);
  }
  ASSERT_EQ(run("client passwd shop --password-stdin", "third\n").exit_code, 0);
  EXPECT_NE(table().authenticate("shop", Secret::copy_of("third")), nullptr);
  EXPECT_TRUE(failed_cleanly(run("client passwd shop --password-stdin", ""), 65, "empty password"));
  EXPECT_TRUE(failed_cleanly(run("client passwd lan", "x"), 65, "not by password"));
  EXPECT_TRUE(failed_cleanly(run("client passwd ghost", "x"), 66, "no client 'ghost'"));

  ASSERT_EQ(run("client rm lan").exit_code, 0);
  EXPECT_TRUE(failed_cleanly(run("client rm lan"), 66, "no client \"lan\""));
  EXPECT_EQ(table().find("lan"), nullptr);
  EXPECT_NE(table().find("shop"), nullptr);
}

TEST_F(ClientCli, GeneratedPasswordForAddWithoutInput) {
  CliRun add = run("client add blog --allowed-sender blog@example.com");
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_THAT(add.out, HasSubstr("shown only this once"));
  EXPECT_THAT(add.out, HasSubstr("username 'blog'"));
}

TEST_F(ClientCli, UidIdentity) {
  CliRun add = run("client add rootapp --uid root --allowed-sender root@example.com");
  ASSERT_EQ(add.exit_code, 0) << add.err;
  IdentityTable t = table();
  const Identity* id = t.by_peer(Peer{true, 0, ""});
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(id->name, "rootapp");
  EXPECT_TRUE(failed_cleanly(run("client add x --uid no-such-user-here"), 66,
                             "no such user 'no-such-user-here'"));
  EXPECT_TRUE(failed_cleanly(run("client add y --uid root"), 78, "claim the same uid"));
}

TEST_F(ClientCli, BadInputGivesOneLine) {
  EXPECT_TRUE(failed_cleanly(run("client add 'bad name'"), 64, "invalid client name"));
  EXPECT_EQ(run("client add a --uid root --ip ::1").exit_code, 64);
  EXPECT_EQ(run("client add a --on-limit drop").exit_code, 64);
  EXPECT_TRUE(failed_cleanly(run("client add a --ip 10.0.0.1/8"), 65, "did you mean 10.0.0.0/8"));
  EXPECT_TRUE(
      failed_cleanly(run("client add a --ip ::1 --allowed-sender 'x@[1.2.3.4]'"), 65, "literal"));
  EXPECT_TRUE(failed_cleanly(run("client add a --ip ::1 --max-size lots"), 65, "--max-size"));
  EXPECT_FALSE(fs::exists(store_path()));
}

TEST_F(ClientCli, ConfigAndStoreNamesDoNotCollide) {
  write_config("[[client]]\nname = \"shop\"\nauth = \"uid:root\"\n");
  EXPECT_TRUE(failed_cleanly(run("client add shop --ip ::1"), 73, "already defined in"));
  EXPECT_TRUE(failed_cleanly(run("client rm shop"), 65, "remove its [[client]] table there"));
  EXPECT_TRUE(failed_cleanly(run("client passwd shop", "x"), 65, "set its password_hash there"));
  CliRun list = run("client list --json");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(nlohmann::json::parse(list.out)[0]["source"], "config");
  CliRun hash = run("client passwd --print-hash --password-stdin", "pw\n");
  ASSERT_EQ(hash.exit_code, 0) << hash.err;
  EXPECT_THAT(hash.out, HasSubstr("password_hash = \"$argon2id$"));
}

}  // namespace
}  // namespace sg::policy
