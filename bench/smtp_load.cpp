// smtp_load: SMTP load generator for the end-to-end benchmark (bench/e2e/run.sh).
//
// Like Postfix's smtp-source it runs N parallel sessions that send M messages in
// total (one connection per message, or --reuse to keep connections open), but it
// also records, per message, the time from writing the final "." line of DATA to
// reading the server's reply, and it can sample the memory of a server process
// tree while the load runs. It prints one JSON object on stdout.
//
// Benchmark tool only: it trusts its command line, talks to 127.0.0.1-style
// servers the operator started, and reports failures as counters, never throws.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 25;
  int sessions = 1;
  int messages = 1;
  double time_limit_s = 60;
  int size = 1000;
  bool reuse = false;
  std::string from = "sender@bench.example";
  std::string to = "rcpt@example.net";
  int watch_pid = 0;
  int sample_ms = 50;
};

// One blocking SMTP connection with a small line reader.
class Connection {
 public:
  ~Connection() { close(); }
  bool open(const Options& o) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{30, 0};  // a stuck server ends the session instead of hanging the run
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(o.port));
    if (::inet_pton(AF_INET, o.host.c_str(), &sa.sin_addr) != 1) return false;
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return false;
    return reply() / 100 == 2;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  bool is_open() const { return fd_ >= 0; }
  bool send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads a (multi-line) reply; returns its code, or 0 on EOF/timeout/garbage.
  int reply() {
    for (;;) {
      std::string line;
      if (!read_line(line) || line.size() < 3) return 0;
      if (line.size() == 3 || line[3] == ' ') return std::atoi(line.substr(0, 3).c_str());
    }
  }
  int command(const std::string& c) { return send(c) ? reply() : 0; }

 private:
  bool read_line(std::string& line) {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  int fd_ = -1;
  std::string buf_;
};

std::string make_body(const Options& o, int seq) {
  std::string m = "From: <" + o.from + ">\r\nTo: <" + o.to + ">\r\nSubject: bench " +
                  std::to_string(seq) + "\r\nMessage-Id: <" + std::to_string(seq) + "." +
                  std::to_string(::getpid()) + "@bench.example>\r\n\r\n";
  const std::string line = "La la la la la la la la la la la la la la la la la la la la la";
  int left = o.size;
  while (left > 0) {
    int take = std::min<int>(left, static_cast<int>(line.size()));
    m += line.substr(0, static_cast<size_t>(take)) + "\r\n";
    left -= take + 2;
  }
  return m;
}

struct Stats {
  std::mutex mu;
  std::vector<double> latency_ms;  // end of DATA -> final reply, accepted messages only
  std::map<std::string, long> failures;
  void fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    ++failures[what];
  }
};

void run_session(const Options& o, std::atomic<int>& next, Clock::time_point deadline,
                 Stats& stats) {
  Connection c;
  for (;;) {
    if (Clock::now() >= deadline) return;
    int seq = next.fetch_add(1);
    if (seq >= o.messages) return;
    if (!c.is_open()) {
      if (!c.open(o)) {
        stats.fail("connect/greeting");
        c.close();
        continue;
      }
      if (c.command("EHLO load.bench.example\r\n") != 250) {
        stats.fail("EHLO");
        c.close();
        continue;
      }
    }
    int code = c.command("MAIL FROM:<" + o.from + ">\r\n");
    if (code == 250) code = c.command("RCPT TO:<" + o.to + ">\r\n");
    if (code == 250) code = c.command("DATA\r\n");
    if (code != 354) {
      stats.fail("envelope " + std::to_string(code));
      c.close();
      continue;
    }
    if (!c.send(make_body(o, seq))) {
      stats.fail("send body");
      c.close();
      continue;
    }
    auto t0 = Clock::now();
    code = c.command(".\r\n");
    auto t1 = Clock::now();
    if (code != 250) {
      stats.fail("end of data " + std::to_string(code));
      c.close();
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(stats.mu);
      stats.latency_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    if (!o.reuse) {
      c.command("QUIT\r\n");
      c.close();
    }
  }
}

// Memory of a process tree: the root and every descendant alive at sample time.
struct MemoryPeak {
  long sum_rss_kb = 0;  // largest sum of VmRSS over one sample (counts shared pages per process)
  long sum_pss_kb = 0;  // largest sum of Pss over one sample (shared pages divided fairly)
  long max_hwm_kb = 0;  // largest VmHWM of any single process seen
  int max_procs = 0;    // most processes in the tree at once
};

long status_field_kb(const std::string& status, const char* key) {
  auto at = status.find(key);
  return at == std::string::npos ? 0 : std::atol(status.c_str() + at + std::strlen(key));
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int> process_tree(int root) {
  std::map<int, std::vector<int>> children;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string stat = slurp("/proc/" + name + "/stat");
    auto rp = stat.rfind(')');  // comm may contain spaces
    if (rp == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + rp + 1, " %c %d", &state, &ppid) == 2)
      children[ppid].push_back(std::atoi(name.c_str()));
  }
  std::vector<int> tree{root};
  for (size_t i = 0; i < tree.size() && tree.size() < 10000; ++i)
    for (int c : children[tree[i]]) tree.push_back(c);
  return tree;
}

