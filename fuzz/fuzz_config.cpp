// Fuzzes config::parse with arbitrary bytes: it must never throw, crash or
// abort, errors must be located Errc::config messages, and anything it
// accepts must satisfy the validation rules it promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

// Compile toml++'s parser into this binary (instead of using the shared
// library) so the fuzzer sees, and is guided by, its code too.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>

#include "config/config.hpp"

namespace {

void check_accepted(const sg::config::Config& c) {
  using sg::config::TlsMode;
  if (c.vault.key.empty() || c.vault.path.empty()) std::abort();
  if (c.relay.max_message_size == 0) std::abort();
  for (const auto& l : c.relay.listen) {
    auto a = sg::config::parse_listen_address(l);
    if (!a) std::abort();
    if (!sg::config::is_loopback_host(a->host) && !c.relay.tls) std::abort();
  }
  for (const auto& u : c.upstreams) {
    if (u.host.empty() || u.port == 0 || u.max_connections == 0) std::abort();
    if (u.credential.empty() && u.tls != TlsMode::none) std::abort();
    if (u.tls == TlsMode::none && !sg::config::is_loopback_host(u.host)) std::abort();
    if (c.find_upstream(u.name) != &u) std::abort();
  }
  std::set<std::string> names;
  for (const auto& client : c.clients)
    if (client.name.empty() || !names.insert(client.name).second) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto parsed = sg::config::parse(text, "fuzz.toml");
    if (parsed) {
      check_accepted(*parsed);
    } else {
      const auto& e = parsed.error();
      if (e.code != sg::Errc::config || e.message.rfind("fuzz.toml", 0) != 0) std::abort();
    }
    (void)sg::config::parse_size(text);
    (void)sg::config::parse_listen_address(text);
    (void)sg::config::is_loopback_host(text);
  } catch (const std::bad_alloc&) {
    // Memory exhaustion is the one exception parse() lets through.
  } catch (...) {
    std::abort();
  }
  return 0;
}
