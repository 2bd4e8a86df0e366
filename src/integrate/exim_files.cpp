// `integrate exim`: reading and writing Exim's files, checking a new
// configuration with exim -bV, diffs, backups and their restore.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <iostream>

#include "base/file.hpp"
#include "base/random.hpp"
#include "integrate/exim_internal.hpp"

namespace sg::integrate::exim::detail {
namespace {

// Exim's "configuration error in line N of FILE:" and the reason (next
// line), else the last lines it printed.
std::string exim_error(const std::string& output) {
  const std::size_t at = output.find("configuration error");
  if (at == std::string::npos) return tail_lines(output, 2);
  const std::size_t start =
      output.rfind('\n', at) == std::string::npos ? 0 : output.rfind('\n', at) + 1;
  std::size_t end = output.find('\n', at);
  if (end != std::string::npos) end = output.find('\n', end + 1);
  std::string text =
      output.substr(start, end == std::string::npos ? std::string::npos : end - start);
  for (auto& ch : text)
    if (ch == '\n') ch = ' ';
  std::string squeezed;
  for (char ch : text)
    if (!(ch == ' ' && squeezed.ends_with(' '))) squeezed += ch;
  return squeezed;
}

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

Result<Current> read_current(const fs::path& path) {
  Current c;
  if (::lstat(path.c_str(), &c.st) != 0) {
    if (errno == ENOENT) return c;
    return make_error(Errc::io, errno_message("cannot stat", path));
  }
  if (!S_ISREG(c.st.st_mode))
    return make_error(Errc::invalid_input, path.string() + " is not a regular file");
  auto data = read_secret_file(path, 16u << 20);
  if (!data) return data.error();
  c.exists = true;
  c.content = std::move(data).value();
  return c;
}

Result<void> write_owned(const fs::path& path, std::string_view data, mode_t mode, uid_t uid,
                         gid_t gid) {
  const fs::path tmp = path.string() + ".sgtmp." + random_hex(6);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return make_error(Errc::io, errno_message("cannot create", tmp));
  auto fail = [&](std::string_view what) -> Result<void> {
    auto e = make_error(Errc::io, errno_message(what, tmp));
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  for (std::size_t off = 0; off < data.size();) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    off += static_cast<std::size_t>(n);
  }
  if (::fchown(fd, uid, gid) != 0 && ::geteuid() == 0) return fail("cannot chown");
  if (::fchmod(fd, mode) != 0) return fail("cannot chmod");
  if (::fsync(fd) != 0) return fail("cannot fsync");
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = make_error(Errc::io, errno_message("cannot rename onto", path));
    ::unlink(tmp.c_str());
    return e;
  }
  const int dfd = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<void> exim_check(const Target& t, const fs::path& config) {
  auto r = run_program({t.exim, "-C", config.string(), "-bV"});
  if (!r) return r.error();
  if (r->status != 0)
    return make_error(Errc::config,
                      "exim -bV rejects the new configuration: " + exim_error(r->output));
  return {};
}

Result<void> update_exim4_conf(const fs::path& confdir, const fs::path& output) {
  auto r = run_program(
      {"update-exim4.conf", "--confdir", confdir.string(), "--output", output.string()});
  if (!r) return r.error();
  if (r->status != 0)
    return make_error(Errc::config, "update-exim4.conf failed: " + tail_lines(r->output, 2));
  return {};
}

Result<void> check_changes(const Target& t, const std::vector<Change>& changes, Scratch& scratch) {
  if (t.layout == Layout::debian_split || t.layout == Layout::debian_unsplit) {
    const fs::path copy = scratch.dir / "confdir";
    std::error_code ec;
    fs::create_directories(copy, ec);
    for (const char* name :
         {"update-exim4.conf.conf", "exim4.conf.template", "exim4.conf.localmacros", "conf.d"}) {
      if (!fs::exists(t.confdir / name, ec)) continue;
      fs::copy(t.confdir / name, copy / name, fs::copy_options::recursive, ec);
      if (ec)
        return make_error(Errc::io,
                          "cannot copy " + (t.confdir / name).string() + ": " + ec.message());
    }
    for (const auto& c : changes) {
      if (c.sensitive) continue;  // not needed to render; never copied to /tmp
      const auto rel = fs::relative(c.path, t.confdir, ec);
      if (ec || rel.empty() || rel.begin()->string() == "..") continue;
      fs::create_directories((copy / rel).parent_path(), ec);
      if (auto w = write_file_atomic(copy / rel, c.content.view(), 0644); !w) return w;
    }
    const fs::path out = scratch.dir / "config.autogenerated";
    if (auto u = update_exim4_conf(copy, out); !u) return u;
    return exim_check(t, out);
  }
  for (const auto& c : changes) {
    if (c.path != t.edit_file) continue;
    const fs::path file = scratch.dir / "exim.conf";
    if (auto w = write_file_atomic(file, c.content.view(), 0644); !w) return w;
    return exim_check(t, file);
  }
  return {};
}

void show_diff(const Change& c, const Current& cur, Scratch& scratch) {
  if (c.sensitive) {
    std::cout << "--- " << c.path.string() << " would be " << (cur.exists ? "rewritten" : "created")
              << " (mode 0640, group of Exim; contents not shown: it holds a password)\n";
    return;
  }
  const fs::path a = scratch.dir / "diff-old", b = scratch.dir / "diff-new";
  (void)write_file_atomic(a, cur.exists ? cur.content.view() : std::string_view{}, 0600);
  (void)write_file_atomic(b, c.content.view(), 0600);
  auto r = run_program({"diff", "-u", "--label", cur.exists ? c.path.string() : "/dev/null",
                        "--label", c.path.string(), a.string(), b.string()});
  if (r)
    std::cout << r->output;
  else
    std::cout << "--- " << c.path.string() << ": (diff not available: " << r.error().message
              << ")\n";
}

fs::path backups_dir(const config::Config& cfg) {
  return cfg.relay.state_dir / "backups";
}

Result<fs::path> make_backup(const config::Config& cfg, const std::vector<fs::path>& paths,
                             const Target& t, const std::string& identity_created) {
  if (auto d = ensure_directory(backups_dir(cfg), 0700); !d) return d.error();
  fs::path dir;
  for (int i = 0; i < 100; ++i) {
    dir = backups_dir(cfg) / ("exim-" + utc_stamp() + (i ? "-" + std::to_string(i) : ""));
    if (::mkdir(dir.c_str(), 0700) == 0) break;
    if (errno != EEXIST) return make_error(Errc::io, errno_message("cannot create", dir));
    dir.clear();
  }
  if (dir.empty()) return make_error(Errc::io, "cannot name a backup directory");
  Manifest m;
  m.layout = std::string(layout_name(t.layout));
  m.identity_created = identity_created;
  int n = 0;
  for (const auto& p : paths) {
    auto cur = read_current(p);
    if (!cur) return cur.error();
    ManifestEntry e;
    e.path = p.string();
    if (cur->exists) {
      e.existed = true;
      e.mode = cur->st.st_mode & 07777;
      e.uid = cur->st.st_uid;
      e.gid = cur->st.st_gid;
      e.backup_name = "f" + std::to_string(n++);
      if (auto w = write_owned(dir / e.backup_name, cur->content.view(), 0600, 0, 0); !w)
        return w.error();
    }
    m.files.push_back(std::move(e));
  }
  auto text = format_manifest(m);
  if (!text) return text.error();
  if (auto w = write_owned(dir / "manifest", *text, 0600, 0, 0); !w) return w.error();
  return dir;
}

Result<void> restore(const fs::path& dir, const Manifest& m) {
  std::string failed;
  for (const auto& e : m.files) {
    if (!e.existed) {
      if (::unlink(e.path.c_str()) != 0 && errno != ENOENT)
        failed += (failed.empty() ? "" : ", ") + errno_message("cannot remove", e.path);
      continue;
    }
    auto data = read_secret_file(dir / e.backup_name, 16u << 20);
    if (!data) {
      failed += (failed.empty() ? "" : ", ") + data.error().message;
      continue;
    }
    if (auto w = write_owned(e.path, data->view(), e.mode, e.uid, e.gid); !w)
      failed += (failed.empty() ? "" : ", ") + w.error().message;
  }
  if (!failed.empty())
    return make_error(Errc::io, "restoring the backup in " + dir.string() + " failed: " + failed);
  return {};
}

}  // namespace sg::integrate::exim::detail
