// Processes listening on SMTP ports on a non-loopback address: sockets from
// PROC/net/tcp and tcp6, owners through the socket inodes behind
// PROC/PID/fd/* links. Every directory walk is bounded.
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "base/file.hpp"
#include "base/text.hpp"
#include "doctor/doctor.hpp"

namespace sg::doctor {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t kMaxProcesses = 200'000;
constexpr std::size_t kMaxFdsPerProcess = 65'536;

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Owner {
  std::string pid, comm;
};

// Owners of the given socket inodes; stops once every inode has one.
std::map<std::uint64_t, std::vector<Owner>> owners(const fs::path& proc,
                                                   const std::set<std::uint64_t>& wanted) {
  std::map<std::uint64_t, std::vector<Owner>> out;
  std::error_code ec;
  std::size_t seen = 0;
  for (fs::directory_iterator it(proc, ec), end; !ec && it != end && seen++ < kMaxProcesses;
       it.increment(ec)) {
    const std::string pid = it->path().filename().string();
    if (!all_digits(pid)) continue;
    std::error_code fec;
    std::size_t fds = 0;
    std::string comm;
    for (fs::directory_iterator f(it->path() / "fd", fec), fend;
         !fec && f != fend && fds++ < kMaxFdsPerProcess; f.increment(fec)) {
      char buf[256];
      ssize_t n = ::readlink(f->path().c_str(), buf, sizeof buf - 1);
      if (n <= 0) continue;
      auto inode = socket_inode(std::string_view(buf, static_cast<std::size_t>(n)));
      if (!inode || !wanted.contains(*inode)) continue;
      if (comm.empty()) {
        auto c = read_file(it->path() / "comm", 4096);
        comm = c ? std::string(trim(*c)) : "?";
      }
      auto& list = out[*inode];
      if (std::none_of(list.begin(), list.end(), [&](const Owner& o) { return o.pid == pid; }))
        list.push_back({pid, comm});
    }
  }
  for (auto& [inode, list] : out)
    std::sort(list.begin(), list.end(), [](const Owner& a, const Owner& b) {
      return a.pid.size() != b.pid.size() ? a.pid.size() < b.pid.size() : a.pid < b.pid;
    });
  return out;
}

}  // namespace

std::vector<Finding> check_smtp_listeners(const Options& options) {
  std::vector<ListenSocket> sockets;
  for (bool v6 : {false, true}) {
    auto text = read_file(options.proc / "net" / (v6 ? "tcp6" : "tcp"), 64u << 20);
    if (!text) continue;
    for (auto& s : parse_proc_net_tcp(*text, v6)) {
      if (s.loopback) continue;
      if (std::find(options.smtp_ports.begin(), options.smtp_ports.end(), s.port) ==
          options.smtp_ports.end())
        continue;
      sockets.push_back(std::move(s));
    }
  }
  std::set<std::uint64_t> wanted;
  for (const auto& s : sockets) wanted.insert(s.inode);
  auto found =
      wanted.empty() ? decltype(owners(options.proc, wanted)){} : owners(options.proc, wanted);
  std::vector<Finding> out;
  for (const auto& s : sockets) {
    const std::string where =
        (s.address.find(':') != std::string::npos ? "[" + s.address + "]" : s.address) + ":" +
        std::to_string(s.port);
    std::string who = "owner unknown (socket inode " + std::to_string(s.inode) + ")";
    std::string name;
    if (auto it = found.find(s.inode); it != found.end()) {
      who.clear();
      for (const auto& o : it->second) {
        who += (who.empty() ? "" : ", ") + o.comm + " (pid " + o.pid + ")";
        if (name.empty()) name = o.comm;
      }
    }
    out.push_back(
        {"smtp-port-public", Severity::medium,
         (name.empty() ? std::string("a process") : name) + " listens on " + where,
         "port " + std::to_string(s.port) + " on " +
             (s.address == "0.0.0.0" || s.address == "::" ? "every address" : s.address) + ": " +
             who,
         "unless this host receives mail from the internet, bind it to loopback (Exim: "
         "dc_local_interfaces='127.0.0.1 ; ::1' or local_interfaces; Postfix: inet_interfaces = "
         "loopback-only) and close the port in the security group; if it must stay public, "
         "make sure it is no open relay and holds no upstream credential"});
  }
  return out;
}

}  // namespace sg::doctor
