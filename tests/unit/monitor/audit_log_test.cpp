// AuditLog on real files and sockets: several writers under flock (forked
// processes), rotation, a file renamed or truncated by another program, and
// the supervisor's channels with a worker in a child process.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "monitor/audit_chain.hpp"
#include "monitor/monitor.hpp"

namespace sg::monitor {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Checks files in order (as `audit verify` does); "" when intact.
std::string verify(const std::vector<fs::path>& files, ChainVerifier* out = nullptr) {
  ChainVerifier v;
  for (std::size_t i = 0; i < files.size(); ++i) {
    v.begin_file(i);
    for (const auto& l : read_lines(files[i])) v.feed(l);
  }
  if (out) *out = v;
  auto b = v.result();
  return b ? files[b->file].string() + ":" + std::to_string(b->line) + ": " + b->what : "";
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sg-audit-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    log_ = dir_ / "audit.jsonl";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path rotated(int k) const { return log_.string() + "." + std::to_string(k); }
  fs::path dir_, log_;
};

TEST_F(AuditLogTest, LinesAreChainedAndStamped) {
  AuditOptions o;
  o.proc = "cli";
  auto log = AuditLog::open(log_, o);
  ASSERT_TRUE(log) << log.error().message;
  log->write("paused", {{"by", "operator"}}, 100);
  log->write("resumed", {{"by", "operator"}, {"proc", "mine"}}, 101);
  auto lines = read_lines(log_);
  ASSERT_EQ(lines.size(), 2u);
  json first = json::parse(lines[0]);
  EXPECT_EQ(first["event"], "paused");
  EXPECT_EQ(first["time"], 100);
  EXPECT_EQ(first["proc"], "cli");
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["prev"], zero_hash());
  EXPECT_EQ(json::parse(lines[1])["proc"], "mine");
  EXPECT_EQ(json::parse(lines[1])["prev"], line_hash(lines[0]));
  EXPECT_EQ(verify({log_}), "");
  EXPECT_EQ(log->failures(), 0u);
}

TEST_F(AuditLogTest, TwoWritersInterleaveAndKeepTheChain) {
  auto a = AuditLog::open(log_), b = AuditLog::open(log_);
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 20; ++i) (i % 3 ? *a : *b).write("x", {{"i", i}}, i);
  EXPECT_EQ(read_lines(log_).size(), 20u);
  EXPECT_EQ(verify({log_}), "");
}

