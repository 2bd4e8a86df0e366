// spool: the durable mail queue between the receiver and the deliverer.
//  - One queue file per message (envelope, policy verdict, per-recipient
//    state, data) in a versioned, checksummed format (encode/decode).
//  - Spool: group commit (concurrent submitters share fsyncs; a callback
//    fires only once the message and its directory entry are on disk),
//    recovery at open, hold queue, per-recipient state rewrites.
// Layout under the spool directory (all 0700, files 0600):
//   tmp/     files being written; never acknowledged, removed at open
//   queue/   committed messages, one file per id
//   hold/    committed messages that must not go out until released
//   corrupt/ damaged files found at open, moved aside (never deleted)
//   active/  "in flight" marks of the deliverer (see mark_in_flight)
//   free/    files of delivered messages kept for reuse (see retire), emptied
//            by recovery
// Trust: queue files are local but may be torn by a crash or damaged on
// disk; decode treats them as untrusted bytes (checksums, strict limits,
// clean Errc::corrupt/unsupported errors, never a half-parsed message).
// Errors: Result<T> with a one-line message naming the file and errno; disk
// full and write errors are Errc::io (the receiver answers 452 4.3.1). No
// exceptions except std::bad_alloc.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.hpp"

namespace sg::spool {

enum class RecipientState { pending, delivered, failed, deferred };

struct Recipient {
  std::string address;
  RecipientState state = RecipientState::pending;
  int attempts = 0;
  std::string last_reply;
  std::string upstream_id;
  std::int64_t next_attempt = 0;
};

struct Envelope {
  std::string id;  // assigned by the spool at commit (see is_valid_id)
  std::int64_t received_at = 0;
  std::string identity;  // local identity name
  std::string peer;      // "uid 1000" / "127.0.0.1"
  std::string helo;
  std::string mail_from;  // "" = null sender
  std::vector<Recipient> recipients;
  std::string verdict;  // accept | hold
  std::string rule;     // policy rule that caused a hold, if any
  // Who submitted the message through a trusted MTA identity (Exim's
  // X-Smtpguard-Submitter header); empty otherwise.
  std::string submitter;
  bool held = false;  // on load: true iff the file is in hold/
  bool in_flight = false;
};

// data exactly as received (CRLF line ends, dot-unstuffed).
struct Message {
  Envelope envelope;
  std::string data;
};

std::string_view to_string(RecipientState state);

// Queue ids: 16 characters of lowercase Crockford base32, the first 11 the
// commit time in microseconds (so ids sort oldest first), the last 5 random.
inline constexpr std::size_t kIdLength = 16;
bool is_valid_id(std::string_view id);

// Queue file format version 2 (all integers big-endian):
//   "SGQ2" | u32 n | envelope JSON (n bytes) | XXH3-128 of all before
//   | u64 d | data (d bytes) | XXH3-128 of all before
// Version 1 ("SGQ1", BLAKE2b-256 instead of XXH3-128) is still read, so a
// queue written by an older build is delivered after an upgrade.
// The first checksum lets decode_envelope_only verify a listing without
// reading the body; the second covers the whole file, so a torn or damaged
// file is always detected. Strings that are not valid UTF-8 are stored as
// {"b64": "..."} so every byte round-trips.
inline constexpr std::size_t kMaxEnvelopeBytes = 16u << 20;
std::string encode(const Message& message);
Result<Message> decode(std::string_view file);
// `head` is any prefix of a queue file that contains the envelope and its
// checksum (envelope_prefix_size tells how much that is).
Result<Envelope> decode_envelope_only(std::string_view head);
// Bytes of a file's prefix needed by decode_envelope_only, from its first 8
// bytes; an error if those are not a queue file header.
Result<std::size_t> envelope_prefix_size(std::string_view first8);

struct RecoveryReport {
  std::size_t removed_tmp = 0;                // unacknowledged leftovers deleted from tmp/
  std::size_t queued = 0;                     // intact messages in queue/
  std::size_t held = 0;                       // intact messages in hold/
  std::vector<std::string> moved_to_corrupt;  // file names moved to corrupt/
  std::vector<std::string> warnings;          // one line each, for the log
};

// How a batch's files are made durable before they are renamed into place.
enum class SyncMode {
  fdatasync_each,  // fdatasync every file of the batch (writeback started for all first)
  syncfs,          // one syncfs() of the spool's file system per batch
};

// Where a test can inject a failure (see Options::fault).
enum class FaultPoint { write, sync, rename, dir_sync };

struct Options {
  SyncMode sync_mode = SyncMode::fdatasync_each;
  std::size_t max_batch = 128;  // files (and fds) per group commit
  // fdatasync_each: threads that sync a batch's files at once, so the
  // device flushes of one batch merge (see parallel_sync.hpp).
  std::size_t sync_threads = 15;
  std::uint64_t max_file_size = 1ull << 30;  // load() refuses larger files
  // The most files retire() keeps in free/ for commits to overwrite; 0 makes
  // retire() a plain remove().
  std::size_t keep_free = 64;
  // Owner mode: take the spool's owner lock (one receiver at a time; a second
  // open fails with Errc::conflict), remove tmp/ leftovers and check every
  // committed file. Other processes (the deliverer, the CLI) open with false.
  bool recover = true;
  // Test hook: if set and it returns a nonzero errno for (point, id), that
  // step fails as if the system call had failed with that errno.
  std::function<int(FaultPoint, std::string_view id)> fault;
};

// Automatic responses (decided by the relay's monitor, carried out by the
// receiver and the deliverer, undone by the operator) kept as small files in
// the spool directory, so every process and the CLI see the same state even
// when no relay runs:
//   held-identities/NAME   mail of identity NAME goes to hold (new and queued)
//   blocked/ADDRESS        clients from ADDRESS are refused until a time
// NAME is a policy identity name ([A-Za-z0-9._-]); ADDRESS an IP address or
// "uid:N". Anything else is refused with Errc::invalid_input. The content is
// one line: "UNTIL REASON" (UNTIL 0 = until released).
// The kill switch: SPOOL/paused (fsync'd, owned like the spool directory).
// While it exists the deliverer sends nothing and the receiver holds new mail.
Result<void> set_paused(const std::filesystem::path& spool_dir, bool paused, std::int64_t now);
bool paused(const std::filesystem::path& spool_dir);

struct Response {
  std::string subject;  // identity or address
  std::int64_t until = 0;
  std::string reason;
};
Result<void> set_identity_hold(const std::filesystem::path& spool_dir, std::string_view identity,
                               std::string_view reason);
Result<void> clear_identity_hold(const std::filesystem::path& spool_dir, std::string_view identity);
bool identity_held(const std::filesystem::path& spool_dir, std::string_view identity);
std::vector<Response> held_identities(const std::filesystem::path& spool_dir);
Result<void> set_block(const std::filesystem::path& spool_dir, std::string_view address,
                       std::int64_t until, std::string_view reason);
Result<void> clear_block(const std::filesystem::path& spool_dir, std::string_view address);
// True while a block for `address` exists and has not expired at `now`.
bool blocked(const std::filesystem::path& spool_dir, std::string_view address, std::int64_t now);
std::vector<Response> blocks(const std::filesystem::path& spool_dir);

class ParallelSync;

class Spool {
 public:
  using Done = std::function<void(Result<std::string>)>;

