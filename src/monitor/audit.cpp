// AuditLog and the channel between a worker and the supervisor (see
// monitor.hpp): the worker's side sends records without waiting; the
// supervisor's side checks and appends them.
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>

#include "base/text.hpp"
#include "monitor/audit_chain.hpp"
#include "monitor/audit_internal.hpp"

namespace sg::monitor {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// At exit, how long a worker tries to hand over lines still waiting.
constexpr auto kExitFlush = std::chrono::seconds(2);
// Lines a worker keeps while the channel is full.
constexpr std::size_t kMaxBacklog = 10000;
// The channel's buffer; a burst of lines fits while the supervisor is busy.
constexpr int kChannelBuffer = 4 << 20;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// A worker's end: records out; nothing comes back.
class ChannelSink final : public AuditLog::Impl {
 public:
  explicit ChannelSink(int fd) : fd_(fd) {}
  ~ChannelSink() override {
    std::lock_guard lock(mutex_);
    wait(Clock::now() + kExitFlush);
    failures_ += backlog_.size();
    ::close(fd_);
  }
  int fd() const override { return fd_; }
  std::uint64_t failures() const override { return failures_; }

  void append(json record) override {
    std::string text = record.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > kMaxRecordBytes) {
      ++failures_;
      text = json{{"time", record.value("time", json(0))},
                  {"event", record.value("event", json("unknown"))},
                  {"error", "record too large for the audit log"}}
                 .dump(-1, ' ', false, json::error_handler_t::replace);
    }
    std::lock_guard lock(mutex_);
    if (backlog_.size() >= kMaxBacklog) {
      if (failures_++ % 1000 == 0)
        spdlog::error("audit log: the supervisor does not keep up; lines are lost");
      return;
    }
    backlog_.push_back(std::move(text));
    // No waiting for the supervisor here: a worker's event loop blocked on
    // every line (a wake-up of the supervisor and back per message) cost
    // the relay 10-20 % of its throughput at 100 KB. Lines keep their order
    // and reach the file within milliseconds; a line still in the socket
    // when the worker dies is read by the supervisor all the same.
    send_backlog();
  }
  void flush() override {
    std::lock_guard lock(mutex_);
    if (!lost_) send_backlog();
  }

 private:
  // Sends what the socket takes now; false if the supervisor is gone (its
  // end closed: EPIPE, or ECONNRESET with lines unread).
  bool send_backlog() {
    while (!backlog_.empty()) {
      const std::string& t = backlog_.front();
      ssize_t n = ::send(fd_, t.data(), t.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n < 0) {
        gone();
        return false;
      }
      backlog_.pop_front();
    }
    return true;
  }

  void gone() {
    if (!lost_) spdlog::error("audit log: the supervisor's channel is closed; lines are lost");
    lost_ = true;
    failures_ += backlog_.size();
    backlog_.clear();
  }

  // Until everything is sent or the deadline.
  bool wait(Clock::time_point deadline) {
    for (;;) {
      if (lost_ || !send_backlog()) return false;
      if (backlog_.empty()) return true;
      int ms = remaining_ms(deadline);
      if (ms == 0) return false;
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, ms) < 0 && errno != EINTR) return false;
    }
  }

  int fd_;
  std::mutex mutex_;  // the receiver's verifier thread may write too
  std::deque<std::string> backlog_;
  std::uint64_t failures_ = 0;
  bool lost_ = false;
};

}  // namespace

AuditLog::AuditLog() = default;
AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::AuditLog(AuditLog&& other) noexcept = default;
AuditLog& AuditLog::operator=(AuditLog&& other) noexcept = default;
AuditLog::~AuditLog() = default;

Result<AuditLog> AuditLog::open(const std::filesystem::path& path, AuditOptions options) {
  auto impl = open_audit_file(path, options);
  if (!impl) return impl.error();
  return AuditLog(std::move(*impl));
}

AuditLog AuditLog::adopt(int fd) {
  if (fd < 0) return AuditLog();
  return AuditLog(std::make_unique<ChannelSink>(fd));
}

