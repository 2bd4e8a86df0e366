// Runs the built smtpguard binary: `ses smtp-password` reads the key from
// stdin and prints only the password on stdout.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Feeds `input` on stdin (a file, so stdin is not a tty) and captures output.
ProcessResult run_smtpguard(const std::string& args, const std::string& input) {
  fs::path dir = fs::temp_directory_path() / ("sg-ses-cli-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "in", std::ios::binary) << input;
  std::string cmd = std::string("'") + SMTPGUARD_BIN + "' " + args + " <'" + (dir / "in").string() +
                    "' >'" + (dir / "out").string() + "' 2>'" + (dir / "err").string() + "'";
  int status = std::system(cmd.c_str());
  ProcessResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  fs::remove_all(dir);
  return r;
}

constexpr const char* kKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

TEST(SesCli, DerivesV4PasswordFromStdin) {
  ProcessResult r = run_smtpguard("ses smtp-password --region us-east-2", std::string(kKey) + "\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS\n");
  EXPECT_EQ(r.err, "");
}

TEST(SesCli, LegacyV2NeedsNoRegion) {
  ProcessResult r = run_smtpguard("ses smtp-password --legacy-v2", kKey);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "An60U4ZD3sd4fg+FvXUjayOipTt8LO4rUUmhpdX6ctDy\n");
}

TEST(SesCli, UnknownRegionWarnsButPrints) {
  ProcessResult r = run_smtpguard("ses smtp-password --region xx-north-9", kKey);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 45u) << r.out;  // 44 base64 characters + newline
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("us-east-1"), std::string::npos) << "should list known regions: " << r.err;
  EXPECT_EQ(r.err.find(kKey), std::string::npos) << "key leaked to stderr";
}

TEST(SesCli, RegionRequiredAndBadInputRefused) {
  ProcessResult r = run_smtpguard("ses smtp-password", kKey);
  EXPECT_EQ(r.exit_code, EX_USAGE);
  EXPECT_NE(r.err.find("--region"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");

  r = run_smtpguard("ses smtp-password --region us-east-1", "");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");

  r = run_smtpguard("ses smtp-password --region us-east-1", "AKIAIOSFODNN7EXAMPLE\n");
  EXPECT_EQ(r.exit_code, EX_DATAERR);
  EXPECT_NE(r.err.find("access key ID"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(SesCli, HelpDescribesTheCommand) {
  ProcessResult r = run_smtpguard("ses smtp-password --help", "");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--region"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stdin"), std::string::npos) << r.out;
}

}  // namespace
