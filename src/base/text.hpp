// Small string helpers used across modules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sg {

std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char sep);
// Text from outside (client input, log lines, reply text) made safe for one
// line of a log, a header or a marker file: control characters and DEL
// become `control`; with ascii_only, bytes >= 0x80 become '?'; text longer
// than `max` bytes is cut there and "..." appended.
struct OneLineOptions {
  std::size_t max = SIZE_MAX;
  bool ascii_only = false;
  char control = ' ';
};
void append_one_line(std::string& out, std::string_view text, const OneLineOptions& options = {});
std::string one_line(std::string_view text, const OneLineOptions& options = {});
// False when JSON text nests objects/arrays deeper than `limit`: checked
// before nlohmann builds (and recursively dumps) untrusted JSON.
bool json_nesting_within(std::string_view text, int limit);
// Levenshtein distance, for did-you-mean suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);
// This machine's host name (gethostname), or "localhost" when it has none;
// for greetings, Message-IDs and DSNs.
std::string local_hostname();
// Seconds since the Unix epoch (wall clock); modules that need testable time
// take it as a parameter instead.
std::int64_t unix_now();

}  // namespace sg