void AuditLog::write(std::string_view event, json fields, std::int64_t now) {
  if (!impl_) return;
  json record = json::object();
  record["time"] = now;
  record["event"] = event;
  if (fields.is_object())
    for (auto& [k, v] : fields.items()) record[k] = std::move(v);
  impl_->append(std::move(record));
}

void AuditLog::append(json record) {
  if (impl_ && record.is_object()) impl_->append(std::move(record));
}

void AuditLog::append_all(std::vector<json>& records) {
  std::erase_if(records, [](const json& r) { return !r.is_object(); });
  if (impl_ && !records.empty()) impl_->append_all(records);
  records.clear();
}

void AuditLog::set_options(const AuditOptions& options) {
  if (impl_) impl_->set_options(options);
}

void AuditLog::flush() {
  if (impl_) impl_->flush();
}

int AuditLog::fd() const {
  return impl_ ? impl_->fd() : -1;
}

std::uint64_t AuditLog::failures() const {
  return impl_ ? impl_->failures() : 0;
}

Result<AuditChannel> make_audit_channel() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return make_error(Errc::io,
                      std::string("cannot create the audit channel: ") + std::strerror(errno));
  // Room for a burst while the supervisor is busy (FORCE needs root).
  for (int fd : fds)
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kChannelBuffer, sizeof kChannelBuffer) != 0)
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kChannelBuffer, sizeof kChannelBuffer);
  return AuditChannel{fds[0], fds[1]};
}

AuditChannels::~AuditChannels() {
  for (auto& c : channels_) ::close(c.fd);
}

void AuditChannels::add(int supervisor_fd, std::string role) {
  channels_.push_back(Channel{supervisor_fd, std::move(role)});
}

std::vector<int> AuditChannels::fds() const {
  std::vector<int> out;
  for (const auto& c : channels_) out.push_back(c.fd);
  return out;
}

bool AuditChannels::wait(int fd, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::vector<pollfd> p;
    for (const auto& c : channels_) p.push_back(pollfd{c.fd, POLLIN, 0});
    if (fd >= 0) p.push_back(pollfd{fd, POLLIN, 0});
    int ms = timeout_ms < 0 ? -1 : remaining_ms(deadline);
    int n = ::poll(p.data(), p.size(), ms);
    if (n < 0 && errno != EINTR) return false;
    // Channels first: lines written before a worker's ready byte or exit
    // land before what the supervisor writes about it.
    std::size_t served = channels_.size();
    for (std::size_t i = served; i-- > 0;) {
      if (n > 0 && p[i].revents == 0) continue;
      if (!serve(channels_[i])) {
        ::close(channels_[i].fd);
        channels_.erase(channels_.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if (fd >= 0 && n > 0 && p.back().revents != 0) return true;
    if (timeout_ms >= 0 && remaining_ms(deadline) == 0) return false;
  }
}

bool AuditChannels::serve(Channel& c) {
  static char buf[kMaxRecordBytes + 1];
  bool open = true;
  // Written together: one lock and one write for a burst, not one per line.
  std::vector<json> batch;
  for (int i = 0; i < 256; ++i) {  // then the others get their turn
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = ::recvmsg(c.fd, &msg, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {  // the worker's end is closed and everything was read
      open = false;
      break;
    }
    Result<json> record =
        (msg.msg_flags & MSG_TRUNC)
            ? Result<json>(make_error(Errc::invalid_input, "longer than the limit"))
            : parse_worker_record(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!record) {
      if (rejected_++ % 1000 == 0)
        spdlog::warn("audit log: refused a record from the {} ({}; {} so far)", c.role,
                     record.error().message, rejected_);
      continue;
    }
    (*record)["proc"] = c.role;
    if (!(*record)["time"].is_number_integer()) (*record)["time"] = unix_now();
    batch.push_back(std::move(*record));
  }
  log_.append_all(batch);
  return open;
}

}  // namespace sg::monitor
