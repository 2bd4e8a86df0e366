#include "spool/parallel_sync.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace sg::spool {

ParallelSync::ParallelSync(std::size_t threads) {
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

ParallelSync::~ParallelSync() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

bool ParallelSync::take_and_sync() {
  std::size_t i;
  int fd;
  {
    std::lock_guard lock(mutex_);
    if (next_ >= fds_.size()) return false;
    i = next_++;
    fd = fds_[i];
  }
  int err = 0;
  if (fd >= 0) {
    while (::fdatasync(fd) != 0) {
      if (errno != EINTR) {
        err = errno;
        break;
      }
    }
  }
  bool last;
  {
    std::lock_guard lock(mutex_);
    errs_[i] = err;
    last = --outstanding_ == 0;
  }
  if (last) finished_.notify_all();
  return true;
}

void ParallelSync::work() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    while (take_and_sync()) {
    }
  }
}

void ParallelSync::fdatasync_all(std::span<const int> fds, std::span<int> errs) {
  if (fds.empty()) return;
  {
    std::lock_guard lock(mutex_);
    fds_ = fds;
    errs_ = errs;
    next_ = 0;
    outstanding_ = fds.size();
    ++generation_;
  }
  // Only as many helpers as there are files besides the caller's first one:
  // a woken thread costs two context switches, and small batches are common.
  const std::size_t helpers = std::min(fds.size() - 1, threads_.size());
  if (helpers == threads_.size())
    wake_.notify_all();
  else
    for (std::size_t k = 0; k < helpers; ++k) wake_.notify_one();
  while (take_and_sync()) {
  }
  std::unique_lock lock(mutex_);
  finished_.wait(lock, [&] { return outstanding_ == 0; });
  fds_ = {};
  errs_ = {};
}

}  // namespace sg::spool
