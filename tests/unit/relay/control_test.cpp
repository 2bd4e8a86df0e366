// relay::ControlServer and relay::control_request over a real unix socket:
// the server runs on an asio::io_context in its own thread, the client calls
// are made from the test thread exactly as the CLI makes them.
#include "relay/control.hpp"

#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "relay/listeners.hpp"

namespace sg::relay {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/sg-control-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A ControlServer on DIR/control.sock whose handler echoes the request.
class Control : public ::testing::Test {
 protected:
  void start(uid_t allowed_uid = ::getuid()) {
    auto listener = open_unix_listener(socket_, 0600);
    ASSERT_TRUE(listener.ok()) << listener.error().message;
    server_.emplace(io_, listener->fd, allowed_uid, [this](const json& request) -> json {
      ++calls_;
      if (request.value("cmd", "") == "throw") throw std::runtime_error("boom");
      return {{"ok", true}, {"echo", request}};
    });
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (!thread_.joinable()) return;
    // The acceptor belongs to the io thread: close it there, then stop.
    asio::post(io_, [this] {
      server_->stop();
      io_.stop();
    });
    thread_.join();
  }

  // Raw client: writes `bytes`, reads until the server closes or `timeout`.
  // Returns nullopt on timeout.
  std::optional<std::string> raw_exchange(std::string_view bytes,
                                          std::chrono::milliseconds timeout = 3s) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, socket_.c_str(), sizeof sa.sun_path - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << strerror(errno);
    // A refused oversized request may close the socket before all is sent.
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::string in;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::close(fd);
        return std::nullopt;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t got = ::read(fd, buf, sizeof buf);
      if (got <= 0) break;  // EOF, or ECONNRESET after unread input
      in.append(buf, static_cast<std::size_t>(got));
    }
    ::close(fd);
    return in;
  }

  TempDir dir_;
  fs::path socket_ = dir_.path / "control.sock";
  std::atomic<int> calls_{0};  // handler calls (made on the io thread)
  asio::io_context io_;
  std::optional<ControlServer> server_;
  std::thread thread_;
};

TEST_F(Control, HandlerReplyComesBack) {
  start();
  auto reply = control_request(socket_, {{"cmd", "hold"}, {"id", "0abcdefghjk12345"}}, 3s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["ok"], true);
  EXPECT_EQ((*reply)["echo"]["cmd"], "hold");
  EXPECT_EQ((*reply)["echo"]["id"], "0abcdefghjk12345");
  // One request per connection, many connections per server.
  reply = control_request(socket_, {{"cmd", "status"}}, 3s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["echo"]["cmd"], "status");
  EXPECT_EQ(calls_.load(), 2);
}

TEST_F(Control, ReplyIsOneJsonLine) {
  start();
  auto raw = raw_exchange("{\"cmd\":\"status\"}\n");
  ASSERT_TRUE(raw.has_value()) << "no answer";
  ASSERT_FALSE(raw->empty());
  EXPECT_EQ(raw->back(), '\n');
  EXPECT_EQ(raw->find('\n'), raw->size() - 1) << *raw;
  EXPECT_EQ(json::parse(*raw)["echo"]["cmd"], "status");
}

TEST_F(Control, MalformedJsonGetsAnError) {
  start();
  for (std::string_view bad :
       {"{not json\n", "\n", "\"cmd\"\n", "[{\"cmd\":\"status\"}]\n", "{\"cmd\":\"status\"\n"}) {
    auto raw = raw_exchange(bad);
    ASSERT_TRUE(raw.has_value()) << "no answer to " << bad;
    auto reply = json::parse(*raw, nullptr, false);
    ASSERT_TRUE(reply.is_object()) << *raw;
    EXPECT_EQ(reply["ok"], false) << bad;
    EXPECT_TRUE(reply["error"].is_string() && !reply["error"].get<std::string>().empty()) << *raw;
  }
  EXPECT_EQ(calls_.load(), 0) << "the handler saw a malformed request";
}

