// Group commit: one thread turns batches of submitted messages into durable
// queue files. Per batch: write every tmp file, make them all durable
// (SyncMode), rename each into queue/ or hold/, fsync those directories once,
// then acknowledge. A message is acknowledged only after all of that.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>

#include "spool/internal.hpp"
#include "spool/parallel_sync.hpp"
#include "spool/spool.hpp"

namespace sg::spool {

namespace {

struct Item {
  Message* message = nullptr;
  Spool::Done* done = nullptr;
  EncodedParts parts;
  int fd = -1;
  off_t reused_size = -1;  // >= 0: a free file overwritten in place
  int err = 0;
  const char* failed_step = nullptr;
  bool renamed = false;

  const std::string& id() const { return message->envelope.id; }
  bool held() const { return message->envelope.held; }
  bool ok() const { return err == 0; }
  void fail(const char* step, int e) {
    if (err == 0) {
      err = e;
      failed_step = step;
    }
  }
};

}  // namespace

std::string Spool::next_id() {
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  // Strictly increasing, so ids sort in commit order even within one microsecond
  // or if the clock steps back (recovery starts from the newest id on disk).
  last_id_micros_ = std::max<std::int64_t>(now, last_id_micros_ + 1);
  return make_id(last_id_micros_);
}

void Spool::commit(Message message, Done done) {
  {
    std::unique_lock lock(mutex_);
    if (!stopping_) {
      message.envelope.id = next_id();
      pending_.push_back(Pending{std::move(message), std::move(done)});
      lock.unlock();
      wake_.notify_one();
      return;
    }
  }
  done(make_error(Errc::io, "spool is stopped"));
}

Result<std::string> Spool::commit_sync(Message message) {
  std::promise<Result<std::string>> promise;
  auto future = promise.get_future();
  commit(std::move(message),
         [&promise](Result<std::string> r) { promise.set_value(std::move(r)); });
  return future.get();
}

std::uint64_t Spool::batches_committed() const {
  std::lock_guard lock(mutex_);
  return batches_;
}

void Spool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (committer_.joinable()) committer_.join();
}

void Spool::take_pending(std::vector<Pending>& batch) {
  std::size_t room = max_batch() - batch.size();
  std::size_t n = std::min(pending_.size(), room);
  batch.insert(batch.end(), std::make_move_iterator(pending_.begin()),
               std::make_move_iterator(pending_.begin() + static_cast<std::ptrdiff_t>(n)));
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
}

std::size_t Spool::max_batch() const {
  return std::max<std::size_t>(options_.max_batch, 1);
}

void Spool::run_committer() {
  // Threads only where they help: with syncfs one call covers the batch.
  ParallelSync syncer(options_.sync_mode == SyncMode::fdatasync_each ? options_.sync_threads : 0);
  std::vector<Pending> batch;
  batch.reserve(max_batch());  // never reallocates: items point into it
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything is flushed
      take_pending(batch);
    }
    commit_batch(batch, syncer);
    batch.clear();
    std::lock_guard lock(mutex_);
    ++batches_;
  }
}

int Spool::take_free_file(const std::string& name, off_t* old_size, bool& listed) {
  if (free_names_.empty() && !listed) {
    // One listing per batch at most: free/ holds a few dozen names.
    listed = true;
    int dir = ::openat(free_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = dir >= 0 ? ::fdopendir(dir) : nullptr;
    if (d == nullptr) {
      if (dir >= 0) ::close(dir);
      return -1;
    }
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] == 'f') free_names_.emplace_back(e->d_name);
    ::closedir(d);
  }
  while (!free_names_.empty()) {
    std::string slot = std::move(free_names_.back());
    free_names_.pop_back();
    // Only regular files of our own; anything else stays where it is.
    struct stat st {};
    auto ours = [&st] { return S_ISREG(st.st_mode) && st.st_uid == ::geteuid(); };
    if (::fstatat(free_fd_, slot.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !ours()) continue;
    // The rename decides who gets the file (another process's committer may try too).
    if (::renameat2(free_fd_, slot.c_str(), tmp_fd_, name.c_str(), RENAME_NOREPLACE) != 0) continue;
    int fd = ::openat(tmp_fd_, name.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd >= 0 && ::fstat(fd, &st) == 0 && ours()) {
      *old_size = st.st_size;
      return fd;
    }
    // Swapped since the check: out of the way, and make a new file.
    if (fd >= 0) ::close(fd);
    if (::unlinkat(tmp_fd_, name.c_str(), 0) != 0)
      ::renameat(tmp_fd_, name.c_str(), free_fd_, ("odd-" + slot).c_str());
  }
  return -1;
}

