// Internal to the config module: typed, located access to one TOML table.
// Every getter checks type and range and reports a problem by throwing
// ConfigFailure, which parse() catches at the module boundary and turns into
// a Result error; nothing here escapes the module.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::config::detail {

struct ConfigFailure {
  std::string message;  // complete: "FILE:LINE:COL: key: what is wrong"
};

// "FILE:LINE:COL: " (or "FILE: " when toml++ has no position).
std::string location(std::string_view file, const toml::source_region& where);

// How a value looks in an error message: "abc" quoted, numbers as written,
// otherwise its kind ("a table", "an array", ...).
std::string describe(const toml::node& node);

// The allowed key closest to `key`, if it is close enough to be a typo.
std::optional<std::string_view> suggest(std::string_view key,
                                        std::initializer_list<std::string_view> allowed);

class TableReader {
 public:
  // `path` names the table in keys ("upstream.ses", "client[0]", "" at the
  // top); `display` names it in unknown-key messages ("[upstream.ses]").
  TableReader(const toml::table& table, std::string path, std::string display,
              std::string_view file)
      : table_(table), path_(std::move(path)), display_(std::move(display)), file_(file) {}

  // Rejects any key not in `allowed`, suggesting the nearest allowed one.
  void allow_only(std::initializer_list<std::string_view> allowed) const;

  const toml::node* find(std::string_view key) const { return table_.get(key); }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  std::optional<std::string> string(std::string_view key) const;
  // Non-empty string without control characters.
  std::optional<std::string> name(std::string_view key) const;
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min,
                                      std::int64_t max) const;
  // Integer or float, finite, >= min.
  std::optional<double> number(std::string_view key, double min, std::string_view unit) const;
  // An array of strings; a single string is accepted as a one-element list.
  std::optional<std::vector<std::string>> string_list(std::string_view key) const;
  // Checked sub-table; nullptr when absent.
  const toml::table* table(std::string_view key) const;

  // "upstream.ses.port"
  std::string key_path(std::string_view key) const;

  // Throws "FILE:LINE:COL: KEY: message" located at the key's value (or at
  // the table itself when the key is absent).
  [[noreturn]] void fail(std::string_view key, std::string_view message) const;
  [[noreturn]] void fail_at(const toml::node& node, std::string_view key,
                            std::string_view message) const;
  // Problems of the table as a whole: "FILE:LINE:COL: [upstream.ses]: message".
  [[noreturn]] void fail_table(std::string_view message) const;

  const toml::table& raw() const { return table_; }
  const std::string& path() const { return path_; }
  std::string_view file() const { return file_; }

 private:
  const toml::table& table_;
  std::string path_;
  std::string display_;
  std::string_view file_;
};

}  // namespace sg::config::detail
