// `smtpguard queue release --identity NAME` and `queue delete --identity
// NAME`: undo or confirm the monitor's hold on one identity. Release lifts
// the identity's hold (spool.hpp's held-identities marker) and releases its
// held mail; delete deletes its held mail and leaves the hold in place.
// Each message goes through the running relay's control socket, or straight
// to the spool when no relay runs.
#include <sysexits.h>

#include <iostream>

#include "cli/cli.hpp"
#include "cli/relay_control.hpp"
#include "cli/rotate_support.hpp"
#include "spool/spool.hpp"

namespace sg::cli {

int queue_identity_action(const Globals& globals, const std::string& cmd,
                          const std::string& identity) {
  auto cfg = load_config(globals);
  if (!cfg) return fail(cfg.error());
  auto sp = open_spool_shared(*cfg);
  if (!sp) return fail(sp.error());
  const auto spool_dir = (*sp)->directory();
  const bool was_held = spool::identity_held(spool_dir, identity);
  if (cmd == "release") {
    // Lift the hold first, so nothing new lands in hold while we release.
    if (auto r = spool::clear_identity_hold(spool_dir, identity); !r) return fail(r.error());
  }
  std::size_t done = 0, busy = 0;
  bool relay_running = true;
  for (const auto& id : (*sp)->list(true)) {
    auto env = (*sp)->load_envelope(id);
    if (!env || env->identity != identity) continue;
    if (relay_running) {
      auto reply = ask_relay(*cfg, {{"cmd", cmd}, {"id", id}});
      if (reply) {
        ++done;
        continue;
      }
      if (reply.error().code != Errc::not_found && reply.error().code != Errc::timeout) {
        ++busy;  // the relay refused this one (being delivered, gone)
        continue;
      }
      relay_running = false;
    }
    Result<void> r = cmd == "release" ? (*sp)->release(id) : (*sp)->remove(id);
    if (r)
      ++done;
    else
      ++busy;
  }
  append_audit(*cfg, cmd == "release" ? "identity_released" : "identity_deleted",
               {{"identity", identity}, {"messages", done}, {"by", "operator"}});
  std::cout << identity << ": " << done << " held message" << (done == 1 ? "" : "s") << " "
            << (cmd == "release" ? "released" : "deleted");
  if (busy) std::cout << " (" << busy << " could not be changed; see smtpguard queue list --held)";
  std::cout << "\n";
  if (cmd == "release" && was_held)
    std::cout << identity << ": hold lifted; new mail is delivered again\n";
  if (cmd == "delete" && was_held)
    std::cout << identity << ": still held; new mail keeps going to hold until "
              << "`smtpguard queue release --identity " << identity << "`\n";
  return busy ? EX_TEMPFAIL : EX_OK;
}

}  // namespace sg::cli
