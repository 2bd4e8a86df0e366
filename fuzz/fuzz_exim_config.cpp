// Fuzzes integrate/exim's text handling of host files: Exim configurations
// (marked blocks in and out, authenticator names), cPanel's exim.conf.local,
// passwd.client and the backup manifest. Input is NUL-separated fields:
// config text, passwd.client text, password, manifest text. Invariants:
// inserting then stripping leaves the input's own text as it was, rendering
// twice changes nothing, a passwd.client entry reads back as the exact password,
// a manifest that parses formats and parses to the same entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "integrate/exim.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sg::integrate::exim;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> f;
  for (std::size_t pos = 0; pos <= input.size() && f.size() < 4;) {
    std::size_t end = input.find('\0', pos);
    if (end == std::string_view::npos || f.size() == 3) end = input.size();
    f.push_back(input.substr(pos, end - pos));
    pos = end + 1;
  }
  f.resize(4);

  for (auto login : {LocalLogin::own_plain, LocalLogin::debian_passwd_client}) {
    const Blocks b = smarthost_blocks({2525, "/etc/exim4/smtpguard.secret", true, login});
    auto stripped = strip_blocks(f[0], "c");
    auto out = apply_to_config(f[0], b, "c");
    if (out.ok() != stripped.ok()) std::abort();
    if (out) {
      // The rest of the file stays as it was; only missing sections (and a
      // final line break before one) are appended.
      auto back = strip_blocks(*out, "c");
      if (!back || !back->starts_with(*stripped)) std::abort();
      auto again = apply_to_config(*out, b, "c");
      if (!again || *again != *out) std::abort();
    }
    if (auto local = apply_to_cpanel_local(f[0], b, "l")) {
      auto again = apply_to_cpanel_local(*local, b, "l");
      if (!again || *again != *local) std::abort();
    }
  }
  (void)client_public_names(f[0]);
  (void)defines_local_domains(f[0]);

  const sg::Secret pw = sg::Secret::copy_of(f[2]);
  if (auto file = render_passwd_client(f[1], "h.example", "AKIAEXAMPLE", pw)) {
    auto back = passwd_client_password(*file, "h.example");
    if (!back || back->view() != pw.view()) std::abort();
    auto twice = render_passwd_client(file->view(), "h.example", "AKIAEXAMPLE", pw);
    if (!twice || twice->view() != file->view()) std::abort();
  }

  if (auto m = parse_manifest(f[3])) {
    auto text = format_manifest(*m);
    if (text) {
      auto again = parse_manifest(*text);
      if (!again || again->files.size() != m->files.size()) std::abort();
      for (std::size_t i = 0; i < m->files.size(); ++i)
        if (again->files[i].path != m->files[i].path || again->files[i].mode != m->files[i].mode)
          std::abort();
    }
  }
  return 0;
}
