// AuditTail on real files: appends, a torn last line, rotation by rename,
// truncation, a bounded backlog; the spool listing; vault metadata.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "monitor/monitor.hpp"
#include "vault/vault.hpp"

namespace sg::monitor {
namespace {

namespace fs = std::filesystem;

class TailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sg-tail-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = dir_ / "audit.jsonl";
  }
  void TearDown() override { fs::remove_all(dir_); }
  void append(const fs::path& p, std::string_view text) {
    std::ofstream f(p, std::ios::app | std::ios::binary);
    f << text;
  }
  std::vector<std::string> poll(AuditTail& t) {
    std::vector<std::string> out;
    t.poll([&](std::string_view l) { out.emplace_back(l); });
    return out;
  }
  fs::path dir_, log_;
};

using Lines = std::vector<std::string>;

TEST_F(TailTest, ReadsCompleteLinesAndWaitsForATornOne) {
  append(log_, "a\nb\n{\"par");
  AuditTail t(log_, -1);
  EXPECT_EQ(poll(t), (Lines{"a", "b"}));
  EXPECT_EQ(poll(t), Lines{});
  append(log_, "tial\":1}\nc\n");
  EXPECT_EQ(poll(t), (Lines{"{\"partial\":1}", "c"}));
}

TEST_F(TailTest, MissingFileIsRetried) {
  AuditTail t(log_, -1);
  EXPECT_EQ(poll(t), Lines{});
  append(log_, "first\n");
  EXPECT_EQ(poll(t), Lines{"first"});
}

TEST_F(TailTest, FollowsRotationReadingTheOldFileToItsEnd) {
  append(log_, "1\n");
  int fd = ::open(log_.c_str(), O_RDONLY | O_CLOEXEC);  // as the supervisor hands it over
  AuditTail t(log_, fd);
  EXPECT_EQ(poll(t), Lines{"1"});
  append(log_, "2\n");  // written before the rotation, not yet read
  fs::rename(log_, dir_ / "audit.jsonl.1");
  append(dir_ / "audit.jsonl.1", "3\n");  // a writer still on the old descriptor
  EXPECT_EQ(poll(t), (Lines{"2", "3"}));  // the new file does not exist yet
  append(log_, "4\n5\n");
  EXPECT_EQ(poll(t), (Lines{"4", "5"}));
  EXPECT_EQ(t.reopened(), 1u);
  // A torn line left in the rotated file is dropped, never glued to the next.
  append(log_, "6\ntorn");
  fs::rename(log_, dir_ / "audit.jsonl.2");
  append(log_, "7\n");
  EXPECT_EQ(poll(t), (Lines{"6", "7"}));
  EXPECT_EQ(t.dropped_partial(), 1u);
}

TEST_F(TailTest, TruncatedFileIsReadAgainFromTheStart) {
  append(log_, "one\ntwo\n");
  AuditTail t(log_, -1);
  EXPECT_EQ(poll(t), (Lines{"one", "two"}));
  fs::resize_file(log_, 0);
  append(log_, "x\n");
  EXPECT_EQ(poll(t), Lines{"x"});
}

TEST_F(TailTest, BacklogIsBoundedAndStartsAtALineStart) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "line-" + std::to_string(i) + "\n";
  append(log_, text);
  AuditTail t(log_, -1, 30);  // the last 30 bytes: "...\nline-97\nline-98\nline-99\n"
  EXPECT_EQ(poll(t), (Lines{"line-97", "line-98", "line-99"}));
}

TEST_F(TailTest, PollReadsAtMostMaxBytes) {
  for (int i = 0; i < 10; ++i) append(log_, "0123456789\n");
  AuditTail t(log_, -1);
  std::size_t n = t.poll([](std::string_view) {}, 33);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(t.poll([](std::string_view) {}), 7u);
}

TEST_F(TailTest, QueueStateCountsFilesAndOldestId) {
  for (const char* d : {"queue", "hold", "active"}) fs::create_directories(dir_ / "spool" / d);
  append(dir_ / "spool/queue/01jz0000000abcde", "");
  append(dir_ / "spool/queue/01jz1000000abcde", "");
  append(dir_ / "spool/hold/01jz2000000abcde", "");
  append(dir_ / "spool/active/01jz1000000abcde", "");
  auto q = read_queue_state(dir_ / "spool");
  EXPECT_EQ(q.ready, 2u);
  EXPECT_EQ(q.held, 1u);
  EXPECT_EQ(q.in_flight, 1u);
  // "01jz0000000": 1*32^9 + 18*32^8 + 31*32^7 microseconds (j = 18, z = 31)
  std::int64_t expected =
      static_cast<std::int64_t>((1ull << 45) + 18ull * (1ull << 40) + 31ull * (1ull << 35)) /
      1000000;
  EXPECT_EQ(q.oldest_ready, expected);
  EXPECT_GT(q.oldest_held, q.oldest_ready);
  auto none = read_queue_state(dir_ / "missing");
  EXPECT_EQ(none.ready + none.held + none.in_flight, 0u);
}

TEST(VaultMetadata, NamesAndTimesWithoutTheKey) {
  Secret raw(vault::kMasterKeyBytes);
  for (std::size_t i = 0; i < raw.size(); ++i) raw.data()[i] = static_cast<unsigned char>(i);
  auto key = std::move(vault::MasterKey::from_secret(raw)).value();
  vault::Contents c;
  for (auto [name, t] : {std::pair{"ses", 1000}, std::pair{"backup", 2000}}) {
    vault::EntryUpdate u;
    u.name = name;
    u.username = "AKIAEXAMPLE";
    u.upstream_host = "smtp.example";
    u.password = Secret::copy_of("pw-" + std::string(name));
    ASSERT_TRUE(vault::put_entry(c, key, std::move(u), t).ok());
  }
  vault::EntryUpdate again;
  again.name = "ses";
  again.username = "AKIAEXAMPLE";
  again.password = Secret::copy_of("new");
  ASSERT_TRUE(vault::put_entry(c, key, std::move(again), 5000).ok());
  std::string file = vault::seal(c, key);
  auto meta = vault::read_metadata(file);
  ASSERT_TRUE(meta.ok()) << meta.error().message;
  ASSERT_EQ(meta->size(), 2u);
  EXPECT_EQ((*meta)[0].name, "backup");
  EXPECT_EQ((*meta)[0].created_at, 2000);
  EXPECT_EQ((*meta)[1].name, "ses");
  EXPECT_EQ((*meta)[1].created_at, 1000);
  EXPECT_EQ((*meta)[1].rotated_at, 5000);
  EXPECT_EQ((*meta)[1].upstream_host, "smtp.example");
  // Every truncation is a clean error.
  for (std::size_t n = 0; n < file.size(); n += 7)
    EXPECT_FALSE(vault::read_metadata(std::string_view(file).substr(0, n)).ok()) << n;
  EXPECT_FALSE(vault::read_metadata(file + "x").ok());
}

}  // namespace
}  // namespace sg::monitor
