// The I/O half of import: reading candidate files, the usual locations, and
// scrubbing a file in place (backup, temp file with the original owner and
// mode, `php -l`, fsync, rename, fsync of the directory).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "base/file.hpp"
#include "integrate/import.hpp"

namespace sg::integrate {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxSourceFile = 8u << 20;

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool is_php_name(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".php" || ext == ".phtml" || ext == ".inc";
}

// An executable named `name` on $PATH (or the usual bin directories).
std::optional<fs::path> find_program(std::string_view name) {
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t colon = std::min(path.find(':', pos), path.size());
    fs::path candidate = fs::path(path.substr(pos, colon - pos)) / std::string(name);
    if (colon > pos && ::access(candidate.c_str(), X_OK) == 0 && is_file(candidate))
      return candidate;
    pos = colon + 1;
  }
  return std::nullopt;
}

// Runs `php -l FILE` with its output discarded; waits at most 30 s.
Result<bool> php_lint(const fs::path& php, const fs::path& file) {
  pid_t pid = ::fork();
  if (pid < 0) return make_error(Errc::io, errno_message("fork for php -l", file));
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
    }
    ::execl(php.c_str(), "php", "-n", "-l", file.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  for (int waited_ms = 0;; waited_ms += 20) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR)
      return make_error(Errc::io, errno_message("waitpid for php -l", file));
    if (waited_ms >= 30000) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return make_error(Errc::timeout, "php -l " + file.string() + " took longer than 30 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Result<void> write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(Errc::io, errno_message("write", path));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<void> fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::io, errno_message("open directory", dir));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return make_error(Errc::io, errno_message("fsync directory", dir));
  return {};
}

}  // namespace

Result<SourceFile> load_source(const fs::path& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (!fs::exists(st)) return make_error(Errc::not_found, path.string() + ": no such file");
  if (!fs::is_regular_file(st))
    return make_error(Errc::invalid_input, path.string() + ": not a regular file");
  auto text = read_file(path, kMaxSourceFile);
  if (!text) return text.error();
  if (text->find('\0') != std::string::npos)
    return make_error(Errc::invalid_input, path.string() + ": binary file");
  auto kind = detect_kind(path, *text);
  if (!kind)
    return make_error(
        Errc::invalid_input,
        path.string() + ": not an Exim, Postfix, msmtp, .env or PHP file that import knows");
  SourceFile f;
  f.path = path;
  f.kind = *kind;
  f.parsed = parse_source(*kind, *text);
  f.text = std::move(text).value();
  return f;
}

std::vector<fs::path> default_locations(const fs::path& root) {
  std::vector<fs::path> out;
  auto at = [&](std::string_view p) { return root / fs::path(p).relative_path(); };
  auto add = [&](const fs::path& p) {
    if (is_file(p)) out.push_back(p);
  };
  add(at("/etc/exim4/passwd.client"));
  add(at("/etc/exim4/exim4.conf.template"));
  add(at("/etc/exim4/exim4.conf"));
  // Directory listings are bounded: a host has a handful of these.
  auto list_dir = [&](const fs::path& dir, std::size_t limit) {
    std::vector<fs::path> entries;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end && entries.size() < limit;
         it.increment(ec))
      entries.push_back(it->path());
    std::sort(entries.begin(), entries.end());
    return entries;
  };
  for (const auto& p : list_dir(at("/etc/exim4/conf.d/auth"), 1000)) add(p);
  add(at("/etc/exim.conf"));
  add(at("/etc/exim.conf.local"));
  add(at("/etc/postfix/sasl_passwd"));
  add(at("/etc/msmtprc"));
  add(at("/root/.msmtprc"));
  for (const auto& home : list_dir(at("/home"), 10000)) add(home / ".msmtprc");
  return out;
}

Result<ScrubResult> scrub_file(const fs::path& path, std::string_view expected,
                               std::vector<Edit> edits, const fs::path& backup_dir) {
  std::error_code ec;
  // Rewrite the file a symlink points to, not the link.
  fs::path real = fs::canonical(path, ec);
  if (ec) return make_error(Errc::not_found, path.string() + ": " + ec.message());
  auto now_text = read_file(real, kMaxSourceFile);
  if (!now_text) return now_text.error();
  if (*now_text != expected)
    return make_error(Errc::conflict,
                      path.string() + " changed since it was read; run smtpguard import again");
  auto new_text = apply_edits(expected, std::move(edits));
  if (!new_text) return new_text.error();
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) return make_error(Errc::io, errno_message("stat", real));

  // Backup first: root-only, outside any web root.
  if (auto r = ensure_directory(backup_dir, 0700); !r) return r.error();
  ::chmod(backup_dir.c_str(), 0700);
  std::string flat = real.relative_path().string();
  std::replace(flat.begin(), flat.end(), '/', '_');
  fs::path backup = backup_dir / (flat + "." + timestamp());
  for (int n = 2; fs::exists(backup, ec) && n < 1000; ++n)
    backup = backup_dir / (flat + "." + timestamp() + "." + std::to_string(n));
  if (auto r = write_file_atomic(backup, expected, 0600); !r) return r.error();

  // Temp file next to the original, same owner and mode.
  std::string tmpl = (real.parent_path() / ("." + real.filename().string() + ".smtpguard-XXXXXX"));
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return make_error(Errc::io, errno_message("create temp file for", real));
  const fs::path tmp(tmpl);
  auto cleanup = [&](Error e) -> Result<ScrubResult> {
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  if (auto r = write_all(fd, *new_text, tmp); !r) return cleanup(r.error());
  if (::fchown(fd, st.st_uid, st.st_gid) != 0 && ::geteuid() == 0)
    return cleanup(make_error(Errc::io, errno_message("chown", tmp)));
  if (::fchmod(fd, st.st_mode & 07777) != 0)
    return cleanup(make_error(Errc::io, errno_message("chmod", tmp)));
  if (::fsync(fd) != 0) return cleanup(make_error(Errc::io, errno_message("fsync", tmp)));
  ScrubResult result;
  result.file = real;
  result.backup = backup;
  if (is_php_name(real)) {
    if (auto php = find_program("php")) {
      auto ok = php_lint(*php, tmp);
      if (!ok) return cleanup(ok.error());
      if (!*ok)
        return cleanup(
            make_error(Errc::invalid_input,
                       real.string() + ": the scrubbed file fails php -l; left unchanged"));
      result.php_checked = true;
    }
  }
  ::close(fd);
  if (::rename(tmp.c_str(), real.c_str()) != 0) {
    Error e = make_error(Errc::io, errno_message("rename over", real));
    ::unlink(tmp.c_str());
    return e;
  }
  if (auto r = fsync_dir(real.parent_path()); !r) return r.error();
  return result;
}

}  // namespace sg::integrate
