// `smtpguard integrate exim`; postfix and php are added by cmd_integrate_mta.cpp.
#include <sysexits.h>

#include <memory>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "integrate/integrate.hpp"

namespace sg::cli {
namespace {

struct EximArgs {
  std::string mode = "smarthost";
  bool dry_run = false, undo = false;
  std::string config_file, root = "/", upstream;
  std::vector<std::string> senders;
};

void add_exim(CLI::App& integrate, Globals& globals) {
  auto args = std::make_shared<EximArgs>();
  auto* cmd = integrate.add_subcommand(
      "exim", "Route Exim's outgoing mail through the relay (or write passwd.client safely)");
  cmd->add_option("--mode", args->mode,
                  "smarthost: Exim relays to smtpguard as its own identity; passwd-client: Exim "
                  "keeps talking to the upstream with the vault's credential in passwd.client")
      ->check(CLI::IsMember({"smarthost", "passwd-client"}))
      ->default_val("smarthost");
  cmd->add_flag("--dry-run", args->dry_run,
                "Show the diff and check it with exim -bV; change nothing");
  cmd->add_flag("--undo", args->undo,
                "Put back the files of the last run, byte-exact, and reload Exim");
  cmd->add_option("--config-file", args->config_file,
                  "Edit this single-file Exim configuration instead of detecting the layout");
  cmd->add_option("--root", args->root, "Prefix for every system path (tests, chroots)")
      ->default_val("/");
  cmd->add_option("--upstream", args->upstream,
                  "passwd-client: the [upstream.NAME] to use (default: the only one)");
  cmd->add_option("--allowed-sender", args->senders,
                  "smarthost: envelope senders Exim's identity may use when it is created "
                  "(ADDRESS, *@DOMAIN, *@*.DOMAIN, <>); repeatable");
  cmd->footer(
      "Layouts: Debian split (/etc/exim4/conf.d, dc_use_split_config='true'; rendered with\n"
      "update-exim4.conf), Debian unsplit (/etc/exim4/exim4.conf.template), cPanel-style\n"
      "/etc/exim.conf (+ /etc/exim.conf.local), or --config-file.\n"
      "\n"
      "smarthost: a router before dnslookup sends every non-local domain to the relay on\n"
      "127.0.0.1:PORT ([relay] listen); Exim logs in as the identity 'exim' (created with a\n"
      "random password kept in a file next to Exim's configuration, 0640 root:Debian-exim\n"
      "or exim) and adds X-Smtpguard-Submitter: auth:$authenticated_id (SMTP AUTH),\n"
      "local:$sender_ident (the local user who ran exim/sendmail) or host:ADDRESS, plus\n"
      ";script=$h_X-PHP-Script: when present, after removing\n"
      "any such header a client sent. The relay trusts it only from that identity and strips\n"
      "it before delivery. The upstream secret is never written into Exim's files.\n"
      "\n"
      "passwd-client: writes HOST:LOGIN:PASSWORD for the upstream into passwd.client (0640\n"
      "root:Exim's group; passwords Exim's lsearch cannot hold verbatim are stored as\n"
      "{base64}...) plus a router, transport and authenticator that use it over verified TLS.\n"
      "\n"
      "Every run renders the new files, checks them with exim -C FILE -bV, keeps the old files\n"
      "in STATE_DIR/backups/exim-TIME/, installs atomically and reloads Exim (systemctl reload\n"
      "when systemd runs it, else SIGHUP to the pid in its pid file). A failed check changes\n"
      "nothing; a failed install or reload puts the old files back. A second run changes\n"
      "nothing. smtpguard's text sits between '# BEGIN smtpguard' and '# END smtpguard'.\n"
      "\n"
      "Examples:\n"
      "  smtpguard integrate exim --dry-run\n"
      "  smtpguard integrate exim --allowed-sender '*@example.com' --allowed-sender '<>'\n"
      "  smtpguard integrate exim --undo");
  cmd->callback([&globals, args] {
    auto cfg = load_config(globals);
    if (!cfg) {
      globals.exit_code = fail(cfg.error());
      return;
    }
    harden_process();
    integrate::exim::Options o;
    o.mode = args->mode == "passwd-client" ? integrate::exim::Mode::passwd_client
                                           : integrate::exim::Mode::smarthost;
    o.dry_run = args->dry_run;
    o.undo = args->undo;
    o.root = args->root;
    o.config_file = args->config_file;
    o.upstream = args->upstream;
    o.allowed_senders = args->senders;
    auto r = integrate::exim::run(*cfg, o);
    globals.exit_code = r ? EX_OK : fail(r.error());
  });
}

}  // namespace

void add_integrate_commands(CLI::App& app, Globals& globals) {
  auto* integrate = app.add_subcommand("integrate", "Point Exim, Postfix or PHP at the relay");
  integrate->require_subcommand(1);
  add_exim(*integrate, globals);
  add_integrate_mta_commands(*integrate, globals);
}

}  // namespace sg::cli
