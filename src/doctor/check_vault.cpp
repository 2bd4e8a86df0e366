// Opening the vault for doctor (key file read even when its mode is wrong:
// that is reported by check_state_files, and the ages are still worth
// knowing), and the credential age check.
#include "base/file.hpp"
#include "doctor/doctor.hpp"

namespace sg::doctor {
namespace {

constexpr std::int64_t kDay = 86400;

Result<Secret> read_key(const vault::KeySource& source) {
  using Kind = vault::KeySource::Kind;
  switch (source.kind) {
    case Kind::file: {
      auto raw = read_secret_file(source.arg, 4096);
      if (!raw) return raw.error();
      return vault::decode_key_text(raw->view());
    }
    case Kind::systemd:
      return vault::read_systemd_credential(source.arg);
    case Kind::env:
      return vault::read_env_key(source.arg);
    case Kind::passphrase:
      break;
  }
  return make_error(Errc::unsupported, "passphrase vault");
}

}  // namespace

VaultState open_vault(const config::Config& cfg) {
  VaultState state;
  auto paths = vault::paths_for(cfg);
  if (!paths) return state;  // check_key_source reports an invalid key source
  std::error_code ec;
  if (!std::filesystem::exists(paths->vault, ec)) {
    state.findings.push_back({"vault-missing", Severity::info, "there is no vault yet",
                              paths->vault.string() + " does not exist",
                              "smtpguard vault init, then smtpguard vault set NAME"});
    return state;
  }
  if (paths->key.kind == vault::KeySource::Kind::passphrase) return state;
  auto key = read_key(paths->key);
  Result<vault::MasterKey> master =
      key ? vault::MasterKey::from_secret(*key) : Result<vault::MasterKey>(key.error());
  Result<std::string> file =
      master ? read_file(paths->vault, 64u << 20) : Result<std::string>(master.error());
  Result<vault::Contents> contents =
      file ? vault::unseal(*file, *master) : Result<vault::Contents>(file.error());
  if (!contents) {
    state.findings.push_back(
        {"vault-unreadable", Severity::medium, "the vault cannot be opened",
         contents.error().message + " (credential ages and own-secret fingerprints not checked)",
         "check [vault] key and path; `smtpguard vault list` shows the same error"});
    return state;
  }
  state.contents = std::move(contents).value();
  return state;
}

std::vector<Finding> check_credential_age(const config::Config& cfg,
                                          const vault::Contents& contents, std::int64_t now) {
  std::vector<Finding> out;
  for (const auto& e : contents.entries) {
    if (vault::is_previous_entry_name(e.name)) continue;  // kept for rollback
    const std::int64_t since = e.rotated_at != 0 ? e.rotated_at : e.created_at;
    const std::int64_t days = now > since ? (now - since) / kDay : 0;
    const std::string detail =
        "vault entry " + e.name + " (" + e.username + ") was " +
        (e.rotated_at != 0 ? "last rotated " : "sealed ") + std::to_string(days) +
        " days ago; [vault] rotation_warn_days = " + std::to_string(cfg.vault.rotation_warn_days) +
        ", rotation_max_days = " + std::to_string(cfg.vault.rotation_max_days);
    const std::string fix =
        "smtpguard rotate UPSTREAM (new SES SMTP password from a new IAM "
        "key; verified before cutover, rollback kept as " +
        e.name + ".previous)";
    if (days >= static_cast<std::int64_t>(cfg.vault.rotation_max_days))
      out.push_back({"credential-overdue", Severity::medium,
                     "credential " + e.name + " is overdue for rotation", detail, fix});
    else if (days >= static_cast<std::int64_t>(cfg.vault.rotation_warn_days))
      out.push_back({"credential-rotate-soon", Severity::low,
                     "credential " + e.name + " should be rotated soon", detail, fix});
  }
  return out;
}

}  // namespace sg::doctor
