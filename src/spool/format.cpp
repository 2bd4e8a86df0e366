// Queue file codec (format described in spool.hpp).
#include <sodium.h>
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

#include <array>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/encoding.hpp"
#include "spool/internal.hpp"
#include "spool/spool.hpp"

namespace sg::spool {
namespace {

using nlohmann::json;

// Version 2 (written): XXH3-128 checksums. Version 1 (still read): BLAKE2b-256.
// The checksums catch torn writes and media errors, not tampering (the
// receiver that writes the file could write anything), so a fast
// non-cryptographic hash will do; BLAKE2b cost a tenth of the CPU of
// relaying a 100 KB message (docs/benchmarks.md).
constexpr std::string_view kMagic = "SGQ2";
constexpr char kVersion1 = '1';
constexpr std::size_t kFixedHead = 4 + 4;  // magic, u32 n
constexpr int kMaxJsonDepth = 4;           // object > recipients array > recipient > {"b64"}

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_be(std::string_view in, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// The checksum of one format version, fed in pieces.
class Hasher {
 public:
  explicit Hasher(char version) : v1_(version == kVersion1) {
    if (v1_)
      crypto_generichash_init(&blake_, nullptr, 0, 32);
    else
      XXH3_128bits_reset(&xxh_);
  }
  static std::size_t size(char version) { return version == kVersion1 ? 32 : 16; }
  void update(std::string_view bytes) {
    if (v1_)
      crypto_generichash_update(&blake_, reinterpret_cast<const unsigned char*>(bytes.data()),
                                bytes.size());
    else
      XXH3_128bits_update(&xxh_, bytes.data(), bytes.size());
  }
  std::string final() {
    if (v1_) {
      std::array<unsigned char, 32> out{};
      crypto_generichash_final(&blake_, out.data(), out.size());
      return std::string(reinterpret_cast<const char*>(out.data()), out.size());
    }
    XXH128_canonical_t out;
    XXH128_canonicalFromHash(&out, XXH3_128bits_digest(&xxh_));
    return std::string(reinterpret_cast<const char*>(out.digest), sizeof out.digest);
  }

 private:
  bool v1_;
  crypto_generichash_state blake_{};
  XXH3_state_t xxh_{};
};

std::string hash_of(char version, std::string_view bytes) {
  Hasher h(version);
  h.update(bytes);
  return h.final();
}

bool equal_hash(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80           ? 1
                      : (c >> 5) == 0x6  ? 2
                      : (c >> 4) == 0xe  ? 3
                      : (c >> 3) == 0x1e ? 4
                                         : 0;
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

json text(std::string_view s) {
  if (valid_utf8(s)) return json(std::string(s));
  return json{{"b64", base64_encode(s)}};
}

constexpr std::array<std::string_view, 4> kStates = {"pending", "delivered", "failed", "deferred"};

// Reads members of a parsed envelope; the first problem wins.
class Reader {
 public:
  explicit Reader(const json& object) : o_(object) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void str(const char* key, std::string& out) {
    auto it = o_.find(key);
    if (it == o_.end()) return;
    if (it->is_string()) {
      out = it->get<std::string>();
    } else if (it->is_object() && it->size() == 1 && it->contains("b64") &&
               (*it)["b64"].is_string()) {
      auto raw = base64_decode((*it)["b64"].get<std::string>());
      if (!raw) return fail(key);
      out = std::move(*raw);
    } else {
      fail(key);
    }
  }
  template <class Int>
  void integer(const char* key, Int& out) {
    auto it = o_.find(key);
    if (it == o_.end()) return;
    if (it->is_number_unsigned()) {
      auto v = it->get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) return fail(key);
      out = static_cast<Int>(v);
    } else if (it->is_number_integer()) {
      auto v = it->get<std::int64_t>();
      if (v < std::numeric_limits<Int>::min() || v > std::numeric_limits<Int>::max())
        return fail(key);
      out = static_cast<Int>(v);
    } else {
      fail(key);
    }
  }
  void boolean(const char* key, bool& out) {
    auto it = o_.find(key);
    if (it == o_.end()) return;
    if (!it->is_boolean()) return fail(key);
    out = it->get<bool>();
  }
  void state(const char* key, RecipientState& out) {
    std::string s;
    str(key, s);
    if (!ok() || !o_.contains(key)) return;
    for (std::size_t i = 0; i < kStates.size(); ++i)
      if (s == kStates[i]) {
        out = static_cast<RecipientState>(i);
        return;
      }
    fail(key);
  }
  void fail(const char* key) {
    if (error_.empty()) error_ = std::string("bad envelope member \"") + key + "\"";
  }

 private:
  const json& o_;
  std::string error_;
};

Error corrupt(std::string what) {
  return make_error(Errc::corrupt, "queue file " + what);
}

Result<Envelope> parse_envelope(std::string_view text_bytes) {
  bool too_deep = false;
  json::parser_callback_t limit = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) too_deep = true;
    return !too_deep;
  };
  json j = json::parse(text_bytes.begin(), text_bytes.end(), limit, /*allow_exceptions=*/false);
  if (too_deep) return corrupt("envelope nested too deeply");
  if (j.is_discarded() || !j.is_object()) return corrupt("envelope is not a JSON object");
  Envelope env;
  Reader r(j);
  r.str("id", env.id);
  r.integer("received_at", env.received_at);
  r.str("identity", env.identity);
  r.str("peer", env.peer);
  r.str("helo", env.helo);
  r.str("mail_from", env.mail_from);
  r.str("verdict", env.verdict);
  r.str("rule", env.rule);
  r.str("submitter", env.submitter);
  r.boolean("held", env.held);
  r.boolean("in_flight", env.in_flight);
  if (!r.ok()) return corrupt(r.error());
  if (!is_valid_id(env.id)) return corrupt("has no valid id");
  if (auto it = j.find("recipients"); it != j.end()) {
    if (!it->is_array()) return corrupt("bad envelope member \"recipients\"");
    env.recipients.reserve(it->size());
    for (const json& item : *it) {
      if (!item.is_object()) return corrupt("bad recipient");
      Recipient rcpt;
      Reader rr(item);
      rr.str("address", rcpt.address);
      rr.state("state", rcpt.state);
      rr.integer("attempts", rcpt.attempts);
      rr.str("last_reply", rcpt.last_reply);
      rr.str("upstream_id", rcpt.upstream_id);
      rr.integer("next_attempt", rcpt.next_attempt);
      if (!rr.ok()) return corrupt("recipient: " + rr.error());
      env.recipients.push_back(std::move(rcpt));
    }
  }
  return env;
}

// Checks magic and version and returns the envelope length.
Result<std::size_t> read_fixed_head(std::string_view file) {
  if (file.size() < kFixedHead) return corrupt("truncated (no header)");
  if (file.substr(0, 3) != kMagic.substr(0, 3)) return corrupt("has a bad magic number");
  if (file[3] != kMagic[3] && file[3] != kVersion1)
    return make_error(Errc::unsupported, "queue file format version not supported by this build");
  std::uint64_t n = get_be(file.substr(4), 4);
  if (n > kMaxEnvelopeBytes) return corrupt("envelope too large");
  return static_cast<std::size_t>(n);
}

}  // namespace

