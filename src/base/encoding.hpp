// Base64 and hex codecs (libsodium's constant-time implementations).
// Decoders take untrusted text and report malformed input as Errc::invalid_input.
#pragma once

#include <string>
#include <string_view>

#include "base/result.hpp"

namespace sg {

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);  // standard alphabet, padded
std::string hex_encode(std::string_view bytes);
Result<std::string> hex_decode(std::string_view text);

}  // namespace sg
