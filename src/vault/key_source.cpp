// Where the master key comes from: key files, systemd credentials, environment.
#include <fcntl.h>
#include <pwd.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/file.hpp"
#include "base/text.hpp"
#include "vault/vault.hpp"

namespace sg::vault {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxKeyFile = 4096;

std::string user_name(uid_t uid) {
  if (const passwd* pw = ::getpwuid(uid); pw != nullptr) return pw->pw_name;
  return std::to_string(uid);
}

std::string mode_octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

bool valid_credential_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name)
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return false;
  return true;
}

// Reads an open descriptor (at most kMaxKeyFile bytes) into guarded memory.
Result<Secret> read_fd(int fd, const fs::path& path) {
  Secret buf(kMaxKeyFile + 1);
  std::size_t used = 0;
  while (used < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::io, errno_message("cannot read", path));
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  if (used > kMaxKeyFile)
    return make_error(Errc::invalid_input, path.string() + ": too large for a key file");
  return Secret::copy_of(buf.view().substr(0, used));
}

Result<Secret> decode_named(const Secret& text, const std::string& what) {
  auto key = decode_key_text(text.view());
  if (!key) return make_error(key.error().code, what + ": " + key.error().message);
  return key;
}

}  // namespace

Result<KeySource> parse_key_source(std::string_view spec) {
  KeySource s;
  auto bad = [&](std::string why) -> Result<KeySource> {
    return make_error(Errc::config, "[vault] key = \"" + std::string(spec) + "\": " + why);
  };
  if (spec == "passphrase") {
    s.kind = KeySource::Kind::passphrase;
    return s;
  }
  auto colon = spec.find(':');
  if (colon == std::string_view::npos)
    return bad("expected file:PATH, systemd:NAME, passphrase or env:VAR");
  std::string_view kind = spec.substr(0, colon);
  s.arg = std::string(spec.substr(colon + 1));
  if (kind == "file") {
    s.kind = KeySource::Kind::file;
    if (s.arg.empty()) return bad("file: needs a path");
  } else if (kind == "systemd") {
    s.kind = KeySource::Kind::systemd;
    if (!valid_credential_name(s.arg)) return bad("systemd: needs a credential name without '/'");
  } else if (kind == "env") {
    s.kind = KeySource::Kind::env;
    if (!valid_env_name(s.arg)) return bad("env: needs an environment variable name");
  } else {
    return bad("expected file:PATH, systemd:NAME, passphrase or env:VAR");
  }
  return s;
}

Result<Secret> decode_key_text(std::string_view text) {
  ensure_sodium();
  if (text.size() == kMasterKeyBytes) return Secret::copy_of(text);
  std::string_view b64 = trim(text);
  Secret out(b64.size() / 4 * 3 + 3);
  std::size_t len = 0;
  const char* end = nullptr;
  if (b64.empty() ||
      sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != b64.data() + b64.size() || len != kMasterKeyBytes)
    return make_error(Errc::invalid_input,
                      "not a smtpguard master key (expected 32 bytes as base64 text)");
  out.truncate(len);
  return out;
}

Result<Secret> read_key_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT)
      return make_error(Errc::not_found, "key file " + path.string() +
                                             " does not exist (create it with: smtpguard vault "
                                             "init)");
    return make_error(errno == EACCES ? Errc::permission : Errc::io,
                      errno_message("cannot open key file", path));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error(Errc::io, errno_message("cannot stat", path));
  if (!S_ISREG(st.st_mode))
    return make_error(Errc::invalid_input, "key file " + path.string() + " is not a regular file");
  const uid_t me = ::geteuid();
  if (st.st_uid != me)
    return make_error(Errc::permission, "key file " + path.string() + " is owned by " +
                                            user_name(st.st_uid) + ", not by " + user_name(me) +
                                            " who runs smtpguard; fix with: chown " +
                                            user_name(me) + ": " + path.string());
  if ((st.st_mode & 077) != 0)
    return make_error(Errc::permission, "key file " + path.string() + " has mode " +
                                            mode_octal(st.st_mode) +
                                            " (readable or writable by group or others); fix "
                                            "with: chmod 600 " +
                                            path.string());
  auto text = read_fd(fd, path);
  if (!text) return text.error();
  return decode_named(*text, "key file " + path.string());
}

Result<void> write_key_file(const fs::path& path, const Secret& key) {
  ensure_sodium();
  if (auto r = ensure_directory(path.parent_path().empty() ? "." : path.parent_path(), 0700); !r)
    return r;
  const int variant = sodium_base64_VARIANT_ORIGINAL;
  Secret text(sodium_base64_encoded_len(key.size(), variant));  // includes the NUL
  sodium_bin2base64(reinterpret_cast<char*>(text.data()), text.size(), key.data(), key.size(),
                    variant);
  text.data()[text.size() - 1] = '\n';
  return write_file_atomic(path, text.view(), 0600);
}

Result<Secret> read_systemd_credential(std::string_view name) {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (dir == nullptr || *dir == '\0')
    return make_error(Errc::config, "[vault] key = \"systemd:" + std::string(name) +
                                        "\" but $CREDENTIALS_DIRECTORY is not set (run from a "
                                        "systemd unit with LoadCredentialEncrypted=" +
                                        std::string(name) + ":..., or use key = \"file:PATH\")");
  fs::path path = fs::path(dir) / std::string(name);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT)
      return make_error(Errc::not_found, "systemd credential " + std::string(name) +
                                             " not found in $CREDENTIALS_DIRECTORY (" + dir +
                                             "); check LoadCredentialEncrypted= in the unit");
    return make_error(errno == EACCES ? Errc::permission : Errc::io,
                      errno_message("cannot open systemd credential", path));
  }
  auto text = read_fd(fd, path);
  ::close(fd);
  if (!text) return text.error();
  return decode_named(*text, "systemd credential " + std::string(name));
}

Result<Secret> read_env_key(std::string_view var) {
  const std::string name(var);
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0')
    return make_error(Errc::config,
                      "[vault] key = \"env:" + name + "\" but $" + name + " is not set");
  std::fprintf(stderr,
               "smtpguard: warning: master key taken from $%s; environment variables leak "
               "easily (child processes, /proc/PID/environ, crash reports); prefer file: or "
               "systemd:\n",
               name.c_str());
  return decode_named(Secret::copy_of(value), "$" + name);
}

}  // namespace sg::vault
