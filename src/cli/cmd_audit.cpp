// `smtpguard audit verify FILE...` checks the audit log's hash chain
// (monitor/audit_chain.hpp) across rotated files; `audit tail` prints the
// last lines. Both only read.
#include <fcntl.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/cli.hpp"
#include "monitor/audit_chain.hpp"

namespace sg::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kChunk = 1u << 20;

// One argument that is a directory (its audit.jsonl) or a base path with
// rotated files next to it means the whole series, oldest first:
// BASE.N ... BASE.1, BASE. Several arguments are taken as given.
std::vector<fs::path> files_to_check(const std::vector<std::string>& args) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (args.size() != 1) {
    for (const auto& a : args) files.emplace_back(a);
    return files;
  }
  fs::path base = args[0];
  if (fs::is_directory(base, ec)) base /= "audit.jsonl";
  std::size_t n = 0;
  while (n < 100000 && fs::exists(base.string() + "." + std::to_string(n + 1), ec)) ++n;
  for (std::size_t k = n; k >= 1; --k) files.emplace_back(base.string() + "." + std::to_string(k));
  if (fs::exists(base, ec) || files.empty()) files.push_back(base);
  return files;
}

// Feeds every line of `path` to `v`; an error only for I/O.
Result<void> feed_file(const fs::path& path, monitor::ChainVerifier& v) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(errno == ENOENT ? Errc::not_found : Errc::io,
                      "cannot read " + path.string() + ": " + std::strerror(errno));
  std::string carry, buf(kChunk, '\0');
  bool skipping = false;  // inside a line too long to be a record
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return make_error(Errc::io, "cannot read " + path.string() + ": " + std::strerror(e));
    }
    if (n == 0) break;
    std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
    while (!chunk.empty()) {
      auto nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        if (!skipping) carry.append(chunk);
        if (carry.size() > monitor::kMaxRecordBytes) {
          v.feed(carry);  // refused as too long; the rest of it is skipped
          carry.clear();
          skipping = true;
        }
        break;
      }
      if (!skipping) {
        carry.append(chunk.substr(0, nl));
        v.feed(carry);
      }
      carry.clear();
      skipping = false;
      chunk.remove_prefix(nl + 1);
    }
  }
  ::close(fd);
  if (!carry.empty()) v.feed(carry, false);
  return {};
}

int verify(const std::vector<std::string>& args) {
  std::vector<fs::path> files = files_to_check(args);
  monitor::ChainVerifier v;
  for (std::size_t i = 0; i < files.size(); ++i) {
    v.begin_file(i);
    if (auto r = feed_file(files[i], v); !r) return fail(r.error());
  }
  if (auto b = v.result()) {
    std::cout << "BROKEN: " << files[b->file].string() << " line " << b->line << ": " << b->what
              << "\n";
    return 1;
  }
  std::cout << "OK: " << v.lines() << " lines in " << files.size()
            << (files.size() == 1 ? " file" : " files");
  if (v.lines() > 0) {
    std::cout << ", seq " << v.first_seq() << ".." << v.last_seq();
    if (!v.from_start()) std::cout << " (older lines were rotated away)";
  }
  std::cout << "; hash chain intact\n";
  return EX_OK;
}

int tail(const Globals& globals, std::string file, std::size_t n) {
  if (file.empty()) {
    auto cfg = load_config(globals);
    if (!cfg) return fail(cfg.error());
    file = cfg->monitor.audit_log.string();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(EX_NOINPUT, "cannot read " + file + ": " + std::strerror(errno));
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(std::move(line));
    if (last.size() > n) last.pop_front();
  }
  for (const auto& l : last) std::cout << l << "\n";
  return EX_OK;
}

}  // namespace

void add_audit_commands(CLI::App& app, Globals& globals) {
  auto* audit = app.add_subcommand("audit", "Check and read the tamper-evident audit log");
  audit->require_subcommand(1);

  auto files = std::make_shared<std::vector<std::string>>();
  auto* v = audit->add_subcommand(
      "verify", "Check the hash chain of audit log files (exit 0 intact, 1 broken)");
  v->add_option("FILE", *files,
                "Audit log files, oldest first; or one directory or base path (STATE_DIR, "
                "STATE_DIR/audit.jsonl) meaning audit.jsonl.N ... audit.jsonl.1, audit.jsonl")
      ->required();
  v->footer(
      "Each line carries \"seq\" (1, 2, 3 ... across rotated files) and \"prev\", the\n"
      "BLAKE2b-256 hash of the line before it (64 zeros for the first line of a new log).\n"
      "verify reports the first line where the chain breaks and why: a changed line (the\n"
      "next line's prev does not match), deleted lines (seq jumps), reordered lines, a\n"
      "truncated last line, or files that do not continue each other.\n"
      "Limits: a change to the very last line cannot be detected from the file alone\n"
      "(nothing follows it; keep a copy of the last line elsewhere, e.g. audit_syslog =\n"
      "true), and whoever can rewrite the whole file can rebuild the chain.\n"
      "Exit codes: 0 intact, 1 broken, 66 a file is missing, 74 read error.");
  v->callback([files, &globals] { globals.exit_code = verify(*files); });

  auto file = std::make_shared<std::string>();
  auto lines = std::make_shared<std::size_t>(10);
  auto* t = audit->add_subcommand("tail", "Print the last lines of the audit log");
  t->add_option("-n,--lines", *lines, "How many lines (default 10)")->check(CLI::Range(1, 100000));
  t->add_option("--file", *file, "The audit log (default: [monitor] audit_log)");
  t->callback([file, lines, &globals] { globals.exit_code = tail(globals, *file, *lines); });
}

}  // namespace sg::cli
