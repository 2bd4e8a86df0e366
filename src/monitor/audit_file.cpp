// The chained audit file: flock(2) around every append, the last line read
// again when someone else wrote, renames and truncation by other programs
// followed, rotation. See monitor.hpp for the design.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/file.hpp"
#include "base/text.hpp"
#include "monitor/audit_chain.hpp"
#include "monitor/audit_internal.hpp"

namespace sg::monitor {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kOpenFlags = O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
// A last line longer than this is damage; the chain links to its end.
constexpr std::size_t kMaxTail = 1u << 20;

void lock(int fd) {
  while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
}
void unlock(int fd) {
  ::flock(fd, LOCK_UN);
}

bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The last line of an open file of `size` bytes, and whether the file ends
// without a newline (a torn write: the next append starts a new line first).
struct Tail {
  ChainLink link;
  bool torn = false;
};
Tail read_tail(int fd, off_t size) {
  Tail t;
  if (size <= 0) return t;
  std::size_t n = static_cast<std::size_t>(std::min<off_t>(size, kMaxTail + 1));
  std::string buf(n, '\0');
  ssize_t got = ::pread(fd, buf.data(), n, size - static_cast<off_t>(n));
  if (got != static_cast<ssize_t>(n)) return t;
  std::string_view v = buf;
  if (v.back() == '\n')
    v.remove_suffix(1);
  else
    t.torn = true;
  if (auto nl = v.rfind('\n'); nl != std::string_view::npos) v.remove_prefix(nl + 1);
  t.link = link_after(v);
  return t;
}

// Where a fresh, empty file continues from: the last line of PATH.1 (the
// previous file, renamed by our rotation or logrotate), else a new chain.
ChainLink link_from_previous(const fs::path& path) {
  fs::path older = path.string() + ".1";
  int fd = ::open(older.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ChainLink{};
  struct stat st {};
  Tail t;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) t = read_tail(fd, st.st_size);
  ::close(fd);
  return t.link;
}

class AuditFile final : public AuditLog::Impl {
 public:
  AuditFile(fs::path path, int fd, AuditOptions options)
      : path_(std::move(path)), fd_(fd), options_(std::move(options)) {}
  ~AuditFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void set_options(const AuditOptions& options) override { options_ = options; }
  int fd() const override { return fd_; }
  std::uint64_t failures() const override { return failures_; }

  void append(json record) override {
    std::vector<json> one;
    one.push_back(std::move(record));
    append_all(one);
  }

  void append_all(std::vector<json>& records) override {
    for (std::size_t next = 0; next < records.size();) next = append_some(records, next);
  }

 private:
  // Appends records[next..] under one lock until the size limit asks for a
  // rotation; returns the index of the first record not written (all of
  // them are dropped, and counted as a failure, when the file is unusable).
  std::size_t append_some(std::vector<json>& records, std::size_t next) {
    if (fd_ < 0 && !reopen_lost()) return records.size();
    lock(fd_);
    std::string text;
    follow_renames(text);
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      fail("cannot stat");
      unlock(fd_);
      return records.size();
    }
    if (!known_ || st.st_size != size_) {
      // Someone else wrote (a CLI command), or the file was cut short
      // (copytruncate: the copy is FILE.1, where an empty file links to).
      const bool shrank = known_ && st.st_size < size_;
      if (st.st_size > 0) {
        Tail t = read_tail(fd_, st.st_size);
        link_ = t.link;
        if (t.torn) text.insert(0, "\n");
      } else if (!carried_) {
        link_ = link_from_previous(path_);
      }
      if (shrank)
        add_line(text, {{"time", unix_now()},
                        {"event", "audit_reopened"},
                        {"reason", "the file shrank under us (truncated by another program)"}});
    }
    carried_ = false;
    const auto full = [&] {
      return options_.max_size != 0 &&
             static_cast<std::uint64_t>(st.st_size) + text.size() >= options_.max_size;
    };
    do {
      add_line(text, std::move(records[next++]));
    } while (next < records.size() && !full());
    if (write_all(fd_, text)) {
      size_ = st.st_size + static_cast<off_t>(text.size());
      known_ = true;
      if (options_.max_size != 0 && static_cast<std::uint64_t>(size_) >= options_.max_size)
        rotate();
    } else {
      known_ = false;  // part of it may be there: read the tail next time
      fail("cannot write");
    }
    unlock(fd_);
    return next;
  }

  // Chains `record` to link_ and appends it to `text`.
  void add_line(std::string& text, json record) {
    if (!options_.proc.empty() && !record.contains("proc")) record["proc"] = options_.proc;
    std::string line = chain_line(std::move(record), link_);
    link_ = ChainLink{line_hash(line), link_.seq + 1};
    if (options_.syslog) to_syslog(line);
    text += line;
    text += '\n';
  }

