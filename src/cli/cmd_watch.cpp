// `smtpguard watch exim-log FILE [--follow]`: reads Exim's main log for mail
// that never passes through the relay, runs the anomaly detectors over it
// (per authenticated user, local user, script directory and client address)
// and prints their actions as they fire; without --follow, a summary at the
// end. --follow keeps reading what is appended, across logrotate (rename and
// a new file, or copytruncate).
#include <fcntl.h>
#include <fmt/core.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "monitor/exim_log.hpp"
#include "monitor/exim_log_detect.hpp"
#include "monitor/observation_pipe.hpp"

namespace sg::cli {
namespace {

using monitor::exim::EximLogReader;
using monitor::exim::Observation;
using monitor::exim::ObservationPipe;

struct WatchArgs {
  std::string file, format = "text";
  bool follow = false, from_end = false, no_detect = false;
  int poll_ms = 250;
  int top = 20;
};

volatile sig_atomic_t g_stop = 0;
extern "C" void on_stop(int) {
  g_stop = 1;
}

std::string iso_time(std::int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class Printer {
 public:
  explicit Printer(bool json) : json_(json) {}
  void action(const monitor::Action& a) {
    if (json_) {
      auto j = monitor::to_json(a);
      j["type"] = "action";
      out(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      out(fmt::format("{} {} {}: {}", iso_time(a.time), config::to_string(a.action), a.detector,
                      a.message));  // the message names the subject
    }
  }
  void auth_failure(const Observation& o) {
    if (json_) {
      nlohmann::json j = {{"type", "auth_failure"},
                          {"time", o.time},
                          {"remote", std::string(o.source)},
                          {"user", std::string(o.sender)}};
      out(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      out(fmt::format("{} auth-failure remote {} user {}", iso_time(o.time),
                      o.source.empty() ? "-" : o.source, o.sender.empty() ? "-" : o.sender));
    }
  }
  void out(const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
  }

 private:
  bool json_;
};

// CPUs this process may run on (taskset, cgroup cpusets).
int cpus_available() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

// Reads `fd` to its end into the reader (or until SIGINT/SIGTERM: a file
// read is not interrupted, so the flag is checked between reads); false on
// a read error.
bool drain(int fd, EximLogReader& reader, std::vector<char>& buf, std::uint64_t& offset) {
  for (;;) {
    if (g_stop) return true;
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      if (g_stop) return true;
      continue;
    }
    if (n < 0) return false;
    if (n == 0) return true;
    offset += static_cast<std::uint64_t>(n);
    reader.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  }
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void print_summary(const WatchArgs& a, const EximLogReader& reader, std::uint64_t bytes,
                   std::size_t actions) {
  using Identity = EximLogReader::Identity;
  std::vector<const Identity*> who, sources;
  std::uint64_t auth_failures = 0, failing_sources = 0;
  for (const auto& id : reader.identities()) {
    if (id.name.starts_with("ip:")) {
      sources.push_back(&id);
      auth_failures += id.counts.auth_failures;
      failing_sources += id.counts.auth_failures != 0;
    } else {
      who.push_back(&id);
    }
  }
  auto busiest = [](const Identity* x, const Identity* y) {
    auto kx = x->counts.messages + x->counts.auth_failures;
    auto ky = y->counts.messages + y->counts.auth_failures;
    return kx != ky ? kx > ky : x->name < y->name;
  };
  std::sort(who.begin(), who.end(), busiest);
  std::sort(sources.begin(), sources.end(), busiest);
  const std::size_t top = static_cast<std::size_t>(a.top);
  if (a.format == "json") {
    auto rows = [&](const std::vector<const Identity*>& v) {
      nlohmann::json out = nlohmann::json::array();
      for (std::size_t i = 0; i < v.size() && i < top; ++i) {
        const auto& c = v[i]->counts;
        out.push_back({{"identity", v[i]->name},
                       {"messages", c.messages},
                       {"recipients", c.recipients},
                       {"deliveries", c.deliveries},
                       {"deferrals", c.deferrals},
                       {"bounces", c.bounces},
                       {"auth_failures", c.auth_failures},
                       {"bytes", c.bytes},
                       {"first", c.first},
                       {"last", c.last}});
      }
      return out;
    };
    nlohmann::json j = {{"type", "summary"},
                        {"file", a.file},
                        {"bytes", bytes},
                        {"lines", reader.lines()},
                        {"unparsed", reader.unparsed()},
                        {"identities", rows(who)},
                        {"sources", rows(sources)},
                        {"auth_failures", auth_failures},
                        {"auth_failure_sources", failing_sources},
                        {"actions", actions}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  fmt::print("{}: {} lines ({} not Exim log lines), {} bytes, {} detector actions\n", a.file,
             reader.lines(), reader.unparsed(), bytes, actions);
  auto table = [&](const char* title, const std::vector<const Identity*>& v) {
    fmt::print("\n{:<44} {:>9} {:>10} {:>10} {:>9} {:>8} {:>9}\n", title, "messages", "recipients",
               "deliveries", "deferrals", "bounces", "auth-fail");
    for (std::size_t i = 0; i < v.size() && i < top; ++i) {
      const auto& c = v[i]->counts;
      std::string name = v[i]->name;
      if (name.size() > 44) name = name.substr(0, 41) + "...";
      fmt::print("{:<44} {:>9} {:>10} {:>10} {:>9} {:>8} {:>9}\n", name, c.messages, c.recipients,
                 c.deliveries, c.deferrals, c.bounces, c.auth_failures);
    }
    if (v.size() > top) fmt::print("... and {} more\n", v.size() - top);
  };
  table("identity", who);
  table("top sources", sources);
  fmt::print("\nAUTH failures: {} from {} addresses\n", auth_failures, failing_sources);
}

int run_watch(const config::Config& cfg, const WatchArgs& a) {
  int fd = ::open(a.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return fail(e == ENOENT   ? EX_NOINPUT
                : e == EACCES ? EX_NOPERM
                              : EX_IOERR,
                a.file + ": " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(EX_NOINPUT, a.file + ": not a regular file");
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  Printer printer(a.format == "json");
  monitor::exim::DetectorFeed feed(cfg.detect);
  std::vector<monitor::Action> fired;
  std::size_t actions = 0;
  auto judge = [&](const Observation& o) {
    feed.observe(o, fired);
    for (const auto& act : fired) printer.action(act);
    actions += fired.size();
    fired.clear();
  };
  // A whole file, with two CPUs free: the detectors judge on a second
  // thread while this one reads and parses. Following stays on one thread
  // (it waits for Exim far more than it works).
  std::unique_ptr<ObservationPipe> pipe;
  if (!a.follow && !a.no_detect && cpus_available() >= 2) {
    // The judging thread blocks SIGINT and SIGTERM, so they reach this one
    // (which stops reading and prints what it has).
    sigset_t stop_signals, before;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &stop_signals, &before);
    pipe = std::make_unique<ObservationPipe>(judge);
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }
  EximLogReader reader([&](const Observation& o) {
    if (a.follow && o.what == Observation::What::auth_failure && o.identity.starts_with("ip:"))
      printer.auth_failure(o);
    if (a.no_detect) return;
    if (pipe)
      pipe->push(o);
    else
      judge(o);
  });

  std::uint64_t offset = 0, bytes = 0;
  if (a.from_end && a.follow) {
    offset = static_cast<std::uint64_t>(st.st_size);
    ::lseek(fd, static_cast<off_t>(offset), SEEK_SET);
  }
  std::vector<char> buf(1u << 16);
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  for (;;) {
    std::uint64_t before = offset;
    if (!drain(fd, reader, buf, offset)) {
      int e = errno;
      ::close(fd);
      return fail(EX_IOERR, a.file + ": " + std::strerror(e));
    }
    bytes += offset - before;
    std::fflush(stdout);
    if (!a.follow || g_stop) break;
    struct timespec ts {
      a.poll_ms / 1000, (a.poll_ms % 1000) * 1000000L
    };
    ::nanosleep(&ts, nullptr);
    if (g_stop) break;
    struct stat now {
    }, named{};
    if (::fstat(fd, &now) == 0 && static_cast<std::uint64_t>(now.st_size) < offset) {
      // copytruncate: the same file, shorter than what we read.
      ::lseek(fd, 0, SEEK_SET);
      offset = 0;
      reader.reset_partial();
      continue;
    }
    if (::stat(a.file.c_str(), &named) == 0 && !same_file(named, now)) {
      // Rotated: the old file's last lines first, then the new file.
      int nfd = ::open(a.file.c_str(), O_RDONLY | O_CLOEXEC);
      if (nfd < 0) continue;  // not there after all; next poll
      before = offset;
      (void)drain(fd, reader, buf, offset);
      bytes += offset - before;
      reader.finish();
      ::close(fd);
      fd = nfd;
      offset = 0;
    }
  }
  ::close(fd);
  reader.finish();
  if (pipe) pipe->finish();  // every action printed before the summary
  if (!a.follow) print_summary(a, reader, bytes, actions);
  std::fflush(stdout);
  return EX_OK;
}

}  // namespace

void add_watch_commands(CLI::App& app, Globals& globals) {
  auto* watch = app.add_subcommand("watch", "Watch mail that bypasses the relay");
  watch->require_subcommand(1);
  auto args = std::make_shared<WatchArgs>();
  auto* cmd = watch->add_subcommand(
      "exim-log", "Run the anomaly detectors over Exim's main log and summarise it");
  cmd->add_option("FILE", args->file,
                  "Exim main log (e.g. /var/log/exim4/mainlog, "
                  "/var/log/exim_mainlog)")
      ->required();
  cmd->add_flag("--follow,-f", args->follow,
                "Keep reading what Exim appends, across logrotate (rename or copytruncate)");
  cmd->add_flag("--from-end", args->from_end, "With --follow: start at the end of FILE");
  cmd->add_flag("--no-detect", args->no_detect, "Count and summarise only; run no detectors");
  cmd->add_option("--format", args->format, "text or json (JSON lines)")
      ->check(CLI::IsMember({"text", "json"}))
      ->default_str("text");
  cmd->add_option("--poll-ms", args->poll_ms, "With --follow: check FILE this often")
      ->check(CLI::Range(10, 5000))
      ->default_str("250");
  cmd->add_option("--top", args->top, "Rows per summary table")
      ->check(CLI::Range(1, 100000))
      ->default_str("20");
  cmd->footer(
      "Understands Exim 4.9x main logs as Debian and cPanel write them (any\n"
      "log_selector; +millisec, +pid and log_timezone prefixes included). Each arrival\n"
      "(<=) counts for its identities: auth:USER (A=authenticator:USER), user:NAME (U=\n"
      "of a local submission), cwd:DIR (the submitting script's directory, from the\n"
      "cwd= line that log_selector +arguments adds) and ip:ADDR (the SMTP client).\n"
      "Deliveries (=> ->), deferrals (==) and bounces (**) count for the identities of\n"
      "their message; 'authenticator failed' lines for the client address and the\n"
      "user name tried. The detectors ([detect.*] in the configuration) run on the\n"
      "log's own clock, so a log replays to the same actions; each action is one\n"
      "line (\"TIME ACTION DETECTOR: message\", or a JSON object). The\n"
      "watcher only reports: it holds and blocks nothing in Exim.\n"
      "Without --follow, a summary follows: per identity messages, recipients,\n"
      "deliveries, deferrals, bounces and AUTH failures, then the top client\n"
      "addresses; SIGINT or SIGTERM stops the reading early, and the summary then\n"
      "covers what was read. With --follow, each AUTH failure is printed as it is\n"
      "read, and SIGINT or SIGTERM ends the run. Without --follow, the detectors\n"
      "run on a second thread when two CPUs are available (taskset -c 0 keeps\n"
      "everything on one).\n"
      "Exit: 0 done, 64 usage, 66 FILE missing, 74 read error, 77 permission,\n"
      "78 configuration.");
  cmd->callback([&globals, args] {
    auto cfg = load_config(globals);
    if (!cfg) {
      globals.exit_code = fail(cfg.error());
      return;
    }
    globals.exit_code = run_watch(*cfg, *args);
  });
}

}  // namespace sg::cli
