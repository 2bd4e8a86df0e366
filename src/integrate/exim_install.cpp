// `integrate exim`: plan the new files and the local identity, check them
// with exim -bV, show a diff, back up, install atomically, reload, roll back;
// and --undo. Where Exim's files are and how they are written:
// exim_target.cpp and exim_files.cpp (exim_internal.hpp).
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "base/file.hpp"
#include "base/random.hpp"
#include "base/text.hpp"
#include "integrate/exim.hpp"
#include "integrate/exim_internal.hpp"
#include "policy/store.hpp"
#include "vault/vault.hpp"

namespace sg::integrate::exim {
namespace fs = std::filesystem;
using namespace detail;  // exim_internal.hpp

namespace {

// ---- the identity ----

struct IdentityPlan {
  bool create = false, set_password = false;
  Secret password;  // what the secret file must hold
};

Secret generate_password() {  // letters and digits: nothing to escape anywhere
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  Secret out(32);
  for (std::size_t i = 0; i < out.size();) {
    unsigned char b = 0;
    random_bytes(&b, 1);
    if (b >= 248) continue;
    out.data()[i++] = static_cast<unsigned char>(kAlphabet[b % 62]);
  }
  return out;
}

// `current`: the local password Exim has now (none: empty).
Result<IdentityPlan> plan_identity(const config::Config& cfg, Secret current) {
  IdentityPlan plan;
  const std::string name(kIdentity);
  for (const auto& c : cfg.clients)
    if (c.name == name)
      return make_error(Errc::config, "client '" + name + "' is defined in " + cfg.source.string() +
                                          "; integrate exim manages its own identity in the store: "
                                          "remove that [[client]] table");
  auto store = policy::ClientStore::open(cfg.relay.state_dir);
  if (!store) return store.error();
  auto stored = store->load();
  if (!stored) return stored.error();
  const config::Client* existing = nullptr;
  for (const auto& c : stored->clients)
    if (c.name == name) existing = &c;
  if (existing && existing->auth != "exim")
    return make_error(Errc::config, "client '" + name + "' exists with auth \"" + existing->auth +
                                        "\"; remove it (smtpguard client rm " + name + ") first");
  if (existing && !current.empty() && !existing->password_hash.empty() &&
      crypto_pwhash_str_verify(existing->password_hash.c_str(), current.view().data(),
                               current.size()) == 0) {
    plan.password = std::move(current);
    return plan;
  }
  plan.create = !existing;
  plan.set_password = existing != nullptr;
  plan.password = generate_password();
  return plan;
}

Result<void> apply_identity(const config::Config& cfg, const IdentityPlan& plan,
                            const Options& opts) {
  if (!plan.create && !plan.set_password) return {};
  auto store = policy::ClientStore::open(cfg.relay.state_dir);
  if (!store) return store.error();
  if (plan.set_password) return store->set_password(kIdentity, plan.password);
  // As `smtpguard client add exim --exim --password-stdin` does.
  config::Client c;
  c.name = std::string(kIdentity);
  c.auth = "exim";
  c.allowed_senders = opts.allowed_senders;
  auto hash = policy::hash_password(plan.password);
  if (!hash) return hash.error();
  c.password_hash = std::move(hash).value();
  if (auto v = policy::validate_client(c); !v) return v.error();
  auto fits = [&cfg](const policy::StoredClients& s) -> Result<void> {
    auto table = policy::IdentityTable::build(cfg, s);
    if (!table) return table.error();
    return {};
  };
  return store->add(c, fits);
}

// ---- the command ----

Result<std::string> edited_config(const Target& t, const Blocks& blocks, const Current& cur) {
  return apply_to_config(cur.content.view(), blocks, t.edit_file.string());
}

struct Plan {
  std::vector<Change> changes;         // only files whose content changes
  std::vector<fs::path> extra_backup;  // files regenerated as a consequence (Debian)
  IdentityPlan identity;
  bool identity_needed = false;
  std::vector<std::string> notes;  // printed before the changes
};

Result<void> add_change(Plan& plan, Change c) {
  auto cur = read_current(c.path);
  if (!cur) return cur.error();
  if (cur->exists && cur->content.view() == c.content.view() &&
      (!c.sensitive ||
       ((cur->st.st_mode & 07777) == 0640 && cur->st.st_gid == c.gid && cur->st.st_uid == 0)))
    return {};
  plan.changes.push_back(std::move(c));
  return {};
}

// Debian split: the conf.d/auth files (without ours), in update-exim4.conf's order.
Result<std::string> debian_auth_text(const Target& t) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(t.confdir / "conf.d/auth", ec), end; !ec && it != end;
       it.increment(ec))
    if (it->is_regular_file() && it->path().filename() != "05_smtpguard")
      files.push_back(it->path());
  std::sort(files.begin(), files.end());
  std::string all;
  for (const auto& f : files) {
    auto text = read_file(f, 16u << 20);
    if (!text) return text.error();
    all += *text + "\n";
  }
  return all;
}

