// `smtpguard import`: find plaintext upstream credentials, seal the chosen
// ones into the vault, and (with --scrub and a confirmation) take the
// plaintext out of the files, keeping root-only backups.
#include <fmt/core.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/secret.hpp"
#include "base/secret_input.hpp"
#include "base/text.hpp"
#include "cli/cli.hpp"
#include "integrate/import.hpp"
#include "vault/vault.hpp"

namespace sg::cli {
namespace {

namespace fs = std::filesystem;
using integrate::Finding;
using integrate::SourceFile;

struct ImportArgs {
  std::vector<std::string> paths;
  bool scrub = false, yes = false, json = false, force = false;
  std::string select, name, root = "/";
  int passphrase_fd = -1;
};

// A finding with its number in the listing and the file it came from.
struct Item {
  int number = 0;
  SourceFile* file = nullptr;
  Finding* f = nullptr;
  std::string entry;   // vault entry it was sealed into
  std::string action;  // added | replaced | reused | same-as-N
};

Result<std::set<int>> parse_select(std::string_view s) {
  std::set<int> out;
  for (auto part : split(s, ',')) {
    part = trim(part);
    int n = 0;
    bool ok = !part.empty() && part.size() < 6;
    for (char c : part) ok = ok && c >= '0' && c <= '9';
    if (ok) n = std::stoi(std::string(part));
    if (!ok || n < 1) return make_error(Errc::invalid_input, "--select takes numbers like 1,3");
    out.insert(n);
  }
  return out;
}

// Reads one answer line from the terminal (stdin is a tty here).
std::string ask(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  std::string line;
  std::getline(std::cin, line);
  return std::string(trim(line));
}

// Hands the vault a passphrase read once: a fresh pipe per vault call.
class VaultKey {
 public:
  Result<void> prepare(const config::Config& cfg, int passphrase_fd) {
    auto p = vault::paths_for(cfg);
    if (!p) return p.error();
    if (p->key.kind != vault::KeySource::Kind::passphrase) return {};
    SecretPrompt how;
    how.prompt = "Vault passphrase: ";
    if (passphrase_fd >= 0) how.fd = passphrase_fd;
    auto got = read_secret(how);
    if (!got) return make_error(got.error().code, "vault passphrase: " + got.error().message);
    passphrase_ = std::move(got).value();
    have_ = true;
    return {};
  }
  // Options for one vault call; the descriptor is closed by the destructor.
  vault::KeyOptions options() {
    if (!have_) return {};
    int fds[2];
    if (::pipe(fds) != 0) return {};
    (void)!::write(fds[1], passphrase_.data(), passphrase_.size());
    ::close(fds[1]);
    open_.push_back(fds[0]);
    return {fds[0]};
  }
  ~VaultKey() {
    for (int fd : open_) ::close(fd);
  }

