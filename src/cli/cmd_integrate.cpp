// `smtpguard integrate exim` (placeholder until it lands).
#include "cli/cli.hpp"

namespace sg::cli {

void add_integrate_commands(CLI::App& app, Globals& globals) {
  auto* integrate = app.add_subcommand("integrate", "Point Exim, Postfix or PHP at the relay");
  integrate->require_subcommand(1);
  add_integrate_mta_commands(*integrate, globals);
}

}  // namespace sg::cli
