// config: the TOML configuration file turned into typed, validated structs.
// Input is trusted only as far as the file's owner (root); still, every
// problem is reported, never thrown: Result errors (Errc::config) read
// "FILE:LINE:COL: KEY: what is wrong (expected ...)", unknown keys at any
// level are errors with a did-you-mean suggestion. No file at all means
// embedded defaults (listen 127.0.0.1:2525, state under ./smtpguard-state).
// Paths are used as written: a relative state_dir (or any relative path) is
// relative to the current directory of the process, not to the file.
// vault.key and vault.path default to file:STATE_DIR/master.key and
// STATE_DIR/vault.sealed. An upstream's port defaults to 587 (starttls), 465
// (implicit) or 25 (none).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace sg::config {

enum class TlsMode { starttls, implicit, none };
enum class OnLimit { defer, hold, reject };

struct RateLimit {
  std::uint32_t per_minute = 0;  // 0 = no limit
  std::uint32_t per_hour = 0;
  std::uint32_t per_day = 0;
};

// TLS for the submission listeners; required when any of them is not loopback.
struct RelayTls {
  std::string cert_file;
  std::string key_file;
};

struct Relay {
  std::vector<std::string> listen{"127.0.0.1:2525"};  // HOST:PORT or [V6]:PORT
  std::string socket;                                 // empty: STATE_DIR/submit.sock
  std::filesystem::path state_dir{"./smtpguard-state"};
  std::uint64_t max_message_size = 40ull * 1000 * 1000;  // "40MB"
  std::optional<RelayTls> tls;                           // [relay.tls]
  // Networks (CIDR) that may connect to non-loopback listeners; required
  // when any listener is not loopback. Loopback peers are always allowed.
  std::vector<std::string> allow_from;
  std::string user;  // the receiver's user when started as root; empty: smtpguard, else nobody
  // How a group commit reaches the disk: fdatasync each file of the batch
  // (default; immune to other programs' writes) or one syncfs per batch
  // (faster with many concurrent sessions on a quiet file system).
  enum class SpoolSync { fdatasync, syncfs } spool_sync = SpoolSync::fdatasync;
};

struct Vault {
  std::string
      key;  // file:PATH | systemd:NAME | passphrase | env:VAR; empty: file:STATE_DIR/master.key
  std::filesystem::path path;  // empty: STATE_DIR/vault.sealed
  // Credential age (days since it was sealed or last rotated) from which
  // status and `vault list` say "rotate soon", and from which they say it is
  // overdue (AWS recommends rotating access keys every 90 days).
  std::uint32_t rotation_warn_days = 80;
  std::uint32_t rotation_max_days = 90;
};

struct Upstream {
  std::string name;  // the NAME of [upstream.NAME]
  std::string host;
  std::uint16_t port = 587;
  TlsMode tls = TlsMode::starttls;
  std::string ca_file;     // empty: system trust store
  std::string credential;  // vault entry name; may be empty only with tls = "none"
  std::uint32_t max_connections = 4;
  double max_send_rate = 14;  // messages per second; 0 = no limit
  std::string ehlo_name;      // empty: the host name
  std::uint32_t timeout_seconds = 60;
  // A session carries at most this many messages, then QUIT and a new one
  // (0 = no limit); an idle session is closed after idle_timeout_seconds.
  std::uint32_t max_messages_per_connection = 100;
  std::uint32_t idle_timeout_seconds = 5;
  // SES: adds X-SES-CONFIGURATION-SET (and X-SES-MESSAGE-TAGS identity=NAME)
  // so CloudWatch sees each local identity separately. Empty: no headers.
  std::string configuration_set;
};

// [delivery]: retries and bounces, the same for every upstream.
struct Delivery {
  std::uint32_t queue_lifetime_seconds = 5 * 86400;  // then the recipient fails (DSN)
  std::uint32_t first_retry_seconds = 30;  // first retry in [this, 2 x this]
  std::uint32_t max_retry_interval_seconds = 3600;
  bool bounces = true;  // false: failures are audited and logged, no DSN is sent
};

// [monitor]: the audit log and the metrics/status listener.
struct Monitor {
  // Loopback HOST:PORT serving /metrics (Prometheus) and / (status page);
  // empty: no listener. A listener that cannot bind is logged, never fatal.
  std::string listen = "127.0.0.1:9325";
  std::filesystem::path audit_log;  // empty: STATE_DIR/audit.jsonl
  // The audit log is rotated (audit.jsonl.1, .2, ...; the hash chain carries
  // over) when it grows beyond this; 0: never (logrotate's job then).
  std::uint64_t audit_max_size = 100ull * 1000 * 1000;
  std::uint32_t audit_keep = 10;  // rotated files kept
  bool audit_syslog = false;      // also send every audit line to syslog/journal
};

