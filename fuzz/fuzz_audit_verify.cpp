// The audit log's chain verifier and the supervisor's check of worker
// records on arbitrary bytes. Input: lines separated by '\n', files by '\f'.
// Every line goes to ChainVerifier (which must not crash, whatever it
// says); every line parse_worker_record accepts is chained again with
// chain_line, and that new chain must verify intact.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "monitor/audit_chain.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  sg::monitor::ChainVerifier given, rebuilt;
  sg::monitor::ChainLink link;
  std::size_t file = 0;
  given.begin_file(0);
  while (!in.empty()) {
    std::size_t end = in.find_first_of("\n\f");
    std::string_view line = in.substr(0, end);
    bool complete = end != std::string_view::npos;
    given.feed(line, complete);
    if (auto record = sg::monitor::parse_worker_record(line)) {
      std::string chained = sg::monitor::chain_line(std::move(*record), link);
      link = sg::monitor::link_after(chained);
      rebuilt.feed(chained);
    }
    if (!complete) break;
    if (in[end] == '\f') given.begin_file(++file);
    in.remove_prefix(end + 1);
  }
  (void)given.result();
  if (!rebuilt.ok()) std::abort();
  return 0;
}