Result<Plan> make_plan(const config::Config& cfg, const Options& opts, const Target& t) {
  Plan plan;
  Blocks blocks;
  bool local_domains = true;
  std::vector<std::string> taken;  // public names of existing client authenticators
  if (!t.edit_file.empty()) {
    auto text = read_file(t.edit_file, 16u << 20);
    if (!text) return text.error();
    local_domains = defines_local_domains(*text);
    taken = client_public_names(*text);
  } else {
    auto auth = debian_auth_text(t);
    if (!auth) return auth.error();
    taken = client_public_names(*auth);
  }
  auto is_taken = [&](std::string_view n) {
    return std::find(taken.begin(), taken.end(), n) != taken.end();
  };
  LocalLogin login = LocalLogin::own_plain;
  if (is_taken("PLAIN"))
    login = is_taken("LOGIN") ? LocalLogin::debian_passwd_client : LocalLogin::own_login;
  if (login == LocalLogin::debian_passwd_client && t.layout != Layout::debian_split &&
      t.layout != Layout::debian_unsplit)
    return make_error(Errc::config,
                      "Exim already has client authenticators for both PLAIN and LOGIN in " +
                          t.edit_file.string() + "; Exim allows one per name");
  if (opts.mode == Mode::smarthost) {
    if (cfg.relay.listen.empty())
      return make_error(Errc::config, "[relay] listen is empty: Exim has nothing to connect to");
    std::uint16_t port = 0;
    for (const auto& l : cfg.relay.listen) {
      auto a = config::parse_listen_address(l);
      if (a && (a->host == "127.0.0.1" || a->host == "localhost" || a->host == "0.0.0.0")) {
        port = a->port;
        break;
      }
    }
    if (port == 0)
      return make_error(Errc::config, "no [relay] listen address on 127.0.0.1 for Exim to use");
    // The relay's password: in our secret file, or Debian's passwd.client.
    Secret current;
    if (login == LocalLogin::debian_passwd_client) {
      auto pc = read_current(t.passwd_client);
      if (!pc) return pc.error();
      if (pc->exists)
        if (auto pw = passwd_client_password(pc->content, "127.0.0.1"))
          current = std::move(pw).value();
    } else {
      auto cur = read_current(t.secret_file);
      if (!cur) return cur.error();
      current = std::move(cur->content);
    }
    auto id = plan_identity(cfg, std::move(current));
    if (!id) return id.error();
    plan.identity = std::move(id).value();
    plan.identity_needed = true;
    blocks = smarthost_blocks({port, t.secret_file.string(), local_domains, login});
    if (login == LocalLogin::debian_passwd_client)
      plan.notes.push_back(
          "Debian's client authenticators take PLAIN and LOGIN, so Exim logs in to the relay "
          "with them: entry 127.0.0.1 in " +
          t.passwd_client.string() +
          ", and AUTH_CLIENT_ALLOW_NOTLS_PASSWORDS so they do without TLS on loopback (any "
          "other entry there may now be sent without TLS too: remove upstream passwords from "
          "it, see `smtpguard import`)");
    if (login == LocalLogin::debian_passwd_client) {
      auto pc = read_current(t.passwd_client);
      if (!pc) return pc.error();
      auto file = render_passwd_client(pc->exists ? pc->content.view() : std::string_view{},
                                       "127.0.0.1", kIdentity, plan.identity.password);
      if (!file)
        return make_error(file.error().code,
                          t.passwd_client.string() + ": " + file.error().message);
      Change c{t.passwd_client, std::move(file).value(), true, 0640, t.gid};
      if (auto r = add_change(plan, std::move(c)); !r) return r.error();
    } else {
      Change s{t.secret_file, plan.identity.password.clone(), true, 0640, t.gid};
      if (auto r = add_change(plan, std::move(s)); !r) return r.error();
    }
  } else {
    const config::Upstream* up = nullptr;
    if (!opts.upstream.empty())
      up = cfg.find_upstream(opts.upstream);
    else if (cfg.upstreams.size() == 1)
      up = &cfg.upstreams.front();
    if (!up)
      return make_error(
          Errc::config,
          opts.upstream.empty()
              ? "passwd-client mode needs exactly one [upstream.NAME] (or --upstream NAME)"
              : "no [upstream." + opts.upstream + "]");
    if (up->credential.empty())
      return make_error(Errc::config, "[upstream." + up->name + "] has no credential");
    auto b = passwd_client_blocks(
        {up->host, up->port, up->tls, up->ca_file, t.passwd_client.string(), local_domains, login});
    if (!b) return b.error();
    blocks = std::move(b).value();
    auto cred = vault::load_credential(cfg, up->credential, vault::KeyOptions{});
    if (!cred) return cred.error();
    auto cur = read_current(t.passwd_client);
    if (!cur) return cur.error();
    auto file = render_passwd_client(cur->exists ? cur->content.view() : std::string_view{},
                                     up->host, cred->username, cred->password);
    if (!file)
      return make_error(file.error().code, t.passwd_client.string() + ": " + file.error().message);
    if (login == LocalLogin::debian_passwd_client &&
        file->view().find(":" + cred->username + ":{base64}") != std::string_view::npos)
      return make_error(
          Errc::unsupported,
          "the upstream password ends in white space or holds a control character: "
          "Debian's authenticators cannot read it from passwd.client (use smarthost mode)");
    Change c{t.passwd_client, std::move(file).value(), true, 0640, t.gid};
    if (auto r = add_change(plan, std::move(c)); !r) return r.error();
  }
  if (t.layout == Layout::debian_split) {
    const std::pair<const char*, const std::string*> parts[] = {
        {"conf.d/main/00_smtpguard", &blocks.main},
        {"conf.d/router/050_smtpguard", &blocks.router},
        {"conf.d/transport/050_smtpguard", &blocks.transport},
        {"conf.d/auth/05_smtpguard", &blocks.auth}};
    for (const auto& [rel, text] : parts) {
      std::error_code ec;
      if (text->empty() && !fs::exists(t.confdir / rel, ec)) continue;
      const std::string body = text->empty() ? "# (smtpguard: nothing in this mode)\n" : *text;
      Change c{t.confdir / rel, Secret::copy_of(body), false, 0644, 0};
      if (auto r = add_change(plan, std::move(c)); !r) return r.error();
    }
  } else {
    auto cur = read_current(t.edit_file);
    if (!cur) return cur.error();
    auto text = edited_config(t, blocks, *cur);
    if (!text) return text.error();
    Change c{t.edit_file, Secret::copy_of(*text), false, 0644, 0};
    if (auto r = add_change(plan, std::move(c)); !r) return r.error();
    if (!t.cpanel_local.empty()) {
      auto local = read_current(t.cpanel_local);
      if (!local) return local.error();
      auto ltext = apply_to_cpanel_local(local->content.view(), blocks, t.cpanel_local.string());
      if (!ltext) return ltext.error();
      Change lc{t.cpanel_local, Secret::copy_of(*ltext), false, 0644, 0};
      if (auto r = add_change(plan, std::move(lc)); !r) return r.error();
    }
  }
  if (t.layout == Layout::debian_split || t.layout == Layout::debian_unsplit)
    plan.extra_backup.push_back(t.run_config);
  return plan;
}

