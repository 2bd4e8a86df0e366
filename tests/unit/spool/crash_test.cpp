// kill -9 while committing: every acknowledged id must load intact afterwards.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "spool/spool.hpp"
#include "spool_test_util.hpp"

namespace sp = sg::spool;

namespace {

// Deterministic body for (thread, sequence), with varying sizes.
std::string body_for(int thread, int seq) {
  std::string b = "T" + std::to_string(thread) + " S" + std::to_string(seq) + "\r\n";
  b.append(static_cast<std::size_t>((seq * 977 + thread * 131) % 20000),
           static_cast<char>('a' + seq % 26));
  return b + "\r\n";
}

// Child: 4 threads commit forever; each acknowledged message is reported as
// one "id thread seq\n" line (shorter than PIPE_BUF, so lines never interleave).
[[noreturn]] void run_child(const std::filesystem::path& dir, int out_fd) {
  auto spool = sp::Spool::open(dir);
  if (!spool) ::_exit(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int seq = 0;; ++seq) {
        auto id = (*spool)->commit_sync(sg::spool_test::message(body_for(t, seq)));
        if (!id) ::_exit(4);
        std::string line = *id + " " + std::to_string(t) + " " + std::to_string(seq) + "\n";
        if (::write(out_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
          ::_exit(5);
      }
    });
  }
  for (;;) ::pause();
}

TEST(SpoolCrash, KillNineLosesNothingAcknowledged) {
  sg::spool_test::TempDir t;
  std::mt19937 rng(std::random_device{}());
  std::size_t total_acked = 0;
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      run_child(t.path, fds[1]);
    }
    ::close(fds[1]);
    // Wait for the first acknowledgement (the machine may be slow), then kill
    // at a random moment while commits are in full flow.
    std::string acked;
    char buf[4096];
    ssize_t first = ::read(fds[0], buf, sizeof buf);
    if (first > 0) acked.append(buf, static_cast<std::size_t>(first));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 500));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
      acked.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);

    sp::RecoveryReport report;
    auto spool = sp::Spool::open(t.path, &report);
    ASSERT_TRUE(spool.ok()) << spool.error().message;
    EXPECT_TRUE(report.moved_to_corrupt.empty());
    std::size_t lines = 0;
    std::istringstream in(acked);
    std::string id;
    int thread = 0, seq = 0;
    while (in >> id >> thread >> seq) {
      ++lines;
      auto m = (*spool)->load(id);
      ASSERT_TRUE(m.ok()) << id << ": " << m.error().message;
      ASSERT_EQ(m->data, body_for(thread, seq)) << id;
    }
    EXPECT_GT(lines, 0u) << "the child acknowledged nothing before the kill";
    // Everything acknowledged is queued; at most the in-flight batch (never
    // acknowledged, but durable) may be there in addition.
    EXPECT_GE(report.queued, total_acked + lines);
    total_acked = report.queued;
  }
}

}  // namespace
