// Group commit throughput: durable commits/s with 1, 8 and 32 concurrent
// submitters (each waits for its own acknowledgement, like an SMTP session
// waiting for its 250), for each SyncMode. The spool lives under
// $SPOOL_BENCH_DIR (default /tmp), which should be the real disk.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "spool/spool.hpp"

namespace fs = std::filesystem;
namespace sp = sg::spool;

namespace {

std::unique_ptr<sp::Spool> g_spool;
fs::path g_dir;
std::string g_body;
std::atomic<std::uint64_t> g_commits{0};

sp::Message bench_message() {
  sp::Message m;
  m.envelope.identity = "shop";
  m.envelope.peer = "uid 1000";
  m.envelope.helo = "localhost";
  m.envelope.mail_from = "orders@shop.example.com";
  m.envelope.recipients = {{"customer@example.org"}};
  m.envelope.verdict = "accept";
  m.data = g_body;
  return m;
}

void setup(const benchmark::State& state) {
  const char* base = std::getenv("SPOOL_BENCH_DIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/sg-bench-spool-XXXXXX";
  g_dir = ::mkdtemp(tmpl.data());
  g_body.assign(static_cast<std::size_t>(state.range(1)), 'x');
  sp::Options opts;
  opts.sync_mode = static_cast<sp::SyncMode>(state.range(0));
  auto s = sp::Spool::open(g_dir, nullptr, opts);
  if (!s) std::abort();
  g_spool = std::move(*s);
  g_commits = 0;
}

void teardown(const benchmark::State&) {
  g_spool.reset();
  std::error_code ec;
  fs::remove_all(g_dir, ec);
}

void BM_CommitDurable(benchmark::State& state) {
  for (auto _ : state) {
    auto id = g_spool->commit_sync(bench_message());
    if (!id) {
      state.SkipWithError(id.error().message.c_str());
      break;
    }
    ++g_commits;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.SetLabel(state.range(0) == 0 ? "fdatasync_each" : "syncfs");
    // Approximate (other threads may still be finishing): messages sharing one sync.
    auto batches = g_spool->batches_committed();
    state.counters["per_batch"] = batches ? double(g_commits.load()) / double(batches) : 0;
  }
}

}  // namespace

// Args: {SyncMode, message bytes}.
BENCHMARK(BM_CommitDurable)
    ->Setup(setup)
    ->Teardown(teardown)
    ->ArgsProduct({{0, 1}, {4096}})
    ->Threads(1)
    ->Threads(8)
    ->Threads(32)
    ->UseRealTime()
    ->MinTime(2.0);

BENCHMARK_MAIN();
