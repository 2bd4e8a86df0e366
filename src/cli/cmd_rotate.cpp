// `smtpguard rotate UPSTREAM`: replace the upstream's credential without
// losing mail. The new secret comes from stdin (or the tty), is verified
// against the real upstream (EHLO, STARTTLS, AUTH; no mail) before anything
// changes, then sealed; the old one is kept as NAME.previous for --rollback,
// and a running relay reloads so that new sessions log in with the new one.
#include <fmt/core.h>
#include <sysexits.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "base/secret.hpp"
#include "base/secret_input.hpp"
#include "base/text.hpp"
#include "cli/cli.hpp"
#include "cli/relay_control.hpp"
#include "cli/rotate_support.hpp"
#include "ses/ses.hpp"
#include "vault/vault.hpp"

namespace sg::cli {
namespace {

struct RotateOptions {
  std::string upstream;
  std::string username;
  bool from_iam_secret = false;
  std::string region;
  std::string access_key_id;
  bool rollback = false;
  VerifyPolicy verify;
  std::optional<int> passphrase_fd;
};

// Everything a run works with; the passphrase, if any, is read once.
struct Context {
  config::Config cfg;
  const config::Upstream* up = nullptr;
  std::optional<Secret> passphrase;
  vault::KeyOptions keys() const {
    vault::KeyOptions k;
    k.passphrase = passphrase ? &*passphrase : nullptr;
    return k;
  }
};

bool looks_like_access_key_id(std::string_view id) {
  if (id.size() < 16 || id.size() > 128) return false;
  for (char c : id)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

Result<const config::Upstream*> pick_upstream(const config::Config& cfg, const std::string& name) {
  if (name.empty()) {
    if (cfg.upstreams.size() == 1) return &cfg.upstreams.front();
    return make_error(Errc::config, cfg.upstreams.empty()
                                        ? "no [upstream.NAME] is configured"
                                        : "several upstreams are configured: name the one to "
                                          "rotate (smtpguard rotate NAME)");
  }
  const config::Upstream* up = cfg.find_upstream(name);
  if (up == nullptr)
    return make_error(Errc::config, "no upstream called '" + name + "' is configured");
  if (up->credential.empty())
    return make_error(Errc::config, "upstream '" + name +
                                        "' has no credential (set credential = \"...\" in its "
                                        "[upstream." +
                                        name + "] section); nothing to rotate");
  return up;
}

// Usage errors come before anything is read or opened.
std::optional<std::string> usage_error(const RotateOptions& o) {
  int modes = (o.rollback ? 1 : 0) + (o.from_iam_secret ? 1 : 0) + (!o.username.empty() ? 1 : 0);
  if (modes != 1)
    return "give exactly one of --username USER (new SMTP password on stdin), "
           "--from-iam-secret (new IAM secret access key on stdin) or --rollback";
  if (o.from_iam_secret && o.access_key_id.empty())
    return "--from-iam-secret needs --access-key-id AKIA... (it becomes the SMTP username)";
  if (!o.from_iam_secret && (!o.access_key_id.empty() || !o.region.empty()))
    return "--access-key-id and --region go with --from-iam-secret";
  if (o.from_iam_secret && !looks_like_access_key_id(o.access_key_id))
    return "--access-key-id '" + o.access_key_id +
           "' does not look like an IAM access key ID (AKIA followed by upper-case letters and "
           "digits)";
  return std::nullopt;
}

// The new credential from stdin: an SMTP password, or an IAM secret access
// key turned into the SES SMTP password for the upstream's region.
Result<vault::EntryUpdate> read_new_credential(const Context& ctx, const RotateOptions& o) {
  vault::EntryUpdate u;
  u.name = ctx.up->credential;
  if (!o.from_iam_secret) {
    SecretPrompt how;
    std::string prompt = "New password for " + o.username + ": ";
    how.prompt = prompt;
    how.confirm = true;
    auto pw = read_secret(how);
    if (!pw) return pw.error();
    u.username = o.username;
    u.password = std::move(pw).value();
    return u;
  }
  std::string region = o.region;
  if (region.empty()) {
    auto from_host = ses::region_of_host(ctx.up->host);
    if (!from_host)
      return make_error(Errc::invalid_input,
                        "upstream host " + ctx.up->host + " is not an SES endpoint; give --region");
    region = *from_host;
  } else if (auto from_host = ses::region_of_host(ctx.up->host);
             from_host && *from_host != region) {
    std::cerr << "smtpguard: warning: upstream " << ctx.up->host << " is in region " << *from_host
              << ", not " << region << "; the password will only work in " << region << "\n";
  }
  SecretPrompt how;
  how.prompt = "New IAM secret access key: ";
  auto read = read_secret(how);
  if (!read) return read.error();
  Secret key = Secret::copy_of(trim(read->view()));
  if (key.empty()) return make_error(Errc::invalid_input, "empty secret access key");
  if (looks_like_access_key_id(key.view()) && key.size() == 20)
    return make_error(Errc::invalid_input,
                      "that looks like an access key ID; stdin must carry the secret access key");
  if (key.size() != 40)
    std::cerr << "smtpguard: warning: IAM secret access keys are 40 characters; this one has "
              << key.size() << "\n";
  u.username = o.access_key_id;
  u.password = ses::smtp_password_v4(key, region);
  return u;
}

void print_remaining_steps(const Context& ctx, const vault::RotationReport& r, bool rollback) {
  const std::string& up = ctx.up->name;
  std::cout << "what remains for you:\n";
  std::cout << "  - watch `smtpguard status` for a few minutes: upstream " << up
            << " should deliver with no login errors\n";
  if (!r.previous_username) return;
  const std::string& old = *r.previous_username;
  if (rollback) {
    std::cout << "  - '" << ctx.up->credential << vault::kPreviousSuffix << "' now holds the "
              << "credential you rolled back from (" << old << "); fix it and rotate again\n";
    return;
  }
  bool iam = looks_like_access_key_id(old) && looks_like_access_key_id(r.username);
  if (iam && old != r.username) {
    std::cout << "  - then deactivate the old access key in IAM (until you do, `smtpguard rotate "
              << up << " --rollback` can go back to it):\n"
              << "      aws iam update-access-key --access-key-id " << old
              << " --status Inactive --user-name IAM_USER\n"
              << "  - after a grace period without problems (e.g. 7 days), delete it:\n"
              << "      aws iam delete-access-key --access-key-id " << old
              << " --user-name IAM_USER\n";
  } else {
    std::cout << "  - then revoke the old password of " << old
              << " at the provider (until you do, `smtpguard rotate " << up
              << " --rollback` can go back to it)\n";
  }
  std::cout << "  - remove the new secret from wherever you pasted it from\n";
}

// Verified, sealed: audit, reload, tell the operator. Returns the exit code.
int after_cutover(const Context& ctx, const vault::RotationReport& r, bool rollback, int attempts) {
  const std::string& name = ctx.up->credential;
  nlohmann::json fields = {{"upstream", ctx.up->name},
                           {"credential", name},
                           {"username", r.username},
                           {"rollback", rollback},
                           {"verify_attempts", attempts}};
  if (r.previous_username) fields["previous_username"] = *r.previous_username;
  append_audit(ctx.cfg, "rotated", std::move(fields));
  std::cout << (rollback ? "rolled back: " : "sealed: ") << "vault entry '" << name
            << "' now logs in as " << r.username;
  if (r.previous_username)
    std::cout << "; the credential it replaced (" << *r.previous_username << ") is kept as '"
              << name << vault::kPreviousSuffix << "'";
  std::cout << "\n";
  int code = EX_OK;
  if (!running_relay_pid(ctx.cfg)) {
    std::cout << "no relay is running; it uses the new credential when it starts\n";
  } else if (auto pid = request_reload(ctx.cfg)) {
    std::cout << "relay (pid " << *pid << ") reloaded: new upstream sessions log in as "
              << r.username << "; messages already in delivery finish with the old login\n";
  } else {
    std::cerr << "smtpguard: the credential is sealed, but the relay did not reload: "
              << pid.error().message << "; run `smtpguard reload`\n";
    code = EX_TEMPFAIL;
  }
  print_remaining_steps(ctx, r, rollback);
  return code;
}

int run_rotate(const Globals& globals, const RotateOptions& o) {
  if (auto bad = usage_error(o)) return fail(EX_USAGE, *bad);
  Context ctx;
  auto cfg = load_config(globals);
  if (!cfg) return fail(cfg.error());
  ctx.cfg = std::move(cfg).value();
  auto up = pick_upstream(ctx.cfg, o.upstream);
  if (!up) return fail(up.error());
  ctx.up = *up;
  harden_process();

  auto paths = vault::paths_for(ctx.cfg);
  if (!paths) return fail(paths.error());
  if (paths->key.kind == vault::KeySource::Kind::passphrase) {
    if (!o.passphrase_fd && !o.rollback && !stdin_is_tty())
      return fail(EX_USAGE,
                  "the new secret is read from stdin, so give the vault passphrase with "
                  "--passphrase-fd N");
    SecretPrompt how;
    how.prompt = "Vault passphrase: ";
    how.fd = o.passphrase_fd;
    auto pass = read_secret(how);
    if (!pass) return fail(pass.error());
    ctx.passphrase.emplace(std::move(pass).value());
  }
  auto contents = vault::open(ctx.cfg, ctx.keys());
  if (!contents) return fail(contents.error());
  const std::string& name = ctx.up->credential;
  auto prev_name = vault::previous_entry_name(name);
  if (!prev_name) return fail(prev_name.error());

  // The credential to verify: the new one, or the one kept for rollback.
  std::string username;
  Secret password;
  std::optional<vault::EntryUpdate> update;
  if (o.rollback) {
    const vault::Entry* prev = contents->find(*prev_name);
    if (prev == nullptr)
      return fail(EX_NOINPUT, "vault has no entry '" + *prev_name +
                                  "': no earlier credential of upstream " + ctx.up->name +
                                  " to roll back to");
    username = prev->username;
    password = prev->password.clone();
  } else {
    auto fresh = read_new_credential(ctx, o);
    if (!fresh) return fail(fresh.error());
    const vault::Entry* cur = contents->find(name);
    if (cur != nullptr && cur->username == fresh->username && cur->password.equals(fresh->password))
      return fail(EX_DATAERR,
                  "that is the credential '" + name + "' already holds; nothing to rotate");
    username = fresh->username;
    password = fresh->password.clone();
    update.emplace(std::move(fresh).value());
  }

  std::cout << "verifying " << (o.rollback ? "the previous" : "the new") << " credential ("
            << username << ") against upstream " << ctx.up->name << " (" << ctx.up->host << ":"
            << ctx.up->port << "): EHLO, STARTTLS, AUTH; no mail is sent" << std::endl;
  auto attempts = verify_login(*ctx.up, username, password, o.verify);
  if (!attempts)
    return fail(exit_code_for(attempts.error().code),
                "not rotated, nothing changed: " + attempts.error().message);
  std::cout << "  ok: logged in as " << username << " (attempt " << *attempts << ")" << std::endl;

  auto report = o.rollback ? vault::rollback(ctx.cfg, name, ctx.keys())
                           : vault::rotate(ctx.cfg, std::move(*update), ctx.keys(), unix_now());
  if (!report) return fail(report.error());
  return after_cutover(ctx, *report, o.rollback, *attempts);
}

}  // namespace

void add_rotate_command(CLI::App& app, Globals& globals) {
  auto o = std::make_shared<RotateOptions>();
  auto* cmd = app.add_subcommand(
      "rotate", "Replace an upstream's credential: verify the new one first, keep the old one");
  cmd->add_option("upstream", o->upstream,
                  "Upstream name ([upstream.NAME]); optional when only one is configured");
  cmd->add_option("--username", o->username,
                  "New SMTP username; the new password is read from the tty or stdin");
  cmd->add_flag("--from-iam-secret", o->from_iam_secret,
                "Read a new IAM secret access key from the tty or stdin and derive the SES SMTP "
                "password from it");
  cmd->add_option("--access-key-id", o->access_key_id,
                  "With --from-iam-secret: the new access key ID (AKIA...), the SMTP username");
  cmd->add_option("--region", o->region,
                  "With --from-iam-secret: SES region of the password (default: from the "
                  "upstream host email-smtp.REGION.amazonaws.com)");
  cmd->add_flag("--rollback", o->rollback,
                "Go back to the credential the last rotation replaced (NAME.previous), after "
                "verifying it");
  cmd->add_option("--verify-timeout", o->verify.timeout_seconds,
                  "Keep retrying the login this many seconds (new IAM keys take a while)")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  cmd->add_option("--verify-interval", o->verify.interval_seconds, "Seconds between login attempts")
      ->check(CLI::Range(1, 60))
      ->capture_default_str();
  cmd->add_option("--passphrase-fd", o->passphrase_fd,
                  "Read the vault passphrase from this file descriptor (key = \"passphrase\")");
  cmd->footer(
      "Steps: read the new secret (never from the command line); log in to the upstream\n"
      "with it (EHLO, STARTTLS, AUTH, QUIT; no mail is sent), retrying refused logins\n"
      "until --verify-timeout; only then seal it as the upstream's vault entry, keep the\n"
      "old one as ENTRY.previous, record the rotation time, write \"rotated\" to\n"
      "STATE_DIR/audit.jsonl and make a running relay reload. New upstream sessions use\n"
      "the new login; messages already in delivery finish with the old one.\n"
      "\n"
      "Examples:\n"
      "  smtpguard rotate ses --from-iam-secret --access-key-id AKIA... < new-secret-key\n"
      "  smtpguard rotate smarthost --username mailer          (type the new password)\n"
      "  smtpguard rotate ses --rollback\n"
      "\n"
      "Exit status: 0 rotated; 77 the upstream refused the login (nothing changed);\n"
      "69 TLS verification failed, 75 the upstream could not be reached (nothing changed);\n"
      "75 also when the credential was sealed but the running relay did not confirm the\n"
      "reload; 64 usage; 65 bad input; 78 configuration.\n"
      "Credential age: `vault list` and `status` say \"rotate soon\" from [vault]\n"
      "rotation_warn_days (80) and \"OVERDUE\" from rotation_max_days (90).");
  cmd->callback([&globals, o] { globals.exit_code = run_rotate(globals, *o); });
}

}  // namespace sg::cli
