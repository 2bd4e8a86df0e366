// `smtpguard integrate postfix`: install (render, back up, identity, map,
// postmap, main.cf, check, reload; roll back on any failure) and --undo.
// Backups: STATE_DIR/backups/postfix-TIME/ holds the files as they were
// before the first integration (main.cf, the map and its .db if they
// existed), main.cf.installed (what we last wrote) and manifest.json. At
// most one backup per config dir is active; --undo restores it and renames
// it to ...undone, so repeated runs never lose the original files.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/file.hpp"
#include "base/random.hpp"
#include "base/text.hpp"
#include "integrate/mta.hpp"
#include "policy/policy.hpp"

namespace sg::integrate {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t kMaxDbSize = 16u << 20;

struct Paths {
  fs::path dir, main_cf, map, db;
};

Paths paths_for(const fs::path& config_dir) {
  std::error_code ec;
  Paths p;
  p.dir = fs::weakly_canonical(config_dir, ec);
  if (ec) p.dir = fs::absolute(config_dir);
  p.main_cf = p.dir / "main.cf";
  if (auto real = fs::canonical(p.main_cf, ec); !ec) p.main_cf = real;  // a symlinked main.cf
  p.map = p.dir / std::string(kPostfixMapName);
  p.db = p.dir / (std::string(kPostfixMapName) + ".db");
  return p;
}

// ---- the files as they are now, to put back on failure --------------------------------------

struct FileCopy {
  bool exists = false;
  mode_t mode = 0600;
  Secret bytes;
};

Result<FileCopy> snapshot_file(const fs::path& path) {
  FileCopy copy;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return copy;
  auto bytes = read_secret_file(path, kMaxDbSize);
  if (!bytes) return bytes.error();
  copy.exists = true;
  copy.mode = st.st_mode & 07777;
  copy.bytes = std::move(bytes).value();
  return copy;
}

Result<void> restore_file(const fs::path& path, const FileCopy& copy) {
  if (copy.exists) return write_file_atomic(path, copy.bytes.view(), copy.mode);
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return make_error(Errc::io, path.string() + ": " + ec.message());
  return {};
}

struct Snapshot {
  FileCopy main_cf, map, db;
};

Result<Snapshot> snapshot(const Paths& p) {
  Snapshot s;
  const std::pair<const fs::path*, FileCopy*> files[] = {
      {&p.main_cf, &s.main_cf}, {&p.map, &s.map}, {&p.db, &s.db}};
  for (auto [path, copy] : files) {
    auto got = snapshot_file(*path);
    if (!got) return got.error();
    *copy = std::move(got).value();
  }
  return s;
}

Result<void> restore(const Paths& p, const Snapshot& s) {
  const std::pair<const fs::path*, const FileCopy*> files[] = {
      {&p.main_cf, &s.main_cf}, {&p.map, &s.map}, {&p.db, &s.db}};
  for (auto [path, copy] : files)
    if (auto r = restore_file(*path, *copy); !r) return r;
  return {};
}

// ---- backups ------------------------------------------------------------------------------------

fs::path backups_dir(const config::Config& cfg) {
  return cfg.relay.state_dir / "backups";
}

Result<nlohmann::json> read_manifest(const fs::path& backup) {
  auto text = read_file(backup / "manifest.json", 1u << 16);
  if (!text) return text.error();
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("config_dir"))
    return make_error(Errc::corrupt, (backup / "manifest.json").string() + ": not a manifest");
  return json;
}

// The active (not undone) backup of `dir`, if any; the oldest wins.
std::optional<fs::path> active_backup(const config::Config& cfg, const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> found;
  for (fs::directory_iterator it(backups_dir(cfg), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("postfix-", 0) != 0 || name.ends_with(".undone")) continue;
    auto m = read_manifest(it->path());
    if (m && (*m)["config_dir"] == dir.string()) found.push_back(it->path());
  }
  if (found.empty()) return std::nullopt;
  std::sort(found.begin(), found.end());
  return found.front();
}

Result<void> write_manifest(const fs::path& backup, const nlohmann::json& m) {
  return write_file_atomic(backup / "manifest.json", m.dump(2) + "\n", 0600);
}

