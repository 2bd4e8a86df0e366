// smtpguard vault init|set|list|rm|rekey: the sealed credential store.
// Secrets come from the tty (no echo), stdin or --*-passphrase-fd, never argv.
#include <fmt/core.h>
#include <sysexits.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/secret.hpp"
#include "base/secret_input.hpp"
#include "base/text.hpp"
#include "cli/cli.hpp"
#include "cli/rotate_support.hpp"
#include "vault/vault.hpp"

namespace sg::cli {
namespace {

struct VaultArgs {
  int passphrase_fd = -1;
  int new_passphrase_fd = -1;
  bool force = false;
  bool json = false;
  std::string name;
  std::string username;
  std::string upstream_host;
  CLI::Option* upstream_host_opt = nullptr;
};

std::optional<int> fd_arg(int fd) {
  return fd >= 0 ? std::optional<int>(fd) : std::nullopt;
}

vault::KeyOptions key_options(const VaultArgs& a) {
  return {fd_arg(a.passphrase_fd)};
}

bool uses_passphrase(const config::Config& cfg) {
  auto p = vault::paths_for(cfg);
  return p.ok() && p->key.kind == vault::KeySource::Kind::passphrase;
}

CLI::Option* add_passphrase_fd(CLI::App* cmd, VaultArgs& a) {
  return cmd
      ->add_option("--passphrase-fd", a.passphrase_fd,
                   "Read the vault passphrase from this file descriptor (key = \"passphrase\")")
      ->check(CLI::NonNegativeNumber)
      ->default_str("");
}

// Loads the configuration and hardens the process; on failure sets the exit code.
std::optional<config::Config> prepare(Globals& globals) {
  auto cfg = load_config(globals);
  if (!cfg) {
    globals.exit_code = fail(cfg.error());
    return std::nullopt;
  }
  harden_process();
  return std::move(cfg).value();
}

int run_init(const config::Config& cfg, const VaultArgs& a) {
  auto paths = vault::paths_for(cfg);
  if (!paths) return fail(paths.error());
  vault::InitOptions opts;
  opts.force = a.force;
  opts.passphrase_fd = fd_arg(a.passphrase_fd);
  if (auto r = vault::init(cfg, opts); !r) return fail(r.error());
  if (paths->key.kind == vault::KeySource::Kind::file)
    fmt::print("created key file {} (mode 0600)\n", paths->key.arg);
  fmt::print("created empty vault {} (mode 0600)\n", paths->vault.string());
  return EX_OK;
}

int run_set(const config::Config& cfg, const VaultArgs& a) {
  if (!vault::valid_entry_name(a.name))
    return fail(EX_USAGE,
                "invalid entry name '" + a.name + "' (use 1-64 letters, digits, '.', '_', '-')");
  if (uses_passphrase(cfg) && a.passphrase_fd < 0 && !stdin_is_tty())
    return fail(EX_USAGE,
                "the password is read from stdin, so give the vault passphrase with "
                "--passphrase-fd N");
  std::string prompt = "Password for " + a.name + ": ";
  SecretPrompt how;
  how.prompt = prompt;
  how.confirm = true;
  auto password = read_secret(how);
  if (!password) return fail(password.error());
  vault::EntryUpdate update;
  update.name = a.name;
  update.username = a.username;
  if (a.upstream_host_opt->count() > 0) update.upstream_host = a.upstream_host;
  update.password = std::move(password).value();
  auto replaced = vault::set(cfg, std::move(update), key_options(a), unix_now());
  if (!replaced) return fail(replaced.error());
  fmt::print("{} '{}'\n", *replaced ? "updated" : "added", a.name);
  return EX_OK;
}

std::int64_t age_days(const vault::Entry& e, std::int64_t now) {
  return credential_age_days(e.created_at, e.rotated_at, now);
}

// "85 (rotate soon)"; a NAME.previous copy is old by design, so no warning.
std::string age_column(const vault::Entry& e, const config::Config& cfg, std::int64_t now) {
  std::string out = std::to_string(age_days(e, now));
  if (vault::is_previous_entry_name(e.name)) return out + " (kept for rollback)";
  auto note = age_note(age_state(age_days(e, now), cfg.vault));
  if (!note.empty()) out += " (" + std::string(note) + ")";
  return out;
}

int run_list(const config::Config& cfg, const VaultArgs& a) {
  auto contents = vault::open(cfg, key_options(a));
  if (!contents) return fail(contents.error());
  const std::int64_t now = unix_now();
  if (a.json) {
    auto out = nlohmann::json::array();
    for (const auto& e : contents->entries) {
      out.push_back({{"name", e.name},
                     {"username", e.username},
                     {"upstream_host", e.upstream_host},
                     {"created_at", e.created_at},
                     {"rotated_at", e.rotated_at != 0 ? nlohmann::json(e.rotated_at) : nullptr},
                     {"age_days", age_days(e, now)},
                     {"rotation", vault::is_previous_entry_name(e.name)
                                      ? "rollback copy"
                                      : age_state_name(age_state(age_days(e, now), cfg.vault))},
                     {"fingerprint", e.fingerprint},
                     {"previous_fingerprints", e.previous_fingerprints}});
    }
    std::cout << out.dump(2) << "\n";
    return EX_OK;
  }
  std::size_t wn = 4, wu = 8, wh = 13;
  for (const auto& e : contents->entries) {
    wn = std::max(wn, e.name.size());
    wu = std::max(wu, e.username.size());
    wh = std::max(wh, e.upstream_host.size());
  }
  fmt::print("{:<{}}  {:<{}}  {:<{}}  {}\n", "NAME", wn, "USERNAME", wu, "UPSTREAM HOST", wh,
             "AGE (DAYS)");
  for (const auto& e : contents->entries)
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {}\n", e.name, wn, e.username, wu,
               e.upstream_host.empty() ? "-" : e.upstream_host, wh, age_column(e, cfg, now));
  return EX_OK;
}

int run_rm(const config::Config& cfg, const VaultArgs& a) {
  if (auto r = vault::remove(cfg, a.name, key_options(a)); !r) return fail(r.error());
  fmt::print("removed '{}'\n", a.name);
  return EX_OK;
}

int run_rekey(const config::Config& cfg, const VaultArgs& a) {
  if (uses_passphrase(cfg) && !stdin_is_tty() && (a.passphrase_fd < 0 || a.new_passphrase_fd < 0))
    return fail(EX_USAGE,
                "without a terminal, give both --passphrase-fd N and --new-passphrase-fd M");
  vault::RekeyOptions ropts;
  ropts.new_passphrase_fd = fd_arg(a.new_passphrase_fd);
  auto report = vault::rekey(cfg, key_options(a), ropts);
  if (!report) return fail(report.error());
  fmt::print("re-encrypted {} {} under the new key\n", report->entries,
             report->entries == 1 ? "entry" : "entries");
  if (report->dropped_previous_fingerprints > 0)
    std::cerr << "smtpguard: note: dropped " << report->dropped_previous_fingerprints
              << " fingerprints of earlier passwords (they were keyed by the old master key); "
                 "scan for leaked old passwords before a rekey, not after\n";
  return EX_OK;
}

}  // namespace

