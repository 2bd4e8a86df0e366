// smtpguard scan: finds copies of SMTP, SES and AWS credentials (and of our
// own vault credentials, by keyed fingerprint) in files and git history.
// Its exit codes are those of a linter (0 clean, 1 findings, 2 error), not
// sysexits, so the command parses its own arguments: a usage error is 2 too.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "cli/scan_support.hpp"
#include "scan/scan.hpp"

namespace sg::cli {
namespace {

constexpr int kClean = 0, kFound = 1, kError = 2;

struct ScanArgs {
  std::vector<std::string> paths;
  std::string format = "text";
  std::string baseline, write_baseline, max_file_size = "256MiB";
  bool verify = false, follow_symlinks = false, git = false, no_vault = false;
  unsigned jobs = 0;
};

std::string rules_list() {
  std::string out;
  for (const auto& r : scan::rules())
    out += fmt::format("  {:<28} {:<8} {}\n", r.id, scan::to_string(r.severity), r.description);
  return out;
}

void make_parser(CLI::App& p, ScanArgs& a) {
  p.name("smtpguard scan");
  p.description(
      "Find copies of SMTP, Amazon SES and AWS credentials in files: web roots, backups,\n"
      ".env files, configuration, SQL dumps, logs and (with --git) git history. Copies of\n"
      "smtpguard's own vault credentials are found by keyed fingerprint, also base64- and\n"
      "URL-encoded, without this process ever holding them.");
  p.add_option("paths", a.paths, "Files and directories to scan")->required()->type_name("PATH");
  p.add_option("--format", a.format, "Output: text (default), json (one object per line), sarif")
      ->check(CLI::IsMember({"text", "json", "sarif"}));
  p.add_option("--baseline", a.baseline, "Suppress the findings recorded in FILE")
      ->type_name("FILE");
  p.add_option("--write-baseline", a.write_baseline,
               "Record the fingerprints of all current findings in FILE (no secrets)")
      ->type_name("FILE");
  p.add_flag("--verify", a.verify,
             "Try each found username/password whose SMTP host is known (EHLO, STARTTLS, AUTH,\n"
             "QUIT; never sends mail; one attempt per credential, at most one a second)");
  p.add_option("--jobs", a.jobs, "Scanning threads (default: all cores)")
      ->check(CLI::Range(1u, 1024u));
  p.add_option("--max-file-size", a.max_file_size,
               "Skip larger files with a warning (default 256MiB; e.g. 50MB, 1GiB)")
      ->type_name("SIZE");
  p.add_flag("--follow-symlinks", a.follow_symlinks,
             "Follow symbolic links, also out of the tree (each file is still read once)");
  p.add_flag("--git", a.git,
             "Also read every blob reachable from any ref of each .git directory found");
  p.add_flag("--no-vault", a.no_vault, "Do not look for copies of the vault's own credentials");
  p.footer("Rules (id, severity before context, what it finds):\n" + rules_list() +
           "\n"
           "Placeholders (your_smtp_password, changeme, ${VAR}, empty values) are not findings.\n"
           "A SES password next to an access key id or an SMTP setting is reported with more\n"
           "confidence. Secrets are always redacted (at most the first and last two characters).\n"
           "\n"
           "Own credentials: unless --no-vault, a child process unseals the vault named by the\n"
           "configuration (root only, as for `vault list`), sends back keyed digests of every\n"
           "current and previous credential and exits. A copy found anywhere is the critical\n"
           "finding \"ACTIVE credential exposed\". When the vault cannot be opened, one warning\n"
           "says so and the scan goes on.\n"
           "\n"
           "Walking: directories are read in parallel; binary files (a NUL byte in the first\n"
           "8 KiB) and files over --max-file-size are skipped with a warning, as are unreadable\n"
           "files, symbolic links out of the tree and symlink loops; odd names (not UTF-8,\n"
           "control characters) are scanned and warned about, shown with \\xHH, \\n escapes.\n"
           ".git directories are skipped unless --git; their findings are named\n"
           "PATH/.git:COMMIT:FILE after the oldest commit holding the blob. Nothing is modified\n"
           "(files are opened read-only, without updating access times where permitted).\n"
           "\n"
           "Output: text groups findings by file (LINE:COL RULE SEVERITY REDACTED - fix) and\n"
           "ends with a summary; json writes one object per finding on stdout and warnings as\n"
           "objects on stderr; sarif writes one SARIF 2.1.0 log for code-scanning tools.\n"
           "Warnings go to stderr; progress too, only when stderr is a terminal.\n"
           "\n"
           "--verify needs the SMTP host next to the credential (port 587 unless one is found;\n"
           "465 means implicit TLS). TLS is always verified against the system trust store\n"
           "(SSL_CERT_FILE overrides it). Verdicts: live (login accepted), dead (refused with\n"
           "5xx), unknown (anything else).\n"
           "\n"
           "Exit status: 0 nothing found, 1 findings (after the baseline), 2 error, including\n"
           "usage errors (unlike other smtpguard commands, which use sysexits codes).\n"
           "\n"
           "Examples:\n"
           "  smtpguard scan /var/www /etc/exim4 /home/*/public_html\n"
           "  smtpguard scan --git --format sarif . > smtpguard.sarif\n"
           "  smtpguard scan --write-baseline accepted.json /srv && "
           "smtpguard scan --baseline accepted.json /srv");
}

void progress_line(std::uint64_t files, std::uint64_t bytes) {
  std::cerr << fmt::format("\r\033[Kscanning: {} files, {:.1f} MB", files, bytes / 1e6)
            << std::flush;
}

void print_warnings(const std::vector<scan::Warning>& warnings, bool json,
                    scan_support::Summary& summary) {
  for (const auto& w : warnings) {
    if (w.message == "skipped: binary") {
      ++summary.binary_skipped;  // images and archives: a count, not a line each
      continue;
    }
    if (json) {
      std::cerr << nlohmann::json({{"warning", w.message}, {"path", w.path}})
                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
    } else {
      std::cerr << "smtpguard: warning: " << w.path << ": " << w.message << "\n";
    }
  }
}

int run_scan(const Globals& globals, const ScanArgs& a) {
  scan::WalkOptions wo;
  wo.jobs = a.jobs;
  wo.follow_symlinks = a.follow_symlinks;
  wo.git = a.git;
  auto size = config::parse_size(a.max_file_size);
  if (!size) return fail(kError, "--max-file-size: " + size.error().message);
  wo.max_file_size = *size;

  scan::OwnSecrets own;
  if (!a.no_vault) {
    auto cfg = load_config(globals);
    std::string note;
    if (!cfg) {
      note = cfg.error().message;
    } else if (auto got = scan_support::vault_fingerprints(*cfg, note)) {
      own = std::move(*got);
    }
    if (!note.empty())
      std::cerr << "smtpguard: warning: own credentials not checked (" << note << ")\n";
  }
  auto scanner = scan::Scanner::create(std::move(own));
  if (!scanner) return fail(kError, scanner.error().message);

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (tty) wo.progress = progress_line;
  std::vector<std::filesystem::path> roots(a.paths.begin(), a.paths.end());
  auto walked = scan::walk(*scanner, roots, wo);
  if (tty) std::cerr << "\r\033[K" << std::flush;
  if (!walked) return fail(kError, walked.error().message);

  scan_support::Summary summary;
  summary.files = walked->files_scanned;
  summary.bytes = walked->bytes_scanned;
  print_warnings(walked->warnings, a.format == "json", summary);
  if (a.format == "json" && summary.binary_skipped > 0)
    std::cerr << nlohmann::json({{"skipped_binary", summary.binary_skipped}}).dump() << "\n";

  std::vector<scan::Finding> findings = std::move(walked->findings);
  if (!a.write_baseline.empty()) {
    if (auto r = scan_support::write_baseline(a.write_baseline, findings); !r)
      return fail(kError, r.error().message);
  }
  if (!a.baseline.empty()) {
    auto accepted = scan_support::read_baseline(a.baseline);
    if (!accepted) return fail(kError, accepted.error().message);
    auto kept = std::remove_if(findings.begin(), findings.end(), [&](const scan::Finding& f) {
      return accepted->count(f.fingerprint) > 0;
    });
    summary.suppressed = static_cast<std::size_t>(findings.end() - kept);
    findings.erase(kept, findings.end());
  }

  std::map<std::size_t, scan_support::Verdict> verdicts;
  if (a.verify) verdicts = scan_support::verify(findings, scan_support::VerifyOptions{});

  if (a.format == "json") {
    scan_support::write_json_lines(std::cout, findings, verdicts);
  } else if (a.format == "sarif") {
    scan_support::write_sarif(std::cout, findings, verdicts);
  } else {
    scan_support::write_text(std::cout, findings, verdicts, summary);
  }
  std::cout.flush();
  if (!std::cout) return fail(kError, "cannot write the report to stdout");
  return findings.empty() ? kClean : kFound;
}

// CLI11 hands over the words after "scan" untouched; this parser owns them.
int parse_and_run(const Globals& globals, std::vector<std::string> words) {
  CLI::App parser;
  ScanArgs args;
  make_parser(parser, args);
  std::reverse(words.begin(), words.end());  // CLI11 takes a vector back to front
  try {
    parser.parse(words);
  } catch (const CLI::CallForHelp&) {
    std::cout << parser.help();
    return kClean;
  } catch (const CLI::ParseError& e) {
    std::cerr << "smtpguard: scan: " << e.what() << "\n"
              << "Run 'smtpguard scan --help' for usage.\n";
    return kError;
  }
  return run_scan(globals, args);
}

}  // namespace

void add_scan_command(CLI::App& app, Globals& globals) {
  auto* cmd = app.add_subcommand(
      "scan", "Find leaked SMTP/SES/AWS credentials in files (see: smtpguard scan --help)");
  cmd->prefix_command();  // every word after "scan" goes to parse_and_run, --help too
  cmd->set_help_flag();
  cmd->allow_extras();
  cmd->callback([cmd, &globals] { globals.exit_code = parse_and_run(globals, cmd->remaining()); });
}

}  // namespace sg::cli