std::string_view to_string(RecipientState state) {
  return kStates[static_cast<std::size_t>(state)];
}

EncodedParts encode_parts(const Message& message) {
  const Envelope& e = message.envelope;
  json rcpts = json::array();
  for (const Recipient& r : e.recipients) {
    rcpts.push_back({{"address", text(r.address)},
                     {"state", std::string(to_string(r.state))},
                     {"attempts", r.attempts},
                     {"last_reply", text(r.last_reply)},
                     {"upstream_id", text(r.upstream_id)},
                     {"next_attempt", r.next_attempt}});
  }
  json j = {{"id", text(e.id)},
            {"received_at", e.received_at},
            {"identity", text(e.identity)},
            {"peer", text(e.peer)},
            {"helo", text(e.helo)},
            {"mail_from", text(e.mail_from)},
            {"recipients", std::move(rcpts)},
            {"verdict", text(e.verdict)},
            {"rule", text(e.rule)},
            {"submitter", text(e.submitter)},
            {"held", e.held},
            {"in_flight", e.in_flight}};
  std::string env_json = j.dump();  // all strings are valid UTF-8 here: cannot throw

  const char version = kMagic[3];
  EncodedParts parts;
  parts.head.reserve(kFixedHead + env_json.size() + 2 * Hasher::size(version) + 8);
  parts.head += kMagic;
  put_be(parts.head, env_json.size(), 4);
  parts.head += env_json;
  parts.head += hash_of(version, parts.head);
  put_be(parts.head, message.data.size(), 8);
  parts.data = message.data;
  Hasher whole(version);
  whole.update(parts.head);
  whole.update(parts.data);
  parts.tail = whole.final();
  return parts;
}

std::string encode(const Message& message) {
  EncodedParts parts = encode_parts(message);
  std::string out;
  out.reserve(parts.size());
  out += parts.head;
  out += parts.data;
  out += parts.tail;
  return out;
}

Result<std::size_t> envelope_prefix_size(std::string_view first8) {
  auto n = read_fixed_head(first8);
  if (!n) return n.error();
  return kFixedHead + *n + Hasher::size(first8[3]);
}

Result<Envelope> decode_envelope_only(std::string_view head) {
  auto prefix = envelope_prefix_size(head);
  if (!prefix) return prefix.error();
  if (head.size() < *prefix) return corrupt("truncated (envelope)");
  const char version = head[3];
  const std::size_t hash_bytes = Hasher::size(version);
  std::string_view covered = head.substr(0, *prefix - hash_bytes);
  if (!equal_hash(hash_of(version, covered), head.substr(covered.size(), hash_bytes)))
    return corrupt("envelope checksum mismatch");
  return parse_envelope(covered.substr(kFixedHead));
}

Result<Message> decode(std::string_view file) {
  auto prefix = envelope_prefix_size(file);
  if (!prefix) return prefix.error();
  const char version = file[3];
  const std::size_t hash_bytes = Hasher::size(version);
  if (file.size() < *prefix + 8 + hash_bytes) return corrupt("truncated");
  std::uint64_t d = get_be(file.substr(*prefix), 8);
  if (d != file.size() - *prefix - 8 - hash_bytes) return corrupt("has the wrong length");
  std::string_view covered = file.substr(0, file.size() - hash_bytes);
  if (!equal_hash(hash_of(version, covered), file.substr(covered.size())))
    return corrupt("checksum mismatch");
  auto env = decode_envelope_only(file);
  if (!env) return env.error();
  return Message{std::move(*env), std::string(file.substr(*prefix + 8, d))};
}

}  // namespace sg::spool
