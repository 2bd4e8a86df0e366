// Feeds arbitrary bytes to the queue-file parser: once as they are, and once
// with both checksums recomputed so that the envelope JSON reader behind them
// is explored too. Whatever decodes must re-encode to a file that decodes to
// the same message. Seeds in corpus/fuzz_spool are valid queue files.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spool/spool.hpp"

namespace {

std::string blake(std::string_view s) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                     nullptr, 0);
  return std::string(reinterpret_cast<const char*>(h), sizeof h);
}

// Recomputes the envelope and whole-file checksums of a file with a plausible
// header; the data length is set to whatever follows.
std::string with_fixed_checksums(std::string_view in) {
  if (in.size() < 8) return std::string(in);
  std::size_t n = 0;
  for (int i = 4; i < 8; ++i) n = (n << 8) | static_cast<unsigned char>(in[i]);
  if (n > in.size() - 8) n = in.size() - 8;
  std::string out(in.substr(0, 8));
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<char>((n >> (8 * (3 - i))) & 0xff);
  out += in.substr(8, n);
  out += blake(out);
  std::string_view data = in.substr(8 + n);
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((data.size() >> (8 * i)) & 0xff));
  out += data;
  out += blake(out);
  return out;
}

void check_round_trip(const sg::spool::Message& m) {
  auto again = sg::spool::decode(sg::spool::encode(m));
  if (!again.ok()) std::abort();
  const auto &a = m.envelope, &b = again->envelope;
  if (a.id != b.id || a.received_at != b.received_at || a.identity != b.identity ||
      a.peer != b.peer || a.helo != b.helo || a.mail_from != b.mail_from ||
      a.verdict != b.verdict || a.rule != b.rule || a.held != b.held ||
      a.in_flight != b.in_flight || a.recipients.size() != b.recipients.size() ||
      m.data != again->data)
    std::abort();
  for (std::size_t i = 0; i < a.recipients.size(); ++i) {
    const auto &r = a.recipients[i], &s = b.recipients[i];
    if (r.address != s.address || r.state != s.state || r.attempts != s.attempts ||
        r.last_reply != s.last_reply || r.upstream_id != s.upstream_id ||
        r.next_attempt != s.next_attempt)
      std::abort();
  }
}

void check(std::string_view file) {
  auto m = sg::spool::decode(file);
  auto env = sg::spool::decode_envelope_only(file);
  if (m.ok()) {
    if (!env.ok() || env->id != m->envelope.id)
      std::abort();  // a full decode implies the head decodes
    check_round_trip(*m);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check(input);
  check(with_fixed_checksums(input));
  return 0;
}
