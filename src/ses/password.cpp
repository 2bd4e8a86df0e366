// SES SMTP password derivation. AWS documents the algorithm: a SigV4 signing
// key chain with fixed date "11111111", service "ses", terminal
// "aws4_request", message "SendRawEmail", prefixed with a version byte and
// base64 encoded. Every derived key is a Secret; HMAC states are wiped.
#include <sodium.h>

#include <cstring>

#include "ses/ses.hpp"

namespace sg::ses {
namespace {

constexpr std::size_t kMacSize = crypto_auth_hmacsha256_BYTES;

Secret hmac_sha256(std::string_view key, std::string_view message) {
  ensure_sodium();
  Secret out(kMacSize);
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()),
                              key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  crypto_auth_hmacsha256_final(&state, out.data());
  wipe(&state, sizeof state);  // holds key-derived pads
  return out;
}

// base64(version || mac), straight into guarded memory.
Secret encode_password(unsigned char version, const Secret& mac) {
  Secret raw(1 + mac.size());
  raw.data()[0] = version;
  std::memcpy(raw.data() + 1, mac.data(), mac.size());
  const std::size_t encoded_size =
      sodium_base64_ENCODED_LEN(1 + kMacSize, sodium_base64_VARIANT_ORIGINAL);  // includes NUL
  Secret text(encoded_size);
  sodium_bin2base64(reinterpret_cast<char*>(text.data()), text.size(), raw.data(), raw.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  text.truncate(std::strlen(reinterpret_cast<const char*>(text.data())));
  return text;
}

}  // namespace

Secret smtp_password_v4(const Secret& secret_access_key, std::string_view region) {
  Secret signing_key(4 + secret_access_key.size());
  std::memcpy(signing_key.data(), "AWS4", 4);
  if (!secret_access_key.empty())
    std::memcpy(signing_key.data() + 4, secret_access_key.data(), secret_access_key.size());
  Secret k_date = hmac_sha256(signing_key.view(), "11111111");
  Secret k_region = hmac_sha256(k_date.view(), region);
  Secret k_service = hmac_sha256(k_region.view(), "ses");
  Secret k_terminal = hmac_sha256(k_service.view(), "aws4_request");
  Secret k_message = hmac_sha256(k_terminal.view(), "SendRawEmail");
  return encode_password(0x04, k_message);
}

Secret smtp_password_v2(const Secret& secret_access_key) {
  Secret mac = hmac_sha256(secret_access_key.view(), "SendRawEmail");
  return encode_password(0x02, mac);
}

}  // namespace sg::ses
