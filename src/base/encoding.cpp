#include "base/encoding.hpp"

#include <sodium.h>

#include "base/secret.hpp"

namespace sg {

std::string base64_encode(std::string_view bytes) {
  ensure_sodium();
  const int variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(out.size() - 1);  // drop the terminating NUL
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  ensure_sodium();
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size())
    return make_error(Errc::invalid_input, "invalid base64");
  out.resize(len);
  return out;
}

std::string hex_encode(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  out.resize(bytes.size() * 2);
  return out;
}

Result<std::string> hex_decode(std::string_view text) {
  std::string out(text.size() / 2 + 1, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                     text.size(), nullptr, &len, &end) != 0 ||
      end != text.data() + text.size())
    return make_error(Errc::invalid_input, "invalid hex");
  out.resize(len);
  return out;
}

}  // namespace sg
