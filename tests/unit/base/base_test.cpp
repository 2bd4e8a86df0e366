#include "base/base.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  char tmpl[] = "/tmp/sg-base-XXXXXX";
  return fs::path(mkdtemp(tmpl));
}

TEST(Secret, CopiesComparesAndMoves) {
  sg::Secret a = sg::Secret::copy_of("hunter2");
  EXPECT_EQ(a.view(), "hunter2");
  sg::Secret b = a.clone();
  EXPECT_TRUE(a.equals(b));
  sg::Secret c = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(c.equals(b));
  EXPECT_FALSE(c.equals(sg::Secret::copy_of("hunter3")));
  c.truncate(3);
  EXPECT_EQ(c.view(), "hun");
}

TEST(Encoding, Base64RoundTripAndRejectsGarbage) {
  EXPECT_EQ(sg::base64_encode("any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
  auto back = sg::base64_decode("YW55IGNhcm5hbCBwbGVhcw==");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "any carnal pleas");
  EXPECT_FALSE(sg::base64_decode("YW55*GNh").ok());
  EXPECT_FALSE(sg::base64_decode("YW55IGNhcm5hbCBwbGVhcw==trailing").ok());
  EXPECT_EQ(sg::hex_encode("\x01\xab"), "01ab");
  EXPECT_EQ(*sg::hex_decode("01ab"), "\x01\xab");
  EXPECT_FALSE(sg::hex_decode("0g").ok());
}

TEST(File, AtomicWriteSetsModeAndReplaces) {
  fs::path dir = temp_dir();
  fs::path f = dir / "x";
  ASSERT_TRUE(sg::write_file_atomic(f, "one", 0600).ok());
  ASSERT_TRUE(sg::write_file_atomic(f, "two", 0640).ok());
  struct stat st {};
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(*sg::read_file(f), "two");
  // No temp files left behind.
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++n;
  EXPECT_EQ(n, 1u);
  fs::remove_all(dir);
}

TEST(File, MissingFileIsNotFound) {
  auto r = sg::read_file("/nonexistent/smtpguard/file");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, sg::Errc::not_found);
  EXPECT_NE(r.error().message.find("/nonexistent/smtpguard/file"), std::string::npos);
}

TEST(File, AtomicWriteIntoMissingDirectoryFails) {
  auto r = sg::write_file_atomic("/nonexistent/smtpguard/x", "data", 0600);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, sg::Errc::io);
}

TEST(File, LockSerialisesWriters) {
  fs::path dir = temp_dir();
  fs::path counter = dir / "counter";
  ASSERT_TRUE(sg::write_file_atomic(counter, "0", 0600).ok());
  auto bump = [&] {
    for (int i = 0; i < 50; ++i) {
      auto lock = sg::FileLock::acquire(dir / "lock");
      ASSERT_TRUE(lock.ok());
      int v = std::stoi(*sg::read_file(counter));
      ASSERT_TRUE(sg::write_file_atomic(counter, std::to_string(v + 1), 0600).ok());
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(bump);
  for (auto& t : threads) t.join();
  EXPECT_EQ(*sg::read_file(counter), "200");
  fs::remove_all(dir);
}

TEST(SecretInput, ReadsFdAndDropsOneNewline) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "p@ss/w&rd\r\n", 11), 11);
  close(fds[1]);
  auto s = sg::read_secret(sg::SecretPrompt{.fd = fds[0]});
  close(fds[0]);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->view(), "p@ss/w&rd");
}

TEST(SecretInput, EmptyIsRefusedUnlessAllowed) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[1]);
  auto s = sg::read_secret(sg::SecretPrompt{.fd = fds[0]});
  close(fds[0]);
  EXPECT_FALSE(s.ok());
}

TEST(Text, EditDistanceAndHelpers) {
  EXPECT_EQ(sg::edit_distance("listen", "lisen"), 1u);
  EXPECT_EQ(sg::edit_distance("", "abc"), 3u);
  EXPECT_TRUE(sg::iequals("EHLO", "ehlo"));
  EXPECT_EQ(sg::trim("  x \r\n"), "x");
  EXPECT_EQ(sg::split("a,b,,c", ',').size(), 4u);
}

}  // namespace

TEST(Text, OneLineReplacesControlsCutsAndMarksTheCut) {
  EXPECT_EQ(sg::one_line("a\r\nb\tc\x7f"
                         "d"),
            "a  b c d");
  EXPECT_EQ(sg::one_line("a\nb", {.control = '?'}), "a?b");
  EXPECT_EQ(sg::one_line("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(sg::one_line("caf\xc3\xa9", {.ascii_only = true}), "caf??");
  EXPECT_EQ(sg::one_line("abcdef", {.max = 3}), "abc...");
  EXPECT_EQ(sg::one_line("abc", {.max = 3}), "abc");
  std::string out = "x=";
  sg::append_one_line(out, "1\n2", {.max = 2});
  EXPECT_EQ(out, "x=1 ...");
}

TEST(Text, JsonNestingCountsOnlyOutsideStrings) {
  EXPECT_TRUE(sg::json_nesting_within(R"({"a":[1,{"b":2}]})", 3));
  EXPECT_FALSE(sg::json_nesting_within(R"({"a":[1,{"b":2}]})", 2));
  EXPECT_TRUE(sg::json_nesting_within(R"({"a":"[[[[\"{{{{"})", 1));
  EXPECT_FALSE(sg::json_nesting_within(std::string(100, '['), 64));
}