// [[alert]]: where alerts go; several sinks may be set in one entry.
struct Alert {
  std::string webhook;  // http(s) URL; JSON body with a Slack/Teams "text" field
  std::string exec;     // program run with the alert as JSON on stdin (no shell)
  bool syslog = false;  // LOG_ALERT to syslog/journal
  std::string email;    // recipient address
  // How email leaves: through this [upstream.NAME] (a second upstream, not
  // the one under suspicion) or, empty, directly to the recipient's MX.
  std::string email_upstream;
  std::string email_from;                 // empty: smtpguard@HOSTNAME
  std::uint32_t min_interval_seconds = 300;  // the same alert is repeated at most this often
};

// [detect.*]: the anomaly detectors (monitor/detect.hpp; config/detect.cpp
// says why the defaults are what they are). Each has enabled and action.
// alert: tell the operator; hold: this identity's new mail goes to the hold
// queue; pause: global kill switch; block: refuse the address for a time.
enum class DetectAction { alert, hold, pause, block };
std::string_view to_string(DetectAction action);

struct Detect {
  struct Rate {  // messages per sliding minute of one identity
    bool enabled = true;
    DetectAction action = DetectAction::hold;
    std::uint32_t floor_per_minute = 20;  // never flagged at or below this
    double factor = 5;                    // flagged above factor x learned busiest minute
    std::uint32_t hard_per_minute = 600;  // always flagged above this
  } rate;
  struct Recipients {  // distinct recipient addresses per sliding 10 minutes
    bool enabled = true;
    DetectAction action = DetectAction::hold;
    std::uint32_t floor_per_10min = 40;
    double factor = 5;
    std::uint32_t hard_per_10min = 5000;
  } recipients;
  struct NewSender {  // an envelope sender never seen for the identity
    bool enabled = true;
    DetectAction action = DetectAction::alert;
    std::uint32_t learning_seconds = 7 * 86400;  // silent while the identity is younger
  } new_sender;
  struct Bounces {  // over the last 24 hours, per identity and per upstream
    bool enabled = true;
    DetectAction action = DetectAction::pause;           // an upstream over pause_ratio
    DetectAction identity_action = DetectAction::hold;  // an identity over pause_ratio
    double alert_ratio = 0.03;
    double pause_ratio = 0.08;
    double deferral_alert_ratio = 0.20;
    std::uint32_t min_volume = 100;  // recipients tried in the window before any ratio counts
  } bounces;
  struct Throttle {  // SES throttling and daily quota replies
    bool enabled = true;
    DetectAction action = DetectAction::alert;
  } throttle;
  struct Auth {  // AUTH failures from one address or uid
    bool enabled = true;
    DetectAction action = DetectAction::block;
    std::uint32_t max_failures = 5;  // within window_seconds
    std::uint32_t window_seconds = 600;
    std::uint32_t block_seconds = 3600;
  } auth;
  std::uint32_t max_subjects = 10000;  // identities/upstreams/addresses tracked; LRU beyond
};

// A local application identity ([[client]]; also the record format of the
// STATE_DIR/clients.json store that `smtpguard client` manages).
struct Client {
  std::string name;
  std::string auth = "password";  // password | uid:NAME | exim | address
  std::vector<std::string> ip;    // auth = "address": CIDRs (checked by policy)
  std::string password_hash;      // password | exim: Argon2id (crypto_pwhash_str)
  std::vector<std::string> allowed_senders;
  std::uint32_t max_recipients = 50;
  std::uint64_t max_message_size = 0;  // 0: relay.max_message_size
  RateLimit rate;                      // messages
  RateLimit recipient_rate;            // recipients (summed over messages)
  // auth = "exim": messages per submitter (each mailbox or local user Exim
  // names in X-Smtpguard-Submitter is limited separately).
  RateLimit submitter_rate;
  OnLimit on_limit = OnLimit::defer;
};

struct Config {
  std::filesystem::path source;  // empty: embedded defaults
  Relay relay;
  Vault vault;  // key and path already resolved against state_dir
  Delivery delivery;
  std::vector<Upstream> upstreams;
  std::vector<Client> clients;
  Monitor monitor;
  std::vector<Alert> alerts;
  Detect detect;

  const Upstream* find_upstream(std::string_view name) const;
};

// Built-in configuration used when no file is given.
Config defaults();

// Parses TOML text; `source_name` is used in error messages.
Result<Config> parse(std::string_view toml_text, std::string_view source_name);

// Reads and parses a file.
Result<Config> load_file(const std::filesystem::path& path);

// "40MB", "512k", "1048576" -> bytes (decimal units, KiB/MiB/GiB binary).
Result<std::uint64_t> parse_size(std::string_view text);

// "30s", "15m", "2h", "5d", "1w" or a number of seconds -> seconds.
Result<std::uint64_t> parse_duration(std::string_view text);

// A listen entry: "HOST:PORT" or "[V6]:PORT".
struct ListenAddress {
  std::string host;  // without brackets
  std::uint16_t port = 0;
};
Result<ListenAddress> parse_listen_address(std::string_view text);

// 127.0.0.0/8, ::1 (also as ::ffff:127.x.x.x) or "localhost": traffic to it
// never leaves the machine.
bool is_loopback_host(std::string_view host);

}  // namespace sg::config
