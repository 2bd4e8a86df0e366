// Fuzzes the Postfix main.cf parser and editor (integrate postfix) and the
// SASL map reader. Nothing may throw or crash; an edit that succeeds must
// set every value, keep every other parameter as it was, and a second edit
// must change nothing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "integrate/mta.hpp"

namespace {

std::vector<std::pair<std::string, std::string>> others(
    const std::vector<sg::integrate::MainCfEntry>& entries,
    const std::vector<sg::integrate::MainCfSetting>& settings) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : entries) {
    bool ours = false;
    for (const auto& s : settings) ours = ours || s.name == e.name;
    if (!ours) out.emplace_back(e.name, e.value);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sg::integrate;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto entries = parse_main_cf(text, "main.cf");
    const std::vector<MainCfSetting> settings =
        entries
            ? postfix_settings(*entries, "[127.0.0.1]:2525", "/etc/postfix/smtpguard_sasl", false)
            : std::vector<MainCfSetting>{{"relayhost", "[127.0.0.1]:2525"}};
    auto edit = edit_main_cf(text, settings, "main.cf");
    if (edit.ok() != entries.ok()) std::abort();
    if (edit) {
      (void)render_main_cf_diff(*edit, "main.cf");
      // The --undo diff: the reverse of a change is a change, and nothing else is.
      if (line_diff(edit->text, text).changed() != (edit->text != text)) std::abort();
      (void)render_main_cf_diff(line_diff(edit->text, text), "main.cf");
      auto after = parse_main_cf(edit->text, "main.cf");
      if (!after) std::abort();
      for (const auto& s : settings)
        if (main_cf_value(*after, s.name) != s.value) std::abort();
      if (others(*entries, settings) != others(*after, settings)) std::abort();
      auto again = edit_main_cf(edit->text, settings, "main.cf");
      if (!again || again->changed() || again->text != edit->text) std::abort();
      if (!edit->changed() && edit->text != text) std::abort();
    }
    (void)sasl_map_password(text, "[127.0.0.1]:2525", "postfix");
    std::size_t nl = text.find('\n');
    (void)php_sendmail_command(text.substr(0, nl), "");
  } catch (const std::bad_alloc&) {
  } catch (...) {
    std::abort();
  }
  return 0;
}
