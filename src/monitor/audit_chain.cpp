#include "monitor/audit_chain.hpp"

#include <sodium.h>

#include "base/encoding.hpp"
#include "base/text.hpp"

namespace sg::monitor {
namespace {

using json = nlohmann::json;

// How many lines after a jump in seq are searched for the missing one
// (found: the lines were reordered; not found: they were deleted).
constexpr std::uint64_t kLookahead = 100000;

bool valid_hash(const json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string plural(std::uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

const std::string& zero_hash() {
  static const std::string zeros(64, '0');
  return zeros;
}

std::string line_hash(std::string_view line) {
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(line.data()),
                     line.size(), nullptr, 0);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

Result<json> parse_record(std::string_view text) {
  if (text.size() > kMaxRecordBytes)
    return make_error(Errc::invalid_input,
                      "longer than " + std::to_string(kMaxRecordBytes) + " bytes");
  if (!json_nesting_within(text, kMaxRecordDepth))
    return make_error(Errc::invalid_input,
                      "nested deeper than " + std::to_string(kMaxRecordDepth) + " levels");
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return make_error(Errc::invalid_input, "not valid JSON");
  if (!j.is_object()) return make_error(Errc::invalid_input, "not a JSON object");
  return j;
}

Result<json> parse_worker_record(std::string_view text) {
  auto j = parse_record(text);
  if (!j) return j;
  auto event = j->find("event");
  if (event == j->end() || !event->is_string() || event->get_ref<const std::string&>().empty())
    return make_error(Errc::invalid_input, "no \"event\" name");
  if (j->contains("prev") || j->contains("seq"))
    return make_error(Errc::invalid_input, "carries chain fields (\"prev\"/\"seq\")");
  return j;
}

ChainLink link_after(std::string_view line) {
  ChainLink link;
  link.hash = line_hash(line);
  if (auto j = parse_record(line)) {
    auto seq = j->find("seq");
    if (seq != j->end() && seq->is_number_unsigned()) link.seq = seq->get<std::uint64_t>();
  }
  return link;
}

std::string chain_line(json record, const ChainLink& link) {
  if (!record.is_object()) record = json{{"record", std::move(record)}};
  record["seq"] = link.seq + 1;
  record["prev"] = link.hash;
  return record.dump(-1, ' ', false, json::error_handler_t::replace);
}

void ChainVerifier::begin_file(std::size_t file) {
  file_ = file;
  line_in_file_ = 0;
}

void ChainVerifier::fail(std::size_t file, std::size_t line, std::string what) {
  if (!broken_) broken_ = ChainBreak{file, line, std::move(what)};
}

std::optional<ChainBreak> ChainVerifier::result() const {
  return broken_ ? broken_ : suspect_;
}

void ChainVerifier::feed(std::string_view line, bool complete) {
  ++line_in_file_;
  if (broken_) return;
  if (suspect_) {
    auto j = parse_record(line);
    if (j && j->contains("seq") && (*j)["seq"] == missing_seq_) {
      broken_ = *suspect_;
      broken_->what = "lines out of order: seq " + std::to_string(missing_seq_) +
                      " should be here but comes later (line " + std::to_string(line_in_file_) +
                      (file_ != suspect_->file ? " of a later file" : "") + ")";
      suspect_.reset();
    } else if (++suspect_seen_ > kLookahead) {
      broken_ = std::move(suspect_);
      suspect_.reset();
    }
    return;
  }
  if (!complete) return fail(file_, line_in_file_, "truncated: no newline after the last line");
  if (line.empty()) return fail(file_, line_in_file_, "empty line");
  auto j = parse_record(line);
  if (!j) return fail(file_, line_in_file_, "not an audit record: " + j.error().message);
  auto seq_it = j->find("seq");
  auto prev_it = j->find("prev");
  if (seq_it == j->end() || !seq_it->is_number_unsigned() || seq_it->get<std::uint64_t>() == 0 ||
      prev_it == j->end() || !valid_hash(*prev_it))
    return fail(file_, line_in_file_, "no valid \"seq\" and \"prev\" (not written by smtpguard)");
  const std::uint64_t seq = seq_it->get<std::uint64_t>();
  const auto& prev = prev_it->get_ref<const std::string&>();
  const bool file_start = line_in_file_ == 1 && started_ && file_ > 0;
  if (!started_) {
    started_ = true;
    from_start_ = prev == zero_hash();
    first_seq_ = seq;
    if (from_start_ && seq != 1)
      return fail(file_, line_in_file_,
                  "starts the log (prev is zeros) but has seq " + std::to_string(seq));
  } else {
    const std::uint64_t expected = link_.seq + 1;
    const std::string before = std::to_string(link_.seq);
    if (seq == expected && prev != link_.hash) {
      if (file_start)
        return fail(file_, 1,
                    "does not continue the previous file: \"prev\" is not the hash of its last "
                    "line (that line was changed, or the files are not consecutive)");
      return fail(file_, line_in_file_ - 1,
                  "changed: its hash does not match the \"prev\" of the next line");
    }
    if (seq != expected && prev == zero_hash() && seq == 1)
      return fail(file_, line_in_file_,
                  "starts a new log (prev is zeros) after seq " + before +
                      ": the earlier lines belong to another chain");
    if (seq > expected && prev == link_.hash)
      return fail(file_, line_in_file_,
                  "changed: seq " + std::to_string(seq) + " follows seq " + before);
    if (seq > expected) {
      const std::uint64_t gap = seq - expected;
      suspect_ = ChainBreak{file_, line_in_file_,
                            (file_start ? "gap between files: " : "") + plural(gap, "line") +
                                " missing (deleted) before this one: seq jumps from " + before +
                                " to " + std::to_string(seq)};
      missing_seq_ = expected;
      suspect_seen_ = 0;
    } else if (seq < expected) {
      return fail(file_, line_in_file_,
                  "lines out of order: seq " + std::to_string(seq) + " after seq " + before +
                      " (reordered or duplicated)");
    }
  }
  link_ = ChainLink{line_hash(line), seq};
  ++lines_;
}

}  // namespace sg::monitor
