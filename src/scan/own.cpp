// Our own credentials by keyed digest. digest_variants() runs where the
// plaintext is (the vault child); OwnMatcher finds copies in content knowing
// only the digests: it cuts the content into tokens of the characters an
// encoded form can contain and hashes a token only when its length is one of
// the digests' lengths, so almost nothing is hashed.
#include "scan/own.hpp"

#include <emmintrin.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "base/encoding.hpp"

namespace sg::scan {
namespace {

using detail::TokenClass;

bool in_class(TokenClass c, unsigned char ch) {
  switch (c) {
    case TokenClass::base64:
      return detail::is_b64(ch);
    case TokenClass::url:
      return detail::is_alnum(ch) || ch == '%' || ch == '.' || ch == '_' || ch == '~' || ch == '-';
    case TokenClass::text:
      return ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\'' && ch != '`';
  }
  return false;
}

bool url_unreserved(unsigned char c) {
  return detail::is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string url_encode(std::string_view s, bool upper) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (url_unreserved(c)) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string plain_form(std::string_view s) {
  std::string_view body = s;
  while (!body.empty() && body.back() == '=' && s.size() - body.size() < 2) body.remove_suffix(1);
  if (std::all_of(body.begin(), body.end(), [](char c) { return detail::is_b64(c); }))
    return "plain";
  if (std::all_of(s.begin(), s.end(), [](char c) { return in_class(TokenClass::url, c); }))
    return "plain-url";
  return "plain-text";
}

// End of the run of `c` bytes starting at e, 16 bytes at a time (SSE2, which
// every Hyperscan platform has): runs in code and base64 blobs are long.
__m128i in_range(__m128i v, char lo, char hi) {
  const __m128i t = _mm_add_epi8(v, _mm_set1_epi8(static_cast<char>(-128 - lo)));
  return _mm_cmplt_epi8(t, _mm_set1_epi8(static_cast<char>(-128 + (hi - lo + 1))));
}
__m128i eq(__m128i v, char c) {
  return _mm_cmpeq_epi8(v, _mm_set1_epi8(c));
}

std::size_t run_end(TokenClass c, const unsigned char* p, std::size_t e, std::size_t n) {
  while (e + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + e));
    __m128i m;
    if (c == TokenClass::text) {  // printable, not a quote
      m = _mm_andnot_si128(_mm_or_si128(eq(v, '"'), _mm_or_si128(eq(v, '\''), eq(v, '`'))),
                           in_range(v, '!', '~'));
    } else {
      m = _mm_or_si128(in_range(v, 'A', 'Z'),
                       _mm_or_si128(in_range(v, 'a', 'z'), in_range(v, '0', '9')));
      if (c == TokenClass::base64)
        m = _mm_or_si128(m, _mm_or_si128(eq(v, '+'), eq(v, '/')));
      else
        m = _mm_or_si128(
            m, _mm_or_si128(_mm_or_si128(eq(v, '%'), eq(v, '.')),
                            _mm_or_si128(_mm_or_si128(eq(v, '_'), eq(v, '~')), eq(v, '-'))));
    }
    const unsigned stop = ~static_cast<unsigned>(_mm_movemask_epi8(m)) & 0xffffu;
    if (stop) return e + static_cast<std::size_t>(__builtin_ctz(stop));
    e += 16;
  }
  while (e < n && in_class(c, p[e])) ++e;
  return e;
}

}  // namespace

std::vector<OwnDigest> digest_variants(const Secret& secret, std::string_view username,
                                       std::string_view label,
                                       const std::array<unsigned char, 32>& key) {
  ensure_sodium();
  std::vector<OwnDigest> out;
  if (secret.empty()) return out;
  auto add = [&](std::string form, std::string& text) {
    for (const OwnDigest& d : out)
      if (d.length == text.size() && detail::token_class(d.form) == detail::token_class(form)) {
        OwnDigest probe;
        crypto_generichash(probe.digest.data(), 32,
                           reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                           key.data(), key.size());
        if (probe.digest == d.digest) {
          wipe(text.data(), text.size());
          return;  // the same bytes under another name
        }
      }
    OwnDigest d;
    d.label = std::string(label);
    d.form = std::move(form);
    d.length = text.size();
    crypto_generichash(d.digest.data(), 32, reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), key.data(), key.size());
    out.push_back(std::move(d));
    wipe(text.data(), text.size());
  };
  auto add_base64 = [&](const std::string& name, std::string& bytes) {
    std::string b64 = base64_encode(bytes);
    std::string bare = b64;
    while (!bare.empty() && bare.back() == '=') bare.pop_back();
    add(name, b64);
    add(name + "-unpadded", bare);
    wipe(bytes.data(), bytes.size());
  };
  const std::string_view pw = secret.view();
  std::string plain(pw);
  add(plain_form(pw), plain);
  std::string copy(pw);
  add_base64("base64", copy);
  std::string upper = url_encode(pw, true), lower = url_encode(pw, false);
  add("url", upper);
  add("url-lowercase", lower);
  if (!username.empty()) {
    std::string auth;
    auth += '\0';
    auth += username;
    auth += '\0';
    auth += pw;
    add_base64("auth-plain", auth);
    std::string basic = std::string(username) + ":" + std::string(pw);
    add_base64("user-password-base64", basic);
  }
  return out;
}

}  // namespace sg::scan

