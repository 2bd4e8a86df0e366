// Fuzzes the detectors with arbitrary audit lines: each input line is parsed
// as JSON (without exceptions), mapped by event_from_audit and fed to
// Detectors; a line "tick N" advances time instead. The first byte picks
// small caps and short learning so eviction and new-sender paths are hit.
// Checks: nothing throws or crashes; subjects and messages are printable
// ASCII and bounded; the number of tracked subjects stays under the cap;
// the learned state dumps and loads back to the same JSON; loading an input
// line as a baseline fails cleanly or works.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "monitor/detect.hpp"

namespace {

void check_text(const std::string& s, std::size_t max) {
  if (s.size() > max) std::abort();
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  sg::config::Detect config;
  config.max_subjects = 100 + (data[0] & 0x0f);
  config.new_sender.learning_seconds = (data[0] & 0x10) ? 0 : 60;
  config.auth.max_failures = 1 + ((data[0] >> 5) & 0x3);
  sg::monitor::Detectors detectors(config);

  std::size_t lines = 0;
  while (!input.empty() && lines++ < 2000) {
    std::size_t end = input.find('\n');
    std::string_view line = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    std::vector<sg::monitor::Action> actions;
    if (line.rfind("tick ", 0) == 0) {
      actions = detectors.tick(std::strtoll(std::string(line.substr(5)).c_str(), nullptr, 10));
    } else {
      auto json = nlohmann::json::parse(line, nullptr, false);
      if (json.is_discarded()) continue;
      if (auto event = sg::monitor::event_from_audit(json)) actions = detectors.observe(*event);
      sg::monitor::Detectors scratch(config);
      (void)scratch.from_json(json);
    }
    for (const auto& a : actions) {
      check_text(a.subject, 200);
      check_text(a.message, 400);
      (void)sg::monitor::to_json(a).dump();
    }
    if (detectors.tracked() > 3 * config.max_subjects) std::abort();
  }
  for (const auto& a : detectors.active()) check_text(a.subject, 200);

  nlohmann::json saved = detectors.to_json();
  std::string text = saved.dump();
  sg::monitor::Detectors restored(config);
  if (!restored.from_json(nlohmann::json::parse(text)).ok()) std::abort();
  if (restored.to_json() != saved) std::abort();
  return 0;
}
