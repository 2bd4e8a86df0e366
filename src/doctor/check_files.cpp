// Owners and modes of the state directory, the vault and its key file, and
// the key source. Expected layout: docs/architecture.md, "State directory".
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <cstdio>

#include "doctor/doctor.hpp"

namespace sg::doctor {
namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string user_name(uid_t uid) {
  if (const passwd* pw = ::getpwuid(uid)) return pw->pw_name;
  return std::to_string(uid);
}

std::string group_name(gid_t gid) {
  if (const group* gr = ::getgrgid(gid)) return gr->gr_name;
  return std::to_string(gid);
}

std::string describe(const std::filesystem::path& path, const struct stat& st) {
  return path.string() + " is " + user_name(st.st_uid) + ":" + group_name(st.st_gid) + " " +
         octal(st.st_mode);
}

// A root-only secret file: vault.sealed or the master key.
void check_secret_file(const std::filesystem::path& path, std::string_view what,
                       std::string_view id, std::vector<Finding>& out) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;  // absence is reported by the vault check
  const std::string fix = "chown root:root " + path.string() + " && chmod 0600 " + path.string();
  if (S_ISLNK(st.st_mode)) {
    out.push_back({std::string(id) + "-symlink", Severity::medium,
                   std::string(what) + " is a symbolic link",
                   path.string() + " points elsewhere; whoever controls the target controls it",
                   "replace the link with the file itself, owned by root, mode 0600"});
    if (::stat(path.c_str(), &st) != 0) return;
  }
  if (st.st_uid != 0)
    out.push_back({std::string(id) + "-owner", Severity::high,
                   std::string(what) + " is not owned by root", describe(path, st), fix});
  if ((st.st_mode & 077) != 0) {
    const bool others = (st.st_mode & 007) != 0;
    out.push_back({std::string(id) + "-mode", Severity::high,
                   std::string(what) +
                       (others ? " is accessible to every user" : " is accessible to its group"),
                   describe(path, st), fix});
  }
}

}  // namespace

std::vector<Finding> check_state_files(const config::Config& cfg) {
  std::vector<Finding> out;
  const auto& dir = cfg.relay.state_dir;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    out.push_back({"state-dir-missing", Severity::info, "the state directory does not exist yet",
                   dir.string() + " is missing (the relay and `vault init` create it)",
                   "smtpguard vault init, then start the relay"});
  } else {
    const std::string fix = "chown root:smtpguard " + dir.string() + " && chmod 0751 " +
                            dir.string() + " (the relay sets this when it starts as root)";
    if (st.st_uid != 0)
      out.push_back({"state-dir-owner", Severity::high, "the state directory is not owned by root",
                     describe(dir, st) + "; its owner can replace the vault and the spool", fix});
    if ((st.st_mode & 022) != 0)
      out.push_back({"state-dir-writable", Severity::high,
                     "the state directory is writable by others than root",
                     describe(dir, st) + "; they can replace the vault, the key or the socket",
                     fix});
    else if ((st.st_mode & 07777) != 0751 && (st.st_mode & 07777) != 0750 &&
             (st.st_mode & 07777) != 0700)
      out.push_back({"state-dir-mode", Severity::low, "the state directory's mode is not 0751",
                     describe(dir, st), fix});
  }
  auto paths = vault::paths_for(cfg);
  if (!paths) return out;
  check_secret_file(paths->vault, "the vault file", "vault-file", out);
  if (paths->key.kind == vault::KeySource::Kind::file)
    check_secret_file(paths->key.arg, "the master key file", "key-file", out);
  return out;
}

std::vector<Finding> check_key_source(const config::Config& cfg) {
  std::vector<Finding> out;
  auto source = vault::parse_key_source(cfg.vault.key);
  if (!source) {
    out.push_back({"key-source-invalid", Severity::high, "the vault key source is not valid",
                   source.error().message, "set [vault] key to file:PATH or systemd:NAME"});
    return out;
  }
  using Kind = vault::KeySource::Kind;
  if (source->kind == Kind::env)
    out.push_back(
        {"key-source-env", Severity::medium, "the master key comes from an environment variable",
         "[vault] key = \"env:" + source->arg +
             "\": environments leak through /proc/PID/environ, child processes, crash "
             "reports and service managers' logs",
         "move the key to a root-only file (key = \"file:/var/lib/smtpguard/master.key\") or a "
         "systemd credential (key = \"systemd:NAME\" with LoadCredentialEncrypted=)"});
  if (source->kind == Kind::passphrase)
    out.push_back({"key-source-passphrase", Severity::info, "the vault is opened with a passphrase",
                   "the relay cannot start unattended (after a reboot someone must type it); "
                   "doctor does not ask for it, so credential ages were not checked",
                   "fine for a workstation; on a server prefer systemd:NAME (TPM2-bound where "
                   "available) or a root-only key file"});
  return out;
}

}  // namespace sg::doctor
