// Fuzzes the import parsers (Exim passwd.client and config, Postfix
// sasl_passwd, msmtprc, .env, PHP) with arbitrary text. The first byte picks
// the parser. They must never throw or crash; every finding must point
// inside the text, carry a non-placeholder password when importable, and
// the scrub edits of all findings must apply (no overlaps). redact() must
// never show more than four characters of the secret.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "integrate/import.hpp"

using namespace sg::integrate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr SourceKind kKinds[] = {SourceKind::exim_passwd_client,
                                   SourceKind::exim_config,
                                   SourceKind::postfix_sasl_passwd,
                                   SourceKind::msmtprc,
                                   SourceKind::dotenv,
                                   SourceKind::php};
  const SourceKind kind = kKinds[data[0] % 6];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    ParseResult r = parse_source(kind, text);
    std::vector<Edit> edits;
    for (const auto& f : r.findings) {
      if (f.begin > f.end || f.end > text.size() || f.line == 0) std::abort();
      if (f.importable && is_placeholder(f.password.view())) std::abort();
      std::string shown = redact(f.password.view());
      if (shown.size() > 4 + 3) std::abort();  // two + "…" (3 bytes) + two
      edits.push_back({f.begin, f.end, scrub_replacement(f, "ses")});
    }
    auto out = apply_edits(text, edits);
    if (!out) std::abort();
    (void)parse_source(kind, *out);
    (void)detect_kind("fuzz", text);
  } catch (const std::bad_alloc&) {
  } catch (...) {
    std::abort();
  }
  return 0;
}