TEST_F(AuditLogTest, ConcurrentProcessesKeepTheChain) {
  constexpr int kProcs = 6, kLines = 300;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::open(log_);
      if (!log) ::_exit(2);
      for (int i = 0; i < kLines; ++i) log->write("x", {{"p", p}, {"i", i}}, i);
      ::_exit(log->failures() == 0 ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  ChainVerifier v;
  EXPECT_EQ(verify({log_}, &v), "");
  EXPECT_EQ(v.lines(), static_cast<std::uint64_t>(kProcs * kLines));
  EXPECT_EQ(v.last_seq(), static_cast<std::uint64_t>(kProcs * kLines));
}

TEST_F(AuditLogTest, RotationKeepsNFilesAndTheChainAcrossThem) {
  AuditOptions o;
  o.max_size = 4096;
  o.keep = 3;
  auto log = AuditLog::open(log_, o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 300; ++i)
    log->write("received", {{"id", "message-" + std::to_string(i)}, {"identity", "shop"}}, i);
  EXPECT_TRUE(fs::exists(rotated(3)));
  EXPECT_FALSE(fs::exists(rotated(4)));
  EXPECT_LT(fs::file_size(rotated(1)), 4096u + 512);
  auto first = json::parse(read_lines(log_).at(0));
  EXPECT_EQ(first["event"], "audit_rotated");
  EXPECT_EQ(first["previous"], "audit.jsonl.1");
  ChainVerifier v;
  EXPECT_EQ(verify({rotated(3), rotated(2), rotated(1), log_}, &v), "");
  EXPECT_FALSE(v.from_start());  // the oldest files were dropped (keep = 3)
  // A missing middle file is a gap.
  EXPECT_NE(verify({rotated(3), rotated(1), log_}).find("gap between files"), std::string::npos);
}

// The supervisor writes a burst of worker records at once: one write, but
// rotation still cuts at the size limit and the chain runs through in order.
TEST_F(AuditLogTest, ABatchIsWrittenInOrderAndStillRotatesAtTheLimit) {
  AuditOptions o;
  o.max_size = 4096;
  o.keep = 10;
  auto log = AuditLog::open(log_, o);
  ASSERT_TRUE(log);
  std::vector<json> batch;
  for (int i = 0; i < 200; ++i) batch.push_back({{"time", i}, {"event", "delivered"}, {"i", i}});
  batch.push_back(json::array({1, 2}));  // not a record: skipped, the rest kept
  log->append_all(batch);
  EXPECT_TRUE(batch.empty());
  ASSERT_TRUE(fs::exists(rotated(3)));
  std::vector<fs::path> files;
  for (int k = 10; k >= 1; --k)
    if (fs::exists(rotated(k))) files.push_back(rotated(k));
  for (std::size_t k = 0; k < files.size(); ++k)
    EXPECT_LT(fs::file_size(files[k]), 4096u + 512) << files[k];
  files.push_back(log_);
  ChainVerifier v;
  EXPECT_EQ(verify(files, &v), "");
  EXPECT_TRUE(v.from_start());
  int expect = 0;
  for (const auto& f : files)
    for (const auto& line : read_lines(f)) {
      auto j = json::parse(line);
      if (j["event"] == "delivered") {
        EXPECT_EQ(j["i"], expect++);
      }
    }
  EXPECT_EQ(expect, 200);
}

TEST_F(AuditLogTest, ACliWriterAfterRotationLinksToTheRotatedFile) {
  AuditOptions o;
  o.max_size = 4096;
  auto relay = AuditLog::open(log_, o);
  ASSERT_TRUE(relay);
  for (int i = 0; i < 60; ++i) relay->write("received", {{"i", i}}, i);
  ASSERT_TRUE(fs::exists(rotated(1)));
  // An empty current file (rotated by logrotate, say): a CLI writer links
  // to the last line of FILE.1.
  fs::rename(log_, rotated(2));
  fs::rename(rotated(1), rotated(3));
  fs::rename(rotated(2), rotated(1));
  { std::ofstream create(log_); }
  auto cli = AuditLog::open(log_);
  ASSERT_TRUE(cli);
  cli->write("paused", {{"by", "operator"}}, 1);
  relay->write("received", {{"i", 99}}, 2);
  EXPECT_EQ(verify({rotated(3), rotated(1), log_}), "");
}

TEST_F(AuditLogTest, RenamedUnderTheWriterIsFollowed) {
  auto log = AuditLog::open(log_);
  ASSERT_TRUE(log);
  for (int i = 0; i < 5; ++i) log->write("x", {{"i", i}}, i);
  fs::rename(log_, rotated(1));  // logrotate without copytruncate
  log->write("x", {{"i", 5}}, 5);
  auto lines = read_lines(log_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0])["event"], "audit_reopened");
  EXPECT_EQ(read_lines(rotated(1)).size(), 5u);
  EXPECT_EQ(verify({rotated(1), log_}), "");
}

TEST_F(AuditLogTest, TruncatedUnderTheWriterContinuesFromTheCopy) {
  auto log = AuditLog::open(log_);
  ASSERT_TRUE(log);
  for (int i = 0; i < 5; ++i) log->write("x", {{"i", i}}, i);
  fs::copy_file(log_, rotated(1));  // logrotate copytruncate
  fs::resize_file(log_, 0);
  log->write("x", {{"i", 5}}, 5);
  auto lines = read_lines(log_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0])["event"], "audit_reopened");
  EXPECT_EQ(verify({rotated(1), log_}), "");
}

TEST_F(AuditLogTest, TornLastLineStaysVisible) {
  auto log = AuditLog::open(log_);
  ASSERT_TRUE(log);
  log->write("x", {{"i", 0}}, 0);
  { std::ofstream(log_, std::ios::app) << "{\"event\":\"cut"; }
  auto again = AuditLog::open(log_);
  again->write("x", {{"i", 1}}, 1);
  auto lines = read_lines(log_);
  ASSERT_EQ(lines.size(), 3u);  // the torn line ended, not glued to ours
  EXPECT_EQ(json::parse(lines[2])["prev"], line_hash(lines[1]));
  EXPECT_NE(verify({log_}).find(":2: not an audit record"), std::string::npos) << verify({log_});
}

