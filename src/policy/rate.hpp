// Per-identity message and recipient counts over sliding minute, hour and
// day windows, with time passed in (unix seconds).
//
// Storage: one-second buckets for the last 60 s (the minute window is exact)
// and one-minute buckets for the last 24 h. The hour and day windows sum
// whole minute buckets back to the one holding now-3599 (now-86399), so they
// never under-count and over-count by at most the events of the <= 59 s
// before the window: a limit can bite up to a minute early, never late.
// Events stamped in the future (clock stepped back) keep counting until the
// clock passes them.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace sg::policy {

struct WindowCounts {
  std::uint64_t minute = 0, hour = 0, day = 0;
};

struct Counts {
  WindowCounts messages;
  WindowCounts recipients;
};

class RateCounters {
 public:
  // One accepted message with `recipients` recipients at `now`.
  void record(std::string_view identity, std::size_t recipients, std::int64_t now);
  Counts counts(std::string_view identity, std::int64_t now) const;
  // Drops buckets older than a day (record() does it per identity) and
  // identities with nothing left.
  void prune(std::int64_t now);
  // Forgets an identity (after `client rm`).
  void forget(std::string_view identity);

  // {"version":1,"identities":{"NAME":{"seconds":[[T,MSGS,RCPTS],...],
  //   "minutes":[[UNIX_MINUTE,MSGS,RCPTS],...]}}}
  std::string to_json() const;
  // Untrusted text (a state file): errors are Errc::corrupt / unsupported.
  static Result<RateCounters> from_json(std::string_view json);

  struct Bucket {
    std::int64_t at = 0;  // unix second, or unix minute (seconds / 60)
    std::uint64_t messages = 0, recipients = 0;
  };
  struct Series {
    std::deque<Bucket> seconds;  // ascending `at`
    std::deque<Bucket> minutes;
  };

 private:
  std::map<std::string, Series, std::less<>> series_;
};

}  // namespace sg::policy