  // Creates spool_dir/{tmp,queue,hold} (0700) as needed and, with
  // options.recover, recovers (see RecoveryReport). Starts the committer.
  static Result<std::unique_ptr<Spool>> open(const std::filesystem::path& spool_dir,
                                             RecoveryReport* report = nullptr,
                                             Options options = {});
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Group commit. Thread-safe. Assigns the id, then `done` runs on the
  // committer thread once the file and its directory entry are fsync'd
  // (Ok(id)), or with an error (Errc::io; nothing of the message remains in
  // queue/ or hold/). Messages arriving while a batch is being synced go
  // into the next batch. `done` must be quick and must not throw or call
  // commit_sync/stop. Goes to hold/ when envelope.held. After stop(),
  // `done` gets the error at once, on the caller's thread.
  void commit(Message message, Done done);
  // Blocks until durable. Not from inside a `done` callback.
  Result<std::string> commit_sync(Message message);

  std::vector<std::string> list(bool held) const;  // ids, oldest first
  Result<Message> load(std::string_view id) const;
  Result<Envelope> load_envelope(std::string_view id) const;  // without reading the body
  // Atomic rewrite of the message's file with a new envelope (data kept) in
  // its current directory; envelope.id names the message, envelope.held is
  // ignored (hold/release move files).
  Result<void> update_envelope(const Envelope& envelope);
  // Move between queue/ and hold/; idempotent; Errc::not_found if neither.
  Result<void> hold(std::string_view id);
  Result<void> release(std::string_view id);
  // `sync_directory` false skips the directory fsync: for delivered mail,
  // where an unlink lost to a power failure means a duplicate delivery,
  // never a lost message, and the fsync would serialise every delivery.
  Result<void> remove(std::string_view id, bool sync_directory = true);
  // remove(id, false) for a delivered message, except that the file goes to
  // free/ (up to Options::keep_free files) for a later commit to overwrite
  // instead of being unlinked. Creating and freeing an inode and its blocks
  // per message is most of the spool's CPU cost on file systems such as
  // ext4 without a journal; a reused file costs two renames. A commit takes
  // a free file by renaming it into tmp/, so exactly one writer gets it;
  // nothing else writes to free/. The mail in free/ is delivered mail: an
  // operator's `queue delete` uses remove(), and recovery empties free/.
  Result<void> retire(std::string_view id);
  // The deliverer marks a message before it sends the content upstream and
  // clears the mark once the outcome is recorded. A mark found before the
  // next attempt means the last one was cut off after the content may have
  // gone out: the next delivery may be a duplicate (logged as such). Marks
  // are not fsync'd: they survive a killed process (the page cache does),
  // not necessarily a power loss, and they never decide whether mail goes.
  // A mark is active/ID, a hard link to queue/ID (an empty file where a link
  // cannot be made); remove() clears it too.
  Result<void> mark_in_flight(std::string_view id);
  void clear_in_flight(std::string_view id);
  bool in_flight(std::string_view id) const;
  // Flushes pending commits, joins the committer thread; later commits fail
  // with Errc::io. Called by the destructor.
  void stop();

