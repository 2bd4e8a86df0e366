// smtpguard ses smtp-password: IAM secret access key on stdin (or the tty,
// without echo) -> SES SMTP password on stdout. The key never touches argv.
#include <sysexits.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "base/secret.hpp"
#include "base/secret_input.hpp"
#include "base/text.hpp"
#include "cli/cli.hpp"
#include "ses/ses.hpp"

namespace sg::cli {
namespace {

struct SmtpPasswordOptions {
  std::string region;
  bool legacy_v2 = false;
};

constexpr std::size_t kAwsSecretKeyLength = 40;

std::string known_regions_list() {
  std::string out;
  for (std::string_view r : ses::known_regions()) {
    if (!out.empty()) out += ' ';
    out += r;
  }
  return out;
}

// AWS secret keys contain no whitespace; pasted ones often carry some.
Secret without_surrounding_whitespace(const Secret& key) {
  return Secret::copy_of(trim(key.view()));
}

bool looks_like_access_key_id(std::string_view key) {
  return key.size() == 20 && (key.substr(0, 4) == "AKIA" || key.substr(0, 4) == "ASIA");
}

int run_smtp_password(const SmtpPasswordOptions& options) {
  harden_process();
  std::string region = options.region;
  if (!options.legacy_v2) {
    if (region.empty())
      return fail(EX_USAGE, "--region is required (e.g. --region us-east-1), unless --legacy-v2");
    if (auto from_host = ses::region_of_host(region)) {
      std::cerr << "smtpguard: note: using region " << *from_host << " from host " << region
                << "\n";
      region = *from_host;
    }
    if (!ses::is_known_region(region)) {
      std::cerr << "smtpguard: warning: '" << region
                << "' is not a region this version knows to have an SES SMTP endpoint; "
                   "deriving anyway (AWS adds regions). Known: "
                << known_regions_list() << "\n";
    }
  } else if (!region.empty()) {
    std::cerr << "smtpguard: note: --region is ignored with --legacy-v2 (v2 passwords do not "
                 "depend on the region)\n";
  }

  SecretPrompt prompt;
  prompt.prompt = "IAM secret access key: ";
  auto read = read_secret(prompt);
  if (!read) return fail(read.error());
  Secret key = without_surrounding_whitespace(*read);
  if (key.empty()) return fail(EX_DATAERR, "empty secret access key");
  if (looks_like_access_key_id(key.view())) {
    return fail(EX_DATAERR,
                "that looks like an access key ID (AKIA...), which is the SMTP user name; this "
                "command needs the secret access key that belongs to it");
  }
  if (key.size() != kAwsSecretKeyLength) {
    std::cerr << "smtpguard: warning: IAM secret access keys are " << kAwsSecretKeyLength
              << " characters; this one has " << key.size() << "\n";
  }

  Secret password =
      options.legacy_v2 ? ses::smtp_password_v2(key) : ses::smtp_password_v4(key, region);
  bool written = std::fwrite(password.data(), 1, password.size(), stdout) == password.size() &&
                 std::fputc('\n', stdout) != EOF && std::fflush(stdout) == 0;
  if (!written) return fail(EX_IOERR, "cannot write the password to stdout");
  return EX_OK;
}

}  // namespace

void add_ses_commands(CLI::App& app, Globals& globals) {
  auto* ses_cmd = app.add_subcommand("ses", "Amazon SES helpers");
  ses_cmd->require_subcommand(1);

  auto options = std::make_shared<SmtpPasswordOptions>();
  auto* cmd = ses_cmd->add_subcommand(
      "smtp-password",
      "Derive the SES SMTP password from an IAM secret access key.\n"
      "Reads the secret access key from the terminal (no echo) or from stdin, never from\n"
      "the command line, and prints the SMTP password and a newline on stdout. The SMTP\n"
      "user name is the IAM access key ID (AKIA...) itself.");
  cmd->add_option("--region", options->region,
                  "SES region of the SMTP endpoint you send to (email-smtp.REGION.amazonaws.com), "
                  "e.g. us-east-1; the password is only valid there. Required unless --legacy-v2");
  cmd->add_flag("--legacy-v2", options->legacy_v2,
                "Derive the old region-independent (version 2) password instead");
  cmd->footer(
      "Examples:\n"
      "  smtpguard ses smtp-password --region eu-west-1           (type the key at the prompt)\n"
      "  smtpguard ses smtp-password --region us-east-1 < key.txt | smtpguard vault set ses\n"
      "Unknown regions get a warning but still a password, since AWS adds regions.");
  cmd->callback([&globals, options] { globals.exit_code = run_smtp_password(*options); });
}

}  // namespace sg::cli
