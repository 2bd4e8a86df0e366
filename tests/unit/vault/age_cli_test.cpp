// `smtpguard vault list` marks credentials by age against [vault]
// rotation_warn_days / rotation_max_days (the built binary, real vault).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

#ifndef SMTPGUARD_BINARY
#error "SMTPGUARD_BINARY must name the smtpguard executable"
#endif

namespace sg::vault {
namespace {

using test::config_in;
using test::slurp;
using test::TempDir;
using test::update;

constexpr std::int64_t kDay = 86400;

std::string line_of(const std::string& text, const std::string& name) {
  std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return "";
  return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

TEST(VaultListAge, MarksOldCredentialsButNotRollbackCopies) {
  TempDir dir;
  auto cfg = config_in(dir.path());
  ASSERT_TRUE(init(cfg, {}).ok());
  const std::int64_t now = std::time(nullptr);
  ASSERT_TRUE(set(cfg, update("fresh", "u1", "p1"), {}, now).ok());
  ASSERT_TRUE(set(cfg, update("soon", "u2", "p2"), {}, now - 15 * kDay).ok());
  ASSERT_TRUE(set(cfg, update("late", "u3", "p3"), {}, now - 25 * kDay).ok());
  ASSERT_TRUE(set(cfg, update("late.previous", "u4", "p4"), {}, now - 200 * kDay).ok());
  const auto config = dir.path() / "smtpguard.toml";
  std::ofstream(config) << "[relay]\nstate_dir = \"" << (dir.path() / "state").string()
                        << "\"\n[vault]\nrotation_warn_days = 10\nrotation_max_days = 20\n";

  auto run = [&](const std::string& args) {
    const auto out = dir.path() / "out";
    std::string cmd = std::string("'") + SMTPGUARD_BINARY + "' --config '" + config.string() +
                      "' " + args + " </dev/null >'" + out.string() + "' 2>&1";
    int status = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(out);
    return slurp(out);
  };
  std::string text = run("vault list");
  EXPECT_EQ(line_of(text, "fresh").find("rotate"), std::string::npos) << text;
  EXPECT_NE(line_of(text, "soon").find("15 (rotate soon)"), std::string::npos) << text;
  EXPECT_NE(line_of(text, "late").find("25 (OVERDUE: rotate now)"), std::string::npos) << text;
  EXPECT_NE(line_of(text, "late.previous").find("200 (kept for rollback)"), std::string::npos)
      << text;

  auto json = nlohmann::json::parse(run("vault list --json"));
  std::map<std::string, std::string> rotation;
  for (const auto& e : json) rotation[e["name"]] = e["rotation"];
  EXPECT_EQ(rotation["fresh"], "ok");
  EXPECT_EQ(rotation["soon"], "soon");
  EXPECT_EQ(rotation["late"], "overdue");
  EXPECT_EQ(rotation["late.previous"], "rollback copy");
}

}  // namespace
}  // namespace sg::vault
