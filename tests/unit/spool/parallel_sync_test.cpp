// ParallelSync: every fd gets its own fdatasync and its own errno, batch
// after batch, with any number of helper threads.
#include "spool/parallel_sync.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

namespace sg::spool {
namespace {

class ParallelSyncTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sg-psync-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::pipe(pipe_), 0);
  }
  void TearDown() override {
    for (int fd : files_) ::close(fd);
    ::close(pipe_[0]);
    ::close(pipe_[1]);
    std::system(("rm -rf " + dir_).c_str());
  }
  int file(int n) {
    std::string p = dir_ + "/" + std::to_string(n);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, "x", 1), 1);
    files_.push_back(fd);
    return fd;
  }
  std::string dir_;
  int pipe_[2] = {-1, -1};
  std::vector<int> files_;
};

TEST_P(ParallelSyncTest, EachFdGetsItsOwnResult) {
  ParallelSync syncer(GetParam());
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) fds.push_back(i % 5 == 3 ? pipe_[1] : i % 7 == 6 ? -1 : file(i));
  for (int round = 0; round < 50; ++round) {
    // Sizes 1..40 in turn, so batches smaller and larger than the pool follow each other.
    std::size_t n = 1 + round % fds.size();
    std::vector<int> errs(n, 12345);
    syncer.fdatasync_all(std::span<const int>(fds.data(), n), errs);
    for (std::size_t i = 0; i < n; ++i) {
      int expected = fds[i] == pipe_[1] ? EINVAL : 0;  // a pipe cannot be synced; -1 is skipped
      ASSERT_EQ(errs[i], expected) << "round " << round << " fd index " << i;
    }
  }
}

TEST_P(ParallelSyncTest, EmptyBatchReturns) {
  ParallelSync syncer(GetParam());
  syncer.fdatasync_all({}, {});
  std::vector<int> fds{file(1)}, errs{99};
  syncer.fdatasync_all(fds, errs);
  EXPECT_EQ(errs[0], 0);
}

INSTANTIATE_TEST_SUITE_P(Threads, ParallelSyncTest, ::testing::Values(0, 1, 4, 15));

}  // namespace
}  // namespace sg::spool
