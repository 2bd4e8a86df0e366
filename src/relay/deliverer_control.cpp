// The deliverer's side of the control socket: status, queue commands,
// pause and resume (see control.hpp for the protocol).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.hpp"
#include "base/text.hpp"
#include "relay/deliverer_internal.hpp"

namespace sg::relay::detail {
namespace {

nlohmann::json fail(const std::string& message) {
  return {{"ok", false}, {"error", message}};
}

}  // namespace

nlohmann::json Deliverer::control(const nlohmann::json& request) {
  const std::string cmd = request["cmd"].get<std::string>();
  if (cmd == "status") {
    // Listing the spool costs a directory scan; the status file the tick
    // writes for the monitor (deliverer_status.hpp) asks without it, as the
    // monitor lists the spool itself.
    auto files = request.find("queue_files");
    bool list = files == request.end() || !files->is_boolean() || files->get<bool>();
    nlohmann::json s = status();
    if (list) {
      s["queue"]["queued"] = spool_.list(false).size();
      s["queue"]["held"] = spool_.list(true).size();
    }
    return s;
  }
  if (cmd == "pause" || cmd == "resume") return pause_command(cmd == "pause");
  if (cmd == "flush") {
    std::int64_t now = unix_now();
    for (const auto& id : schedule_.ids()) forced_.insert(id);
    schedule_.make_all_due(now);
    kick();
    return {{"ok", true}, {"messages", forced_.size()}, {"paused", paused_}};
  }
  if (cmd == "hold" || cmd == "release" || cmd == "delete") {
    auto it = request.find("id");
    if (it == request.end() || !it->is_string() || !spool::is_valid_id(it->get<std::string>()))
      return fail("expected a queue id");
    return queue_command(cmd, it->get<std::string>());
  }
  return fail("unknown command \"" + cmd + "\"");
}

nlohmann::json Deliverer::status() {
  std::int64_t now = unix_now();
  nlohmann::json upstreams = nlohmann::json::array();
  for (const auto& pool : pools_) {
    int open = 0, busy = 0;
    for (const auto& w : pool->workers) {
      open += w->client != nullptr;
      busy += w->busy;
    }
    nlohmann::json u = {
        {"name", pool->config.name},
        {"host", pool->config.host},
        {"port", pool->config.port},
        {"carries_mail", pool.get() == pools_.front().get()},
        {"sessions_open", open},
        {"sessions_busy", busy},
        {"max_connections", pool->config.max_connections},
        {"sessions_opened", pool->sessions_opened},
        {"delivered", pool->delivered},
        {"deferred", pool->deferred},
        {"failed", pool->failed},
        {"throttled", pool->throttled},
        {"max_send_rate", pool->config.max_send_rate},
        {"send_rate_now",
         pool->bucket.effective_rate(
             std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
                 .count())},
        {"last_error", pool->last_error},
        {"last_error_at", pool->last_error_at}};
    if (pool->paused_until > now) {
      u["paused_until"] = pool->paused_until;
      u["pause_reason"] = pool->pause_reason;
    }
    if (const auto& c = pool->access.credential) {
      std::int64_t since = c->rotated_at ? c->rotated_at : c->created_at;
      u["credential"] = c->name;
      u["credential_version"] = since;  // as the audit log's "delivered" lines name it
      u["credential_age_days"] = since > 0 ? (now - since) / 86400 : -1;
    }
    upstreams.push_back(std::move(u));
  }
  std::size_t due_now = schedule_.due_count(now);
  return {{"ok", true},
          {"pid", ::getpid()},
          {"started_at", started_at_},
          {"paused", paused_},
          {"queue",
           {{"in_delivery", schedule_.in_progress()},
            {"due_now", due_now},
            {"waiting_for_retry", schedule_.waiting() - due_now}}},
          {"upstreams", std::move(upstreams)}};
}

nlohmann::json Deliverer::queue_command(const std::string& cmd, const std::string& id) {
  if (schedule_.busy(id)) return fail(id + " is being delivered right now; try again in a moment");
  Result<void> r = cmd == "hold"      ? spool_.hold(id)
                   : cmd == "release" ? spool_.release(id)
                                      : spool_.remove(id);
  if (!r) return fail(r.error().message);
  std::int64_t now = unix_now();
  if (cmd == "release") {
    schedule_.add(id, now);
    kick();
  } else {
    schedule_.forget(id);
    spool_.clear_in_flight(id);
  }
  audit_.write(cmd == "hold"      ? "held"
               : cmd == "release" ? "released"
                                  : "deleted",
               {{"id", id}, {"by", "operator"}}, now);
  return {{"ok", true}, {"id", id}};
}

nlohmann::json Deliverer::pause_command(bool pause) {
  std::int64_t now = unix_now();
  if (auto r = spool::set_paused(spool_.directory(), pause, now); !r)
    return fail(r.error().message);
  bool was = paused_;
  if (pause) {
    set_paused(true);
    if (!was) audit_.write("paused", {{"by", "operator"}}, now);
    return {{"ok", true}, {"paused", true}, {"was_paused", was}};
  }
  auto released = release_paused_mail(spool_);
  for (const auto& id : released) schedule_.add(id, now);
  set_paused(false);
  if (was || !released.empty())
    audit_.write("resumed", {{"by", "operator"}, {"released", released.size()}}, now);
  return {{"ok", true}, {"paused", false}, {"was_paused", was}, {"released", released.size()}};
}

void Deliverer::set_paused(bool paused) {
  paused_ = paused;
  if (paused) {
    // Idle sessions close now; sessions in a transaction finish it (cutting
    // DATA short would not un-send anything) and take no new message.
    spdlog::warn("delivery paused");
    for (auto& pool : pools_)
      for (auto& w : pool->workers)
        if (w->waiting) w->wake.cancel();
  } else {
    spdlog::info("delivery resumed");
    kick();
  }
}

}  // namespace sg::relay::detail

namespace sg::relay {

std::vector<std::string> release_paused_mail(spool::Spool& spool) {
  std::vector<std::string> released;
  for (const auto& id : spool.list(true)) {
    auto env = spool.load_envelope(id);
    if (!env || env->rule != kPausedRule) continue;
    if (spool.release(id)) released.push_back(id);
  }
  return released;
}

}  // namespace sg::relay
