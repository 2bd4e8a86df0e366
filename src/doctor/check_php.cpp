// PHP's sendmail_path: every PHP configuration (Debian's /etc/php/V/SAPI,
// RHEL's /etc/php.ini + php.d, cPanel's ea-php and /usr/local/lib/php.ini)
// whose effective value is not smtpguard, and FPM pools that override it.
#include <algorithm>

#include "base/file.hpp"
#include "base/text.hpp"
#include "doctor/doctor.hpp"

namespace sg::doctor {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t kMaxDirEntries = 1000;
constexpr std::string_view kPhpDefault = "/usr/sbin/sendmail -t -i";

fs::path under(const fs::path& root, std::string_view abs) {
  return root / fs::path(abs).relative_path();
}

std::vector<fs::path> sorted(const fs::path& dir, bool dirs, std::string_view ext) {
  std::vector<fs::path> out;
  std::error_code ec;
  std::size_t seen = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end && seen++ < kMaxDirEntries;
       it.increment(ec)) {
    std::error_code tec;
    if (dirs ? it->is_directory(tec) : (it->is_regular_file(tec) && it->path().extension() == ext))
      out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct PhpConfig {
  std::string label;  // "PHP 8.2 fpm", "cPanel ea-php81"
  fs::path ini;       // the main php.ini (may not exist)
  fs::path scan_dir;  // conf.d / php.d (may not exist)
  fs::path pool_dir;  // FPM pool.d, empty if none
};

std::vector<PhpConfig> find_configs(const fs::path& root) {
  std::vector<PhpConfig> out;
  for (const auto& v : sorted(under(root, "/etc/php"), true, "")) {
    const std::string version = v.filename().string();  // "8.2", as integrate php wants
    if (version.empty() || version.front() < '0' || version.front() > '9') continue;
    for (const auto& s : sorted(v, true, "")) {
      std::error_code ec;
      if (!fs::exists(s / "php.ini", ec) && !fs::is_directory(s / "conf.d", ec)) continue;
      PhpConfig c{"PHP " + v.filename().string() + " " + s.filename().string(),
                  s / "php.ini",
                  s / "conf.d",
                  {}};
      if (fs::is_directory(s / "pool.d", ec)) c.pool_dir = s / "pool.d";
      out.push_back(std::move(c));
    }
  }
  std::error_code ec;
  if (fs::exists(under(root, "/etc/php.ini"), ec))
    out.push_back(
        {"PHP (/etc/php.ini)", under(root, "/etc/php.ini"), under(root, "/etc/php.d"), {}});
  for (const auto& ea : sorted(under(root, "/opt/cpanel"), true, "")) {
    if (!ea.filename().string().starts_with("ea-php")) continue;
    const fs::path etc = ea / "root/etc";
    if (!fs::exists(etc / "php.ini", ec)) continue;
    PhpConfig c{"cPanel " + ea.filename().string(), etc / "php.ini", etc / "php.d", {}};
    if (fs::is_directory(etc / "php-fpm.d", ec)) c.pool_dir = etc / "php-fpm.d";
    out.push_back(std::move(c));
  }
  if (fs::exists(under(root, "/usr/local/lib/php.ini"), ec))
    out.push_back({"PHP (/usr/local/lib/php.ini)", under(root, "/usr/local/lib/php.ini"), {}, {}});
  return out;
}

// The program sendmail_path runs is smtpguard (by name or through a link).
bool is_smtpguard(const fs::path& root, const std::string& command) {
  auto words = split(trim(command), ' ');
  if (words.empty() || words.front().empty()) return false;
  const fs::path program(std::string(words.front()));
  if (program.filename().string().find("smtpguard") != std::string::npos) return true;
  std::error_code ec;
  auto target = fs::read_symlink(root / program.relative_path(), ec);
  return !ec && target.filename().string().find("smtpguard") != std::string::npos;
}

const std::string kFix =
    "smtpguard integrate php (a conf.d/99-smtpguard.ini drop-in in every PHP version and SAPI: "
    "sendmail_path = \"/usr/bin/smtpguard sendmail -t -i\"), or set sendmail_path to that by "
    "hand; remove later settings that override it";

}  // namespace

std::vector<Finding> check_php_sendmail(const fs::path& root) {
  std::vector<Finding> out;
  for (const auto& c : find_configs(root)) {
    std::optional<std::string> value;
    fs::path source;
    std::vector<fs::path> files{c.ini};
    if (!c.scan_dir.empty())
      for (auto& f : sorted(c.scan_dir, false, ".ini")) files.push_back(f);
    for (const auto& f : files) {
      auto text = read_file(f, 4u << 20);
      if (!text) continue;
      if (auto v = ini_sendmail_path(*text)) value = *v, source = f;
    }
    const std::string effective = value ? *value : std::string(kPhpDefault);
    if (!is_smtpguard(root, effective))
      out.push_back({"php-sendmail-path", Severity::medium,
                     c.label + ": PHP mail() does not go through smtpguard",
                     value ? source.string() + " sets sendmail_path = " + *value
                           : "sendmail_path is not set in " + c.ini.string() +
                                 " or its scan directory: PHP runs " + std::string(kPhpDefault),
                     kFix});
    if (c.pool_dir.empty()) continue;
    for (const auto& pool : sorted(c.pool_dir, false, ".conf")) {
      auto text = read_file(pool, 4u << 20);
      if (!text) continue;
      auto v = ini_sendmail_path(*text, true);
      if (v && !is_smtpguard(root, *v))
        out.push_back({"php-sendmail-path", Severity::medium,
                       c.label + ": an FPM pool overrides sendmail_path",
                       pool.string() + " sets sendmail_path = " + *v, kFix});
    }
  }
  return out;
}

}  // namespace sg::doctor
