// Internal to integrate/exim: what `integrate exim` found on the host and
// the file operations it shares between planning, installing and undoing.
// Not a public header (exim.hpp is): exim_install.cpp, exim_target.cpp and
// exim_files.cpp only. Errors: Result, one line, as the command prints it.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "config/config.hpp"
#include "integrate/exim.hpp"

namespace sg::integrate::exim::detail {
namespace fs = std::filesystem;

// ---- where things are (exim_target.cpp) ----

struct Target {
  Layout layout = Layout::single_file;
  fs::path run_config;    // the file Exim's daemon reads
  fs::path edit_file;     // single-file layouts: the file we edit
  fs::path confdir;       // Debian: ROOT/etc/exim4
  fs::path cpanel_local;  // cPanel: exim.conf.local, when it exists
  fs::path secret_file, passwd_client;
  std::string group;
  gid_t gid = 0;
  std::string exim;  // the binary
  bool system_root = true;
};

Result<Target> detect(const Options& opts);
// Ok with a note when no daemon runs (the files apply when it starts).
Result<std::string> reload(const Target& t);

// ---- file changes, checks and backups (exim_files.cpp) ----

struct Change {
  fs::path path;
  Secret content;
  bool sensitive = false;  // never shown in a diff
  // For a new file (an existing file keeps its own mode and owner, except
  // a sensitive one, which always gets 0640 root:GROUP).
  mode_t mode = 0644;
  gid_t gid = 0;
};

struct Current {
  bool exists = false;
  Secret content;
  struct stat st {};
};

Result<Current> read_current(const fs::path& path);
// Atomically (temp + fsync + rename + directory fsync), with mode and owner.
Result<void> write_owned(const fs::path& path, std::string_view data, mode_t mode, uid_t uid,
                         gid_t gid);

// A scratch directory for checks and diffs, removed on destruction.
struct Scratch {
  fs::path dir;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  ~Scratch() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
  static Result<std::unique_ptr<Scratch>> make() {
    auto s = std::make_unique<Scratch>();
    std::string tmpl = (fs::temp_directory_path() / "smtpguard-exim-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) return make_error(Errc::io, errno_message("cannot create", tmpl));
    s->dir = tmpl;
    ::chmod(s->dir.c_str(), 0755);  // exim -C may read as its own user
    return s;
  }
};

Result<void> exim_check(const Target& t, const fs::path& config);
Result<void> update_exim4_conf(const fs::path& confdir, const fs::path& output);
// Renders the Debian configuration from a copy of confdir with `changes`
// applied and checks it; or checks the single new file.
Result<void> check_changes(const Target& t, const std::vector<Change>& changes, Scratch& scratch);
void show_diff(const Change& c, const Current& cur, Scratch& scratch);

fs::path backups_dir(const config::Config& cfg);
Result<fs::path> make_backup(const config::Config& cfg, const std::vector<fs::path>& paths,
                             const Target& t, const std::string& identity_created);
// Puts every file of the backup back byte-exact (mode and owner too).
Result<void> restore(const fs::path& dir, const Manifest& m);

}  // namespace sg::integrate::exim::detail