namespace sg::scan::detail {

TokenClass token_class(std::string_view form) {
  if (form == "plain" || form.starts_with("base64") || form.starts_with("auth-plain") ||
      form.starts_with("user-password-base64"))
    return TokenClass::base64;
  if (form == "plain-url" || form.starts_with("url")) return TokenClass::url;
  return TokenClass::text;
}

OwnMatcher::OwnMatcher(OwnSecrets own) : own_(std::move(own)) {
  for (std::size_t i = 0; i < own_.digests.size(); ++i) {
    const OwnDigest& d = own_.digests[i];
    if (d.length == 0 || d.length > kMaxToken) continue;
    Index& ix = index_[static_cast<int>(token_class(d.form))];
    if (ix.by_length.size() <= d.length) ix.by_length.resize(d.length + 1);
    ix.by_length[d.length].push_back(i);
    ix.min_length = std::min(ix.min_length, d.length);
  }
  for (int c = 0; c < 3; ++c)
    for (int ch = 0; ch < 256; ++ch)
      index_[c].member[ch] = in_class(static_cast<TokenClass>(c), static_cast<unsigned char>(ch));
}

void OwnMatcher::check(const Ctx& ctx, const Index& ix, std::size_t b, std::size_t len) const {
  if (len == 0 || len < ix.min_length || len >= ix.by_length.size() || ix.by_length[len].empty())
    return;
  std::array<unsigned char, 32> h{};
  crypto_generichash(h.data(), h.size(),
                     reinterpret_cast<const unsigned char*>(ctx.text.data()) + b, len,
                     own_.key.data(), own_.key.size());
  for (std::size_t i : ix.by_length[len]) {
    const OwnDigest& d = own_.digests[i];
    if (sodium_memcmp(h.data(), d.digest.data(), h.size()) != 0) continue;
    Candidate c{"own-credential", Severity::critical, b, len};
    c.message = "ACTIVE credential exposed: " + d.label;
    ctx.add(std::move(c));
    return;
  }
}

void OwnMatcher::tokens(const Ctx& ctx, const Index& ix, TokenClass cls) const {
  const auto* p = reinterpret_cast<const unsigned char*>(ctx.text.data());
  const std::size_t n = ctx.text.size();
  const std::size_t m = ix.min_length;
  // Only tokens of at least m bytes matter, so look at every m-th byte first:
  // a non-member there rules out a long enough token over the bytes before
  // it. Invariant: i is 0 or follows a non-member byte.
  std::size_t i = 0;
  while (i + m <= n) {
    const std::size_t probe = i + m - 1;
    if (!ix.member[p[probe]]) {
      i = probe + 1;
      continue;
    }
    std::size_t b = probe;
    while (b > i && ix.member[p[b - 1]]) --b;
    std::size_t e = probe + 1;
    e = run_end(cls, p, e, n);
    i = e + 1;
    if (e - b < m) continue;
    const std::size_t len = e - b;
    check(ctx, ix, b, len);
    if (cls == TokenClass::base64) {  // padded forms: the token with its '='s
      std::size_t pad = 0;
      while (pad < 2 && e + pad < n && p[e + pad] == '=') ++pad;
      if (pad) check(ctx, ix, b, len + pad);
    } else if (cls == TokenClass::text) {
      // KEY=value, user:pass, a trailing ; , or ): a few sub-tokens.
      const std::size_t trail = (p[e - 1] == ';' || p[e - 1] == ',' || p[e - 1] == ')') ? 1 : 0;
      if (trail) check(ctx, ix, b, len - 1);
      int splits = 0;
      for (std::size_t k = b; k + m < e && k < b + 64 && splits < 4; ++k) {  // short keys
        if (p[k] != '=' && p[k] != ':') continue;
        ++splits;
        check(ctx, ix, k + 1, e - k - 1);
        if (trail) check(ctx, ix, k + 1, e - k - 2);
      }
    }
  }
}

void OwnMatcher::scan(const Ctx& ctx) const {
  for (int c = 0; c < 3; ++c)
    if (!index_[c].by_length.empty()) tokens(ctx, index_[c], static_cast<TokenClass>(c));
}

}  // namespace sg::scan::detail