  const std::filesystem::path& directory() const { return dir_; }
  // Batches committed so far (for tests and metrics).
  std::uint64_t batches_committed() const;

 private:
  struct Pending;
  Spool(std::filesystem::path dir, Options options);
  Result<void> open_directories();
  Result<void> recover(RecoveryReport& report);
  void run_committer();
  void take_pending(std::vector<Pending>& batch);  // mutex_ held
  std::size_t max_batch() const;
  void commit_batch(std::vector<Pending>& batch, ParallelSync& syncer);
  std::string next_id();
  // An fd of a free file renamed to tmp/NAME, or -1 (then create one);
  // *old_size is its size before. Lists free/ if `listed` is false (and sets
  // it). Committer thread only.
  int take_free_file(const std::string& name, off_t* old_size, bool& listed);
  Result<std::filesystem::path> locate(std::string_view id, bool* held) const;
  Result<void> move(std::string_view id, bool to_hold);
  int inject(FaultPoint point, std::string_view id) const;

  std::filesystem::path dir_;
  Options options_;
  int tmp_fd_ = -1, queue_fd_ = -1, hold_fd_ = -1, free_fd_ = -1;
  int owner_lock_fd_ = -1;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Pending> pending_;
  bool stopping_ = false;
  std::int64_t last_id_micros_ = 0;
  std::uint64_t batches_ = 0;
  std::thread committer_;
  std::vector<std::string> free_names_;  // committer thread only
  std::atomic<std::uint64_t> next_free_slot_{0};
};

}  // namespace sg::spool
