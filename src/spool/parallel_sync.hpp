// Internal to the spool module: fdatasync of many files at once.
//
// Why: each fdatasync ends with a device cache flush, and one thread syncing
// a batch of files one after another pays one flush per file. Issued from
// several threads at once, the block layer merges the flushes that are
// pending together, so a batch costs a few flushes instead of one per file,
// while every file still gets its own fdatasync (portable durability, unlike
// relying on one file's sync to carry the others).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace sg::spool {

class ParallelSync {
 public:
  // `threads` helpers besides the caller (0: the caller syncs alone).
  explicit ParallelSync(std::size_t threads);
  ~ParallelSync();
  ParallelSync(const ParallelSync&) = delete;
  ParallelSync& operator=(const ParallelSync&) = delete;

  // fdatasync of every fd; errs[i] gets 0 or the errno of fds[i]. Negative
  // fds are skipped (errs[i] = 0). Returns when all are done. One caller at
  // a time.
  void fdatasync_all(std::span<const int> fds, std::span<int> errs);

 private:
  void work();
  bool take_and_sync();  // false when nothing is left to take

  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  std::span<const int> fds_;
  std::span<int> errs_;
  std::size_t next_ = 0, outstanding_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sg::spool
