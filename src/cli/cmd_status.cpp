#include <sysexits.h>

#include <filesystem>
#include <iostream>

#include "cli/cli.hpp"
#include "spool/spool.hpp"

namespace sg::cli {

void add_status_command(CLI::App& app, Globals& globals) {
  auto* cmd = app.add_subcommand("status", "Show configuration, upstreams and state at a glance");
  cmd->callback([&globals] {
    auto cfg = load_config(globals);
    if (!cfg) {
      globals.exit_code = fail(cfg.error());
      return;
    }
    std::cout << "configuration: "
              << (cfg->source.empty() ? std::string("embedded defaults") : cfg->source.string())
              << "\n";
    std::cout << "state directory: " << cfg->relay.state_dir.string() << "\n";
    std::cout << "listen:";
    for (const auto& l : cfg->relay.listen) std::cout << " " << l;
    std::cout << "\n";
    auto spool_dir = cfg->relay.state_dir / "spool";
    std::error_code ec;
    if (std::filesystem::is_directory(spool_dir, ec)) {
      spool::Options o;
      o.recover = false;  // never touch a running relay's files
      if (auto sp = spool::Spool::open(spool_dir, nullptr, o); sp) {
        std::cout << "queue: " << (*sp)->list(false).size() << " waiting, "
                  << (*sp)->list(true).size() << " held\n";
      } else {
        std::cout << "queue: unreadable (" << sp.error().message << ")\n";
      }
    } else {
      std::cout << "queue: empty (the relay has not run yet)\n";
    }
    if (cfg->upstreams.empty()) {
      std::cout << "upstream: none configured yet (mail is queued until one is)\n";
    } else {
      for (const auto& u : cfg->upstreams)
        std::cout << "upstream " << u.name << ": " << u.host << ":" << u.port << " credential "
                  << (u.credential.empty() ? std::string("(none)") : u.credential) << "\n";
    }
    globals.exit_code = EX_OK;
  });
}

}  // namespace sg::cli
