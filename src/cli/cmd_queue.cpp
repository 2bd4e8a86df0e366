// `smtpguard queue list|show`: read-only views of the spool. They open the
// spool without taking it over, so they are safe while the relay runs.
// (hold, release, delete and flush are in cmd_control.cpp.)
#include <sysexits.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/text.hpp"
#include "cli/cli.hpp"
#include "spool/spool.hpp"

namespace sg::cli {

Result<std::unique_ptr<spool::Spool>> open_spool_shared(const config::Config& cfg) {
  auto dir = cfg.relay.state_dir / "spool";
  if (::access(dir.c_str(), F_OK) != 0)
    return make_error(Errc::not_found,
                      "no spool at " + dir.string() + " (the relay has not run yet)");
  spool::Options o;
  o.recover = false;
  return spool::Spool::open(dir, nullptr, o);
}

namespace {

struct QueueOptions {
  bool held = false, ready = false, ids_only = false, json = false, data = false;
  std::string id;
};

nlohmann::json envelope_json(const spool::Envelope& e) {
  nlohmann::json rcpts = nlohmann::json::array();
  for (const auto& r : e.recipients)
    rcpts.push_back({{"address", r.address},
                     {"state", spool::to_string(r.state)},
                     {"attempts", r.attempts},
                     {"last_reply", r.last_reply},
                     {"upstream_id", r.upstream_id},
                     {"next_attempt", r.next_attempt}});
  return {{"id", e.id},
          {"received_at", e.received_at},
          {"identity", e.identity},
          {"peer", e.peer},
          {"helo", e.helo},
          {"mail_from", e.mail_from},
          {"recipients", rcpts},
          {"verdict", e.verdict},
          {"rule", e.rule},
          {"held", e.held}};
}

std::string age(std::int64_t since) {
  std::int64_t s = std::max<std::int64_t>(0, unix_now() - since);
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

int run_list(const Globals& globals, const QueueOptions& o) {
  auto cfg = load_config(globals);
  if (!cfg) return fail(cfg.error());
  auto sp = open_spool_shared(*cfg);
  if (!sp) {
    if (sp.error().code == Errc::not_found) return o.json ? (std::cout << "[]\n", EX_OK) : EX_OK;
    return fail(sp.error());
  }
  bool want_ready = o.ready || !o.held, want_held = o.held || !o.ready;
  nlohmann::json all = nlohmann::json::array();
  for (bool held : {false, true}) {
    if ((held && !want_held) || (!held && !want_ready)) continue;
    for (const auto& id : (*sp)->list(held)) {
      if (o.ids_only) {
        std::cout << id << "\n";
        continue;
      }
      auto env = (*sp)->load_envelope(id);
      if (!env) {
        std::cerr << "smtpguard: " << id << ": " << env.error().message << "\n";
        continue;
      }
      if (o.json) {
        all.push_back(envelope_json(*env));
        continue;
      }
      std::cout << id << (held ? " HELD " : "      ") << age(env->received_at) << " "
                << env->identity << " <" << env->mail_from << "> " << env->recipients.size()
                << " rcpt" << (env->recipients.size() == 1 ? "" : "s") << "\n";
    }
  }
  if (o.json && !o.ids_only) std::cout << all.dump(2) << "\n";
  return EX_OK;
}

int run_show(const Globals& globals, const QueueOptions& o) {
  auto cfg = load_config(globals);
  if (!cfg) return fail(cfg.error());
  auto sp = open_spool_shared(*cfg);
  if (!sp) return fail(sp.error());
  auto msg = (*sp)->load(o.id);
  if (!msg) return fail(msg.error());
  if (o.data) {
    std::cout.write(msg->data.data(), static_cast<std::streamsize>(msg->data.size()));
    return std::cout.good() ? EX_OK : EX_IOERR;
  }
  auto j = envelope_json(msg->envelope);
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return EX_OK;
  }
  std::cout << "id:         " << msg->envelope.id << (msg->envelope.held ? " (held)" : "") << "\n"
            << "identity:   " << msg->envelope.identity << " from " << msg->envelope.peer << "\n"
            << "sender:     <" << msg->envelope.mail_from << ">\n"
            << "size:       " << msg->data.size() << " bytes\n";
  for (const auto& r : msg->envelope.recipients)
    std::cout << "recipient:  <" << r.address << "> " << spool::to_string(r.state)
              << (r.last_reply.empty() ? "" : " (" + r.last_reply + ")") << "\n";
  return EX_OK;
}

}  // namespace

void add_queue_commands(CLI::App& app, Globals& globals) {
  auto o = std::make_shared<QueueOptions>();
  auto* queue = app.add_subcommand("queue", "Inspect and control the queue (waiting and held mail)");
  queue->require_subcommand(1);
  auto* list = queue->add_subcommand("list", "List queued messages, oldest first");
  list->add_flag("--held", o->held, "Only held messages");
  list->add_flag("--ready", o->ready, "Only messages waiting for delivery");
  list->add_flag("--ids", o->ids_only, "Print queue ids only, one per line");
  list->add_flag("--json", o->json, "JSON array of envelopes");
  list->callback([&globals, o] { globals.exit_code = run_list(globals, *o); });
  auto* show = queue->add_subcommand("show", "Show one message's envelope and state");
  show->add_option("id", o->id, "Queue id")->required();
  show->add_flag("--data", o->data, "Print the message itself, byte for byte");
  show->add_flag("--json", o->json, "Envelope as JSON");
  show->callback([&globals, o] { globals.exit_code = run_show(globals, *o); });
  add_queue_control_commands(*queue, globals);
}

}  // namespace sg::cli
