// monitor/exim_log: reads Exim 4.9x main log lines (Debian and cPanel
// log_selector variants) for mail that never passes through the relay.
// parse_line() splits one line into views (no allocation, no regex, memchr);
// EximLogReader takes the log as chunks of bytes, joins lines split across
// chunks, ties deliveries to the arrival's identities through the message id
// and keeps per-identity counts for the summary. Both are I/O-free.
// Input: untrusted text (anything can end up in a log line: sender addresses,
// HELO names, subjects). Nothing here throws on input; a line that is not
// understood is counted and skipped. Memory is bounded (caps below).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "monitor/hash_index.hpp"

namespace sg::monitor::exim {

enum class Kind : std::uint8_t {
  other,         // a line we do not use (daemon start, rejects, ...)
  arrival,       // ID <= sender ...
  delivery,      // ID => / -> / *> recipient ...
  failure,       // ID ** recipient ...        (a bounce)
  deferral,      // ID == recipient ...
  completed,     // ID Completed
  auth_failure,  // NAME authenticator failed for HOST: ... (set_id=USER)
  cwd,           // cwd=DIR N args: ...      (log_selector +arguments)
};

// One parsed line. Views point into the line passed to parse_line().
struct Line {
  Kind kind = Kind::other;
  std::int64_t time = 0;            // seconds since the epoch; a zone in the log is applied,
                                    // otherwise the wall-clock time is taken as UTC
  std::string_view pid;             // "[pid]" when log_selector +pid
  std::string_view id;              // Exim message id
  std::string_view address;         // sender (<=), recipient (=> ** ==), set_id (auth failure)
  std::string_view auth;            // A=authenticator:USER -> USER
  std::string_view authenticator;   // A=AUTHENTICATOR:user, or the failing authenticator
  std::string_view local_user;      // U=
  std::string_view protocol;        // P=
  std::string_view host_ip;         // [ip] of H= (arrivals), of the client (auth failures)
  std::string_view bounce_of;       // R= on an arrival: Exim's own bounce of that message
  std::string_view message_id;      // id= (header Message-ID)
  std::string_view cwd;             // cwd= lines
  std::string_view args;            // cwd= lines: what follows "args: "
  std::uint64_t size = 0;           // S=
  std::uint32_t recipients = 0;     // words after " for " on arrivals (+received_recipients)
  std::string_view recipient_list;  // those words
};

// Parses one line (without its newline). False when it does not start with
// an Exim timestamp; `out` is then unspecified.
bool parse_line(std::string_view line, Line& out);

// Counts for one identity ("auth:USER", "user:NAME", "cwd:DIR", "ip:ADDR").
struct Counts {
  std::uint64_t messages = 0, recipients = 0, deliveries = 0, deferrals = 0, bounces = 0,
                auth_failures = 0, bytes = 0;
  std::int64_t first = 0, last = 0;  // log time of the first and last line counted
};

// What a line means for one identity, handed to the caller as it is read.
struct Observation {
  enum class What : std::uint8_t { message, delivery, deferral, bounce, auth_failure };
  What what;
  std::string_view identity;         // "auth:box@example.com", valid until the callback returns
  std::uint64_t identity_hash = 0;   // name_hash(identity) (monitor/hash_index.hpp)
  std::uint32_t identity_index = 0;  // the identity's place in identities(), never reused
  std::string_view sender;           // message: envelope sender; auth_failure: user tried
  std::string_view source;           // client IP when known
  // message: the recipients the arrival lists (space-separated, may be
  // empty); delivery, deferral, bounce: the one recipient.
  std::string_view recipient_list;
  std::uint32_t recipients = 0;  // message: recipient count when the log has it
  std::int64_t time = 0;
};

class EximLogReader {
 public:
  using Sink = std::function<void(const Observation&)>;
  explicit EximLogReader(Sink sink = {}) : sink_(std::move(sink)) {}

  // Feeds the next bytes of the log; a line split across calls is joined.
  void feed(std::string_view bytes);
  // End of input: the last line, if it had no newline.
  void finish();
  // Forgets a partial line (the file was truncated or replaced).
  void reset_partial() { partial_.clear(); }

  struct Identity {
    std::string name;
    std::uint64_t hash = 0;  // name_hash(name), next to the name: both are read to find it
    Counts counts;
  };
  const std::vector<Identity>& identities() const { return identities_; }
  std::uint64_t lines() const { return lines_; }
  std::uint64_t unparsed() const { return unparsed_; }
  // Open messages forgotten because kMaxOpenMessages was reached.
  std::uint64_t dropped() const { return dropped_; }
  std::int64_t last_time() const { return last_time_; }

  // Caps that keep memory bounded on hostile or endless logs.
  static constexpr std::size_t kMaxLine = 64 * 1024;        // longer lines are cut
  static constexpr std::size_t kMaxOpenMessages = 1 << 20;  // id -> identities
  static constexpr std::size_t kMaxIdentities = 1 << 20;    // then new ones are pooled

 private:
  static constexpr std::uint32_t kNone = 0xffffffffu;
  // Up to three identities per message: who (auth or local user), cwd, source.
  struct Owners {
    std::array<std::uint32_t, 3> who{kNone, kNone, kNone};
    bool recipients_known = false;  // the arrival listed them ("for ...")
  };
  struct IdKey {
    std::array<char, 24> b{};  // b[0] == 0: no key (ids start with a letter or digit)
    bool operator==(const IdKey&) const = default;
  };
  // Open messages: id -> owners, open addressing (linear probing, at most
  // half full), so an arrival allocates nothing once the table has grown.
  class OpenMessages {
   public:
    std::size_t size() const { return size_; }
    Owners* find(const IdKey& k);
    void put(const IdKey& k, const Owners& o);
    void erase(const IdKey& k);
    void clear();

   private:
    struct Slot {
      IdKey key;
      Owners owners;
    };
    std::size_t home(const IdKey& k) const;
    std::size_t slot_of(const IdKey& k) const;  // k's slot or the free one for it
    std::vector<Slot> slots_;                   // size a power of two, or empty
    std::size_t size_ = 0;
  };

  void line(std::string_view text);
  void arrival(const Line& l);
  void outcome(const Line& l);
  void auth_failure(const Line& l);
  std::uint32_t identity(std::string_view prefix, std::string_view name);
  void count(std::uint32_t who, Observation::What what, const Line& l, std::string_view sender,
             std::uint32_t recipients, std::string_view list);
  static IdKey key_of(std::string_view id);
  void forget_cwd(std::size_t i);

  Sink sink_;
  std::string partial_;
  std::string scratch_;  // identity names too long for the stack are built here
  Line line_;            // the line being read
  std::vector<Identity> identities_;
  detail::HashIndex by_name_;  // name_hash(name) -> index in identities_
  OpenMessages open_;
  // The last cwd= line of a submitting process, by pid ("" without +pid).
  struct PendingCwd {
    std::string pid, dir;
    std::int64_t time = 0;
  };
  std::vector<PendingCwd> cwd_;  // the first cwd_live_ are live, oldest first
  std::size_t cwd_live_ = 0;
  std::uint64_t lines_ = 0, unparsed_ = 0, dropped_ = 0;
  std::int64_t last_time_ = 0;
};

}  // namespace sg::monitor::exim
