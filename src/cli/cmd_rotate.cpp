// `smtpguard rotate` (placeholder until it lands).
#include "cli/cli.hpp"

namespace sg::cli {

void add_rotate_command(CLI::App&, Globals&) {}

}  // namespace sg::cli
