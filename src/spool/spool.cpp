// Spool: opening, recovery, listing and the operations on committed files.
// The group commit itself is in committer.cpp.
#include "spool/spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/file.hpp"
#include "base/random.hpp"
#include "spool/internal.hpp"

namespace sg::spool {
namespace fs = std::filesystem;

namespace {

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;

Error sys_error(std::string what, const fs::path& path, int err) {
  return make_error(Errc::io, "spool: " + what + " " + path.string() + ": " + std::strerror(err));
}

// Reads up to n bytes from the start of a file.
Result<std::string> read_prefix(const fs::path& path, std::size_t n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    Errc code = errno == ENOENT ? Errc::not_found : Errc::io;
    return make_error(code, errno_message("cannot open", path));
  }
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      Error e = make_error(Errc::io, errno_message("cannot read", path));
      ::close(fd);
      return e;
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

}  // namespace

int write_parts(int fd, const EncodedParts& parts) {
  std::string_view pieces[3] = {parts.head, parts.data, parts.tail};
  std::size_t first = 0;
  while (first < 3) {
    iovec iov[3];
    int count = 0;
    for (std::size_t i = first; i < 3; ++i)
      iov[count++] = {const_cast<char*>(pieces[i].data()), pieces[i].size()};
    ssize_t n = ::writev(fd, iov, count);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    auto left = static_cast<std::size_t>(n);
    while (first < 3 && left >= pieces[first].size()) left -= pieces[first++].size();
    if (first < 3) pieces[first].remove_prefix(left);
    while (first < 3 && pieces[first].empty()) ++first;
  }
  return 0;
}

int sync_fd(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

Spool::Spool(fs::path dir, Options options) : dir_(std::move(dir)), options_(std::move(options)) {}

Spool::~Spool() {
  stop();
  for (int fd : {tmp_fd_, queue_fd_, hold_fd_, free_fd_, owner_lock_fd_})
    if (fd >= 0) ::close(fd);
}

Result<std::unique_ptr<Spool>> Spool::open(const fs::path& spool_dir, RecoveryReport* report,
                                           Options options) {
  std::unique_ptr<Spool> spool(new Spool(spool_dir, std::move(options)));
  if (auto r = spool->open_directories(); !r) return r.error();
  RecoveryReport local;
  RecoveryReport& rep = report ? *report : local;
  if (spool->options_.recover) {
    fs::path lock = spool_dir / "owner.lock";
    spool->owner_lock_fd_ =
        ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kFileMode);
    if (spool->owner_lock_fd_ < 0) return sys_error("cannot open", lock, errno);
    if (::flock(spool->owner_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        return make_error(Errc::conflict,
                          "spool " + spool_dir.string() + " is in use by another process");
      return sys_error("cannot lock", lock, errno);
    }
    if (auto r = spool->recover(rep); !r) return r.error();
  }
  spool->committer_ = std::thread([s = spool.get()] { s->run_committer(); });
  return spool;
}

Result<void> Spool::open_directories() {
  if (auto r = ensure_directory(dir_, kDirMode); !r) return r;
  for (const char* sub : {"tmp", "queue", "hold", "active", "free"}) {
    fs::path p = dir_ / sub;
    if (auto r = ensure_directory(p, kDirMode); !r) return r;
  }
  auto open_dir = [&](const char* sub, int& fd) -> Result<void> {
    fs::path p = dir_ / sub;
    fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return sys_error("cannot open directory", p, errno);
    return {};
  };
  if (auto r = open_dir("tmp", tmp_fd_); !r) return r;
  if (auto r = open_dir("queue", queue_fd_); !r) return r;
  if (auto r = open_dir("free", free_fd_); !r) return r;
  return open_dir("hold", hold_fd_);
}

// Moves a damaged file aside under a name that does not clobber an earlier one.
static Result<std::string> move_to_corrupt(const fs::path& dir, int from_fd,
                                           const std::string& name) {
  fs::path corrupt = dir / "corrupt";
  if (auto r = ensure_directory(corrupt, kDirMode); !r) return r.error();
  std::string target = name;
  for (int attempt = 0;; ++attempt) {
    if (::renameat2(from_fd, name.c_str(), AT_FDCWD, (corrupt / target).c_str(),
                    RENAME_NOREPLACE) == 0)
      break;
    if (errno != EEXIST || attempt > 8) return sys_error("cannot move aside", dir / name, errno);
    target = name + "." + random_hex(4);
  }
  int cfd = ::open(corrupt.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cfd >= 0) {
    sync_fd(cfd);
    ::close(cfd);
  }
  sync_fd(from_fd);
  return target;
}

Result<void> Spool::recover(RecoveryReport& report) {
  struct stat st {};
  if (::stat(dir_.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    if (::chmod(dir_.c_str(), kDirMode) == 0)
      report.warnings.push_back("spool directory " + dir_.string() +
                                " was accessible to others; now 0700");
    else
      report.warnings.push_back(
          errno_message("spool directory is accessible to others and cannot chmod", dir_));
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_ / "tmp", ec)) {
    std::string name = entry.path().filename().string();
    if (::unlinkat(tmp_fd_, name.c_str(), 0) == 0)
      ++report.removed_tmp;
    else
      report.warnings.push_back(errno_message("cannot remove leftover", entry.path()));
  }
  if (ec) return sys_error("cannot list", dir_ / "tmp", ec.value());
  if (report.removed_tmp > 0) sync_fd(tmp_fd_);
  // Delivered mail kept for reuse: not worth keeping across a restart.
  for (const auto& entry : fs::directory_iterator(dir_ / "free", ec))
    ::unlinkat(free_fd_, entry.path().filename().c_str(), 0);

  std::int64_t newest = 0;
  for (bool held : {false, true}) {
    const char* sub = held ? "hold" : "queue";
    int dir_fd = held ? hold_fd_ : queue_fd_;
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_ / sub, ec))
      names.push_back(entry.path().filename().string());
    if (ec) return sys_error("cannot list", dir_ / sub, ec.value());
    for (const std::string& name : names) {
      fs::path path = dir_ / sub / name;
      std::string problem;
      if (!is_valid_id(name)) {
        problem = "not a queue file name";
      } else {
        auto file = read_file(path, options_.max_file_size);
        auto msg = file ? decode(*file) : Result<Message>(file.error());
        if (msg && msg->envelope.id != name) {
          problem = "its envelope names another id";
        } else if (!msg && msg.error().code != Errc::corrupt) {
          report.warnings.push_back("left in place: " + msg.error().message);
          continue;
        } else if (!msg) {
          problem = msg.error().message;
        }
      }
      if (problem.empty()) {
        ++(held ? report.held : report.queued);
        newest = std::max(newest, id_micros(name));
        continue;
      }
      auto moved = move_to_corrupt(dir_, dir_fd, name);
      if (!moved) {
        report.warnings.push_back(moved.error().message);
        continue;
      }
      report.moved_to_corrupt.push_back(*moved);
      report.warnings.push_back(std::string("moved damaged ") + sub + "/" + name + " to corrupt/" +
                                *moved + ": " + problem);
    }
  }
  // In-flight marks of messages that are gone (removed by a build that did
  // not clear them, or cut off in between): a mark is a link to the file it
  // marks, so a stale one would keep a deleted message's blocks.
  for (const auto& entry : fs::directory_iterator(dir_ / "active", ec)) {
    std::string name = entry.path().filename().string();
    if (is_valid_id(name) &&
        (fs::exists(dir_ / "queue" / name) || fs::exists(dir_ / "hold" / name)))
      continue;
    ::unlink(entry.path().c_str());
  }
  std::lock_guard lock(mutex_);
  last_id_micros_ = std::max(last_id_micros_, newest);
  return {};
}

