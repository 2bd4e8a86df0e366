// Files written the way a mail system must write them: atomically (temp file
// in the same directory, fsync, rename, fsync directory) with explicit modes,
// plus whole-file reads and advisory locks. Errors name the path and errno.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "base/secret.hpp"

namespace sg {

// Replaces `path` with `data`; readers see the old or the new file, never a
// mix. The file gets exactly `mode` (umask ignored).
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data,
                               mode_t mode);

// Reads a whole regular file; refuses anything larger than max_size.
Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_size = 64u << 20);

// Reads a whole file straight into guarded memory.
Result<Secret> read_secret_file(const std::filesystem::path& path, std::size_t max_size = 1u << 16);

// Creates a directory (and parents) with `mode` if missing.
Result<void> ensure_directory(const std::filesystem::path& path, mode_t mode);

// Exclusive advisory lock on a lock file (created 0600 if missing), held
// until destruction. Blocks until acquired.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::filesystem::path& path);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// "path: strerror(errno)" style message for the current errno.
std::string errno_message(std::string_view what, const std::filesystem::path& path);

}  // namespace sg