void add_vault_commands(CLI::App& app, Globals& globals) {
  auto* vault = app.add_subcommand("vault", "Sealed store of upstream SMTP credentials");
  vault->require_subcommand(1);
  auto args = std::make_shared<VaultArgs>();
  using Runner = int (*)(const config::Config&, const VaultArgs&);
  auto bind = [&globals, args](CLI::App* cmd, Runner run) {
    cmd->callback([&globals, args, run] {
      auto cfg = prepare(globals);
      if (!cfg) return;
      globals.exit_code = run(*cfg, *args);
    });
  };

  auto* init = vault->add_subcommand("init",
                                     "Create the master key (for file: keys) and an "
                                     "empty vault");
  init->add_flag("--force", args->force, "Replace an existing key file and vault");
  add_passphrase_fd(init, *args);
  bind(init, run_init);

  auto* set = vault->add_subcommand(
      "set", "Add or update an entry; the password is read from the tty or stdin");
  set->add_option("NAME", args->name, "Entry name (e.g. ses)")->required();
  set->add_option("--username", args->username, "SMTP username")->required();
  args->upstream_host_opt =
      set->add_option("--upstream-host", args->upstream_host, "Upstream host this entry is for");
  add_passphrase_fd(set, *args);
  bind(set, run_set);

  auto* list = vault->add_subcommand("list", "Show entries (never passwords)");
  list->add_flag("--json", args->json, "JSON output");
  add_passphrase_fd(list, *args);
  bind(list, run_list);

  auto* rm = vault->add_subcommand("rm", "Remove an entry");
  rm->add_option("NAME", args->name, "Entry name")->required();
  add_passphrase_fd(rm, *args);
  bind(rm, run_rm);

  auto* rekey =
      vault->add_subcommand("rekey", "Re-encrypt the vault under a new master key or passphrase");
  add_passphrase_fd(rekey, *args);
  rekey
      ->add_option("--new-passphrase-fd", args->new_passphrase_fd,
                   "Read the new passphrase from this file descriptor")
      ->check(CLI::NonNegativeNumber)
      ->default_str("");
  bind(rekey, run_rekey);
}

}  // namespace sg::cli
