// `smtpguard integrate postfix|php` (placeholder until it lands).
#include "cli/cli.hpp"

namespace sg::cli {

void add_integrate_mta_commands(CLI::App&, Globals&) {}

}  // namespace sg::cli
