// `smtpguard integrate php`: a 99-smtpguard.ini drop-in in every
// DIR/VERSION/SAPI/conf.d (Debian's layout, also used by the sury.org
// packages), reloading the php-fpm and Apache services that read them.
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/file.hpp"
#include "base/text.hpp"
#include "integrate/mta.hpp"

namespace sg::integrate {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t kMaxEntries = 1000;  // directory entries looked at per level

struct Target {
  std::string version, sapi;
  fs::path conf_d, file;
};

bool version_name(const std::string& s) {
  auto dot = s.find('.');
  auto digits = [](std::string_view d) {
    return !d.empty() && d.size() < 4 &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return dot != std::string::npos && digits(std::string_view(s).substr(0, dot)) &&
         digits(std::string_view(s).substr(dot + 1));
}

std::vector<fs::path> sorted_dirs(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  std::size_t seen = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end && seen++ < kMaxEntries;
       it.increment(ec))
    if (it->is_directory(ec)) out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Target> find_targets(const fs::path& php_dir) {
  std::vector<Target> out;
  for (const auto& v : sorted_dirs(php_dir)) {
    if (!version_name(v.filename().string())) continue;
    for (const auto& s : sorted_dirs(v)) {
      std::error_code ec;
      if (!fs::is_directory(s / "conf.d", ec)) continue;
      out.push_back({v.filename().string(), s.filename().string(), s / "conf.d",
                     s / "conf.d" / std::string(kPhpDropinName)});
    }
  }
  return out;
}

bool sets_sendmail_path(const fs::path& file) {
  auto text = read_file(file, 1u << 20);
  if (!text) return false;
  for (auto line : split(*text, '\n')) {
    line = trim(line);
    if (line.starts_with("sendmail_path") || line.find("[sendmail_path]") != line.npos) return true;
  }
  return false;
}

// Settings that would win over the drop-in: later conf.d files, fpm pools.
std::vector<std::string> overrides(const Target& t) {
  std::vector<std::string> out;
  std::error_code ec;
  std::vector<fs::path> files;
  std::size_t seen = 0;
  for (fs::directory_iterator it(t.conf_d, ec), end; !ec && it != end && seen++ < kMaxEntries;
       it.increment(ec))
    if (it->path().filename().string() > kPhpDropinName && it->path().extension() == ".ini")
      files.push_back(it->path());
  const fs::path pools = t.conf_d.parent_path() / "pool.d";
  seen = 0;
  for (fs::directory_iterator it(pools, ec), end; !ec && it != end && seen++ < kMaxEntries;
       it.increment(ec))
    if (it->path().extension() == ".conf") files.push_back(it->path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files)
    if (sets_sendmail_path(f)) out.push_back(f.string());
  return out;
}

// The services that read a SAPI's conf.d, when they run under systemd.
std::string unit_for(const Target& t) {
  if (t.sapi == "fpm") return "php" + t.version + "-fpm";
  if (t.sapi == "apache2") return "apache2";
  return "";
}

// Reloads the active units among `units`; returns an error naming the first failure.
Result<void> reload_units(std::vector<std::string> units, std::ostream& out) {
  std::sort(units.begin(), units.end());
  units.erase(std::unique(units.begin(), units.end()), units.end());
  if (units.empty()) return {};
  auto systemctl = find_program("systemctl");
  if (!systemctl) {
    out << "systemctl not found: reload these yourself: ";
    for (const auto& u : units) out << u << " ";
    out << "\n";
    return {};
  }
  for (const auto& u : units) {
    auto active = run_program({systemctl->string(), "is-active", "--quiet", u});
    if (!active || !active->ok()) continue;
    auto r = run_program({systemctl->string(), "reload", u});
    if (!r) return r.error();
    if (!r->ok())
      return make_error(Errc::temp_failure, "systemctl reload " + u + " failed: " + r->summary() +
                                                " (the drop-ins stay in place)");
    out << "reloaded " << u << "\n";
  }
  return {};
}

// Host and port apps should use: the first loopback listener.
std::pair<std::string, std::uint16_t> smtp_endpoint(const config::Config& cfg) {
  std::pair<std::string, std::uint16_t> first{"127.0.0.1", 2525};
  bool have_first = false;
  for (const auto& entry : cfg.relay.listen) {
    auto a = config::parse_listen_address(entry);
    if (!a) continue;
    if (config::is_loopback_host(a->host)) return {a->host, a->port};
    if (!have_first) first = {a->host, a->port}, have_first = true;
  }
  return first;
}

}  // namespace

Result<void> integrate_php(const config::Config& cfg, const PhpOptions& o, std::ostream& out) {
  auto command = php_sendmail_command(o.binary, o.config_path);
  if (!command) return command.error();
  const auto targets = find_targets(o.php_dir);
  if (targets.empty())
    return make_error(Errc::not_found, "no PHP configuration under " + o.php_dir.string() +
                                           " (looked for " + o.php_dir.string() +
                                           "/VERSION/SAPI/conf.d)");
  const std::string text = render_php_dropin(*command);
  std::vector<std::string> units;
  std::size_t changed = 0;
  for (const auto& t : targets) {
    auto current = read_file(t.file, 1u << 20);
    struct stat st {};
    const bool exists = ::lstat(t.file.c_str(), &st) == 0;
    if (o.undo) {
      if (!exists) continue;
      if (!current || !current->starts_with(kPhpDropinMarker)) {
        out << "left " << t.file.string() << " alone: not written by smtpguard\n";
        continue;
      }
      ++changed;
      if (o.dry_run) {
        out << "would remove " << t.file.string() << "\n";
        continue;
      }
      std::error_code ec;
      if (!fs::remove(t.file, ec) && ec)
        return make_error(Errc::io, t.file.string() + ": " + ec.message());
      out << "removed " << t.file.string() << "\n";
    } else {
      const bool same =
          current && *current == text && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644;
      for (const auto& f : overrides(t))
        out << "warning: " << f << " also sets sendmail_path and wins over " << t.file.string()
            << "\n";
      if (same) continue;
      ++changed;
      if (o.dry_run) {
        out << "would write " << t.file.string() << " (PHP " << t.version << " " << t.sapi << ")\n";
        continue;
      }
      if (auto r = write_file_atomic(t.file, text, 0644); !r) return r;
      out << "wrote " << t.file.string() << " (PHP " << t.version << " " << t.sapi << ")\n";
    }
    if (auto u = unit_for(t); !u.empty()) units.push_back(u);
  }
  if (o.dry_run) {
    out << (changed ? "dry run: nothing changed\n" : "nothing to change\n");
    return {};
  }
  if (changed == 0)
    out << (o.undo ? "no smtpguard drop-ins to remove\n"
                   : "every PHP version and SAPI already uses smtpguard; nothing changed\n");
  // Services read /etc/php; a tree elsewhere (a chroot, a test) is not theirs to reload.
  std::error_code ec;
  if (fs::weakly_canonical(o.php_dir, ec) == "/etc/php") {
    if (auto r = reload_units(units, out); !r) return r;
  } else if (!units.empty()) {
    out << "not reloading services: " << o.php_dir.string() << " is not /etc/php\n";
  }
  if (o.undo) return {};
  if (cfg.source.empty())
    out << "warning: smtpguard runs on its embedded defaults here; PHP's sendmail will look for\n"
           "  /etc/smtpguard/smtpguard.toml (or the defaults, state under ./smtpguard-state)\n";
  auto [host, port] = smtp_endpoint(cfg);
  out << "\n" << php_smtp_instructions(host, port, *command);
  return {};
}

}  // namespace sg::integrate
