// Plaintext upstream secrets left in Exim, Postfix and msmtp files, found
// with the leak scanner's rules (and our own credentials' fingerprints).
#include <algorithm>
#include <set>

#include "base/file.hpp"
#include "base/text.hpp"
#include "doctor/doctor.hpp"
#include "integrate/import.hpp"
#include "scan/scan.hpp"

namespace sg::doctor {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t kMaxFileSize = 16u << 20;
constexpr std::size_t kMaxDirEntries = 1000;

fs::path under(const fs::path& root, std::string_view abs) {
  return root / fs::path(abs).relative_path();
}

// Entries for the relay on loopback (Exim's passwd.client "127.0.0.1:exim:..."
// written by `integrate exim`) hold a local identity's password, not an
// upstream secret.
bool loopback_entry(std::string_view content, const scan::Finding& f) {
  if (!f.host.empty() && config::is_loopback_host(f.host)) return true;
  if (f.offset > content.size()) return false;
  auto start = content.rfind('\n', f.offset == 0 ? 0 : f.offset - 1);
  start = start == std::string_view::npos ? 0 : start + 1;
  auto line = trim(content.substr(start, f.offset - start));
  if (!line.empty() && line.front() == '[') line.remove_prefix(1);
  return line.starts_with("127.") || line.starts_with("localhost") || line.starts_with("::1");
}

}  // namespace

std::vector<fs::path> mta_files(const fs::path& root) {
  std::set<fs::path> files;
  for (auto& p : integrate::default_locations(root)) files.insert(p);
  std::error_code ec;
  for (const char* p : {"/etc/exim4/exim4.conf.localmacros", "/etc/exim.passwd.client",
                        "/etc/postfix/main.cf", "/etc/postfix/master.cf"})
    if (fs::is_regular_file(under(root, p), ec)) files.insert(under(root, p));
  // Debian split configuration: conf.d/SECTION/FILE.
  std::size_t seen = 0;
  for (fs::directory_iterator d(under(root, "/etc/exim4/conf.d"), ec), end;
       !ec && d != end && seen++ < kMaxDirEntries; d.increment(ec)) {
    std::error_code fec;
    std::size_t n = 0;
    for (fs::directory_iterator f(d->path(), fec), fend; !fec && f != fend && n++ < kMaxDirEntries;
         f.increment(fec))
      if (f->is_regular_file(fec)) files.insert(f->path());
  }
  return {files.begin(), files.end()};
}

std::vector<Finding> check_mta_secrets(const fs::path& root, const scan::Scanner& scanner) {
  std::vector<Finding> out;
  auto scratch = scanner.make_scratch();
  if (!scratch) {
    out.push_back({"mta-scan-failed", Severity::medium, "MTA files could not be scanned",
                   scratch.error().message, "run smtpguard scan /etc"});
    return out;
  }
  for (const auto& path : mta_files(root)) {
    auto text = read_file(path, kMaxFileSize);
    if (!text || text->find('\0') != std::string::npos) continue;
    std::string detail;
    bool own = false;
    for (const auto& f : scanner.scan(*text, path.string(), *scratch)) {
      if (loopback_entry(*text, f)) continue;
      own = own || f.rule_id == "own-credential";
      detail += (detail.empty() ? "" : "\n") +
                ("line " + std::to_string(f.line) + ": " + f.rule_id + " " + f.redacted);
      if (!f.username.empty()) detail += " user " + f.username;
      if (!f.host.empty()) detail += " host " + f.host;
      if (!f.message.empty()) detail += " (" + f.message + ")";
    }
    if (detail.empty()) continue;
    out.push_back(
        {"mta-plaintext-secret", Severity::high,
         (own ? "ACTIVE credential exposed in " : "plaintext upstream secret in ") + path.string(),
         detail,
         "smtpguard import " + path.string() +
             " --scrub (seals it in the vault and removes it from the file), then smtpguard "
             "integrate exim|postfix so the MTA relays through smtpguard; rotate the credential "
             "afterwards, since copies of the file (backups) still hold it"});
  }
  return out;
}

}  // namespace sg::doctor
