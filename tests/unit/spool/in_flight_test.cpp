// Spool in-flight markers: the deliverer marks a message before its content
// goes upstream and clears the mark after recording the outcome, so a mark
// found later means "the last attempt was cut off, this one may duplicate".
// They must outlive the process (a reopened Spool sees them) and must never
// let an id reach outside active/.
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
using sg::spool_test::TempDir;

namespace {

std::unique_ptr<sp::Spool> open_spool(const fs::path& dir, bool recover = true) {
  sp::Options options;
  options.recover = recover;
  return sg::spool_test::open_spool_with(dir, std::move(options));
}

TEST(InFlight, MarkIsAHardLinkToTheQueueFileUnderActive) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  EXPECT_EQ(file_mode(t.path / "spool/active"), 0700u);
  auto id = spool->commit_sync(message("hello\r\n"));
  ASSERT_TRUE(id.ok()) << id.error().message;

  EXPECT_FALSE(spool->in_flight(*id));
  ASSERT_TRUE(spool->mark_in_flight(*id).ok());
  EXPECT_TRUE(spool->in_flight(*id));
  const fs::path marker = t.path / "spool/active" / *id;
  ASSERT_TRUE(fs::is_regular_file(marker));
  // The same inode as the queue file: no inode is created per delivery.
  EXPECT_TRUE(fs::equivalent(marker, t.path / "spool/queue" / *id));
  EXPECT_EQ(fs::hard_link_count(marker), 2u);
  EXPECT_EQ(file_mode(marker), 0600u);
  // Marking again is harmless, and the message itself is untouched.
  EXPECT_TRUE(spool->mark_in_flight(*id).ok());
  EXPECT_EQ(entries(t.path / "spool/active"), 1u);
  auto back = spool->load(*id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->data, "hello\r\n");
}

TEST(InFlight, MarksAreIndependentPerId) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  auto a = spool->commit_sync(message("a\r\n"));
  auto b = spool->commit_sync(message("b\r\n"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(spool->mark_in_flight(*a).ok());
  EXPECT_TRUE(spool->in_flight(*a));
  EXPECT_FALSE(spool->in_flight(*b));
  spool->clear_in_flight(*b);  // clearing an unmarked id leaves the other alone
  EXPECT_TRUE(spool->in_flight(*a));
}

TEST(InFlight, SurvivesReopeningTheSpool) {
  TempDir t;
  std::string id;
  {
    auto spool = open_spool(t.path / "spool");
    ASSERT_TRUE(spool);
    auto committed = spool->commit_sync(message("x\r\n"));
    ASSERT_TRUE(committed.ok());
    id = *committed;
    ASSERT_TRUE(spool->mark_in_flight(id).ok());
  }  // "crash": the deliverer goes away without clearing
  // Both the receiver (recovering owner) and the deliverer (recover=false) see it.
  for (bool recover : {true, false}) {
    auto spool = open_spool(t.path / "spool", recover);
    ASSERT_TRUE(spool);
    EXPECT_TRUE(spool->in_flight(id)) << "recover=" << recover;
    auto env = spool->load_envelope(id);
    EXPECT_TRUE(env.ok()) << "the message is still queued";
  }
  auto spool = open_spool(t.path / "spool", false);
  ASSERT_TRUE(spool);
  spool->clear_in_flight(id);
  EXPECT_FALSE(spool->in_flight(id));
  spool.reset();
  spool = open_spool(t.path / "spool", false);
  ASSERT_TRUE(spool);
  EXPECT_FALSE(spool->in_flight(id)) << "a cleared mark stays cleared";
}

TEST(InFlight, ClearIsIdempotent) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  auto id = spool->commit_sync(message("x\r\n"));
  ASSERT_TRUE(id.ok());
  spool->clear_in_flight(*id);  // never marked
  EXPECT_FALSE(spool->in_flight(*id));
  ASSERT_TRUE(spool->mark_in_flight(*id).ok());
  spool->clear_in_flight(*id);
  spool->clear_in_flight(*id);
  EXPECT_FALSE(spool->in_flight(*id));
  EXPECT_EQ(entries(t.path / "spool/active"), 0u);
  // And it can be marked again afterwards.
  ASSERT_TRUE(spool->mark_in_flight(*id).ok());
  EXPECT_TRUE(spool->in_flight(*id));
}