Result<void> install(const Plan& plan, const Target& t) {
  for (const auto& c : plan.changes) {
    std::error_code ec;
    fs::create_directories(c.path.parent_path(), ec);
    struct stat st {};
    mode_t mode = c.mode;
    uid_t uid = 0;
    gid_t gid = c.gid;
    if (!c.sensitive && ::stat(c.path.c_str(), &st) == 0) {
      mode = st.st_mode & 07777;
      uid = st.st_uid;
      gid = st.st_gid;
    }
    if (auto w = write_owned(c.path, c.content.view(), mode, uid, gid); !w) return w;
  }
  if (t.layout == Layout::debian_split || t.layout == Layout::debian_unsplit) {
    std::error_code ec;
    fs::create_directories(t.run_config.parent_path(), ec);
    if (auto u = update_exim4_conf(t.confdir, t.run_config); !u) return u;
    if (auto c = exim_check(t, t.run_config); !c) return c;
  }
  return {};
}

Result<void> remove_identity(const config::Config& cfg, const std::string& name) {
  auto store = policy::ClientStore::open(cfg.relay.state_dir);
  if (!store) return store.error();
  auto r = store->remove(name);
  if (!r && r.error().code != Errc::not_found) return r;
  return {};
}

std::string mode_name(Mode m) {
  return m == Mode::smarthost ? "smarthost" : "passwd-client";
}

