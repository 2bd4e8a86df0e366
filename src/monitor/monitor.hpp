// monitor: what happened, for people and machines. For now the audit log:
// one JSON line per event, each linked to the one before by a hash chain
// (audit_chain.hpp), so `smtpguard audit verify` finds an edited, deleted or
// reordered line, and the chain runs on across rotated files.
//
// Who writes. The relay's supervisor is the only relay process that touches
// the file. Each worker it forks gets its own end of a SOCK_SEQPACKET
// socketpair (AuditChannel) and sends one record per message; the
// supervisor checks it (a JSON object with an "event" and no chain fields:
// the receiver parses client bytes and is not trusted), stamps "proc" with
// the worker's role, chains and appends it. Nothing is sent back: a worker
// that waited for an acknowledgement of every line stalled its event loop
// once per message (at exit it waits only to hand over what is left). A line reaches the file
// milliseconds after the reply or spool change it records, in order, and a slow supervisor never
// stalls mail. So the unprivileged receiver needs no descriptor of the file
// (it could truncate it) and nothing breaks when the file is rotated.
// CLI commands append directly. Every file writer (supervisor, CLI) takes
// flock(LOCK_EX) on the file, checks that the path still names the locked
// file (else it was renamed: reopen), reads the last line again when the
// size moved since its own last write, and appends prev/seq with one
// write(2). An empty file links to the last line of FILE.1 (logrotate
// renamed it), or starts the chain with 64 zeros when there is none.
//
// Rotation (supervisor only, under the lock): FILE.k -> FILE.k+1 (keep N),
// FILE -> FILE.1, and the new FILE starts with "audit_rotated" linked to the
// old file's last line. A file renamed or truncated by another program is
// noticed at the next append under the lock and the chain goes on with an
// "audit_reopened" line.
//
// Input: event fields from our own code (addresses and rule names may come
// from clients, so everything is JSON-escaped), worker records (checked as
// above). No secrets, no bodies. Errors: writing the audit log never stops
// mail; failures are counted (failures()) and logged.
// The Exim main log watcher has its own headers: monitor/exim_log.hpp, exim_log_detect.hpp.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "base/text.hpp"  // json_nesting_within
#include "config/config.hpp"
#include "monitor/alerts.hpp"

namespace sg::monitor {

struct AuditOptions {
  std::uint64_t max_size = 0;  // rotate when the file reaches this size; 0: never
  std::uint32_t keep = 10;     // rotated files kept (FILE.1 ... FILE.keep)
  bool syslog = false;         // each line also to syslog (LOG_MAIL|LOG_INFO, "smtpguard")
  std::string proc;            // stamped as "proc" on lines without one ("" : none)
  int group = -1;  // files this writer creates: group `group`, mode 0640 (-1: mode 0600)
};

class AuditLog {
 public:
  // The chained file at `path` (created 0600), appended under flock(2).
  static Result<AuditLog> open(const std::filesystem::path& path, AuditOptions options = {});
  // A worker's end of an AuditChannel: records go to the supervisor.
  static AuditLog adopt(int fd);
  // A log that writes nothing (tests, dry runs).
  AuditLog();
  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&& other) noexcept;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();

  // Writes {"time": now, "event": event, ...fields} as one line.
  void write(std::string_view event, nlohmann::json fields, std::int64_t now);
  // Writes a record that already has "time" and "event" (a worker's).
  void append(nlohmann::json record);
  // append() of each record in order, under one lock and one write where the
  // file allows (rotation still happens at the size limit). Empties records.
  void append_all(std::vector<nlohmann::json>& records);
  // New rotation/syslog settings (a reload); file logs only.
  void set_options(const AuditOptions& options);
  // A worker's end: hands over the lines it kept while the channel was full
  // (they otherwise wait for its next line), without waiting. Worker loops
  // call it about once a second. Nothing to do for a file.
  void flush();
  int fd() const;
  std::uint64_t failures() const;

