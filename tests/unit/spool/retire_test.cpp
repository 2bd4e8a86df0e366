// Spool::retire: a delivered message's file goes to free/ and a later commit
// overwrites it in place instead of creating an inode. What must hold: the
// reused file carries exactly the new message (shorter or longer than the
// old one), free/ never grows past keep_free, anything odd in free/ is
// skipped rather than written through, and recovery empties free/.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "spool/spool.hpp"
#include "spool_test_util.hpp"

namespace fs = std::filesystem;
namespace sp = sg::spool;
using sg::spool_test::entries;
using sg::spool_test::file_mode;
using sg::spool_test::message;
using sg::spool_test::slurp;
using sg::spool_test::TempDir;

namespace {

std::unique_ptr<sp::Spool> open_spool(const fs::path& dir, std::size_t keep_free = 64,
                                      bool recover = true) {
  sp::Options options;
  options.keep_free = keep_free;
  options.recover = recover;
  return sg::spool_test::open_spool_with(dir, std::move(options));
}

ino_t inode(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(Retire, MovesTheFileToFreeAndClearsTheMark) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  EXPECT_EQ(file_mode(t.path / "spool/free"), 0700u);
  auto id = spool->commit_sync(message("hello\r\n"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  const ino_t ino = inode(t.path / "spool/queue" / *id);
  ASSERT_TRUE(spool->mark_in_flight(*id).ok());

  ASSERT_TRUE(spool->retire(*id).ok());
  EXPECT_FALSE(fs::exists(t.path / "spool/queue" / *id));
  EXPECT_FALSE(spool->in_flight(*id));
  EXPECT_EQ(spool->load(*id).error().code, sg::Errc::not_found);
  ASSERT_EQ(entries(t.path / "spool/free"), 1u);
  const fs::path kept = fs::directory_iterator(t.path / "spool/free")->path();
  EXPECT_EQ(inode(kept), ino);
  EXPECT_EQ(fs::hard_link_count(kept), 1u);  // the mark's link is gone too
}

TEST(Retire, ACommitOverwritesAFreeFileWithExactlyTheNewMessage) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  const std::string big(200000, 'x'), small = "short body\r\n", bigger(300000, 'y');
  auto first = spool->commit_sync(message(big));
  ASSERT_TRUE(first.ok()) << first.error().message;
  const ino_t ino = inode(t.path / "spool/queue" / *first);
  ASSERT_TRUE(spool->retire(*first).ok());

  // Shorter than the old file: the old tail must not survive.
  auto second = spool->commit_sync(message(small));
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(inode(t.path / "spool/queue" / *second), ino);
  EXPECT_EQ(entries(t.path / "spool/free"), 0u);
  EXPECT_EQ(entries(t.path / "spool/tmp"), 0u);
  EXPECT_LT(fs::file_size(t.path / "spool/queue" / *second), 1000u);
  auto back = spool->load(*second);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->data, small);
  EXPECT_EQ(back->envelope.id, *second);
  EXPECT_EQ(file_mode(t.path / "spool/queue" / *second), 0600u);

  // Longer than the old file.
  ASSERT_TRUE(spool->retire(*second).ok());
  auto third = spool->commit_sync(message(bigger));
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_EQ(inode(t.path / "spool/queue" / *third), ino);
  back = spool->load(*third);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->data, bigger);
}

TEST(Retire, FreeNeverHoldsMoreThanKeepFreeFiles) {
  TempDir t;
  auto spool = open_spool(t.path / "spool", 3);
  ASSERT_TRUE(spool);
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    auto id = spool->commit_sync(message("m" + std::to_string(i) + "\r\n"));
    ASSERT_TRUE(id.ok()) << id.error().message;
    ids.push_back(*id);
  }
  for (const auto& id : ids) ASSERT_TRUE(spool->retire(id).ok()) << id;
  EXPECT_EQ(entries(t.path / "spool/free"), 3u);
  EXPECT_EQ(entries(t.path / "spool/queue"), 0u);
}

