// `smtpguard queue hold|release|delete|flush`, `pause`, `resume`, `reload`:
// commands that change what a running relay does. They go through the
// relay's control socket; with no relay running they change the spool
// directly, so the next start sees the change.
#include <sysexits.h>

#include <iostream>

#include "base/text.hpp"
#include "cli/cli.hpp"
#include "cli/relay_control.hpp"
#include "cli/rotate_support.hpp"
#include "relay/deliverer.hpp"
#include "spool/spool.hpp"

namespace sg::cli {
namespace {

bool relay_absent(const Error& e) {
  return e.code == Errc::not_found || e.code == Errc::timeout;
}

// Every deferred recipient of every queued message becomes due now.
Result<std::size_t> flush_offline(spool::Spool& sp) {
  std::size_t n = 0;
  for (const auto& id : sp.list(false)) {
    auto env = sp.load_envelope(id);
    if (!env) continue;
    bool changed = false;
    for (auto& r : env->recipients)
      if (r.state == spool::RecipientState::deferred && r.next_attempt > 0) {
        r.next_attempt = 0;
        changed = true;
      }
    if (changed) {
      if (auto r = sp.update_envelope(*env); !r) return r.error();
      ++n;
    }
  }
  return n;
}

int queue_action(const Globals& globals, const std::string& cmd, const std::string& id) {
  auto cfg = load_config(globals);
  if (!cfg) return fail(cfg.error());
  if (cmd != "flush" && !spool::is_valid_id(id))
    return fail(EX_USAGE, "\"" + id + "\" is not a queue id (see smtpguard queue list)");
  nlohmann::json request = {{"cmd", cmd}};
  if (cmd != "flush") request["id"] = id;
  auto reply = ask_relay(*cfg, request);
  if (reply) {
    if (cmd == "flush")
      std::cout << "flushed: " << reply->value("messages", 0) << " queued messages are due now"
                << (reply->value("paused", false) ? " (delivery is paused: smtpguard resume)" : "")
                << "\n";
    else
      std::cout << id << ": "
                << (cmd == "delete" ? "deleted"
                    : cmd == "hold" ? "held"
                                    : "released")
                << "\n";
    return EX_OK;
  }
  if (!relay_absent(reply.error())) {
    // The relay answered and refused (busy, unknown id).
    bool busy = reply.error().message.find("being delivered") != std::string::npos;
    return fail(busy ? EX_TEMPFAIL : EX_NOINPUT, reply.error().message);
  }
  auto sp = open_spool_shared(*cfg);
  if (!sp) return fail(sp.error());
  if (cmd == "flush") {
    auto n = flush_offline(**sp);
    if (!n) return fail(n.error());
    std::cout << "flushed: " << *n << " messages are due at the relay's next start\n";
    return EX_OK;
  }
  Result<void> r = cmd == "hold"      ? (*sp)->hold(id)
                   : cmd == "release" ? (*sp)->release(id)
                                      : (*sp)->remove(id);
  if (!r) return fail(r.error());
  // As the deliverer audits it when it does this (deliverer_control.cpp).
  append_audit(*cfg,
               cmd == "hold"      ? "held"
               : cmd == "release" ? "released"
                                  : "deleted",
               {{"id", id}, {"by", "operator"}});
  std::cout << id << ": "
            << (cmd == "delete" ? "deleted"
                : cmd == "hold" ? "held"
                                : "released")
            << " (no relay running: changed in the spool)\n";
  return EX_OK;
}

int pause_or_resume(const Globals& globals, bool pause) {
  auto cfg = load_config(globals);
  if (!cfg) return fail(cfg.error());
  auto reply = ask_relay(*cfg, {{"cmd", pause ? "pause" : "resume"}});
  if (reply) {
    if (pause)
      std::cout << (reply->value("was_paused", false) ? "delivery was already paused"
                                                      : "delivery paused")
                << "; new mail is accepted and held until `smtpguard resume`\n";
    else
      std::cout << "delivery resumed; " << reply->value("released", 0)
                << " messages held during the pause released\n";
    return EX_OK;
  }
  if (!relay_absent(reply.error())) return fail(reply.error());
  // No deliverer answers: the marker alone does it (the receiver, if it
  // runs, checks it for every message; the deliverer reads it at start).
  auto sp = open_spool_shared(*cfg);
  if (!sp) return fail(sp.error());
  if (auto r = spool::set_paused((*sp)->directory(), pause, unix_now()); !r) return fail(r.error());
  if (pause) {
    append_audit(*cfg, "paused", {{"by", "operator"}});
    std::cout << "delivery paused (no deliverer running; it stays paused when it starts)\n";
  } else {
    auto released = relay::release_paused_mail(**sp);
    append_audit(*cfg, "resumed", {{"by", "operator"}, {"released", released.size()}});
    std::cout << "delivery resumed; " << released.size()
              << " messages held during the pause released\n";
  }
  return EX_OK;
}

int reload(const Globals& globals) {
  auto cfg = load_config(globals);
  if (!cfg) return fail(EX_CONFIG, "not reloaded: " + cfg.error().message);
  auto pid = request_reload(*cfg);
  if (!pid) {
    switch (pid.error().code) {
      case Errc::not_found:
        return fail(EX_UNAVAILABLE, pid.error().message);
      case Errc::permission:
        return fail(EX_NOPERM, pid.error().message);
      case Errc::config:
        return fail(EX_CONFIG, pid.error().message);
      default:
        return fail(EX_TEMPFAIL, pid.error().message);
    }
  }
  std::cout << "relay (pid " << *pid << ") reloaded its configuration and vault\n";
  return EX_OK;
}

}  // namespace

void add_queue_control_commands(CLI::App& queue, Globals& globals) {
  auto id = std::make_shared<std::string>();
  struct Spec {
    const char* name;
    const char* help;
  };
  for (Spec s : {Spec{"hold", "Hold a message: it stays queued but is not delivered"},
                 Spec{"release", "Release a held message for delivery"},
                 Spec{"delete", "Delete a message from the queue (no bounce is sent)"}}) {
    auto* cmd = queue.add_subcommand(s.name, s.help);
    std::string name = s.name;
    if (name == "hold") {
      cmd->add_option("id", *id, "Queue id (smtpguard queue list)")->required();
      cmd->callback([&globals, id, name] { globals.exit_code = queue_action(globals, name, *id); });
      continue;
    }
    // release/delete also act on everything held of one identity (the
    // monitor holds an identity whose sending looks abused).
    auto identity = std::make_shared<std::string>();
    auto* by_id = cmd->add_option("id", *id, "Queue id (smtpguard queue list)");
    auto* by_identity = cmd->add_option(
        "--identity", *identity,
        name == "release" ? "Lift the hold on this identity and release all its held mail"
                          : "Delete all held mail of this identity (its hold stays)");
    by_id->excludes(by_identity);
    cmd->callback([&globals, id, identity, name, cmd] {
      if (identity->empty() && id->empty()) {
        globals.exit_code =
            fail(EX_USAGE, "queue " + name + ": give a queue id or --identity NAME");
        return;
      }
      globals.exit_code = identity->empty() ? queue_action(globals, name, *id)
                                            : queue_identity_action(globals, name, *identity);
    });
  }
  auto* flush = queue.add_subcommand(
      "flush", "Retry every deferred message now instead of at its next scheduled time");
  flush->callback([&globals, id] { globals.exit_code = queue_action(globals, "flush", ""); });
}

void add_control_commands(CLI::App& app, Globals& globals) {
  auto* pause = app.add_subcommand(
      "pause", "Kill switch: stop all delivery now; new mail is still accepted and held");
  pause->footer(
      "Sessions in the middle of a transaction finish it; nothing else goes upstream.\n"
      "The pause survives restarts of the relay until `smtpguard resume`.");
  pause->callback([&globals] { globals.exit_code = pause_or_resume(globals, true); });
  auto* resume = app.add_subcommand(
      "resume", "End a pause: deliver again, including the mail held while paused");
  resume->callback([&globals] { globals.exit_code = pause_or_resume(globals, false); });
  auto* reload_cmd = app.add_subcommand(
      "reload", "Make the running relay re-read its configuration and vault (as SIGHUP does)");
  reload_cmd->footer(
      "The configuration is checked here first; the relay checks it again and keeps\n"
      "its running configuration if the new one has errors. Exit 0 reloaded, 78 rejected,\n"
      "69 no relay running.");
  reload_cmd->callback([&globals] { globals.exit_code = reload(globals); });
}

}  // namespace sg::cli