  struct Impl;

 private:
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The socketpair between the supervisor and one worker (both ends
// close-on-exec). The worker gets worker_fd (AuditLog::adopt).
struct AuditChannel {
  int supervisor_fd = -1;
  int worker_fd = -1;
};
Result<AuditChannel> make_audit_channel();

// The supervisor's ends of all channels. Each record is checked (see
// parse_worker_record), stamped "proc" = the worker's role, appended to `log`
// and appended; a channel whose worker is gone is closed once drained.
class AuditChannels {
 public:
  explicit AuditChannels(AuditLog& log) : log_(log) {}
  ~AuditChannels();
  AuditChannels(const AuditChannels&) = delete;
  AuditChannels& operator=(const AuditChannels&) = delete;
  void add(int supervisor_fd, std::string role);
  // Serves the channels until `fd` (-1: none) is readable or hung up, or
  // `timeout_ms` passes (-1: no limit). True when `fd` is ready.
  bool wait(int fd, int timeout_ms);
  std::vector<int> fds() const;  // to close in a forked worker
  std::uint64_t rejected() const { return rejected_; }

 private:
  struct Channel {
    int fd;
    std::string role;
  };
  bool serve(Channel& c);  // false once its worker's end is closed and drained

  AuditLog& log_;
  std::vector<Channel> channels_;
  std::uint64_t rejected_ = 0;
};

// ---------------------------------------------------------------------------
// Metrics and status (stats.cpp, metrics.cpp, status_page.cpp, tail.cpp,
// monitor_process.cpp). The sg-monitor process tails the audit log (the
// event bus of every relay process), counts what happened and serves GET
// /metrics (Prometheus text format 0.0.4) and GET / (a status page) on
// [monitor] listen. Counting and rendering are pure (state in, text out);
// audit lines are parsed as JSON without throwing (a line that is not an
// object with a string "event" is counted as unparsed and skipped); extra
// fields such as "prev"/"seq"/"proc" are ignored.

struct EventCounts {
  std::uint64_t received = 0, refused = 0, held = 0;       // per identity (receiver)
  std::uint64_t delivered = 0, deferred = 0, bounced = 0;  // per recipient (deliverer)
};

struct AlertRecord {
  std::int64_t time = 0;
  std::string kind, subject, detail;
};

// What the audit log says so far. Times come from the lines themselves.
struct Stats {
  std::map<std::string, EventCounts> identities;  // "" = no identity (unknown client)
  // (identity, upstream) -> delivered/deferred/bounced recipients
  std::map<std::pair<std::string, std::string>, EventCounts> routes;
  // (upstream, "2xx" | "4xx" | "5xx" | "local") -> upstream replies seen
  std::map<std::pair<std::string, std::string>, std::uint64_t> reply_classes;
  std::map<std::string, std::uint64_t> throttled;  // SES "maximum sending rate" per upstream
  std::map<std::string, std::uint64_t> alerts;     // "alert" events per kind
  std::uint64_t auth_failures = 0, lines = 0, unparsed = 0;
  std::deque<AlertRecord> recent_alerts;  // newest last, at most kRecentAlerts
  // identity -> minute (unix time / 60) -> messages submitted (received + held)
  std::map<std::string, std::map<std::int64_t, std::uint32_t>> submitted_per_minute;
  // upstream -> second -> recipients delivered (for the send rate)
  std::map<std::string, std::map<std::int64_t, std::uint32_t>> delivered_per_second;
  std::int64_t last_time = 0;  // "time" of the newest line

  static constexpr std::size_t kRecentAlerts = 20;
  // Counts one audit line (without its newline). Never throws.
  void observe_line(std::string_view line);
  void observe(const nlohmann::json& event);
  // Forgets per-minute history older than an hour and per-second history
  // older than a minute before `now`.
  void prune(std::int64_t now);
  // Recipients per second delivered through `upstream` in the minute before `now`.
  double send_rate(const std::string& upstream, std::int64_t now) const;
};

// Spool contents by listing spool/{queue,hold,active} (read-only).
struct QueueState {
  std::size_t ready = 0, held = 0, in_flight = 0;
  std::int64_t oldest_ready = 0, oldest_held = 0;  // unix seconds of the oldest id; 0: none
};
QueueState read_queue_state(const std::filesystem::path& spool_dir);

struct UpstreamInfo {
  std::string name, credential;
  double max_send_rate = 0;  // messages/s quota from the configuration; 0: none
};
struct CredentialInfo {
  std::string name;
  std::int64_t since = 0;  // sealed or last rotated (unix seconds)
};
// An action a detector asked for and that is still in force.
struct ActiveAction {
  std::string detector, subject, action, reason;
  std::int64_t since = 0;
};

// The deliverer's status file (deliverer_status_parse.cpp, monitor_files.cpp; relay/
// deliverer_status.hpp for the writer). The monitor cannot ask the deliverer
// (the control socket is root's), so the deliverer writes its control
// "status" to spool/kDelivererStatusFile when it changes (at most once a
// second) and at least every kDelivererStatusHeartbeat seconds; the monitor
// reads it per scrape. The receiver, which parses client bytes, runs as the
// same user and could write that file, so it is untrusted input: size,
// types, counts and lengths are checked, numbers clamped, and only upstreams
// named in the configuration are shown. Never throws.
inline constexpr const char* kDelivererStatusFile = "deliverer-status.json";
inline constexpr std::int64_t kDelivererStatusHeartbeat = 10;  // seconds
inline constexpr std::int64_t kDelivererStatusStale = 30;      // older: not shown
inline constexpr std::size_t kDelivererStatusMaxSize = 256u << 10;

struct UpstreamSessions {
  std::string name;
  std::int64_t open = 0, busy = 0, max = 0;  // sessions; max_connections
  double send_rate_limit = 0;  // the token bucket's rate now (after slow-downs); 0: none
  std::string last_error;      // one line, from the upstream or the network
  std::int64_t last_error_at = 0, paused_until = 0;
  std::string credential;
  std::int64_t credential_version = 0;  // sealed or rotated at (unix seconds); 0: none
};
struct DelivererStatus {
  bool exists = false;   // a file was there (`age` is meaningful)
  bool valid = false;    // it parsed and is fresh: `upstreams` is meaningful
  std::int64_t age = 0;  // seconds since the deliverer wrote it (its mtime)
  std::string error;     // why not valid (missing, stale, malformed)
  std::vector<UpstreamSessions> upstreams;
};
// The file's text -> upstreams; an error for anything but a status object.
Result<std::vector<UpstreamSessions>> parse_deliverer_status(std::string_view text);
// Reads spool_dir/kDelivererStatusFile; stale after kDelivererStatusStale.
DelivererStatus read_deliverer_status(const std::filesystem::path& spool_dir, std::int64_t now);

class Detectors;
// Detector baselines kept across restarts (monitor_state.cpp): the file
// spool/kDetectorStateFile, {"format": "smtpguard-monitor-state", "version":
// 1, "saved_at", "audit": {"seq", "time"}, "detectors": Detectors::to_json()}.
// `audit` is how far into the audit log the saved state goes, so priming
// from the log at start skips what it already holds. The file is ours but
// may be damaged, edited or from another version: decoding checks it and
// changes nothing on error.
inline constexpr const char* kDetectorStateFile = "detector-state.json";
struct AuditPosition {
  std::uint64_t seq = 0;  // "seq" of the last line fed to the detectors
  std::int64_t time = 0;  // newest "time" fed
  // A line already counted in the saved state: not newer in seq nor time (a
  // log that was replaced starts at seq 1 again, but with newer times).
  bool covers(std::uint64_t line_seq, std::int64_t line_time) const {
    if (seq == 0 && time == 0) return false;
    return line_seq > 0 ? line_seq <= seq && line_time <= time : line_time <= time;
  }
};
std::string encode_detector_state(const Detectors& detectors, AuditPosition position,
                                  std::int64_t now);
Result<AuditPosition> decode_detector_state(std::string_view text, Detectors& into);
// Atomic (temp, fsync, rename), mode 0600.
Result<void> save_detector_state(const std::filesystem::path& path, const Detectors& detectors,
                                 AuditPosition position, std::int64_t now);
// Errc::not_found when there is no file.
Result<AuditPosition> load_detector_state(const std::filesystem::path& path, Detectors& into);

// What the monitor did with saved baselines at start (status page).
struct BaselineInfo {
  bool loaded = false;
  std::string error;          // a file that was not loaded, and why
  AuditPosition position;     // what it covered
  std::uint64_t skipped = 0;  // audit lines at start it already held
};

// Everything the renderers show.
struct Snapshot {
  std::int64_t now = 0;
  Stats stats;
  QueueState queue;
  bool paused = false;
  std::vector<UpstreamInfo> upstreams;
  std::vector<CredentialInfo> credentials;
  std::vector<ActiveAction> actions;
  bool detectors_running = false;
  std::uint32_t rotation_warn_days = 80, rotation_max_days = 90;
  DelivererStatus deliverer;  // sessions, bucket, last error per upstream
  BaselineInfo baselines;
};

// Prometheus text exposition format 0.0.4 (metric names prefixed smtpguard_).
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
std::string render_metrics(const Snapshot& s);
// A label value with backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view value);
// The status page: one HTML document, inline CSS and SVG, no scripts, no
// external assets. Everything from the audit log is HTML-escaped.
std::string render_status_page(const Snapshot& s);
std::string escape_html(std::string_view text);  // &, <, >, " and '

// Follows an append-only log by path, across rotation (the path names a new
// file: the old one is read to its end first) and truncation (the file
// shrank: read again from the start). Only complete lines are delivered; a
// torn last line waits for its newline (and is dropped if the file is
// rotated away first). Never throws; an unreadable path is retried at the
// next poll.
class AuditTail {
 public:
  // `fd`: the log already opened read-only (e.g. before dropping privileges),
  // or -1 to open `path`. A file larger than `max_backlog` is read from its
  // last `max_backlog` bytes (from the next line start).
  AuditTail(std::filesystem::path path, int fd, std::uint64_t max_backlog = 64u << 20);
  AuditTail(const AuditTail&) = delete;
  AuditTail& operator=(const AuditTail&) = delete;
  ~AuditTail();
  // Calls `line` for each new complete line, reading at most `max_bytes`.
  // Returns the number of lines.
  std::size_t poll(const std::function<void(std::string_view)>& line,
                   std::size_t max_bytes = 8u << 20);
  std::uint64_t reopened() const { return reopened_; }
  std::uint64_t dropped_partial() const { return dropped_partial_; }

 private:
  bool open_path();
  void start_file(int fd, bool from_backlog);
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t max_backlog_;
  std::string partial_;
  std::uint64_t reopened_ = 0, dropped_partial_ = 0;
};

// The sg-monitor process (forked by the relay supervisor; already
// unprivileged when run_process is called). Returns an exit code.
struct ProcessSetup {
  config::Config config;
  int audit_read_fd = -1;   // the audit log, read-only (opened before the privilege drop)
  int audit_write_fd = -1;  // a channel to the supervisor (AuditLog::adopt): "alert" lines
  std::vector<CredentialInfo> credentials;  // from vault::read_metadata, before the drop
  // Logins of the upstreams that carry alert email ([[alert]] email_upstream),
  // unsealed before the drop: only those, never the delivering upstream's.
  std::map<std::string, AlertLogin> alert_logins;
  int ready_fd = -1;  // gets one byte once the listener is up
};
int run_process(ProcessSetup setup);

}  // namespace sg::monitor
