// Random bytes and identifiers from libsodium's CSPRNG.
#pragma once

#include <cstddef>
#include <string>

namespace sg {

void random_bytes(void* out, std::size_t size);
// 2*bytes lowercase hex characters.
std::string random_hex(std::size_t bytes);

}  // namespace sg