 private:
  Secret passphrase_;
  bool have_ = false;
  std::vector<int> open_;
};

bool usable_host(const std::string& h) {
  return !h.empty() && h.find_first_of("*^ \t;,/$") == std::string::npos;
}

void print_listing(const std::vector<Item>& items) {
  for (const auto& it : items) {
    const Finding& f = *it.f;
    fmt::print("{:>3}. {}:{} ({})\n", it.number, it.file->path.string(), f.line, f.kind);
    fmt::print("     host {}  user {}  password {}\n", f.host.empty() ? "-" : f.host,
               f.username.empty() ? "-" : f.username,
               f.importable ? integrate::redact(f.password.view()) : "-");
    if (!f.importable)
      fmt::print("     not importable: {}\n", f.note);
    else if (!f.note.empty())
      fmt::print("     {}\n", f.note);
  }
}

nlohmann::json to_json(const std::vector<Item>& items, const std::vector<std::string>& warnings,
                       const nlohmann::json& scrubbed) {
  auto list = nlohmann::json::array();
  for (const auto& it : items) {
    const Finding& f = *it.f;
    nlohmann::json j = {{"number", it.number},
                        {"file", it.file->path.string()},
                        {"line", f.line},
                        {"kind", f.kind},
                        {"host", f.host},
                        {"username", f.username},
                        {"password", f.importable ? integrate::redact(f.password.view()) : ""},
                        {"importable", f.importable},
                        {"note", f.note}};
    if (!it.entry.empty()) {
      j["entry"] = it.entry;
      j["action"] = it.action;
    }
    list.push_back(std::move(j));
  }
  return {{"findings", list}, {"warnings", warnings}, {"scrubbed", scrubbed}};
}

int run_import(const config::Config& cfg, const ImportArgs& a) {
  if (!a.name.empty() && !vault::valid_entry_name(a.name))
    return fail(EX_USAGE,
                "invalid entry name '" + a.name + "' (use 1-64 letters, digits, '.', '_', '-')");
  std::optional<std::set<int>> select;
  if (!a.select.empty()) {
    auto s = parse_select(a.select);
    if (!s) return fail(EX_USAGE, s.error().message);
    select = std::move(s).value();
  }
  const bool tty = stdin_is_tty() && !a.json;
  if (a.scrub && !a.yes && !tty)
    return fail(EX_USAGE, "--scrub changes files: confirm with --yes when there is no terminal");

  // Read every file first: a bad or missing PATH stops before anything changes.
  std::vector<std::unique_ptr<SourceFile>> files;
  // The files' text holds the plaintext: wipe it however this returns.
  struct WipeTexts {
    std::vector<std::unique_ptr<SourceFile>>& files;
    ~WipeTexts() {
      for (auto& f : files) wipe(f->text.data(), f->text.size());
    }
  } wipe_texts{files};
  std::vector<std::string> warnings;
  if (a.paths.empty()) {
    for (const auto& p : integrate::default_locations(a.root)) {
      auto f = integrate::load_source(p);
      if (f)
        files.push_back(std::make_unique<SourceFile>(std::move(f).value()));
      else if (f.error().code != Errc::invalid_input)
        warnings.push_back(f.error().message);
    }
  } else {
    for (const auto& p : a.paths) {
      auto f = integrate::load_source(p);
      if (!f) return fail(f.error());
      files.push_back(std::make_unique<SourceFile>(std::move(f).value()));
    }
  }
  std::vector<Item> items;
  for (auto& file : files) {
    for (const auto& w : file->parsed.warnings) warnings.push_back(file->path.string() + ": " + w);
    for (auto& f : file->parsed.findings)
      items.push_back(Item{static_cast<int>(items.size()) + 1, file.get(), &f, "", ""});
  }
  for (const auto& w : warnings) std::cerr << "smtpguard: warning: " << w << "\n";
  if (!a.json) {
    if (items.empty()) fmt::print("nothing found ({} files read)\n", files.size());
    print_listing(items);
  }

  // Which ones to seal.
  std::vector<Item*> chosen;
  if (select) {
    for (int n : *select) {
      if (n > static_cast<int>(items.size()))
        return fail(EX_USAGE, fmt::format("--select {}: there are {} findings", n, items.size()));
      if (!items[n - 1].f->importable)
        return fail(EX_USAGE, fmt::format("--select {}: {}", n, items[n - 1].f->note));
      chosen.push_back(&items[n - 1]);
    }
  } else if (a.yes || (tty && !items.empty())) {
    std::string answer = a.yes ? "all" : ask("Seal which into the vault? [all, none, or 1,3]: ");
    if (answer == "all" || answer == "a") {
      for (auto& it : items)
        if (it.f->importable) chosen.push_back(&it);
    } else if (!answer.empty() && answer != "none" && answer != "n") {
      auto s = parse_select(answer);
      if (!s) return fail(EX_USAGE, s.error().message);
      for (int n : *s)
        if (n <= static_cast<int>(items.size()) && items[n - 1].f->importable)
          chosen.push_back(&items[n - 1]);
    }
  } else if (!items.empty() && !a.json) {
    fmt::print("nothing sealed: run again with --select N,... or --yes (no terminal to ask)\n");
  }

  nlohmann::json scrubbed = nlohmann::json::array();
  if (chosen.empty()) {
    if (a.json) std::cout << to_json(items, warnings, scrubbed).dump(2) << "\n";
    return EX_OK;
  }

  // Names: --name or "ses" first, then import-N; the same credential found
  // twice, or already in the vault, is sealed once.
  VaultKey key;
  if (auto r = key.prepare(cfg, a.passphrase_fd); !r) return fail(r.error());
  auto contents = vault::open(cfg, key.options());
  if (!contents) return fail(contents.error());
  std::set<std::string> taken;
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    Item& it = *chosen[i];
    for (std::size_t k = 0; k < i && it.entry.empty(); ++k)
      if (chosen[k]->f->username == it.f->username &&
          chosen[k]->f->password.equals(it.f->password)) {
        it.entry = chosen[k]->entry;
        it.action = fmt::format("same as {}", chosen[k]->number);
      }
    for (const auto& e : contents->entries)
      if (it.entry.empty() && e.username == it.f->username && e.password.equals(it.f->password)) {
        it.entry = e.name;
        it.action = "already in vault";
      }
    if (!it.entry.empty()) continue;
    const std::string first = a.name.empty() ? "ses" : a.name;
    std::string name = taken.count(first) ? fmt::format("import-{}", it.number) : first;
    taken.insert(name);
    if (contents->find(name) != nullptr && !a.force)
      return fail(EX_CANTCREAT, "vault entry '" + name +
                                    "' exists; choose another with --name or replace it with "
                                    "--force");
    it.entry = name;
    it.action = contents->find(name) != nullptr ? "replaced" : "added";
  }
  for (Item* it : chosen) {
    if (it->action != "added" && it->action != "replaced") continue;
    vault::EntryUpdate update;
    update.name = it->entry;
    update.username = it->f->username;
    if (usable_host(it->f->host)) update.upstream_host = it->f->host;
    update.password = it->f->password.clone();
    auto r = vault::set(cfg, std::move(update), key.options(), unix_now());
    if (!r) return fail(r.error());
    if (!a.json)
      fmt::print("{} vault entry '{}' (user {}) from {}\n", it->action, it->entry, it->f->username,
                 it->number);
  }
  for (Item* it : chosen)
    if (!a.json && it->action != "added" && it->action != "replaced")
      fmt::print("{} is vault entry '{}' ({})\n", it->number, it->entry, it->action);

