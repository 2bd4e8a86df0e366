// Internal to the config module: the TOML tree -> Config, one section at a
// time. Throws detail::ConfigFailure (caught by parse()) on the first problem.
#pragma once

#include <toml++/toml.h>

#include <string_view>

#include "config/config.hpp"
#include "config/toml_reader.hpp"

namespace sg::config::detail {

Config build_config(const toml::table& root, std::string_view file);

// Fills vault.key and vault.path from relay.state_dir where they are empty.
void resolve_state_paths(Config& config);

// Throws a located syntax error for non-ASCII text that toml++ 3.3 cannot
// safely look at (prescan.cpp). Must run before toml::parse.
void reject_unsafe_non_ascii(std::string_view text, std::string_view file);

// [monitor] and [[alert]] (monitor.cpp).
Monitor read_monitor(const TableReader& r);
std::vector<Alert> read_alerts(const toml::node& node, std::string_view file);

// [detect.*] (detect.cpp).
Detect read_detect(const TableReader& r);

// [[client]] entries (clients.cpp).
std::vector<Client> read_clients(const toml::node& node, std::string_view file);

}  // namespace sg::config::detail
