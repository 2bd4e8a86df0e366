// Internal to the config module: how untrusted text appears inside an error
// message (quoted, control characters masked, long text cut).
#pragma once

#include <string>
#include <string_view>

namespace sg::config::detail {

std::string in_quotes(std::string_view text);

}  // namespace sg::config::detail
