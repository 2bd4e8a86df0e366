// Fuzzes doctor's parsers of untrusted text: /proc/net/tcp and tcp6 lines,
// "socket:[N]" links, php.ini / FPM pool sendmail_path, firewall rule text.
// Nothing may throw or crash; parsed addresses must be printable and a
// loopback flag must match the address.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "doctor/doctor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sg::doctor;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (bool v6 : {false, true})
      for (const auto& s : parse_proc_net_tcp(text, v6)) {
        if (s.address.empty()) std::abort();
        if (!v6 && s.loopback != s.address.starts_with("127.")) std::abort();
      }
    (void)socket_inode(text);
    (void)ini_sendmail_path(text, false);
    (void)ini_sendmail_path(text, true);
    (void)analyse_firewall(text).found();
  } catch (const std::bad_alloc&) {
  } catch (...) {
    std::abort();
  }
  return 0;
}
