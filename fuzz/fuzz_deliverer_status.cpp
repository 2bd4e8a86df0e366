// Fuzzes the parser of the deliverer's status file (monitor.hpp:
// parse_deliverer_status), which the monitor reads although any process of
// the service user could have written it. Checks: nothing throws or
// crashes; counts and strings stay within their bounds; error messages are
// one line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "monitor/monitor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto r = sg::monitor::parse_deliverer_status(input);
  if (!r) {
    if (r.error().message.find('\n') != std::string::npos) std::abort();
    return 0;
  }
  if (r->size() > 64) std::abort();
  for (const auto& u : *r) {
    if (u.name.empty() || u.name.size() > 128 || u.last_error.size() > 512) std::abort();
    if (u.open < 0 || u.busy < 0 || u.max < 0 || u.last_error_at < 0 || u.send_rate_limit < 0)
      std::abort();
    for (char c : u.last_error)
      if (static_cast<unsigned char>(c) < 0x20) std::abort();
  }
  return 0;
}