TEST_F(Control, RequestWithoutStringCmdIsRefused) {
  start();
  for (const json& request : {json{{"id", "0abcdefghjk12345"}}, json{{"cmd", 5}},
                              json{{"cmd", nullptr}}, json::object()}) {
    auto reply = control_request(socket_, request, 3s);
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    EXPECT_EQ((*reply)["ok"], false) << request.dump();
    EXPECT_TRUE((*reply)["error"].is_string()) << reply->dump();
  }
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(Control, HandlerExceptionBecomesAnErrorReply) {
  start();
  auto reply = control_request(socket_, {{"cmd", "throw"}}, 3s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["ok"], false);
  EXPECT_NE((*reply)["error"].get<std::string>().find("boom"), std::string::npos) << reply->dump();
  // The server is still serving.
  reply = control_request(socket_, {{"cmd", "status"}}, 3s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["ok"], true);
}

TEST_F(Control, RequestOver64KiBIsRefused) {
  start();
  // Just under the limit still goes through...
  auto reply =
      control_request(socket_, {{"cmd", "status"}, {"pad", std::string(60 * 1024, 'a')}}, 3s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["ok"], true);
  ASSERT_EQ(calls_.load(), 1);
  // ...over it is answered with an error and never reaches the handler.
  std::string big = json{{"cmd", "status"}, {"pad", std::string(70 * 1024, 'a')}}.dump() + "\n";
  auto raw = raw_exchange(big);
  ASSERT_TRUE(raw.has_value()) << "no answer";
  auto refused = json::parse(*raw, nullptr, false);
  ASSERT_TRUE(refused.is_object()) << *raw;
  EXPECT_EQ(refused["ok"], false);
  EXPECT_TRUE(refused["error"].is_string());
  // Through control_request: refused one way or another, never ok.
  reply = control_request(socket_, json::parse(big), 3s);
  if (reply.ok()) {
    EXPECT_EQ((*reply)["ok"], false) << reply->dump().substr(0, 200);
  }
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(Control, SilentClientDoesNotBlockOthers) {
  start();
  // A connection that never sends its request...
  int idle = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, socket_.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(::connect(idle, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  // ...while another one is served promptly.
  auto t0 = std::chrono::steady_clock::now();
  auto reply = control_request(socket_, {{"cmd", "status"}}, 3s);
  ::close(idle);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["ok"], true);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST_F(Control, SocketIsPrivate) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST(ControlClient, NothingListeningIsNotFound) {
  TempDir dir;
  auto r = control_request(dir.path / "absent.sock", {{"cmd", "status"}}, 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found) << r.error().message;
  // A stale socket file left by a relay that is gone: still not_found.
  auto l = open_unix_listener(dir.path / "stale.sock", 0600);
  ASSERT_TRUE(l.ok()) << l.error().message;
  ::close(l->fd);
  ASSERT_TRUE(fs::exists(dir.path / "stale.sock"));
  r = control_request(dir.path / "stale.sock", {{"cmd", "status"}}, 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found) << r.error().message;
}

TEST(ControlClient, ListenerThatNeverAnswersTimesOut) {
  TempDir dir;
  // Listening, so connect() succeeds through the backlog, but nobody accepts.
  auto l = open_unix_listener(dir.path / "mute.sock", 0600);
  ASSERT_TRUE(l.ok()) << l.error().message;
  auto t0 = std::chrono::steady_clock::now();
  auto r = control_request(dir.path / "mute.sock", {{"cmd", "status"}}, 400ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ::close(l->fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::timeout) << r.error().message;
  EXPECT_GE(took, 350ms);
  EXPECT_LT(took, 3s);
}

TEST(ControlClient, OpenUnixListenerAppliesTheMode) {
  TempDir dir;
  auto l = open_unix_listener(dir.path / "open.sock", 0666);
  ASSERT_TRUE(l.ok()) << l.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((dir.path / "open.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ::close(l->fd);
}

// Forks a child that becomes uid/gid 65534 and sends one request; returns
// its exit status: 0 reply with ok=true, 1 ok=false, 2 no reply (refused),
// 3 connect not permitted (test setup problem), 4 could not drop privileges.
int request_as_nobody(const fs::path& socket) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(10);  // bounded even if something hangs
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(4);
    auto r = control_request(socket, {{"cmd", "status"}}, 3s);
    if (!r.ok()) ::_exit(r.error().code == Errc::permission ? 3 : 2);
    ::_exit(r->value("ok", false) ? 0 : 1);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// Opens the socket up so that only the SO_PEERCRED check can refuse.
void open_up_for_nobody(const fs::path& dir, const fs::path& socket) {
  ASSERT_EQ(::chmod(dir.c_str(), 0711), 0);
  ASSERT_EQ(::chmod(socket.c_str(), 0666), 0);
}

TEST_F(Control, PeerThatIsNeitherRootNorAllowedIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as uid 65534";
  start(/*allowed_uid=*/12345);
  open_up_for_nobody(dir_.path, socket_);
  EXPECT_EQ(request_as_nobody(socket_), 2) << "uid 65534 got a reply";
  EXPECT_EQ(calls_.load(), 0);
  // Root is always allowed.
  auto reply = control_request(socket_, {{"cmd", "status"}}, 3s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(Control, AllowedUidIsServed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as uid 65534";
  start(/*allowed_uid=*/65534);
  open_up_for_nobody(dir_.path, socket_);
  EXPECT_EQ(request_as_nobody(socket_), 0);
  EXPECT_EQ(calls_.load(), 1);
}

}  // namespace
}  // namespace sg::relay
