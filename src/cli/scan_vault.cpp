// Own-credential fingerprints for `scan`: the vault is unsealed only in a
// forked child, which sends back digests and exits, so the scanning process
// (which reads arbitrary files for a long time) never holds a plaintext.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/encoding.hpp"
#include "base/random.hpp"
#include "cli/scan_support.hpp"
#include "vault/vault.hpp"

namespace sg::cli::scan_support {
namespace {

constexpr std::size_t kMaxReply = 16u << 20;

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The child: unseal, digest, report, exit. Never returns.
[[noreturn]] void child(const config::Config& cfg, const std::array<unsigned char, 32>& key,
                        int out) {
  harden_process();
  nlohmann::json reply;
  auto contents = vault::open(cfg, vault::KeyOptions{});
  if (!contents) {
    reply["error"] = contents.error().message;
  } else {
    auto& list = reply["digests"] = nlohmann::json::array();
    for (const auto& e : contents->entries) {
      std::string label = "vault entry ";
      if (vault::is_previous_entry_name(e.name)) {
        label += e.name.substr(0, e.name.size() - vault::kPreviousSuffix.size()) + " (previous)";
      } else {
        label += e.name + " (current)";
      }
      for (const auto& d : scan::digest_variants(e.password, e.username, label, key)) {
        list.push_back(
            {{"label", d.label},
             {"form", d.form},
             {"length", d.length},
             {"digest", hex_encode(std::string_view(reinterpret_cast<const char*>(d.digest.data()),
                                                    d.digest.size()))}});
      }
    }
  }
  bool ok = write_all(out, reply.dump());
  ::_exit(ok ? 0 : 1);
}

Result<std::string> read_all(int fd) {
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::io, "reading from the vault process failed");
    if (n == 0) return data;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > kMaxReply) return make_error(Errc::io, "the vault process said too much");
  }
}

Result<scan::OwnSecrets> parse_reply(std::string_view text,
                                     const std::array<unsigned char, 32>& key) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(Errc::io, "the vault process gave no answer");
  if (j.contains("error")) return make_error(Errc::crypto, j["error"].get<std::string>());
  scan::OwnSecrets own;
  own.key = key;
  for (const auto& d : j.value("digests", nlohmann::json::array())) {
    scan::OwnDigest od;
    od.label = d.value("label", "");
    od.form = d.value("form", "");
    od.length = d.value("length", std::size_t{0});
    auto raw = hex_decode(d.value("digest", ""));
    if (!raw || raw->size() != od.digest.size())
      return make_error(Errc::io, "the vault process sent a malformed digest");
    std::copy(raw->begin(), raw->end(), od.digest.begin());
    own.digests.push_back(std::move(od));
  }
  return own;
}

}  // namespace

std::optional<scan::OwnSecrets> vault_fingerprints(const config::Config& cfg, std::string& note) {
  note.clear();
  auto paths = vault::paths_for(cfg);
  std::error_code ec;
  if (!paths || !std::filesystem::exists(paths->vault, ec)) return std::nullopt;  // no vault

  std::array<unsigned char, 32> key{};
  random_bytes(key.data(), key.size());
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    note = "cannot create a pipe for the vault process";
    return std::nullopt;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    note = "cannot fork the vault process";
    return std::nullopt;
  }
  if (pid == 0) {
    ::close(fds[0]);
    child(cfg, key, fds[1]);
  }
  ::close(fds[1]);
  auto text = read_all(fds[0]);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!text) {
    note = text.error().message;
    return std::nullopt;
  }
  auto own = parse_reply(*text, key);
  if (!own) {
    note = own.error().message;
    return std::nullopt;
  }
  return std::move(own).value();
}

}  // namespace sg::cli::scan_support
