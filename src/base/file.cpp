#include "base/file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/random.hpp"

namespace sg {
namespace fs = std::filesystem;

std::string errno_message(std::string_view what, const fs::path& path) {
  std::string m(what);
  m += " ";
  m += path.string();
  m += ": ";
  m += std::strerror(errno);
  return m;
}

namespace {

Result<void> write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::io, errno_message("cannot write", path));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<void> fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot open directory", dir));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) return make_error(Errc::io, errno_message("cannot fsync directory", dir));
  return {};
}

}  // namespace

Result<void> write_file_atomic(const fs::path& path, std::string_view data, mode_t mode) {
  fs::path dir = path.parent_path();
  fs::path tmp = path;
  tmp += ".tmp." + random_hex(8);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot create", tmp));
  auto fail = [&](Error e) -> Result<void> {
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd, mode) != 0)
    return fail(make_error(Errc::io, errno_message("cannot chmod", tmp)));
  if (auto r = write_all(fd, data, tmp); !r) return fail(r.error());
  if (::fsync(fd) != 0) return fail(make_error(Errc::io, errno_message("cannot fsync", tmp)));
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return make_error(Errc::io, errno_message("cannot close", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = make_error(Errc::io, errno_message("cannot rename onto", path));
    ::unlink(tmp.c_str());
    return e;
  }
  return fsync_directory(dir);
}

static Result<int> open_for_reading(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) return fd;
  Errc code = errno == ENOENT ? Errc::not_found : errno == EACCES ? Errc::permission : Errc::io;
  return make_error(code, errno_message("cannot open", path));
}

Result<std::string> read_file(const fs::path& path, std::size_t max_size) {
  auto opened = open_for_reading(path);
  if (!opened) return opened.error();
  int fd = *opened;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(Errc::invalid_input, path.string() + ": not a regular file");
  }
  if (static_cast<std::size_t>(st.st_size) > max_size) {
    ::close(fd);
    return make_error(Errc::invalid_input, path.string() + ": file too large");
  }
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Error e = make_error(Errc::io, errno_message("cannot read", path));
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_size) {
      ::close(fd);
      return make_error(Errc::invalid_input, path.string() + ": file too large");
    }
  }
  ::close(fd);
  return out;
}

Result<Secret> read_secret_file(const fs::path& path, std::size_t max_size) {
  auto opened = open_for_reading(path);
  if (!opened) return opened.error();
  int fd = *opened;
  Secret buf(max_size);
  std::size_t used = 0;
  for (;;) {
    if (used == max_size) {
      ::close(fd);
      return make_error(Errc::invalid_input, path.string() + ": file too large");
    }
    ssize_t n = ::read(fd, buf.data() + used, max_size - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      Error e = make_error(Errc::io, errno_message("cannot read", path));
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  Secret out = Secret::copy_of(buf.view().substr(0, used));
  return out;
}

Result<void> ensure_directory(const fs::path& path, mode_t mode) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return {};
  if (!path.parent_path().empty() && path.parent_path() != path) {
    if (auto r = ensure_directory(path.parent_path(), 0755); !r) return r;
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return make_error(Errc::io, errno_message("cannot create directory", path));
  ::chmod(path.c_str(), mode);
  return {};
}

Result<FileLock> FileLock::acquire(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot open lock file", path));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    Error e = make_error(Errc::io, errno_message("cannot lock", path));
    ::close(fd);
    return e;
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace sg
