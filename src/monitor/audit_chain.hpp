// The audit log's hash chain, without I/O (also built for the fuzzers).
// Every line is one JSON object carrying "seq" (1, 2, 3 ... continuing across
// rotated files) and "prev": hex BLAKE2b-256 of the previous line's bytes
// without its newline; the first line of a brand-new log has 64 zeros.
// Input: records from our own workers (the receiver's are untrusted) and
// audit files of unknown origin; both only through parse_record, which bounds
// size and nesting. Errors: Result for records; ChainVerifier keeps the first
// break it finds. Nothing here throws on bad input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace sg::monitor {

inline constexpr std::size_t kMaxRecordBytes = 64 * 1024;  // one line, without newline
inline constexpr int kMaxRecordDepth = 16;                 // JSON nesting

// 64 '0': the "prev" of the first line of a brand-new log.
const std::string& zero_hash();
// Hex BLAKE2b-256 of `line` (its bytes, no newline).
std::string line_hash(std::string_view line);

// A JSON object of at most kMaxRecordBytes and kMaxRecordDepth levels.
Result<nlohmann::json> parse_record(std::string_view text);
// A record from a worker: parse_record, plus a non-empty string "event" and
// no chain fields (the writer alone numbers and links lines).
Result<nlohmann::json> parse_worker_record(std::string_view text);

// The last line written so far: what the next line links to.
struct ChainLink {
  std::string hash = zero_hash();
  std::uint64_t seq = 0;
};
// The link a line leaves behind (seq read from it; 0 if it has none).
ChainLink link_after(std::string_view line);
// `record` with "seq" = link.seq + 1 and "prev" = link.hash, serialised on one
// line (no newline; invalid UTF-8 replaced, never thrown).
std::string chain_line(nlohmann::json record, const ChainLink& link);

// Where a chain is first broken; `file` indexes the caller's list, `line`
// counts from 1 within that file.
struct ChainBreak {
  std::size_t file = 0;
  std::size_t line = 0;
  std::string what;
};

// Checks lines in order, across files (oldest first). Lines are fed without
// their newline; a final line with no newline is fed with complete = false.
class ChainVerifier {
 public:
  void begin_file(std::size_t file);
  void feed(std::string_view line, bool complete = true);
  bool ok() const { return !broken_ && !suspect_; }
  // The first break (after finish(): also one still being classified).
  std::optional<ChainBreak> result() const;
  std::uint64_t lines() const { return lines_; }
  std::uint64_t first_seq() const { return first_seq_; }
  std::uint64_t last_seq() const { return link_.seq; }
  // True when the first line is the start of a log (prev all zeros); false
  // when older lines were rotated away before the first file given.
  bool from_start() const { return from_start_; }

 private:
  void fail(std::size_t file, std::size_t line, std::string what);

  ChainLink link_;
  bool started_ = false;
  bool from_start_ = false;
  std::uint64_t lines_ = 0, first_seq_ = 0;
  std::size_t file_ = 0, line_in_file_ = 0;
  std::optional<ChainBreak> broken_;
  // A jump forward in seq: lines were deleted, unless the missing seq turns
  // up later (then they were reordered). Looked for in the next lines.
  std::optional<ChainBreak> suspect_;
  std::uint64_t missing_seq_ = 0, suspect_seen_ = 0;
};

}  // namespace sg::monitor
