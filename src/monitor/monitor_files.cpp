// The monitor's own files: reading the deliverer's status file, and saving
// and loading the detectors' learned state (see monitor.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/file.hpp"
#include "monitor/detect.hpp"
#include "monitor/monitor.hpp"

namespace sg::monitor {
namespace {

constexpr const char* kStateFormat = "smtpguard-monitor-state";
constexpr std::size_t kMaxStateSize = 64u << 20;  // detect caps subjects and senders

Error bad_state(const std::string& why) {
  return make_error(Errc::corrupt, "detector state: " + why);
}

}  // namespace

DelivererStatus read_deliverer_status(const std::filesystem::path& spool_dir, std::int64_t now) {
  DelivererStatus out;
  const auto path = spool_dir / kDelivererStatusFile;
  // O_NONBLOCK: a FIFO planted there must not hang a scrape.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    out.error = errno == ENOENT ? "no status file (is the deliverer running?)"
                                : errno_message("cannot open", path);
    return out;
  }
  struct stat st {};
  std::string text;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::uint64_t>(st.st_size) > kDelivererStatusMaxSize) {
    ::close(fd);
    out.error = "not a regular file of at most 256 KB";
    return out;
  }
  out.exists = true;
  out.age = std::max<std::int64_t>(0, now - static_cast<std::int64_t>(st.st_mtime));
  text.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  if (out.age > kDelivererStatusStale) {
    out.error = "stale: written " + std::to_string(out.age) + " s ago";
    return out;
  }
  auto parsed = parse_deliverer_status(text);
  if (!parsed) {
    out.error = parsed.error().message;
    return out;
  }
  out.valid = true;
  out.upstreams = std::move(*parsed);
  return out;
}

std::string encode_detector_state(const Detectors& detectors, AuditPosition position,
                                  std::int64_t now) {
  nlohmann::json j = {{"format", kStateFormat},
                      {"version", 1},
                      {"saved_at", now},
                      {"audit", {{"seq", position.seq}, {"time", position.time}}},
                      {"detectors", detectors.to_json()}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<AuditPosition> decode_detector_state(std::string_view text, Detectors& into) {
  if (text.size() > kMaxStateSize) return bad_state("larger than 64 MB");
  if (!json_nesting_within(text, 8)) return bad_state("nested too deeply");
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad_state("not a JSON object");
  auto format = j.find("format");
  if (format == j.end() || !format->is_string() || *format != kStateFormat)
    return bad_state("not a smtpguard monitor state file");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<std::int64_t>() != 1)
    return make_error(Errc::unsupported, "detector state: unsupported version (expected 1)");
  AuditPosition position;
  auto audit = j.find("audit");
  if (audit == j.end() || !audit->is_object()) return bad_state("no \"audit\" position");
  auto seq = audit->find("seq");
  auto time = audit->find("time");
  if (seq == audit->end() || !seq->is_number_unsigned() || time == audit->end() ||
      !time->is_number_integer() || time->get<std::int64_t>() < 0)
    return bad_state("bad \"audit\" position");
  position.seq = seq->get<std::uint64_t>();
  position.time = time->get<std::int64_t>();
  auto detectors = j.find("detectors");
  if (detectors == j.end()) return bad_state("no \"detectors\"");
  if (auto r = into.from_json(*detectors); !r) return r.error();
  return position;
}

Result<void> save_detector_state(const std::filesystem::path& path, const Detectors& detectors,
                                 AuditPosition position, std::int64_t now) {
  return write_file_atomic(path, encode_detector_state(detectors, position, now), 0600);
}

Result<AuditPosition> load_detector_state(const std::filesystem::path& path, Detectors& into) {
  auto text = read_file(path, kMaxStateSize);
  if (!text) return text.error();
  return decode_detector_state(*text, into);
}

}  // namespace sg::monitor
