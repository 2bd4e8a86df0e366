// Fuzzes monitor/exim_log: Exim main log lines through parse_line, the
// reader (fed whole and in pieces) and the detector feed. Invariants: views
// point into the line, feeding in pieces counts exactly as feeding whole,
// identities stay under the cap, nothing crashes or throws.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "monitor/exim_log.hpp"
#include "monitor/exim_log_detect.hpp"

namespace {

using namespace sg::monitor::exim;

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // Each line alone.
  for (std::size_t pos = 0; pos < input.size();) {
    std::size_t end = input.find('\n', pos);
    if (end == std::string_view::npos) end = input.size();
    std::string_view line = input.substr(pos, end - pos);
    Line l;
    if (parse_line(line, l)) {
      for (auto v : {l.pid, l.id, l.address, l.auth, l.authenticator, l.local_user, l.protocol,
                     l.host_ip, l.bounce_of, l.message_id, l.cwd, l.args, l.recipient_list})
        if (!inside(v, line)) std::abort();
    }
    pos = end + 1;
  }

  // Whole, with the detectors, and in pieces of a size the input picks.
  DetectorFeed feed;
  std::vector<sg::monitor::Action> actions;
  EximLogReader whole([&](const Observation& o) { feed.observe(o, actions); });
  whole.feed(input);
  whole.finish();
  const std::size_t piece = size == 0 ? 1 : 1 + data[0] % 17;
  EximLogReader pieces;
  for (std::size_t i = 0; i < input.size(); i += piece) pieces.feed(input.substr(i, piece));
  pieces.finish();
  if (whole.lines() != pieces.lines() || whole.unparsed() != pieces.unparsed()) std::abort();
  if (whole.identities().size() != pieces.identities().size()) std::abort();
  for (std::size_t i = 0; i < whole.identities().size(); ++i) {
    const auto& a = whole.identities()[i].counts;
    const auto& b = pieces.identities()[i].counts;
    if (a.messages != b.messages || a.recipients != b.recipients || a.bounces != b.bounces)
      std::abort();
  }
  return 0;
}