  if (a.scrub) {
    std::map<SourceFile*, std::vector<integrate::Edit>> edits;
    for (Item* it : chosen)
      edits[it->file].push_back(
          {it->f->begin, it->f->end, integrate::scrub_replacement(*it->f, it->entry)});
    const fs::path backups = cfg.relay.state_dir / "backups";
    if (!a.yes) {
      std::string answer = ask(
          fmt::format("Replace the plaintext in {} file(s)? Backups go to {} [y/N]: ", edits.size(),
                      backups.string()));
      if (answer != "y" && answer != "yes") {
        fmt::print("files left unchanged\n");
        return EX_OK;
      }
    }
    for (auto& [file, e] : edits) {
      auto r = integrate::scrub_file(file->path, file->text, std::move(e), backups);
      if (!r) return fail(r.error());
      scrubbed.push_back({{"file", r->file.string()},
                          {"backup", r->backup.string()},
                          {"php_lint", r->php_checked}});
      if (!a.json)
        fmt::print("scrubbed {} (backup {}{})\n", r->file.string(), r->backup.string(),
                   r->php_checked ? ", php -l ok" : "");
      if (file->kind == integrate::SourceKind::postfix_sasl_passwd && !a.json)
        fmt::print("  run: postmap {}  (its .db/.lmdb copy still holds the password)\n",
                   r->file.string());
    }
  }
  if (a.json) std::cout << to_json(items, warnings, scrubbed).dump(2) << "\n";
  return EX_OK;
}

}  // namespace

void add_import_command(CLI::App& app, Globals& globals) {
  auto args = std::make_shared<ImportArgs>();
  auto* cmd = app.add_subcommand(
      "import", "Find plaintext SMTP credentials, seal them in the vault, optionally scrub them");
  cmd->add_option("PATH", args->paths,
                  "Files to read: passwd.client, exim.conf, sasl_passwd, msmtprc, .env, "
                  "wp-config.php, PHPMailer scripts (default: the usual places)");
  cmd->add_flag("--scrub", args->scrub,
                "After sealing, replace the plaintext in the files (asks first; see --yes)");
  cmd->add_flag("--yes", args->yes, "Seal every importable finding and confirm --scrub");
  cmd->add_option("--select", args->select, "Seal only these findings, e.g. 1,3");
  cmd->add_option("--name", args->name,
                  "Vault entry for the first sealed credential (default: ses, then import-N)");
  cmd->add_flag("--force", args->force, "Replace an existing vault entry of the same name");
  cmd->add_flag("--json", args->json, "JSON output (never asks)");
  cmd->add_option("--root", args->root,
                  "Look for the usual files under this directory instead of / (e.g. a mounted "
                  "old server)");
  cmd->add_option("--passphrase-fd", args->passphrase_fd,
                  "Read the vault passphrase from this file descriptor (key = \"passphrase\")")
      ->check(CLI::NonNegativeNumber)
      ->default_str("");
  cmd->footer(
      "Without PATH, reads /etc/exim4/passwd.client, /etc/exim4/exim4.conf(.template),\n"
      "/etc/exim4/conf.d/auth/*, /etc/exim.conf(.local), /etc/postfix/sasl_passwd,\n"
      "/etc/msmtprc and the .msmtprc of root and of users under /home.\n"
      "Passwords are shown redacted. Values computed at run time (Exim expansions,\n"
      "${VAR}, env() calls, msmtp passwordeval) and placeholders are not imported.\n"
      "Without a terminal, nothing is sealed unless --select or --yes says so.\n"
      "--scrub (after a confirmation, or --yes) rewrites each file atomically with\n"
      "its owner and mode kept: PHP strings become '' /* moved to smtpguard vault\n"
      "ENTRY */ (checked with php -l), .env values become empty under a comment, and\n"
      "passwd.client, sasl_passwd, msmtprc and Exim option lines become comments\n"
      "without the password. The original goes to STATE_DIR/backups/ (mode 0600).\n"
      "Exit: 0 listed/imported (also when nothing was found), 64 usage, 65 a PATH\n"
      "that is not a file import knows, 66 missing PATH, 73 vault entry exists.");
  cmd->callback([&globals, args] {
    auto cfg = load_config(globals);
    if (!cfg) {
      globals.exit_code = fail(cfg.error());
      return;
    }
    harden_process();
    globals.exit_code = run_import(*cfg, *args);
  });
}

}  // namespace sg::cli
