// Fuzzes the policy module's untrusted-text parsers: clients.json, the rate
// counter state file, addresses and sender patterns. None may throw, crash
// or abort; what parses must survive a serialise/parse round trip, and a
// pattern must never match an address that does not parse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "policy/policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    if (auto parsed = sg::policy::parse_clients_json(text, "clients.json")) {
      auto again = sg::policy::parse_clients_json(sg::policy::clients_to_json(*parsed), "x");
      if (!again || again->clients.size() != parsed->clients.size()) std::abort();
    } else if (parsed.error().message.rfind("clients.json: ", 0) != 0) {
      std::abort();
    }
    if (auto counters = sg::policy::RateCounters::from_json(text)) {
      const std::string json = counters->to_json();
      auto again = sg::policy::RateCounters::from_json(json);
      if (!again || again->to_json() != json) std::abort();
      (void)counters->counts("a", 1'700'000'000);
    }
    // First line: a pattern; the rest: an address to match against it.
    std::size_t nl = text.find('\n');
    std::string_view first = text.substr(0, nl);
    std::string_view rest = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto mailbox = sg::policy::parse_mailbox(rest);
    if (auto pattern = sg::policy::SenderPattern::parse(first)) {
      bool matched = pattern->matches(rest);
      if (matched && !mailbox && !rest.empty()) std::abort();
      if (matched && rest.empty() &&
          pattern->kind() != sg::policy::SenderPattern::Kind::null_sender)
        std::abort();
    }
    (void)sg::policy::Cidr::parse(first);
  } catch (const std::bad_alloc&) {
  } catch (...) {
    std::abort();
  }
  return 0;
}
