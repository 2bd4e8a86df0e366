// Public SMTP listeners from a fake proc tree: net/tcp, net/tcp6 and PID/fd
// links "socket:[INODE]" (symlinks need no target, as in the real /proc).
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace sg::doctor {
namespace {

using test::ids;
using test::put;
using test::TempDir;

std::string line(int sl, const std::string& local, const std::string& st, int inode) {
  return "   " + std::to_string(sl) + ": " + local + " 00000000:0000 " + st +
         " 00000000:00000000 00:00000000 00000000     0        0 " + std::to_string(inode) +
         " 1 0000000000000000 100 0 0 10 0\n";
}

void link_fd(const std::filesystem::path& proc, const std::string& pid, int fd,
             const std::string& target) {
  std::filesystem::create_directories(proc / pid / "fd");
  std::filesystem::create_symlink(target, proc / pid / "fd" / std::to_string(fd));
}

TEST(SmtpListeners, PublicOnesWithOwners) {
  TempDir dir;
  const auto proc = dir.path() / "proc";
  const std::string header = "  sl  local_address rem_address   st ...\n";
  put(proc, "net/tcp",
      header + line(0, "0100007F:0019", "0A", 100) +  // 127.0.0.1:25: loopback, fine
          line(1, "00000000:0019", "0A", 200) +       // 0.0.0.0:25 exim4
          line(2, "0A0200C0:024B", "0A", 300) +       // 192.0.2.10:587, no owner found
          line(3, "00000000:0C3D", "0A", 400) +       // 0.0.0.0:3133: not an SMTP port
          line(4, "0A0200C0:0019", "01", 500));       // established, not listening
  put(proc, "net/tcp6",
      header + line(0, "00000000000000000000000000000000:01D1", "0A", 600) +  // [::]:465
          line(1, "00000000000000000000000001000000:0019", "0A", 700));       // [::1]:25
  put(proc, "123/comm", "exim4\n");
  link_fd(proc, "123", 3, "socket:[200]");
  link_fd(proc, "123", 4, "socket:[600]");
  link_fd(proc, "123", 5, "/dev/null");
  put(proc, "45/comm", "exim4\n");  // a forked child sharing the socket
  link_fd(proc, "45", 3, "socket:[200]");
  put(proc, "self/comm", "not a pid\n");
  link_fd(proc, "self", 3, "socket:[300]");

  Options o;
  o.proc = proc;
  auto f = check_smtp_listeners(o);
  ASSERT_EQ(ids(f),
            (std::vector<std::string>{"smtp-port-public", "smtp-port-public", "smtp-port-public"}));
  EXPECT_EQ(f[0].title, "exim4 listens on 0.0.0.0:25");
  EXPECT_EQ(f[0].detail, "port 25 on every address: exim4 (pid 45), exim4 (pid 123)");
  EXPECT_EQ(f[0].severity, Severity::medium);
  EXPECT_EQ(f[1].title, "a process listens on 192.0.2.10:587");
  EXPECT_EQ(f[1].detail, "port 587 on 192.0.2.10: owner unknown (socket inode 300)");
  EXPECT_EQ(f[2].title, "exim4 listens on [::]:465");
  EXPECT_NE(f[0].fix.find("inet_interfaces = loopback-only"), std::string::npos);

  o.smtp_ports = {3133};
  f = check_smtp_listeners(o);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].title, "a process listens on 0.0.0.0:3133");
}

TEST(SmtpListeners, MissingProcIsQuiet) {
  TempDir dir;
  Options o;
  o.proc = dir.path() / "nothing";
  EXPECT_TRUE(check_smtp_listeners(o).empty());
}

}  // namespace
}  // namespace sg::doctor