TEST_F(AuditLogTest, ChannelsCarryWorkerRecordsAndRefuseForgedOnes) {
  auto file = AuditLog::open(log_);
  ASSERT_TRUE(file);
  AuditChannels channels(*file);
  auto ch = make_audit_channel();
  ASSERT_TRUE(ch);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(ch->supervisor_fd);
    int raw = ::dup(ch->worker_fd);
    {
      AuditLog worker = AuditLog::adopt(ch->worker_fd);
      for (int i = 0; i < 500; ++i) worker.write("delivered", {{"i", i}}, 1000 + i);
      worker.write("forged", {{"seq", 1}, {"prev", zero_hash()}}, 1);
      // What a compromised receiver might send instead of a record.
      for (const std::string& bad :
           std::vector<std::string>{"not json", "[1,2]", "{\"no\":\"event\"}",
                                    "{\"event\":\"x\",\"a\":" + std::string(100, '[') + "}"})
        (void)!::send(raw, bad.data(), bad.size(), MSG_NOSIGNAL);
      worker.write("last", {}, 2000);
    }
    ::_exit(0);
  }
  ::close(ch->worker_fd);
  channels.add(ch->supervisor_fd, "receiver");
  int status = 0;
  for (int i = 0; i < 200 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) channels.wait(-1, 50);
  for (int i = 0; i < 10; ++i) channels.wait(-1, 10);
  EXPECT_TRUE(channels.fds().empty());  // closed once the worker was gone
  EXPECT_EQ(channels.rejected(), 5u);
  auto lines = read_lines(log_);
  ASSERT_EQ(lines.size(), 501u);
  for (const auto& l : lines) EXPECT_EQ(json::parse(l)["proc"], "receiver");
  EXPECT_EQ(json::parse(lines[0])["time"], 1000);
  EXPECT_EQ(json::parse(lines.back())["event"], "last");
  EXPECT_EQ(verify({log_}), "");
}

TEST_F(AuditLogTest, LinesKeptWhileTheChannelWasFullGoOutOnFlush) {
  auto file = AuditLog::open(log_);
  ASSERT_TRUE(file);
  AuditChannels channels(*file);
  auto ch = make_audit_channel();
  ASSERT_TRUE(ch);
  channels.add(ch->supervisor_fd, "deliverer");
  AuditLog worker = AuditLog::adopt(ch->worker_fd);
  // Nobody reads while the worker writes: ~12 MB of lines overflow the
  // channel's 4 MB buffer, and the rest waits in the worker.
  const std::string filler(60000, 'x');
  constexpr int kLines = 200;
  for (int i = 0; i < kLines; ++i) worker.write("delivered", {{"i", i}, {"pad", filler}}, 1000 + i);
  for (int i = 0; i < 50; ++i) channels.wait(-1, 20);  // what the channel held
  const std::size_t before = read_lines(log_).size();
  EXPECT_LT(before, static_cast<std::size_t>(kLines));
  // No new line comes; a flush now and then hands the rest over.
  for (int round = 0; round < 20 && read_lines(log_).size() < kLines; ++round) {
    worker.flush();
    for (int i = 0; i < 20; ++i) channels.wait(-1, 10);
  }
  auto lines = read_lines(log_);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kLines));
  for (int i = 0; i < kLines; ++i) EXPECT_EQ(json::parse(lines[i])["i"], i);
  EXPECT_EQ(worker.failures(), 0u);
  EXPECT_EQ(verify({log_}), "");
}

TEST_F(AuditLogTest, WorkerWithoutSupervisorDoesNotBlock) {
  auto ch = make_audit_channel();
  ASSERT_TRUE(ch);
  AuditLog worker = AuditLog::adopt(ch->worker_fd);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) worker.write("x", {{"i", i}}, i);  // nobody reads
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ::close(ch->supervisor_fd);
  worker.write("x", {}, 1);
  EXPECT_GT(worker.failures(), 0u);
}

}  // namespace
}  // namespace sg::monitor
