// Fuzzes scan::Scanner::scan over arbitrary content and paths, with a few of
// our own digests loaded. Input: path, NUL, content (no NUL: all content,
// path "f"). Invariants: never crashes; findings are in offset order, inside
// the buffer and do not overlap; line/column match the offset; redaction shows
// at most 4 characters; no finding field repeats the secret it reports.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "scan/scan.hpp"

namespace {

const sg::scan::Scanner& scanner() {
  static sg::scan::Scanner s = [] {
    sg::scan::OwnSecrets own;
    own.key.fill(7);
    for (const char* pw :
         {"BFyFkIwHu1XcmjVtt2W2HkDWwB5FQx0cRnD1tyw+7/pl", "p@ss:w0rd=odd!", "url-safe.pw_1~"}) {
      auto d = sg::scan::digest_variants(sg::Secret::copy_of(pw), "AKIAFUZZUSER", "fuzz", own.key);
      own.digests.insert(own.digests.end(), d.begin(), d.end());
    }
    auto r = sg::scan::Scanner::create(std::move(own));
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      std::abort();
    }
    return std::move(r.value());
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view path = nul == std::string_view::npos ? "f" : input.substr(0, nul);
  const std::string_view content = nul == std::string_view::npos ? input : input.substr(nul + 1);
  static auto scratch = scanner().make_scratch();
  if (!scratch) std::abort();
  const auto findings = scanner().scan(content, path, *scratch);
  std::uint64_t prev_end = 0;
  for (const auto& f : findings) {
    if (f.length == 0 || f.offset + f.length > content.size() || f.offset < prev_end) std::abort();
    prev_end = f.offset + f.length;
    const std::string_view before = content.substr(0, f.offset);
    const auto lines = static_cast<std::uint64_t>(std::count(before.begin(), before.end(), '\n'));
    const std::size_t nl = before.rfind('\n');
    const std::uint64_t col = nl == std::string_view::npos ? f.offset + 1 : f.offset - nl;
    if (f.line != lines + 1 || f.column != col) std::abort();
    if (f.redacted.size() > 7 || f.fingerprint.size() != 64 || !sg::scan::find_rule(f.rule_id))
      std::abort();
    const std::string_view secret = content.substr(f.offset, f.length);
    if (secret.size() >= 8)
      for (const std::string* s : {&f.username, &f.host, &f.message, &f.redacted})
        if (s->find(secret) != std::string::npos) std::abort();
  }
  return 0;
}
