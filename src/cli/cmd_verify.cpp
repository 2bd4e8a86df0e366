#include "cli/cli.hpp"

namespace sg::cli {

void add_verify_command(CLI::App& app, Globals& globals) {
  (void)app;
  (void)globals;
}

}  // namespace sg::cli