  void to_syslog(const std::string& line) {
    static bool opened = false;
    if (!opened) {
      ::openlog("smtpguard", LOG_PID | LOG_NDELAY, LOG_MAIL);
      opened = true;
    }
    ::syslog(LOG_MAIL | LOG_INFO, "%s", line.c_str());
  }

  // Counted; logged the first time and then every 1000th (a full disk).
  void fail(const char* what) {
    if (failures_++ % 1000 == 0)
      spdlog::error("audit log: {} (failure {})", errno_message(what, path_), failures_);
  }

  int open_new() {
    int fd = ::open(path_.c_str(), kOpenFlags, options_.group >= 0 ? 0640 : 0600);
    if (fd >= 0 && options_.group >= 0) {
      struct stat st {};
      // Only a file we just created (empty) is ours to give to the group.
      if (::fstat(fd, &st) == 0 && st.st_size == 0) {
        (void)!::fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(options_.group));
        ::fchmod(fd, 0640);
      }
    }
    return fd;
  }

  bool reopen_lost() {
    fd_ = open_new();
    if (fd_ < 0) {
      fail("cannot open");
      return false;
    }
    return true;
  }

  // Under the lock of fd_: if the path names another file now (renamed or
  // removed by another program, or by a rotation that raced our open),
  // move to it, carrying the chain over.
  void follow_renames(std::string& text) {
    for (int i = 0; i < 4; ++i) {
      struct stat mine {
      }, named{};
      if (::fstat(fd_, &mine) != 0) return;
      if (::stat(path_.c_str(), &named) == 0 && named.st_ino == mine.st_ino &&
          named.st_dev == mine.st_dev)
        return;
      // The old file's last line, read under its lock, is where we go on.
      link_ = read_tail(fd_, mine.st_size).link;
      int fd = open_new();
      if (fd < 0) return fail("cannot reopen");  // keep writing to the old one
      lock(fd);
      unlock(fd_);
      ::close(fd_);
      fd_ = fd;
      // An empty new file continues from the old file's last line.
      carried_ = true;
      size_ = 0;
      if (known_) {
        struct stat now {};
        if (::fstat(fd_, &now) == 0 && now.st_size > 0) {
          link_ = read_tail(fd_, now.st_size).link;
          carried_ = false;
        }
        size_ = now.st_size;
        add_line(text, {{"time", unix_now()},
                        {"event", "audit_reopened"},
                        {"reason", "the file was renamed or removed by another program"}});
      }
    }
  }

  // Under the lock: FILE.k -> FILE.k+1, FILE -> FILE.1, a new FILE whose
  // first line links to the old file's last.
  void rotate() {
    const std::string base = path_.string();
    for (std::uint32_t k = std::max<std::uint32_t>(options_.keep, 1) - 1; k >= 1; --k) {
      fs::path from = base + "." + std::to_string(k), to = base + "." + std::to_string(k + 1);
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) fail("cannot rename");
    }
    fs::path first = base + ".1";
    if (::rename(path_.c_str(), first.c_str()) != 0) return fail("cannot rotate");
    int fd = open_new();
    if (fd < 0) return fail("cannot open after rotating");  // the next append retries
    lock(fd);
    std::string text;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) link_ = read_tail(fd, st.st_size).link;
    add_line(text, {{"time", unix_now()},
                    {"event", "audit_rotated"},
                    {"previous", first.filename().string()},
                    {"previous_size", size_}});
    if (!write_all(fd, text)) fail("cannot write");
    unlock(fd_);
    ::close(fd_);
    fd_ = fd;  // the caller unlocks it
    size_ = st.st_size + static_cast<off_t>(text.size());
    spdlog::info("audit log rotated: {} -> {}", base, first.string());
  }

  fs::path path_;
  int fd_;
  AuditOptions options_;
  ChainLink link_;
  bool known_ = false;    // link_ and size_ describe the file as we left it
  bool carried_ = false;  // link_ came from the file before this one
  off_t size_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace

Result<std::unique_ptr<AuditLog::Impl>> open_audit_file(const fs::path& path,
                                                        const AuditOptions& options) {
  int fd = ::open(path.c_str(), kOpenFlags, options.group >= 0 ? 0640 : 0600);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot open audit log", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(Errc::io, "audit log " + path.string() + " is not a regular file");
  }
  return std::unique_ptr<AuditLog::Impl>(std::make_unique<AuditFile>(path, fd, options));
}

}  // namespace sg::monitor
