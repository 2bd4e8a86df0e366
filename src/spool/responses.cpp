// Identity holds and address blocks as marker files (see spool.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "base/text.hpp"
#include "spool/spool.hpp"

namespace sg::spool {
namespace {

constexpr const char* kHeldDir = "held-identities";
constexpr const char* kBlockedDir = "blocked";
constexpr const char* kPausedName = "paused";

bool valid_identity(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  return true;
}

// IPv4, IPv6 (hex digits, ':' and '.') or "uid:N": never '/' or "..".
bool valid_address(std::string_view a) {
  if (a.empty() || a.size() > 64) return false;
  if (a.rfind("uid:", 0) == 0) {
    if (a.size() == 4) return false;
    for (char c : a.substr(4))
      if (c < '0' || c > '9') return false;
    return true;
  }
  bool digit = false;
  for (char c : a) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != ':' && c != '.') return false;
    digit = digit || hex;
  }
  return digit && a.find("..") == std::string_view::npos;
}

std::string one_line(std::string_view text) {
  return sg::one_line(text, {.max = 300});
}

// SPOOL/[SUBDIR/]NAME holding "UNTIL REASON\n", written whole (tmp + fsync +
// rename). Root (the CLI) leaves it to the spool directory's owner, like the
// spool, so the unprivileged workers can remove it.
Result<void> write_marker(const std::filesystem::path& spool_dir, std::string_view subdir,
                          std::string_view name, std::int64_t until, std::string_view reason) {
  auto dir = subdir.empty() ? spool_dir : spool_dir / std::string(subdir);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return make_error(Errc::io, "cannot create " + dir.string() + ": " + std::strerror(errno));
  auto tmp = dir / ("." + std::string(name) + ".tmp");
  auto path = dir / std::string(name);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return make_error(Errc::io, "cannot create " + tmp.string() + ": " + std::strerror(errno));
  std::string line = std::to_string(until) + " " + one_line(reason) + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  struct stat owner {};
  if (::stat(spool_dir.c_str(), &owner) == 0) {
    (void)!::fchown(fd, owner.st_uid, owner.st_gid);
    if (!subdir.empty()) (void)!::chown(dir.c_str(), owner.st_uid, owner.st_gid);
  }
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return make_error(Errc::io, "cannot write " + path.string() + ": " + std::strerror(e));
  }
  return {};
}

Result<void> remove_marker(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return make_error(Errc::io, "cannot remove " + path.string() + ": " + std::strerror(errno));
  return {};
}

std::optional<Response> read_marker(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n < 0) return std::nullopt;
  std::string_view text(buf, static_cast<std::size_t>(n));
  Response r;
  r.subject = path.filename().string();
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i < 18)
    r.until = r.until * 10 + (text[i++] - '0');
  if (i < text.size() && text[i] == ' ') ++i;
  auto nl = text.find('\n', i);
  r.reason = std::string(text.substr(i, nl == std::string_view::npos ? text.size() - i : nl - i));
  return r;
}

std::vector<Response> list_markers(const std::filesystem::path& dir) {
  std::vector<Response> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (auto r = read_marker(entry.path())) out.push_back(std::move(*r));
  }
  std::sort(out.begin(), out.end(),
            [](const Response& a, const Response& b) { return a.subject < b.subject; });
  return out;
}

}  // namespace

Result<void> set_paused(const std::filesystem::path& spool_dir, bool paused, std::int64_t now) {
  if (!paused) return remove_marker(spool_dir / kPausedName);
  return write_marker(spool_dir, "", kPausedName, 0, "since " + std::to_string(now));
}

bool paused(const std::filesystem::path& spool_dir) {
  return ::access((spool_dir / kPausedName).c_str(), F_OK) == 0;
}

Result<void> set_identity_hold(const std::filesystem::path& spool_dir, std::string_view identity,
                               std::string_view reason) {
  if (!valid_identity(identity))
    return make_error(Errc::invalid_input, "not an identity name: " + one_line(identity));
  return write_marker(spool_dir, kHeldDir, identity, 0, reason);
}

Result<void> clear_identity_hold(const std::filesystem::path& spool_dir,
                                 std::string_view identity) {
  if (!valid_identity(identity))
    return make_error(Errc::invalid_input, "not an identity name: " + one_line(identity));
  return remove_marker(spool_dir / kHeldDir / std::string(identity));
}

bool identity_held(const std::filesystem::path& spool_dir, std::string_view identity) {
  if (!valid_identity(identity)) return false;
  return ::access((spool_dir / kHeldDir / std::string(identity)).c_str(), F_OK) == 0;
}

std::vector<Response> held_identities(const std::filesystem::path& spool_dir) {
  return list_markers(spool_dir / kHeldDir);
}

Result<void> set_block(const std::filesystem::path& spool_dir, std::string_view address,
                       std::int64_t until, std::string_view reason) {
  if (!valid_address(address))
    return make_error(Errc::invalid_input, "not an address: " + one_line(address));
  return write_marker(spool_dir, kBlockedDir, address, until, reason);
}

Result<void> clear_block(const std::filesystem::path& spool_dir, std::string_view address) {
  if (!valid_address(address))
    return make_error(Errc::invalid_input, "not an address: " + one_line(address));
  return remove_marker(spool_dir / kBlockedDir / std::string(address));
}

bool blocked(const std::filesystem::path& spool_dir, std::string_view address, std::int64_t now) {
  if (!valid_address(address)) return false;
  auto r = read_marker(spool_dir / kBlockedDir / std::string(address));
  return r && (r->until == 0 || r->until > now);
}

std::vector<Response> blocks(const std::filesystem::path& spool_dir) {
  return list_markers(spool_dir / kBlockedDir);
}

}  // namespace sg::spool