std::vector<std::string> Spool::list(bool held) const {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_ / (held ? "hold" : "queue"), ec)) {
    std::string name = entry.path().filename().string();
    if (is_valid_id(name)) ids.push_back(std::move(name));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<fs::path> Spool::locate(std::string_view id, bool* held) const {
  if (!is_valid_id(id))
    return make_error(Errc::invalid_input, "not a queue id: " + std::string(id.substr(0, 40)));
  std::string name(id);
  for (bool in_hold : {false, true, false}) {  // again: it may have been released meanwhile
    struct stat st {};
    if (::fstatat(in_hold ? hold_fd_ : queue_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (held) *held = in_hold;
      return dir_ / (in_hold ? "hold" : "queue") / name;
    }
  }
  return make_error(Errc::not_found, "no queued message " + name);
}

Result<Message> Spool::load(std::string_view id) const {
  bool held = false;
  auto path = locate(id, &held);
  if (!path) return path.error();
  auto file = read_file(*path, options_.max_file_size);
  if (!file) return file.error();
  auto msg = decode(*file);
  if (!msg) return make_error(msg.error().code, path->string() + ": " + msg.error().message);
  if (msg->envelope.id != id)
    return make_error(Errc::corrupt, path->string() + ": envelope names another id");
  msg->envelope.held = held;
  return msg;
}

Result<Envelope> Spool::load_envelope(std::string_view id) const {
  bool held = false;
  auto path = locate(id, &held);
  if (!path) return path.error();
  auto first = read_prefix(*path, 8);
  if (!first) return first.error();
  auto size = envelope_prefix_size(*first);
  if (!size) return make_error(size.error().code, path->string() + ": " + size.error().message);
  auto head = read_prefix(*path, *size);
  if (!head) return head.error();
  auto env = decode_envelope_only(*head);
  if (!env) return make_error(env.error().code, path->string() + ": " + env.error().message);
  if (env->id != id)
    return make_error(Errc::corrupt, path->string() + ": envelope names another id");
  env->held = held;
  return env;
}

Result<void> Spool::update_envelope(const Envelope& envelope) {
  auto lock = FileLock::acquire(dir_ / "lock");
  if (!lock) return lock.error();
  bool held = false;
  auto loaded = load(envelope.id);
  if (!loaded) return loaded.error();
  held = loaded->envelope.held;
  Message msg{envelope, std::move(loaded->data)};
  msg.envelope.held = held;
  EncodedParts parts = encode_parts(msg);
  std::string tmp_name = envelope.id + ".u" + random_hex(4);
  fs::path tmp_path = dir_ / "tmp" / tmp_name;
  int fd = ::openat(tmp_fd_, tmp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    kFileMode);
  if (fd < 0) return sys_error("cannot create", tmp_path, errno);
  int err = write_parts(fd, parts);
  if (err == 0 && ::fdatasync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  int dest_fd = held ? hold_fd_ : queue_fd_;
  if (err == 0 && ::renameat(tmp_fd_, tmp_name.c_str(), dest_fd, envelope.id.c_str()) != 0)
    err = errno;
  if (err != 0) {
    ::unlinkat(tmp_fd_, tmp_name.c_str(), 0);
    return sys_error("cannot rewrite", tmp_path, err);
  }
  if (int e = sync_fd(dest_fd); e != 0) return sys_error("cannot fsync directory of", tmp_path, e);
  return {};
}

Result<void> Spool::move(std::string_view id, bool to_hold) {
  if (!is_valid_id(id))
    return make_error(Errc::invalid_input, "not a queue id: " + std::string(id.substr(0, 40)));
  auto lock = FileLock::acquire(dir_ / "lock");
  if (!lock) return lock.error();
  std::string name(id);
  int from = to_hold ? queue_fd_ : hold_fd_, to = to_hold ? hold_fd_ : queue_fd_;
  if (::renameat2(from, name.c_str(), to, name.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    struct stat st {};
    if (err == ENOENT && ::fstatat(to, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return {};
    if (err == ENOENT) return make_error(Errc::not_found, "no queued message " + name);
    return sys_error(to_hold ? "cannot hold" : "cannot release", dir_ / name, err);
  }
  if (int e = sync_fd(to); e != 0) return sys_error("cannot fsync directory for", dir_ / name, e);
  if (int e = sync_fd(from); e != 0) return sys_error("cannot fsync directory for", dir_ / name, e);
  return {};
}

Result<void> Spool::hold(std::string_view id) {
  return move(id, true);
}
Result<void> Spool::release(std::string_view id) {
  return move(id, false);
}

Result<void> Spool::remove(std::string_view id, bool sync_directory) {
  auto lock = FileLock::acquire(dir_ / "lock");
  if (!lock) return lock.error();
  bool held = false;
  auto path = locate(id, &held);
  if (!path) return path.error();
  int dir_fd = held ? hold_fd_ : queue_fd_;
  if (::unlinkat(dir_fd, std::string(id).c_str(), 0) != 0)
    return sys_error("cannot remove", *path, errno);
  clear_in_flight(id);  // a mark is a link to the same file: free it with it
  if (!sync_directory) return {};
  if (int e = sync_fd(dir_fd); e != 0) return sys_error("cannot fsync directory of", *path, e);
  return {};
}

Result<void> Spool::retire(std::string_view id) {
  if (options_.keep_free == 0 || !is_valid_id(id)) return remove(id, false);
  std::string name(id);
  {
    auto lock = FileLock::acquire(dir_ / "lock");
    if (!lock) return lock.error();
    // A few slots from this process's turn; a taken one means free/ is about full.
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::string slot = "f" + std::to_string(next_free_slot_++ % options_.keep_free);
      if (::renameat2(queue_fd_, name.c_str(), free_fd_, slot.c_str(), RENAME_NOREPLACE) == 0) {
        clear_in_flight(id);
        return {};
      }
      if (errno != EEXIST) break;  // e.g. moved to hold/ meanwhile: remove() finds it
    }
  }
  return remove(id, false);
}

Result<void> Spool::mark_in_flight(std::string_view id) {
  if (!is_valid_id(id)) return make_error(Errc::invalid_input, "not a queue id");
  fs::path p = dir_ / "active" / std::string(id);
  // A hard link to the queue file: a new name, not a new inode. Creating and
  // deleting an inode per delivery is what ext4's allocator charges most for
  // under load (it skips recently deleted inodes one by one). An empty file
  // where a link cannot be made.
  if (::link((dir_ / "queue" / std::string(id)).c_str(), p.c_str()) == 0 || errno == EEXIST)
    return {};
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kFileMode);
  if (fd < 0) return sys_error("cannot create", p, errno);
  ::close(fd);
  return {};
}

void Spool::clear_in_flight(std::string_view id) {
  if (!is_valid_id(id)) return;
  ::unlink((dir_ / "active" / std::string(id)).c_str());
}

bool Spool::in_flight(std::string_view id) const {
  if (!is_valid_id(id)) return false;
  return ::access((dir_ / "active" / std::string(id)).c_str(), F_OK) == 0;
}

int Spool::inject(FaultPoint point, std::string_view id) const {
  return options_.fault ? options_.fault(point, id) : 0;
}

}  // namespace sg::spool