Result<void> run_integrate(const config::Config& cfg, const Options& opts, const Target& t) {
  auto plan = make_plan(cfg, opts, t);
  if (!plan) return plan.error();
  std::cout << "Exim: " << layout_name(t.layout) << " ("
            << (t.edit_file.empty() ? t.confdir : t.edit_file).string() << "), mode "
            << mode_name(opts.mode) << "\n";
  for (const auto& n : plan->notes) std::cout << "note: " << n << "\n";
  const bool identity_changes = plan->identity.create || plan->identity.set_password;
  if (plan->changes.empty() && !identity_changes) {
    std::cout << "Exim is already integrated with smtpguard: nothing changed\n";
    return {};
  }
  auto scratch = Scratch::make();
  if (!scratch) return scratch.error();
  if (opts.dry_run) {
    for (const auto& c : plan->changes) {
      auto cur = read_current(c.path);
      if (!cur) return cur.error();
      show_diff(c, *cur, **scratch);
    }
    if (plan->identity.create)
      std::cout << "would add the local identity '" << kIdentity << "' (auth exim)\n";
    if (plan->identity.set_password)
      std::cout << "would set a new password for the identity '" << kIdentity << "'\n";
  }
  if (auto c = check_changes(t, plan->changes, **scratch); !c) {
    return make_error(c.error().code, c.error().message + "; nothing was changed");
  }
  if (opts.dry_run) {
    std::cout << "exim -bV accepts the new configuration; dry run: nothing was changed\n";
    return {};
  }
  std::vector<fs::path> paths;
  for (const auto& c : plan->changes) paths.push_back(c.path);
  for (const auto& p : plan->extra_backup) paths.push_back(p);
  auto backup = make_backup(cfg, paths, t, plan->identity.create ? std::string(kIdentity) : "");
  if (!backup) return backup.error();
  std::cout << "backup of the current files: " << backup->string() << "\n";
  if (auto r = apply_identity(cfg, plan->identity, opts); !r) return r;
  if (plan->identity.create) {
    std::cout << "added the local identity '" << kIdentity << "' (auth exim)\n";
    if (opts.allowed_senders.empty())
      std::cout << "note: no --allowed-sender given, so the relay refuses its mail until you add "
                   "senders\n";
  }
  auto rollback = [&](const Error& e) -> Result<void> {
    auto text = read_file(*backup / "manifest");
    auto m = text ? parse_manifest(*text) : Result<Manifest>(text.error());
    std::string how = "the previous files were put back";
    if (!m)
      how = "the backup cannot be read (" + m.error().message + ")";
    else if (auto r = restore(*backup, *m); !r)
      how = r.error().message;
    else {
      if (plan->identity.create) (void)remove_identity(cfg, std::string(kIdentity));
      std::error_code ec;  // nothing left for --undo to do with this backup
      fs::rename(*backup, backup->string() + ".undone", ec);
    }
    return make_error(e.code, e.message + "; " + how);
  };
  if (auto r = install(*plan, t); !r) return rollback(r.error());
  for (const auto& c : plan->changes) std::cout << "installed " << c.path.string() << "\n";
  auto reloaded = reload(t);
  if (!reloaded) {
    auto e = rollback(reloaded.error());
    (void)reload(t);  // back to the old files
    return e;
  }
  std::cout << *reloaded << "\n";
  return {};
}

