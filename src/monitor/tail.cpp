// Following the audit log across rotation, and listing the spool.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "monitor/monitor.hpp"
#include "spool/spool.hpp"

namespace sg::monitor {
namespace {

constexpr std::size_t kMaxLine = 1u << 20;  // a longer "line" is damage: skipped

bool same_file(int fd, const std::filesystem::path& path) {
  struct stat a {
  }, b{};
  if (::fstat(fd, &a) != 0 || ::stat(path.c_str(), &b) != 0) return true;  // keep what we have
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

AuditTail::AuditTail(std::filesystem::path path, int fd, std::uint64_t max_backlog)
    : path_(std::move(path)), max_backlog_(max_backlog) {
  if (fd >= 0)
    start_file(fd, true);
  else
    open_path();
}

AuditTail::~AuditTail() {
  if (fd_ >= 0) ::close(fd_);
}

bool AuditTail::open_path() {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  // The first file is read from its (bounded) backlog; a file that replaced
  // a rotated one is new, so all of it is read.
  start_file(fd, fd_ < 0 && reopened_ == 0);
  return true;
}

void AuditTail::start_file(int fd, bool from_backlog) {
  if (fd_ >= 0) {
    ::close(fd_);
    ++reopened_;
  }
  fd_ = fd;
  if (!partial_.empty()) ++dropped_partial_;
  partial_.clear();
  struct stat st {};
  if (from_backlog && ::fstat(fd_, &st) == 0 &&
      static_cast<std::uint64_t>(st.st_size) > max_backlog_) {
    ::lseek(fd_, st.st_size - static_cast<off_t>(max_backlog_), SEEK_SET);
    partial_ = std::string(1, '\0');  // marks "skip to the next line start"
  }
}

std::size_t AuditTail::poll(const std::function<void(std::string_view)>& line,
                            std::size_t max_bytes) {
  if (fd_ < 0 && !open_path()) return 0;
  std::size_t lines = 0, total = 0;
  char buf[65536];
  // Two rounds at most: the current file to its end, then (if the path now
  // names another file) the new one.
  for (int round = 0; round < 2; ++round) {
    for (;;) {
      if (total >= max_bytes) return lines;
      ssize_t n = ::read(fd_, buf, std::min(sizeof buf, max_bytes - total));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      total += static_cast<std::size_t>(n);
      std::string_view chunk(buf, static_cast<std::size_t>(n));
      while (!chunk.empty()) {
        auto nl = chunk.find('\n');
        if (nl == std::string_view::npos) {
          if (partial_.size() + chunk.size() <= kMaxLine) partial_.append(chunk);
          break;
        }
        bool skip = !partial_.empty() && partial_[0] == '\0';
        partial_.append(chunk.substr(0, nl));
        chunk.remove_prefix(nl + 1);
        if (!skip && partial_.size() <= kMaxLine && !partial_.empty()) {
          line(partial_);
          ++lines;
        }
        partial_.clear();
      }
    }
    // At the end: truncated in place (copytruncate)? Read again from the start.
    struct stat st {};
    off_t pos = ::lseek(fd_, 0, SEEK_CUR);
    if (::fstat(fd_, &st) == 0 && pos > st.st_size) {
      ::lseek(fd_, 0, SEEK_SET);
      if (!partial_.empty()) ++dropped_partial_;
      partial_.clear();
      ++reopened_;
      continue;
    }
    if (same_file(fd_, path_)) break;
    if (!open_path()) break;  // not there yet, or unreadable: try again next poll
  }
  return lines;
}

// Queue ids begin with 11 Crockford base32 digits of the commit time in
// microseconds (see spool::is_valid_id).
namespace {

std::int64_t id_seconds(std::string_view id) {
  constexpr std::string_view kAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";
  if (!spool::is_valid_id(id)) return 0;
  std::uint64_t t = 0;
  for (std::size_t i = 0; i < 11; ++i) {
    t = (t << 5) | kAlphabet.find(id[i]);
  }
  return static_cast<std::int64_t>(t / 1000000);
}

// Files in `dir` and the oldest id time among them.
std::size_t count_dir(const std::filesystem::path& dir, std::int64_t* oldest) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  std::size_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ++n;
    if (oldest) {
      std::int64_t t = id_seconds(e->d_name);
      if (t > 0 && (*oldest == 0 || t < *oldest)) *oldest = t;
    }
  }
  ::closedir(d);
  return n;
}

}  // namespace

QueueState read_queue_state(const std::filesystem::path& spool_dir) {
  QueueState q;
  q.ready = count_dir(spool_dir / "queue", &q.oldest_ready);
  q.held = count_dir(spool_dir / "hold", &q.oldest_held);
  q.in_flight = count_dir(spool_dir / "active", nullptr);
  return q;
}

}  // namespace sg::monitor
