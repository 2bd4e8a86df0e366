// Scanner: one Hyperscan block-mode pass per buffer over every trigger, then
// the extractors around each hit, the own-credential token pass, and
// finalize() (merge, line/column, redaction, fingerprints).
#include <hs/hs.h>

#include <algorithm>
#include <climits>

#include "scan/internal.hpp"
#include "scan/own.hpp"

namespace sg::scan {
namespace {

struct Hit {
  unsigned id;
  std::size_t end;
};

constexpr std::size_t kMaxHits = 1u << 20;            // a pathological file stops here
constexpr std::size_t kChunk = std::size_t{1} << 30;  // hs_scan takes an unsigned length
constexpr std::size_t kOverlap = 1u << 16;            // longer than any trigger match

struct HitSink {
  std::vector<Hit>* hits;
  std::size_t base;
  std::size_t seen_until;  // hits ending here or before came from the previous chunk
};

int on_match(unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx) {
  auto* sink = static_cast<HitSink*>(ctx);
  const std::size_t end = sink->base + static_cast<std::size_t>(to);
  if (end <= sink->seen_until) return 0;
  sink->hits->push_back({id, end});
  return sink->hits->size() >= kMaxHits ? 1 : 0;
}

// A literal trigger as a Hyperscan pattern: every non-alphanumeric byte as \xHH.
std::string escape(std::string_view literal) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (char ch : literal) {
    const auto c = static_cast<unsigned char>(ch);
    if (detail::is_alnum(c)) {
      out += ch;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

namespace detail {
std::vector<Finding> finalize(std::vector<Candidate>& cands, std::string_view content,
                              std::string_view path);
}

struct Scanner::Impl {
  hs_database_t* db = nullptr;
  detail::OwnMatcher own;
  explicit Impl(OwnSecrets o) : own(std::move(o)) {}
  ~Impl() { hs_free_database(db); }
};

struct Scanner::Scratch::Impl {
  hs_scratch_t* scratch = nullptr;
  std::vector<Hit> hits;
  ~Impl() { hs_free_scratch(scratch); }
};

Scanner::Scanner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Scanner::Scanner(Scanner&&) noexcept = default;
Scanner& Scanner::operator=(Scanner&&) noexcept = default;
Scanner::~Scanner() = default;
Scanner::Scratch::Scratch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Scanner::Scratch::Scratch(Scratch&&) noexcept = default;
Scanner::Scratch& Scanner::Scratch::operator=(Scratch&&) noexcept = default;
Scanner::Scratch::~Scratch() = default;

Result<Scanner> Scanner::create(OwnSecrets own) {
  if (hs_valid_platform() != HS_SUCCESS)
    return make_error(Errc::unsupported, "Hyperscan needs a CPU with SSSE3");
  const auto& trig = detail::triggers();
  std::vector<std::string> texts;
  std::vector<const char*> patterns;
  std::vector<unsigned> flags, ids;
  for (const detail::Trigger& t : trig) texts.push_back(t.regex ? t.pattern : escape(t.pattern));
  for (unsigned i = 0; i < trig.size(); ++i) {
    patterns.push_back(texts[i].c_str());
    flags.push_back(trig[i].flags);
    ids.push_back(i);
  }
  auto impl = std::make_unique<Impl>(std::move(own));
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(patterns.data(), flags.data(), ids.data(),
                       static_cast<unsigned>(patterns.size()), HS_MODE_BLOCK, nullptr, &impl->db,
                       &err) != HS_SUCCESS) {
    std::string msg = "cannot compile scan rules: ";
    msg += err && err->message ? err->message : "unknown error";
    hs_free_compile_error(err);
    return make_error(Errc::unsupported, msg);
  }
  return Scanner(std::move(impl));
}

Result<Scanner::Scratch> Scanner::make_scratch() const {
  auto s = std::make_unique<Scratch::Impl>();
  if (!impl_ || hs_alloc_scratch(impl_->db, &s->scratch) != HS_SUCCESS)
    return make_error(Errc::io, "cannot allocate Hyperscan scratch space");
  return Scratch(std::move(s));
}

std::vector<Finding> Scanner::scan(std::string_view content, std::string_view path,
                                   Scratch& scratch) const {
  try {
    if (!impl_ || !scratch.impl_) return {};
    auto& hits = scratch.impl_->hits;
    hits.clear();
    HitSink sink{&hits, 0, 0};
    for (std::size_t base = 0; base < content.size() || base == 0;) {
      const std::size_t len = std::min(kChunk, content.size() - base);
      sink.base = base;
      const hs_error_t rc = hs_scan(impl_->db, content.data() + base, static_cast<unsigned>(len), 0,
                                    scratch.impl_->scratch, on_match, &sink);
      if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) break;
      if (rc == HS_SCAN_TERMINATED || base + len >= content.size()) break;
      sink.seen_until = base + len;
      base += len - kOverlap;
    }
    std::vector<detail::Candidate> cands;
    const detail::Ctx ctx{content, path, detail::classify_path(path), &cands};
    const auto& trig = detail::triggers();
    for (const Hit& h : hits) {
      const detail::Trigger& t = trig[h.id];
      const std::size_t start = t.length && h.end >= t.length ? h.end - t.length : h.end;
      switch (t.kind) {
        case detail::Kind::aws_key_id:
        case detail::Kind::ses_v4:
        case detail::Kind::ses_v2:
        case detail::Kind::aws_secret_key:
          detail::extract_keys(ctx, t.kind, h.end);
          break;
        case detail::Kind::msmtp:
        case detail::Kind::postfix:
        case detail::Kind::mail_host:
        case detail::Kind::exim_send:
          detail::extract_mta(ctx, t.kind, h.end);
          break;
        case detail::Kind::sql_option:
          detail::extract_sql(ctx, start, h.end);
          break;
        default:
          detail::extract_app(ctx, t.kind, start, h.end);
      }
    }
    detail::check_ses_at_start(ctx);
    detail::extract_named_files(ctx);
    if (!impl_->own.empty()) impl_->own.scan(ctx);
    return detail::finalize(cands, content, path);
  } catch (...) {  // only allocation failure can get here
    return {};
  }
}

}  // namespace sg::scan