TEST(Retire, WithKeepFreeZeroItIsRemove) {
  TempDir t;
  auto spool = open_spool(t.path / "spool", 0);
  ASSERT_TRUE(spool);
  auto id = spool->commit_sync(message("hello\r\n"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(spool->mark_in_flight(*id).ok());
  ASSERT_TRUE(spool->retire(*id).ok());
  EXPECT_EQ(entries(t.path / "spool/free"), 0u);
  EXPECT_EQ(entries(t.path / "spool/queue"), 0u);
  EXPECT_FALSE(spool->in_flight(*id));
}

TEST(Retire, AHeldMessageIsRemovedNotKept) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  auto id = spool->commit_sync(message("hello\r\n"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(spool->hold(*id).ok());  // an operator held it while it was out
  ASSERT_TRUE(spool->retire(*id).ok());
  EXPECT_EQ(entries(t.path / "spool/hold"), 0u);
  EXPECT_EQ(entries(t.path / "spool/free"), 0u);
  EXPECT_EQ(spool->retire(*id).error().code, sg::Errc::not_found);
}

TEST(Retire, OddEntriesInFreeAreNotWrittenThrough) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  const fs::path free_dir = t.path / "spool/free";
  const fs::path victim = t.path / "victim";
  { std::ofstream(victim) << "do not touch"; }
  fs::create_symlink(victim, free_dir / "f0");
  fs::create_directory(free_dir / "f1");
  ASSERT_EQ(::mkfifo((free_dir / "f2").c_str(), 0600), 0);
  { std::ofstream(free_dir / "not-a-slot") << "ignored"; }

  auto id = spool->commit_sync(message("hello\r\n"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(slurp(victim), "do not touch");
  auto back = spool->load(*id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->data, "hello\r\n");
  EXPECT_TRUE(fs::is_regular_file(t.path / "spool/queue" / *id));
  EXPECT_EQ(entries(t.path / "spool/tmp"), 0u);
}

TEST(Retire, RecoveryEmptiesFree) {
  TempDir t;
  {
    auto spool = open_spool(t.path / "spool");
    ASSERT_TRUE(spool);
    auto id = spool->commit_sync(message("secret body\r\n"));
    ASSERT_TRUE(id.ok()) << id.error().message;
    ASSERT_TRUE(spool->retire(*id).ok());
    ASSERT_EQ(entries(t.path / "spool/free"), 1u);
  }
  // A process that does not own the spool leaves free/ alone...
  { ASSERT_TRUE(open_spool(t.path / "spool", 64, false)); }
  EXPECT_EQ(entries(t.path / "spool/free"), 1u);
  // ...the owner's recovery empties it.
  { ASSERT_TRUE(open_spool(t.path / "spool")); }
  EXPECT_EQ(entries(t.path / "spool/free"), 0u);
}

TEST(Retire, ManyRoundsKeepEveryMessageIntact) {
  TempDir t;
  auto spool = open_spool(t.path / "spool", 4);
  ASSERT_TRUE(spool);
  std::size_t reused = 0;
  std::vector<ino_t> seen;
  for (int round = 0; round < 40; ++round) {
    // Sizes go up and down so files are both cut and grown.
    std::string body(static_cast<std::size_t>((round * 7919) % 50000) + 1, 'a' + round % 26);
    auto id = spool->commit_sync(message(body));
    ASSERT_TRUE(id.ok()) << id.error().message;
    ino_t ino = inode(t.path / "spool/queue" / *id);
    if (std::find(seen.begin(), seen.end(), ino) != seen.end()) ++reused;
    seen.push_back(ino);
    auto back = spool->load(*id);
    ASSERT_TRUE(back.ok()) << back.error().message;
    ASSERT_EQ(back->data, body) << "round " << round;
    ASSERT_TRUE(spool->retire(*id).ok());
  }
  EXPECT_GE(reused, 30u);
}

}  // namespace