Result<fs::path> create_backup(const config::Config& cfg, const Paths& p, const Snapshot& s) {
  // The state directory as the client store would make it, if this comes first.
  if (auto r = ensure_directory(cfg.relay.state_dir, 0750); !r) return r.error();
  if (auto r = ensure_directory(backups_dir(cfg), 0700); !r) return r.error();
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  fs::path dir;
  for (int i = 0; i < 100 && dir.empty(); ++i) {
    std::string name = "postfix-";
    name += stamp;
    if (i > 0) name += '-' + std::to_string(i);
    fs::path candidate = backups_dir(cfg) / name;
    if (::mkdir(candidate.c_str(), 0700) == 0)
      dir = candidate;
    else if (errno != EEXIST)
      return make_error(Errc::io, errno_message("mkdir", candidate));
  }
  if (dir.empty()) return make_error(Errc::conflict, "cannot name a backup directory");
  const std::pair<const char*, const FileCopy*> files[] = {
      {"main.cf", &s.main_cf}, {"smtpguard_sasl", &s.map}, {"smtpguard_sasl.db", &s.db}};
  for (auto [name, copy] : files)
    if (copy->exists)
      if (auto r = write_file_atomic(dir / name, copy->bytes.view(), 0600); !r) return r.error();
  nlohmann::json m = {{"kind", "postfix"},
                      {"config_dir", p.dir.string()},
                      {"main_cf", p.main_cf.string()},
                      {"main_cf_mode", s.main_cf.mode},
                      {"map_existed", s.map.exists},
                      {"map_mode", s.map.mode},
                      {"db_existed", s.db.exists},
                      {"db_mode", s.db.mode},
                      {"created_identity", false}};
  if (auto r = write_manifest(dir, m); !r) return r.error();
  return dir;
}

// ---- the identity -------------------------------------------------------------------------------

Secret generate_password() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  Secret out(32);
  for (std::size_t i = 0; i < out.size();) {
    unsigned char byte = 0;
    random_bytes(&byte, 1);
    if (byte >= 248) continue;  // 4 * 62: keep the choice uniform
    out.data()[i++] = static_cast<unsigned char>(kAlphabet[byte % 62]);
  }
  return out;
}

enum class IdentityAction { reuse, create, new_password };

struct IdentityPlan {
  IdentityAction action = IdentityAction::reuse;
  Secret password;
};

Result<IdentityPlan> plan_identity(const config::Config& cfg, const policy::ClientStore& store,
                                   const std::optional<Secret>& map_password) {
  auto stored = store.load();
  if (!stored) return stored.error();
  auto table = policy::IdentityTable::build(cfg, *stored);
  if (!table) return table.error();
  const std::string name(kPostfixIdentity);
  IdentityPlan plan;
  const policy::Identity* id = table->find(name);
  if (id && map_password && table->authenticate(name, *map_password) != nullptr) {
    plan.password = map_password->clone();
    return plan;
  }
  bool in_store = false;
  for (const auto& c : stored->clients) in_store = in_store || c.name == name;
  if (id && !in_store)
    return make_error(Errc::conflict, "identity 'postfix' is defined in " + cfg.source.string() +
                                          " and its password is not in the map; remove its "
                                          "[[client]] table and run this again");
  if (id && id->kind != policy::AuthKind::password)
    return make_error(Errc::conflict,
                      "identity 'postfix' is not a password identity; remove it (smtpguard "
                      "client rm postfix) and run this again");
  plan.action = id ? IdentityAction::new_password : IdentityAction::create;
  plan.password = generate_password();
  return plan;
}

Result<void> apply_identity(const config::Config& cfg, policy::ClientStore& store,
                            const IdentityPlan& plan, const std::vector<std::string>& senders) {
  if (plan.action == IdentityAction::new_password)
    return store.set_password(kPostfixIdentity, plan.password);
  if (plan.action != IdentityAction::create) return {};
  config::Client c;
  c.name = std::string(kPostfixIdentity);
  c.auth = "password";
  c.allowed_senders = senders;
  auto hash = policy::hash_password(plan.password);
  if (!hash) return hash.error();
  c.password_hash = std::move(hash).value();
  if (auto v = policy::validate_client(c); !v) return v.error();
  return store.add(std::move(c), [&cfg](const policy::StoredClients& s) -> Result<void> {
    auto table = policy::IdentityTable::build(cfg, s);
    if (!table) return table.error();
    return {};
  });
}

// ---- Postfix's own programs ---------------------------------------------------------------------

