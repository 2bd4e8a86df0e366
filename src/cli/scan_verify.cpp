// `scan --verify`: log in (EHLO, STARTTLS, AUTH, QUIT) with each found
// username/password pair whose host is known, with the same client as
// `smtpguard verify`. Never sends mail. The password is read back from the
// file (offset, length) into a Secret just before its attempt.
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "base/encoding.hpp"
#include "base/random.hpp"
#include "base/secret.hpp"
#include "cli/scan_support.hpp"
#include "net/net.hpp"

namespace sg::cli::scan_support {
namespace {

constexpr std::size_t kMaxSecret = 4096;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The secret bytes at the finding's offset, from the file itself. Git
// history findings ("...git:COMMIT:path") have no file to read.
Result<Secret> reread(const scan::Finding& f) {
  if (f.length == 0 || f.length > kMaxSecret)
    return make_error(Errc::unsupported, "no password to try");
  std::string path = real_path(f.path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return make_error(Errc::io, "cannot re-read the secret from the file");
  Secret raw(static_cast<std::size_t>(f.length));
  ssize_t n = ::pread(fd, raw.data(), raw.size(), static_cast<off_t>(f.offset));
  ::close(fd);
  if (n != static_cast<ssize_t>(raw.size()))
    return make_error(Errc::io, "the file changed since it was scanned");
  // A password inside an SMTP URL or DSN (smtp://user:p%40ss@host) is URL-encoded.
  if (f.rule_id != "smtp-url-credentials") return raw;
  std::string_view v = raw.view();
  Secret decoded(v.size());
  std::size_t out = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    int hi = -1, lo = -1;
    if (v[i] == '%' && i + 2 < v.size() && (hi = hex_value(v[i + 1])) >= 0 &&
        (lo = hex_value(v[i + 2])) >= 0) {
      decoded.data()[out++] = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    } else {
      decoded.data()[out++] = static_cast<unsigned char>(v[i]);
    }
  }
  decoded.truncate(out);
  return decoded;
}

Verdict attempt(const scan::Finding& f, const Secret& password, const VerifyOptions& options) {
  config::Upstream up;
  up.name = "scan";
  up.host = f.host;
  up.port = f.port != 0 ? f.port : 587;
  up.tls = up.port == 465 ? config::TlsMode::implicit : config::TlsMode::starttls;
  up.ca_file = options.ca_file;
  up.timeout_seconds = options.timeout_seconds;
  auto result =
      net::run_blocking<Result<void>>([&](asio::io_context& io) -> asio::awaitable<Result<void>> {
        net::UpstreamClient client(io, up, f.username, &password);
        auto opened = co_await client.open();
        co_await client.quit();
        co_return opened;
      });
  if (result) return {"live", "login accepted by " + up.host + ":" + std::to_string(up.port)};
  const auto& e = result.error();
  // Only a permanent refusal of the login proves the credential dead.
  if (e.code == Errc::auth && e.message.find("authentication failed: 5") != std::string::npos)
    return {"dead", e.message};
  return {"unknown", e.message};
}

}  // namespace

std::string real_path(std::string_view display) {
  std::string out;
  out.reserve(display.size());
  for (std::size_t i = 0; i < display.size(); ++i) {
    char c = display[i];
    if (c != '\\' || i + 1 >= display.size()) {
      out += c;
      continue;
    }
    char e = display[++i];
    if (e == 'n') {
      out += '\n';
    } else if (e == 't') {
      out += '\t';
    } else if (e == 'r') {
      out += '\r';
    } else if (e == 'x' && i + 2 < display.size() && hex_value(display[i + 1]) >= 0 &&
               hex_value(display[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(display[i + 1]) * 16 + hex_value(display[i + 2]));
      i += 2;
    } else {
      out += e;  // "\\"
    }
  }
  return out;
}

std::map<std::size_t, Verdict> verify(const std::vector<scan::Finding>& findings,
                                      const VerifyOptions& options) {
  harden_process();  // passwords are about to be held
  std::array<unsigned char, crypto_generichash_KEYBYTES> key{};
  random_bytes(key.data(), key.size());
  std::map<std::string, Verdict> tried;  // host:port:user:keyed digest of the password
  std::map<std::size_t, Verdict> out;
  auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  for (std::size_t i = 0; i < findings.size(); ++i) {
    const auto& f = findings[i];
    if (f.username.empty() || f.host.empty() || f.rule_id == "own-credential") continue;
    auto password = reread(f);
    if (!password) {
      out[i] = {"unknown", password.error().message};
      continue;
    }
    unsigned char digest[32];
    crypto_generichash(digest, sizeof digest, password->data(), password->size(), key.data(),
                       key.size());
    std::string id = f.host + ":" + std::to_string(f.port) + ":" + f.username + ":" +
                     hex_encode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest));
    if (auto it = tried.find(id); it != tried.end()) {
      out[i] = it->second;
      continue;
    }
    // At most one login attempt per second, whatever the findings.
    std::this_thread::sleep_until(last + std::chrono::seconds(1));
    last = std::chrono::steady_clock::now();
    out[i] = tried[id] = attempt(f, *password, options);
  }
  return out;
}

}  // namespace sg::cli::scan_support