void Spool::commit_batch(std::vector<Pending>& batch, ParallelSync& syncer) {
  std::vector<Item> items;
  items.reserve(batch.capacity());
  const bool each = options_.sync_mode == SyncMode::fdatasync_each;
  bool any_written = false;
  bool listed_free = false;

  for (std::size_t i = 0; i < batch.size(); ++i) {
    Item& it = items.emplace_back();
    it.message = &batch[i].message;
    it.done = &batch[i].done;
    it.parts = encode_parts(*it.message);
    it.fd = take_free_file(it.id(), &it.reused_size, listed_free);
    if (it.fd < 0)
      it.fd = ::openat(tmp_fd_, it.id().c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (it.fd < 0) it.fail("create", errno);
    if (it.ok() && ::fchmod(it.fd, 0600) != 0) it.fail("chmod", errno);
    if (it.ok()) {
      int e = inject(FaultPoint::write, it.id());
      it.fail("write", e != 0 ? e : write_parts(it.fd, it.parts));
    }
    // A reused file longer than this message: cut off the old message's tail.
    if (it.ok() && it.reused_size > static_cast<off_t>(it.parts.size()) &&
        ::ftruncate(it.fd, static_cast<off_t>(it.parts.size())) != 0)
      it.fail("truncate", errno);
    // Start writeback now so the device works on all files while we wait on the first.
    if (it.ok() && each) ::sync_file_range(it.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    any_written = any_written || it.ok();
    if (i + 1 == batch.size()) {
      // Messages that arrived while we wrote join this batch's sync at no extra wait.
      std::lock_guard lock(mutex_);
      take_pending(batch);
    }
  }

  if (each) {
    std::vector<int> fds(items.size(), -1), errs(items.size(), 0);
    for (std::size_t i = 0; i < items.size(); ++i) {
      Item& it = items[i];
      if (!it.ok()) continue;
      if (int e = inject(FaultPoint::sync, it.id()); e != 0)
        it.fail("fdatasync", e);
      else
        fds[i] = it.fd;
    }
    syncer.fdatasync_all(fds, errs);
    for (std::size_t i = 0; i < items.size(); ++i) items[i].fail("fdatasync", errs[i]);
  } else if (any_written) {
    int e = inject(FaultPoint::sync, "");
    if (e == 0 && ::syncfs(tmp_fd_) != 0) e = errno;
    for (Item& it : items) it.fail("syncfs", e);
  }

  for (Item& it : items) {
    if (it.fd >= 0 && ::close(it.fd) != 0) it.fail("close", errno);
    it.fd = -1;
    if (it.ok()) {
      int dest = it.held() ? hold_fd_ : queue_fd_;
      int e = inject(FaultPoint::rename, it.id());
      if (e == 0 &&
          ::renameat2(tmp_fd_, it.id().c_str(), dest, it.id().c_str(), RENAME_NOREPLACE) != 0)
        e = errno;
      it.fail("rename", e);
      it.renamed = it.ok();
    }
    if (!it.renamed) ::unlinkat(tmp_fd_, it.id().c_str(), 0);
  }

  // One directory fsync per destination makes every rename of the batch durable.
  for (bool held : {false, true}) {
    bool used = false;
    for (const Item& it : items) used = used || (it.renamed && it.held() == held);
    if (!used) continue;
    int dir_fd = held ? hold_fd_ : queue_fd_;
    int e = inject(FaultPoint::dir_sync, "");
    if (e == 0) e = sync_fd(dir_fd);
    if (e == 0) continue;
    // Not durable, so not accepted: take the files back out of the queue.
    for (Item& it : items) {
      if (!it.renamed || it.held() != held) continue;
      ::unlinkat(dir_fd, it.id().c_str(), 0);
      it.renamed = false;
      it.fail("fsync directory for", e);
    }
    sync_fd(dir_fd);
  }

  for (Item& it : items) {
    Done& done = *it.done;
    if (!done) continue;
    if (it.ok()) {
      done(it.id());
    } else {
      done(make_error(Errc::io, std::string("spool: cannot ") + it.failed_step + " " +
                                    (dir_ / "tmp" / it.id()).string() + ": " +
                                    std::strerror(it.err)));
    }
  }
}

}  // namespace sg::spool