Result<void> run_ok(const std::vector<std::string>& argv, mode_t umask_value = 022) {
  auto r = run_program(argv, std::chrono::seconds(60), umask_value);
  if (!r) return r.error();
  if (!r->ok())
    return make_error(Errc::temp_failure, fs::path(argv[0]).filename().string() + " " +
                                              argv.back() + " failed: " + r->summary());
  return {};
}

// `postfix check`, or postconf when the postfix command is not there; then
// the values Postfix itself reads must be the ones we set.
Result<void> check_postfix(const Paths& p, const std::vector<MainCfSetting>& expect) {
  auto postconf = find_program("postconf");
  if (!postconf) return make_error(Errc::not_found, "postconf not found; is Postfix installed?");
  if (auto postfix = find_program("postfix")) {
    if (auto r = run_ok({postfix->string(), "-c", p.dir.string(), "check"}); !r) return r;
  } else if (auto r = run_ok({postconf->string(), "-c", p.dir.string(), "-n"}); !r) {
    return r;
  }
  if (expect.empty()) return {};
  std::vector<std::string> argv = {postconf->string(), "-c", p.dir.string(), "-h"};
  for (const auto& s : expect) argv.push_back(s.name);
  auto r = run_program(argv);
  if (!r) return r.error();
  std::vector<std::string> got;
  for (auto line : split(r->output, '\n'))
    if (!line.empty() && line.find("warning:") == std::string_view::npos)
      got.emplace_back(trim(line));
  for (std::size_t i = 0; i < expect.size(); ++i)
    if (i >= got.size() || got[i] != expect[i].value)
      return make_error(Errc::config, "postconf reads " + expect[i].name + " = " +
                                          (i < got.size() ? got[i] : "(nothing)") + " from " +
                                          p.main_cf.string() + ", not " + expect[i].value);
  return {};
}

// Reloads a running Postfix; says what it did.
Result<std::string> reload_postfix(const Paths& p) {
  if (auto postfix = find_program("postfix")) {
    auto status = run_program({postfix->string(), "-c", p.dir.string(), "status"});
    if (!status || !status->ok()) return std::string("Postfix is not running; nothing reloaded");
    if (auto r = run_ok({postfix->string(), "-c", p.dir.string(), "reload"}); !r) return r.error();
    return std::string("reloaded Postfix");
  }
  auto systemctl = find_program("systemctl");
  if (systemctl && p.dir == "/etc/postfix") {
    auto active = run_program({systemctl->string(), "is-active", "--quiet", "postfix"});
    if (active && active->ok()) {
      if (auto r = run_ok({systemctl->string(), "reload", "postfix"}); !r) return r.error();
      return std::string("reloaded Postfix (systemctl)");
    }
  }
  return std::string("Postfix is not running; nothing reloaded");
}

// Puts `before` back and says what happened, for an error message.
std::string roll_back(const Paths& p, const Snapshot& before) {
  auto r = restore(p, before);
  if (!r) return "; ROLLBACK FAILED: " + r.error().message;
  auto reloaded = reload_postfix(p);
  return std::string("; restored the previous files") +
         (reloaded ? "" : " (reloading them failed: " + reloaded.error().message + ")");
}

Result<void> install(const config::Config& cfg, const PostfixOptions& o, const Paths& p,
                     std::ostream& out);
Result<void> undo(const config::Config& cfg, const PostfixOptions& o, const Paths& p,
                  std::ostream& out);

}  // namespace

Result<void> integrate_postfix(const config::Config& cfg, const PostfixOptions& options,
                               std::ostream& out) {
  const Paths p = paths_for(options.config_dir);
  std::error_code ec;
  if (!fs::exists(p.main_cf, ec))
    return make_error(Errc::not_found,
                      p.main_cf.string() + ": not found (is Postfix installed? see --config-dir)");
  return options.undo ? undo(cfg, options, p, out) : install(cfg, options, p, out);
}