Result<fs::path> latest_backup(const config::Config& cfg) {
  std::error_code ec;
  fs::path best;
  for (fs::directory_iterator it(backups_dir(cfg), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with("exim-") || name.ends_with(".undone")) continue;
    if (best.empty() || name > best.filename().string()) best = it->path();
  }
  if (best.empty())
    return make_error(Errc::not_found,
                      "nothing to undo: no Exim backup in " + backups_dir(cfg).string());
  return best;
}

Result<void> run_undo(const config::Config& cfg, const Options& opts, const Target& t) {
  auto dir = latest_backup(cfg);
  if (!dir) return dir.error();
  auto text = read_file(*dir / "manifest");
  if (!text) return text.error();
  auto m = parse_manifest(*text);
  if (!m)
    return make_error(m.error().code, (*dir / "manifest").string() + ": " + m.error().message);
  std::cout << "restoring " << dir->string() << "\n";
  if (opts.dry_run) {
    for (const auto& e : m->files)
      std::cout << "would " << (e.existed ? "restore " : "remove ") << e.path << "\n";
    if (!m->identity_created.empty())
      std::cout << "would remove the identity '" << m->identity_created << "'\n";
    return {};
  }
  if (auto r = restore(*dir, *m); !r) return r;
  for (const auto& e : m->files)
    std::cout << (e.existed ? "restored " : "removed ") << e.path << "\n";
  if (!m->identity_created.empty()) {
    if (auto r = remove_identity(cfg, m->identity_created); !r) return r;
    std::cout << "removed the identity '" << m->identity_created << "'\n";
  }
  fs::path done = *dir;
  done += ".undone";
  std::error_code ec;
  fs::rename(*dir, done, ec);
  auto reloaded = reload(t);
  if (!reloaded)
    return make_error(reloaded.error().code, "files restored, but " + reloaded.error().message);
  std::cout << *reloaded << "\n";
  return {};
}

}  // namespace

Result<void> run(const config::Config& cfg, const Options& opts) {
  if (::geteuid() != 0 && !opts.dry_run)
    return make_error(Errc::permission, "integrate exim changes Exim's files and must run as root");
  auto t = detect(opts);
  if (!t) return t.error();
  return opts.undo ? run_undo(cfg, opts, *t) : run_integrate(cfg, opts, *t);
}

}  // namespace sg::integrate::exim