TEST(InFlight, InvalidIdsAreRefusedAndTouchNothing) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  auto id = spool->commit_sync(message("x\r\n"));
  ASSERT_TRUE(id.ok());
  const std::string queued = "../queue/" + *id;
  // A file outside active/ that a traversal would hit.
  ASSERT_TRUE(fs::exists(t.path / "spool/queue" / *id));
  for (std::string_view bad :
       {std::string_view(""), std::string_view("short"), std::string_view("0ABCDEFGHJK12345"),
        std::string_view("0abcdefghjk1234u") /* u is not Crockford */,
        std::string_view("0abcdefghjk123456") /* 17 characters */, std::string_view(queued),
        std::string_view("../../../../tmp/x"), std::string_view("0abcdefghjk1234/")}) {
    auto r = spool->mark_in_flight(bad);
    EXPECT_FALSE(r.ok()) << "marked \"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, sg::Errc::invalid_input) << bad;
    }
    EXPECT_FALSE(spool->in_flight(bad)) << bad;
    spool->clear_in_flight(bad);
  }
  EXPECT_EQ(entries(t.path / "spool/active"), 0u);
  EXPECT_TRUE(fs::exists(t.path / "spool/queue" / *id)) << "clear must not unlink outside active/";
  // A marker planted under a name that is not an id is not reported.
  std::ofstream(t.path / "spool/active/not-an-id").put('\n');
  EXPECT_FALSE(spool->in_flight("not-an-id"));
}

TEST(InFlight, WithoutAQueueFileTheMarkIsAnEmptyFile) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  const std::string id = "0123456789abcdef";
  ASSERT_TRUE(spool->mark_in_flight(id).ok());
  EXPECT_TRUE(spool->in_flight(id));
  EXPECT_EQ(fs::file_size(t.path / "spool/active" / id), 0u);
  spool->clear_in_flight(id);
  EXPECT_FALSE(spool->in_flight(id));
}

TEST(InFlight, RemoveClearsTheMarkAndFreesTheFile) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  auto id = spool->commit_sync(message("gone\r\n"));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(spool->mark_in_flight(*id).ok());
  ASSERT_TRUE(spool->remove(*id, false).ok());
  EXPECT_FALSE(spool->in_flight(*id));
  EXPECT_EQ(entries(t.path / "spool/active"), 0u);
}

// A mark whose message is gone would keep the deleted message's blocks:
// the owner's recovery removes it, and keeps marks of messages still queued.
TEST(InFlight, RecoveryRemovesMarksOfMessagesThatAreGone) {
  TempDir t;
  std::string kept;
  {
    auto spool = open_spool(t.path / "spool");
    ASSERT_TRUE(spool);
    auto a = spool->commit_sync(message("a\r\n"));
    auto b = spool->commit_sync(message("b\r\n"));
    ASSERT_TRUE(a.ok() && b.ok());
    kept = *a;
    ASSERT_TRUE(spool->mark_in_flight(*a).ok());
    ASSERT_TRUE(spool->mark_in_flight(*b).ok());
    // Gone the way an older build removed delivered mail: the mark stays.
    ASSERT_EQ(::unlink((t.path / "spool/queue" / *b).c_str()), 0);
    std::ofstream(t.path / "spool/active/not-an-id");
  }
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  EXPECT_TRUE(spool->in_flight(kept));
  EXPECT_EQ(entries(t.path / "spool/active"), 1u);
}

}  // namespace
