// `smtpguard status`: configuration at a glance plus, when the relay runs,
// what its deliverer reports over the control socket (sessions, rates,
// errors, queue, pause state, credential age).
#include <sysexits.h>

#include <filesystem>
#include <iostream>

#include "base/text.hpp"
#include "cli/cli.hpp"
#include "cli/relay_control.hpp"
#include "cli/rotate_support.hpp"
#include "relay/deliverer.hpp"
#include "spool/spool.hpp"

namespace sg::cli {
namespace {

std::string ago(std::int64_t when) {
  std::int64_t s = std::max<std::int64_t>(0, unix_now() - when);
  if (s < 120) return std::to_string(s) + " s ago";
  if (s < 7200) return std::to_string(s / 60) + " min ago";
  return std::to_string(s / 3600) + " h ago";
}

void print_live(const nlohmann::json& j, const config::Config& cfg) {
  std::cout << "relay: running, deliverer pid " << j.value("pid", 0) << "; delivery "
            << (j.value("paused", false) ? "PAUSED (smtpguard resume)" : "active") << "\n";
  const auto& q = j["queue"];
  std::cout << "queue: " << q.value("queued", 0) << " queued (" << q.value("due_now", 0)
            << " due now, " << q.value("waiting_for_retry", 0) << " waiting for a retry, "
            << q.value("in_delivery", 0) << " being delivered), " << q.value("held", 0)
            << " held\n";
  for (const auto& u : j["upstreams"]) {
    std::cout << "upstream " << u.value("name", "") << " (" << u.value("host", "") << ":"
              << u.value("port", 0) << (u.value("carries_mail", false) ? ", carries the mail" : "")
              << "):\n"
              << "  sessions: " << u.value("sessions_open", 0) << " open ("
              << u.value("sessions_busy", 0) << " busy) of max " << u.value("max_connections", 0)
              << ", " << u.value("sessions_opened", 0) << " opened since start\n"
              << "  recipients: " << u.value("delivered", 0) << " delivered, "
              << u.value("deferred", 0) << " deferred, " << u.value("failed", 0) << " failed; "
              << u.value("throttled", 0) << " throttling replies\n";
    double rate = u.value("max_send_rate", 0.0);
    if (rate > 0)
      std::cout << "  send rate: " << u.value("send_rate_now", 0.0) << "/s now, max " << rate
                << "/s\n";
    else
      std::cout << "  send rate: no limit\n";
    if (u.contains("paused_until"))
      std::cout << "  WAITING until " << u.value("paused_until", 0) << ": "
                << u.value("pause_reason", "") << "\n";
    if (u.contains("credential")) {
      std::int64_t age = u.value("credential_age_days", std::int64_t{0});
      auto note = age_note(age_state(age, cfg.vault));
      std::cout << "  credential: " << u.value("credential", "") << ", " << age << " days old"
                << (note.empty() ? "" : " (" + std::string(note) + ")") << "\n";
    }
    if (!u.value("last_error", "").empty())
      std::cout << "  last error: " << u.value("last_error", "") << " ("
                << ago(u.value("last_error_at", 0)) << ")\n";
  }
}

}  // namespace

void add_status_command(CLI::App& app, Globals& globals) {
  auto* cmd = app.add_subcommand("status", "Show configuration, upstreams and state at a glance");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "The running relay's status as JSON (exit 69 when none runs)");
  cmd->footer(
      "With a running relay: upstream sessions, send rate, last error, queue sizes, the\n"
      "pause state and the credential's age, from the deliverer's control socket.");
  cmd->callback([&globals, json] {
    auto cfg = load_config(globals);
    if (!cfg) {
      globals.exit_code = fail(cfg.error());
      return;
    }
    auto live = ask_relay(*cfg, {{"cmd", "status"}});
    if (*json) {
      if (!live) {
        globals.exit_code = fail(EX_UNAVAILABLE, live.error().message);
        return;
      }
      std::cout << live->dump(2) << "\n";
      globals.exit_code = EX_OK;
      return;
    }
    std::cout << "configuration: "
              << (cfg->source.empty() ? std::string("embedded defaults") : cfg->source.string())
              << "\n";
    std::cout << "state directory: " << cfg->relay.state_dir.string() << "\n";
    std::cout << "listen:";
    for (const auto& l : cfg->relay.listen) std::cout << " " << l;
    std::cout << "\n";
    if (live) {
      print_live(*live, *cfg);
      globals.exit_code = EX_OK;
      return;
    }
    auto pid = running_relay_pid(*cfg);
    std::cout << "relay: "
              << (!pid ? std::string("not running")
                  : live.error().code == Errc::not_found
                      ? "running (pid " + std::to_string(*pid) +
                            "); no deliverer (no upstream configured, or it could not unseal its "
                            "credential: see the relay's log)"
                      : "running (pid " + std::to_string(*pid) +
                            "); deliverer not answering: " + live.error().message)
              << "\n";
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
      if (spool::paused(spool_dir)) std::cout << "delivery: PAUSED (smtpguard resume)\n";
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