void sample_memory(int root, MemoryPeak& peak) {
  long rss = 0, pss = 0;
  int procs = 0;
  for (int pid : process_tree(root)) {
    std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
    if (status.empty()) continue;
    ++procs;
    rss += status_field_kb(status, "VmRSS:");
    peak.max_hwm_kb = std::max(peak.max_hwm_kb, status_field_kb(status, "VmHWM:"));
    pss += status_field_kb(slurp("/proc/" + std::to_string(pid) + "/smaps_rollup"), "Pss:");
  }
  peak.sum_rss_kb = std::max(peak.sum_rss_kb, rss);
  peak.sum_pss_kb = std::max(peak.sum_pss_kb, pss);
  peak.max_procs = std::max(peak.max_procs, procs);
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

int usage() {
  std::fprintf(stderr,
               "usage: smtp_load --port P [--host 127.0.0.1] [--sessions N] [--messages M]\n"
               "       [--time-limit SECONDS] [--size BYTES] [--reuse] [--from ADDR] [--to ADDR]\n"
               "       [--watch-pid PID] [--sample-ms MS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = std::atoi(value().c_str());
    else if (a == "--sessions")
      o.sessions = std::atoi(value().c_str());
    else if (a == "--messages")
      o.messages = std::atoi(value().c_str());
    else if (a == "--time-limit")
      o.time_limit_s = std::atof(value().c_str());
    else if (a == "--size")
      o.size = std::atoi(value().c_str());
    else if (a == "--reuse")
      o.reuse = true;
    else if (a == "--from")
      o.from = value();
    else if (a == "--to")
      o.to = value();
    else if (a == "--watch-pid")
      o.watch_pid = std::atoi(value().c_str());
    else if (a == "--sample-ms")
      o.sample_ms = std::atoi(value().c_str());
    else
      return usage();
  }
  if (o.port <= 0 || o.sessions <= 0 || o.sessions > 5000 || o.messages <= 0 ||
      o.time_limit_s <= 0 || o.sample_ms <= 0)
    return usage();

  Stats stats;
  MemoryPeak peak;
  std::atomic<bool> done{false};
  std::thread sampler;
  if (o.watch_pid > 0)
    sampler = std::thread([&] {
      while (!done.load()) {
        sample_memory(o.watch_pid, peak);
        std::this_thread::sleep_for(std::chrono::milliseconds(o.sample_ms));
      }
      sample_memory(o.watch_pid, peak);
    });

  std::atomic<int> next{0};
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(o.time_limit_s));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(o.sessions));
  for (int s = 0; s < o.sessions; ++s)
    threads.emplace_back(run_session, std::cref(o), std::ref(next), deadline, std::ref(stats));
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  done = true;
  if (sampler.joinable()) sampler.join();

  const size_t accepted = stats.latency_ms.size();
  long failed = 0;
  std::string failures;
  for (const auto& [what, n] : stats.failures) {
    failed += n;
    failures += (failures.empty() ? "\"" : ", \"") + what + "\": " + std::to_string(n);
  }
  std::vector<double>& l = stats.latency_ms;
  const double p50 = percentile(l, 50), p99 = percentile(l, 99);
  const double max = l.empty() ? 0 : *std::max_element(l.begin(), l.end());
  std::printf(
      "{\"sessions\": %d, \"reuse\": %s, \"size\": %d, \"accepted\": %zu, \"failed\": %ld, "
      "\"failures\": {%s}, \"elapsed_s\": %.3f, \"msgs_per_s\": %.1f, \"p50_ms\": %.3f, "
      "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"peak_sum_rss_kb\": %ld, \"peak_sum_pss_kb\": %ld, "
      "\"max_hwm_kb\": %ld, \"max_procs\": %d}\n",
      o.sessions, o.reuse ? "true" : "false", o.size, accepted, failed, failures.c_str(), elapsed,
      elapsed > 0 ? static_cast<double>(accepted) / elapsed : 0.0, p50, p99, max, peak.sum_rss_kb,
      peak.sum_pss_kb, peak.max_hwm_kb, peak.max_procs);
  return accepted > 0 ? 0 : 1;
}
