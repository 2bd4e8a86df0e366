#include "cli/cli.hpp"

namespace sg::cli {

void add_send_command(CLI::App& app, Globals& globals) {
  (void)app;
  (void)globals;
}

}  // namespace sg::cli
