#include "cli/cli.hpp"

namespace sg::cli {

void add_vault_commands(CLI::App& app, Globals& globals) {
  (void)app;
  (void)globals;
}

}  // namespace sg::cli