namespace {

Result<void> install(const config::Config& cfg, const PostfixOptions& o, const Paths& p,
                     std::ostream& out) {
  auto relayhost = postfix_relayhost(cfg);
  if (!relayhost) return relayhost.error();
  auto before = snapshot(p);
  if (!before) return before.error();
  const std::string old_text(before->main_cf.bytes.view());
  auto entries = parse_main_cf(old_text, p.main_cf.string());
  if (!entries) return entries.error();
  const auto settings = postfix_settings(*entries, *relayhost, p.map, cfg.relay.tls.has_value());
  auto edit = edit_main_cf(old_text, settings, p.main_cf.string());
  if (!edit) return edit.error();

  auto store = policy::ClientStore::open(cfg.relay.state_dir);
  if (!store) return store.error();
  std::optional<Secret> map_password;
  if (before->map.exists)
    map_password = sasl_map_password(before->map.bytes.view(), *relayhost, kPostfixIdentity);
  auto plan = plan_identity(cfg, *store, map_password);
  if (!plan) return plan.error();
  const Secret map_text = render_sasl_map(*relayhost, kPostfixIdentity, plan->password);
  const bool map_changed =
      !before->map.exists || !before->map.bytes.equals(map_text) || before->map.mode != 0600;
  // postmap again when the .db is missing, older than the map, or readable by others.
  auto mtime = [](const fs::path& path) {
    struct stat st = {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_mtime : -1;
  };
  const bool db_stale = !before->db.exists || mtime(p.db) < mtime(p.map) || before->db.mode != 0600;
  const bool need_postmap = map_changed || db_stale;

  if (!edit->changed() && !need_postmap && plan->action == IdentityAction::reuse) {
    out << "Postfix already relays through smtpguard (relayhost = " << *relayhost
        << "); nothing changed\n";
    return {};
  }
  if (o.dry_run) {
    out << render_main_cf_diff(*edit, p.main_cf.string());
    if (plan->action == IdentityAction::create)
      out << "would create the identity 'postfix' with a random password\n";
    if (plan->action == IdentityAction::new_password)
      out << "would give the identity 'postfix' a new random password\n";
    if (need_postmap)
      out << "would write " << p.map.string()
          << " (identity 'postfix', mode 0600) and run postmap\n";
    out << "would check the configuration and reload Postfix (dry run: nothing changed)\n";
    return {};
  }
  auto postmap = find_program("postmap");
  if (need_postmap && !postmap)
    return make_error(Errc::not_found, "postmap not found; is Postfix installed?");
  if (!find_program("postconf"))
    return make_error(Errc::not_found, "postconf not found; is Postfix installed?");

  // Back up the originals once; later runs keep that backup.
  auto backup = active_backup(cfg, p.dir);
  bool new_backup = false;
  if (!backup) {
    auto made = create_backup(cfg, p, *before);
    if (!made) return made.error();
    backup = *made;
    new_backup = true;
  }
  auto fail = [&](const Error& e, bool created_identity) -> Error {
    std::string msg = e.message + roll_back(p, *before);
    if (created_identity)
      if (auto r = store->remove(kPostfixIdentity); !r) msg += "; " + r.error().message;
    if (new_backup) {
      std::error_code ec;
      fs::remove_all(*backup, ec);
    }
    return make_error(e.code, msg);
  };
  if (auto r = apply_identity(cfg, *store, *plan, o.allowed_senders); !r)
    return fail(r.error(), false);
  const bool created = plan->action == IdentityAction::create;
  if (created) {
    auto m = read_manifest(*backup);
    if (!m) return fail(m.error(), true);
    (*m)["created_identity"] = true;
    if (auto r = write_manifest(*backup, *m); !r) return fail(r.error(), true);
  }
  if (need_postmap) {
    if (auto r = write_file_atomic(p.map, map_text.view(), 0600); !r)
      return fail(r.error(), created);
    if (::geteuid() == 0 && ::chown(p.map.c_str(), 0, 0) != 0)
      return fail(make_error(Errc::io, errno_message("chown", p.map)), created);
    if (auto r = run_ok({postmap->string(), "-c", p.dir.string(), "hash:" + p.map.string()}, 077);
        !r)
      return fail(r.error(), created);
    if (::chmod(p.db.c_str(), 0600) != 0)
      return fail(make_error(Errc::io, errno_message("chmod", p.db)), created);
  }
  if (edit->changed())
    if (auto r = write_file_atomic(p.main_cf, edit->text, before->main_cf.mode); !r)
      return fail(r.error(), created);
  if (auto r = check_postfix(p, settings); !r) return fail(r.error(), created);
  auto reloaded = reload_postfix(p);
  if (!reloaded) return fail(reloaded.error(), created);
  if (auto r = write_file_atomic(*backup / "main.cf.installed", edit->text, 0600); !r)
    return fail(r.error(), created);

  out << render_main_cf_diff(*edit, p.main_cf.string());
  if (created) out << "created the identity 'postfix' (its password is only in the map)\n";
  if (plan->action == IdentityAction::new_password)
    out << "gave the identity 'postfix' a new password\n";
  if (need_postmap) out << "wrote " << p.map.string() << " and " << p.db.string() << " (0600)\n";
  out << "Postfix relays through smtpguard at " << *relayhost << "; " << *reloaded << "\n"
      << "backup: " << backup->string() << " (undo: smtpguard integrate postfix --undo)\n";
  if (created && o.allowed_senders.empty())
    out << "note: 'postfix' may not send anything yet: give it senders with\n"
           "  smtpguard client rm postfix && smtpguard integrate postfix --allowed-sender "
           "'*@example.com'\n";
  auto old_maps = main_cf_value(*entries, "smtp_sasl_password_maps");
  if (old_maps && !old_maps->empty() && *old_maps != "hash:" + p.map.string())
    out << "note: the previous smtp_sasl_password_maps (" << *old_maps
        << ") may still hold the upstream secret in plain text; see `smtpguard import --scrub`\n";
  return {};
}

Result<void> undo(const config::Config& cfg, const PostfixOptions& o, const Paths& p,
                  std::ostream& out) {
  auto backup = active_backup(cfg, p.dir);
  if (!backup)
    return make_error(Errc::not_found, "nothing to undo: no backup of " + p.dir.string() +
                                           " under " + backups_dir(cfg).string());
  auto m = read_manifest(*backup);
  if (!m) return m.error();
  auto before = snapshot(p);
  if (!before) return before.error();
  auto installed = read_file(*backup / "main.cf.installed");
  if (installed && *installed != before->main_cf.bytes.view() && !o.force)
    return make_error(Errc::conflict, p.main_cf.string() +
                                          " changed since `integrate postfix` wrote it; "
                                          "--force restores the backup anyway");
  Snapshot original;
  auto load = [&](const char* name, bool existed, const char* mode_key,
                  FileCopy& into) -> Result<void> {
    if (!existed) return {};
    auto got = snapshot_file(*backup / name);
    if (!got) return got.error();
    if (!got->exists) return make_error(Errc::not_found, (*backup / name).string() + ": missing");
    into = std::move(got).value();
    into.mode = (*m).value(mode_key, 0600u);
    return {};
  };
  if (auto r = load("main.cf", true, "main_cf_mode", original.main_cf); !r) return r;
  if (auto r = load("smtpguard_sasl", m->value("map_existed", false), "map_mode", original.map); !r)
    return r;
  if (auto r = load("smtpguard_sasl.db", m->value("db_existed", false), "db_mode", original.db); !r)
    return r;
  const bool remove_identity = m->value("created_identity", false);
  const std::string diff = render_main_cf_diff(
      line_diff(before->main_cf.bytes.view(), original.main_cf.bytes.view()), p.main_cf.string());
  if (o.dry_run) {
    out << diff << "would restore " << p.main_cf.string() << " and "
        << (original.map.exists ? "restore " : "remove ") << p.map.string() << " from "
        << backup->string() << "\n";
    if (remove_identity) out << "would remove the identity 'postfix'\n";
    out << "dry run: nothing changed\n";
    return {};
  }
  if (auto r = restore(p, original); !r)
    return make_error(r.error().code, r.error().message + roll_back(p, *before));
  if (auto r = check_postfix(p, {}); !r)
    return make_error(r.error().code, r.error().message + roll_back(p, *before));
  auto reloaded = reload_postfix(p);
  if (!reloaded)
    return make_error(reloaded.error().code, reloaded.error().message + roll_back(p, *before));
  out << diff << "restored " << p.main_cf.string() << " from " << backup->string() << "; "
      << *reloaded << "\n";
  if (remove_identity) {
    auto store = policy::ClientStore::open(cfg.relay.state_dir);
    auto r = store ? store->remove(kPostfixIdentity) : Result<void>(store.error());
    if (r)
      out << "removed the identity 'postfix'\n";
    else if (r.error().code != Errc::not_found)
      out << "warning: could not remove the identity 'postfix': " << r.error().message << "\n";
  }
  std::error_code ec;
  fs::rename(*backup, backup->string() + ".undone", ec);
  if (ec) return make_error(Errc::io, backup->string() + ": cannot mark undone: " + ec.message());
  return {};
}

}  // namespace
}  // namespace sg::integrate
