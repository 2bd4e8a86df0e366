// `smtpguard import` (placeholder until it lands).
#include "cli/cli.hpp"

namespace sg::cli {

void add_import_command(CLI::App&, Globals&) {}

}  // namespace sg::cli
