#include "config/toml_reader.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "base/text.hpp"
#include "config/quote.hpp"

namespace sg::config::detail {

std::string location(std::string_view file, const toml::source_region& where) {
  std::string out(file);
  if (where.begin.line > 0) {
    out += ':' + std::to_string(where.begin.line) + ':' + std::to_string(where.begin.column);
  }
  return out + ": ";
}

std::string describe(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return in_quotes(node.as_string()->get());
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::integer:
      return std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point: {
      std::ostringstream os;
      os << *node.as_floating_point();  // TOML spelling: 1.5, inf, nan
      return os.str();
    }
    case toml::node_type::boolean:
      return node.as_boolean()->get() ? "true" : "false";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::optional<std::string_view> suggest(std::string_view key,
                                        std::initializer_list<std::string_view> allowed) {
  std::optional<std::string_view> best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (std::string_view candidate : allowed) {
    std::size_t d = edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  // A typo is a small edit relative to the word; anything else is a stranger.
  if (best && best_distance < best->size() &&
      (best_distance <= 2 || best_distance * 3 <= key.size()))
    return best;
  return std::nullopt;
}

void TableReader::allow_only(std::initializer_list<std::string_view> allowed) const {
  for (auto&& [key, value] : table_) {
    std::string_view k = key.str();
    bool known = false;
    for (std::string_view a : allowed) known = known || a == k;
    if (known) continue;
    std::string shown = in_quotes(k);  // masks control characters; we want '...' not "..."
    shown = shown.substr(1, shown.size() - 2);
    std::string message = location(file_, key.source()) + "unknown key '" + shown + "' ";
    message += display_.empty() ? "at the top level" : "in " + display_;
    if (auto near = suggest(k, allowed)) message += " (did you mean '" + std::string(*near) + "'?)";
    throw ConfigFailure{message};
  }
}

std::string TableReader::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void TableReader::fail(std::string_view key, std::string_view message) const {
  if (const toml::node* node = find(key)) fail_at(*node, key, message);
  throw ConfigFailure{location(file_, table_.source()) + key_path(key) + ": " +
                      std::string(message)};
}

void TableReader::fail_at(const toml::node& node, std::string_view key,
                          std::string_view message) const {
  throw ConfigFailure{location(file_, node.source()) + key_path(key) + ": " + std::string(message)};
}

void TableReader::fail_table(std::string_view message) const {
  throw ConfigFailure{location(file_, table_.source()) + display_ + ": " + std::string(message)};
}

std::optional<std::string> TableReader::string(std::string_view key) const {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_string()) fail_at(*node, key, "expected a string, got " + describe(*node));
  return node->as_string()->get();
}

std::optional<std::string> TableReader::name(std::string_view key) const {
  auto value = string(key);
  if (!value) return value;
  if (value->empty()) fail(key, "must not be empty");
  for (char c : *value) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) fail(key, "must not contain control characters");
  }
  return value;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, std::int64_t min,
                                                 std::int64_t max) const {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  // Counters whose only real bound is their storage read better as ">= 0".
  const bool open_ended = max >= std::int64_t{std::numeric_limits<std::uint32_t>::max()};
  std::string expected =
      open_ended ? "expected an integer >= " + std::to_string(min)
                 : "expected an integer " + std::to_string(min) + "-" + std::to_string(max);
  if (!node->is_integer()) fail_at(*node, key, expected + ", got " + describe(*node));
  std::int64_t value = node->as_integer()->get();
  if (value < min) fail_at(*node, key, expected + ", got " + describe(*node));
  if (value > max && !open_ended) fail_at(*node, key, expected + ", got " + describe(*node));
  if (value > max)
    fail_at(*node, key,
            "expected an integer at most " + std::to_string(max) + ", got " + describe(*node));
  return value;
}

std::optional<double> TableReader::number(std::string_view key, double min,
                                          std::string_view unit) const {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  std::ostringstream expected;
  expected << "expected a number >= " << min << " (" << unit << ")";
  double value = 0;
  if (node->is_integer()) {
    value = static_cast<double>(node->as_integer()->get());
  } else if (node->is_floating_point()) {
    value = node->as_floating_point()->get();
  } else {
    fail_at(*node, key, expected.str() + ", got " + describe(*node));
  }
  if (!std::isfinite(value) || value < min)
    fail_at(*node, key, expected.str() + ", got " + describe(*node));
  return value;
}

std::optional<std::vector<std::string>> TableReader::string_list(std::string_view key) const {
  const toml::node* node = find(key);
  if (node == nullptr) return std::nullopt;
  if (node->is_string()) return std::vector<std::string>{node->as_string()->get()};
  const toml::array* array = node->as_array();
  if (array == nullptr) fail_at(*node, key, "expected an array of strings, got " + describe(*node));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    if (!element.is_string()) {
      fail_at(element, std::string(key) + "[" + std::to_string(i) + "]",
              "expected a string, got " + describe(element));
    }
    out.push_back(element.as_string()->get());
  }
  return out;
}

const toml::table* TableReader::table(std::string_view key) const {
  const toml::node* node = find(key);
  if (node == nullptr) return nullptr;
  if (!node->is_table()) fail_at(*node, key, "expected a table, got " + describe(*node));
  return node->as_table();
}

}  // namespace sg::config::detail
