// Spool: group commit, recovery, hold queue, rewrites and write failures.
#include "spool/spool.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "spool_test_util.hpp"

namespace fs = std::filesystem;
namespace sp = sg::spool;
using sg::spool_test::file_mode;
using sg::spool_test::message;
using sg::spool_test::TempDir;

namespace {

std::size_t count_files(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

std::unique_ptr<sp::Spool> open_spool(const fs::path& dir, sp::Options options = {},
                                      sp::RecoveryReport* report = nullptr) {
  auto s = sp::Spool::open(dir, report, std::move(options));
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(Spool, CommitWritesPrivateDurableFileAndLoadsIt) {
  TempDir t;
  auto spool = open_spool(t.path / "spool");
  ASSERT_TRUE(spool);
  for (const char* sub : {"", "tmp", "queue", "hold"})
    EXPECT_EQ(file_mode(t.path / "spool" / sub), 0700u) << sub;
  auto m = message("hello\r\n");
  auto id = spool->commit_sync(m);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_TRUE(sp::is_valid_id(*id));
  EXPECT_EQ(file_mode(t.path / "spool/queue" / *id), 0600u);
  EXPECT_EQ(count_files(t.path / "spool/tmp"), 0u);
  auto back = spool->load(*id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->envelope.id, *id);
  EXPECT_EQ(back->envelope.mail_from, m.envelope.mail_from);
  EXPECT_EQ(back->data, "hello\r\n");
  auto env = spool->load_envelope(*id);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->recipients.size(), m.envelope.recipients.size());
  EXPECT_EQ(spool->list(false), std::vector<std::string>{*id});
  EXPECT_FALSE(spool->load("../queue/xxxxxxxx").ok());
  EXPECT_EQ(spool->load("0000000000000000").error().code, sg::Errc::not_found);
}

class SpoolConcurrency : public ::testing::TestWithParam<sp::SyncMode> {};

TEST_P(SpoolConcurrency, EightThreadsTimesTwoHundred) {
  TempDir t;
  sp::Options opts;
  opts.sync_mode = GetParam();
  auto spool = open_spool(t.path, opts);
  ASSERT_TRUE(spool);
  constexpr int kThreads = 8, kEach = 200;
  std::mutex mu;
  std::vector<std::vector<std::string>> ids(kThreads, std::vector<std::string>(kEach));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t_i = 0; t_i < kThreads; ++t_i) {
    threads.emplace_back([&, t_i] {
      for (int i = 0; i < kEach; ++i) {
        std::string body = "thread " + std::to_string(t_i) + " message " + std::to_string(i);
        spool->commit(message(body), [&, t_i, i](sg::Result<std::string> r) {
          if (!r) return void(++failures);
          std::lock_guard lock(mu);
          ids[t_i][i] = *r;
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  spool->stop();
  EXPECT_EQ(failures.load(), 0);
  std::set<std::string> unique;
  for (int t_i = 0; t_i < kThreads; ++t_i)
    for (int i = 0; i < kEach; ++i) {
      ASSERT_TRUE(sp::is_valid_id(ids[t_i][i]));
      unique.insert(ids[t_i][i]);
      if (i > 0) {
        EXPECT_LT(ids[t_i][i - 1], ids[t_i][i]);  // submission order = id order
      }
    }
  EXPECT_EQ(unique.size(), std::size_t{kThreads * kEach});
  auto listed = spool->list(false);
  EXPECT_EQ(listed, std::vector<std::string>(unique.begin(), unique.end()));
  EXPECT_LT(spool->batches_committed(), std::uint64_t{kThreads * kEach / 2});  // fsyncs were shared
  for (int t_i = 0; t_i < kThreads; ++t_i)
    for (int i = 0; i < kEach; i += 37) {
      auto m = spool->load(ids[t_i][i]);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m->data, "thread " + std::to_string(t_i) + " message " + std::to_string(i));
    }
}

INSTANTIATE_TEST_SUITE_P(Modes, SpoolConcurrency,
                         ::testing::Values(sp::SyncMode::fdatasync_each, sp::SyncMode::syncfs));

TEST(Spool, RecoveryRemovesTmpLeftoversAndKeepsCommitted) {
  TempDir t;
  std::vector<std::string> ids;
  {
    auto spool = open_spool(t.path);
    for (int i = 0; i < 3; ++i)
      ids.push_back(*spool->commit_sync(message("m" + std::to_string(i))));
    auto held = message("held");
    held.envelope.held = true;
    ids.push_back(*spool->commit_sync(held));
  }
  std::ofstream(t.path / "tmp" / "0123456789abcdef") << "half a message";
  std::ofstream(t.path / "tmp" / "anything") << "x";
  sp::RecoveryReport report;
  auto spool = open_spool(t.path, {}, &report);
  ASSERT_TRUE(spool);
  EXPECT_EQ(report.removed_tmp, 2u);
  EXPECT_EQ(report.queued, 3u);
  EXPECT_EQ(report.held, 1u);
  EXPECT_TRUE(report.moved_to_corrupt.empty());
  EXPECT_EQ(count_files(t.path / "tmp"), 0u);
  for (const auto& id : ids) EXPECT_TRUE(spool->load(id).ok()) << id;
}

TEST(Spool, CorruptFilesAreMovedAsideNeverDeleted) {
  TempDir t;
  std::string flipped, truncated, good;
  {
    auto spool = open_spool(t.path);
    flipped = *spool->commit_sync(message("will be damaged"));
    truncated = *spool->commit_sync(message("will be torn"));
    good = *spool->commit_sync(message("fine"));
  }
  auto damage = [&](const std::string& id, bool truncate) {
    fs::path p = t.path / "queue" / id;
    std::string bytes = sg::spool_test::slurp(p);
    if (truncate)
      bytes.resize(bytes.size() / 2);
    else
      bytes[bytes.size() - 40] ^= 0x20;
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
    return bytes;
  };
  std::string damaged_bytes = damage(flipped, false);
  damage(truncated, true);
  std::ofstream(t.path / "queue" / "stray.txt") << "not ours";
  sp::RecoveryReport report;
  auto spool = open_spool(t.path, {}, &report);
  ASSERT_TRUE(spool);
  EXPECT_EQ(report.queued, 1u);
  EXPECT_EQ(report.moved_to_corrupt.size(), 3u);
  EXPECT_EQ(report.warnings.size(), 3u);
  EXPECT_EQ(spool->list(false), std::vector<std::string>{good});
  EXPECT_EQ(sg::spool_test::slurp(t.path / "corrupt" / flipped), damaged_bytes);
  EXPECT_TRUE(fs::exists(t.path / "corrupt" / truncated));
  EXPECT_TRUE(fs::exists(t.path / "corrupt" / "stray.txt"));
  EXPECT_EQ(file_mode(t.path / "corrupt"), 0700u);
}

TEST(Spool, OneOwnerAtATime) {
  TempDir t;
  auto owner = open_spool(t.path);
  ASSERT_TRUE(owner);
  auto second = sp::Spool::open(t.path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, sg::Errc::conflict);
  sp::Options reader;
  reader.recover = false;
  auto id = owner->commit_sync(message("x"));
  auto deliverer = open_spool(t.path, reader);
  ASSERT_TRUE(deliverer);
  EXPECT_TRUE(deliverer->load(*id).ok());
}

TEST(Spool, HeldMessagesGoToHoldAndReleaseMovesThem) {
  TempDir t;
  auto spool = open_spool(t.path);
  auto m = message("hold me");
  m.envelope.held = true;
  m.envelope.verdict = "hold";
  m.envelope.rule = "rate.per_minute";
  auto id = spool->commit_sync(m);
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(fs::exists(t.path / "hold" / *id));
  EXPECT_TRUE(spool->list(false).empty());
  EXPECT_EQ(spool->list(true), std::vector<std::string>{*id});
  EXPECT_TRUE(spool->load(*id)->envelope.held);
  ASSERT_TRUE(spool->release(*id).ok());
  ASSERT_TRUE(spool->release(*id).ok());  // idempotent
  EXPECT_EQ(spool->list(false), std::vector<std::string>{*id});
  EXPECT_TRUE(spool->list(true).empty());
  EXPECT_FALSE(spool->load(*id)->envelope.held);
  EXPECT_EQ(spool->load(*id)->envelope.rule, "rate.per_minute");
  ASSERT_TRUE(spool->hold(*id).ok());
  EXPECT_TRUE(spool->load_envelope(*id)->held);
  EXPECT_EQ(spool->hold("0000000000000000").error().code, sg::Errc::not_found);
  EXPECT_EQ(spool->hold("../../etc").error().code, sg::Errc::invalid_input);
  ASSERT_TRUE(spool->remove(*id).ok());
  EXPECT_EQ(spool->load(*id).error().code, sg::Errc::not_found);
  EXPECT_EQ(spool->remove(*id).error().code, sg::Errc::not_found);
}

TEST(Spool, UpdateEnvelopeKeepsDataAndPlace) {
  TempDir t;
  auto spool = open_spool(t.path);
  auto m = message(std::string("binary\0\r\n.", 10));
  m.envelope.held = true;
  auto id = *spool->commit_sync(m);
  auto env = *spool->load_envelope(id);
  env.recipients[0].state = sp::RecipientState::delivered;
  env.recipients[0].upstream_id = "0100018c-ses";
  env.recipients[0].attempts = 1;
  env.in_flight = true;
  env.held = false;  // ignored: hold/release move files
  ASSERT_TRUE(spool->update_envelope(env).ok());
  auto back = spool->load(id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->data, m.data);
  EXPECT_TRUE(back->envelope.held);
  EXPECT_TRUE(back->envelope.in_flight);
  EXPECT_EQ(back->envelope.recipients[0].state, sp::RecipientState::delivered);
  EXPECT_EQ(back->envelope.recipients[0].upstream_id, "0100018c-ses");
  EXPECT_EQ(file_mode(t.path / "hold" / id), 0600u);
  EXPECT_EQ(count_files(t.path / "tmp"), 0u);
  env.id = "0000000000000000";
  EXPECT_EQ(spool->update_envelope(env).error().code, sg::Errc::not_found);
}

TEST(Spool, IdsStayOrderedAfterReopenEvenIfTheClockIsBehind) {
  TempDir t;
  { open_spool(t.path); }
  auto future = message("from the future");
  future.envelope.id = "y0000000000abcde";  // far beyond the current time
  std::ofstream(t.path / "queue" / future.envelope.id, std::ios::binary) << sp::encode(future);
  auto spool = open_spool(t.path);
  auto id = spool->commit_sync(message("now"));
  ASSERT_TRUE(id.ok());
  EXPECT_GT(*id, future.envelope.id);
  EXPECT_EQ(spool->list(false).back(), *id);
}

TEST(Spool, FileTooLargeFailsOnlyThatMessageAndLeavesNothing) {
  TempDir t;
  auto spool = open_spool(t.path);
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = 64 * 1024;  // writes beyond this fail with EFBIG, like a full disk
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::promise<sg::Result<std::string>> big_done, small_done;
  spool->commit(message(std::string(200 * 1024, 'b')),
                [&](sg::Result<std::string> r) { big_done.set_value(std::move(r)); });
  spool->commit(message("small"),
                [&](sg::Result<std::string> r) { small_done.set_value(std::move(r)); });
  auto big = big_done.get_future().get();
  auto ok = small_done.get_future().get();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, sg::Errc::io);
  EXPECT_NE(big.error().message.find("write"), std::string::npos) << big.error().message;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(spool->list(false), std::vector<std::string>{*ok});
  EXPECT_EQ(count_files(t.path / "tmp"), 0u);
}

struct FaultCase {
  sp::FaultPoint point;
  int err;
};

class SpoolFaults : public ::testing::TestWithParam<FaultCase> {};

TEST_P(SpoolFaults, FailedStepMeansNotAcceptedAndNothingQueued) {
  TempDir t;
  sp::Options opts;
  std::atomic<bool> armed{true};
  opts.fault = [&](sp::FaultPoint p, std::string_view) {
    return armed && p == GetParam().point ? GetParam().err : 0;
  };
  for (sp::SyncMode mode : {sp::SyncMode::fdatasync_each, sp::SyncMode::syncfs}) {
    opts.sync_mode = mode;
    armed = true;
    auto spool = open_spool(t.path / std::to_string(int(mode)), opts);
    auto held = message("held");
    held.envelope.held = true;
    auto r1 = spool->commit_sync(message("one"));
    auto r2 = spool->commit_sync(held);
    ASSERT_FALSE(r1.ok());
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r1.error().code, sg::Errc::io);
    EXPECT_NE(r1.error().message.find(std::strerror(GetParam().err)), std::string::npos)
        << r1.error().message;
    EXPECT_TRUE(spool->list(false).empty());
    EXPECT_TRUE(spool->list(true).empty());
    EXPECT_EQ(count_files(spool->directory() / "tmp"), 0u);
    armed = false;  // the spool works again once the disk does
    EXPECT_TRUE(spool->commit_sync(message("two")).ok());
    EXPECT_EQ(spool->list(false).size(), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Points, SpoolFaults,
                         ::testing::Values(FaultCase{sp::FaultPoint::write, ENOSPC},
                                           FaultCase{sp::FaultPoint::sync, EIO},
                                           FaultCase{sp::FaultPoint::rename, EDQUOT},
                                           FaultCase{sp::FaultPoint::dir_sync, EIO}));

TEST(Spool, StopFlushesPendingAndRefusesLaterCommits) {
  TempDir t;
  auto spool = open_spool(t.path);
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i)
    spool->commit(message("m"), [&](sg::Result<std::string> r) { ok += r.ok(); });
  spool->stop();
  EXPECT_EQ(ok.load(), 50);
  EXPECT_EQ(spool->list(false).size(), 50u);
  auto late = spool->commit_sync(message("late"));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, sg::Errc::io);
}

}  // namespace
