#include "base/random.hpp"

#include <sodium.h>

#include "base/encoding.hpp"
#include "base/secret.hpp"

namespace sg {

void random_bytes(void* out, std::size_t size) {
  ensure_sodium();
  randombytes_buf(out, size);
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  random_bytes(raw.data(), raw.size());
  return hex_encode(raw);
}

}  // namespace sg
