// clients.json <-> StoredClients, without I/O (fuzzed by fuzz_policy_store).
#include <nlohmann/json.hpp>
#include <set>

#include "policy/store.hpp"

namespace sg::policy {
namespace {

using nlohmann::json;

const char* on_limit_name(config::OnLimit o) {
  switch (o) {
    case config::OnLimit::hold:
      return "hold";
    case config::OnLimit::reject:
      return "reject";
    case config::OnLimit::defer:
      break;
  }
  return "defer";
}

json rate_json(const config::RateLimit& r) {
  return {{"per_minute", r.per_minute}, {"per_hour", r.per_hour}, {"per_day", r.per_day}};
}

// Type-checked field access; a wrong type or range is an error string.
struct Reader {
  const json& obj;
  std::string problem;

  bool string(const char* key, std::string& out) {
    auto it = obj.find(key);
    if (it == obj.end()) return true;
    if (!it->is_string()) return fail(key, "a string");
    out = it->get<std::string>();
    return true;
  }
  bool strings(const char* key, std::vector<std::string>& out) {
    auto it = obj.find(key);
    if (it == obj.end()) return true;
    if (!it->is_array()) return fail(key, "an array of strings");
    for (const auto& s : *it) {
      if (!s.is_string()) return fail(key, "an array of strings");
      out.push_back(s.get<std::string>());
    }
    return true;
  }
  template <class T>
  bool number(const json& o, const char* key, T& out) {
    auto it = o.find(key);
    if (it == o.end()) return true;
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() > std::numeric_limits<T>::max())
      return fail(key, "an unsigned integer");
    out = static_cast<T>(it->get<std::uint64_t>());
    return true;
  }
  bool rate(const char* key, config::RateLimit& out) {
    auto it = obj.find(key);
    if (it == obj.end()) return true;
    if (!it->is_object()) return fail(key, "an object");
    return number(*it, "per_minute", out.per_minute) && number(*it, "per_hour", out.per_hour) &&
           number(*it, "per_day", out.per_day);
  }
  bool on_limit(config::OnLimit& out) {
    std::string s = "defer";
    if (!string("on_limit", s)) return false;
    if (s == "defer")
      out = config::OnLimit::defer;
    else if (s == "hold")
      out = config::OnLimit::hold;
    else if (s == "reject")
      out = config::OnLimit::reject;
    else
      return fail("on_limit", "\"defer\", \"hold\" or \"reject\"");
    return true;
  }
  bool fail(const char* key, const char* expected) {
    problem = std::string(key) + ": expected " + expected;
    return false;
  }
};

Result<StoredClient> read_client(const json& j, std::size_t index, std::string_view source) {
  auto corrupt = [&](const std::string& why) {
    return make_error(Errc::corrupt,
                      std::string(source) + ": clients[" + std::to_string(index) + "]: " + why);
  };
  if (!j.is_object()) return corrupt("expected an object");
  StoredClient c;
  Reader r{j, {}};
  bool ok = r.string("name", c.name) && r.string("auth", c.auth) && r.strings("ip", c.ip) &&
            r.string("password_hash", c.password_hash) &&
            r.strings("allowed_senders", c.allowed_senders) &&
            r.number(j, "max_recipients", c.max_recipients) &&
            r.number(j, "max_message_size", c.max_message_size) && r.rate("rate", c.rate) &&
            r.rate("recipient_rate", c.recipient_rate) &&
            r.rate("submitter_rate", c.submitter_rate) && r.on_limit(c.on_limit);
  if (!ok) return corrupt(r.problem);
  if (auto v = validate_client(c); !v) return corrupt(v.error().message);
  return c;
}

}  // namespace

Result<StoredClients> parse_clients_json(std::string_view text, std::string_view source) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(Errc::corrupt, std::string(source) + ": not a JSON object");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_unsigned() || version->get<std::uint64_t>() != 1)
    return make_error(Errc::unsupported,
                      std::string(source) + ": unsupported or missing version (expected 1)");
  auto clients = j.find("clients");
  if (clients == j.end() || !clients->is_array())
    return make_error(Errc::corrupt, std::string(source) + ": no \"clients\" array");
  StoredClients out;
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; i < clients->size(); ++i) {
    auto c = read_client((*clients)[i], i, source);
    if (!c) return c.error();
    if (!names.insert(c->name).second)
      return make_error(Errc::corrupt,
                        std::string(source) + ": client \"" + c->name + "\" appears twice");
    out.clients.push_back(std::move(c).value());
  }
  return out;
}

std::string clients_to_json(const StoredClients& stored) {
  json clients = json::array();
  for (const auto& c : stored.clients) {
    json j = {{"name", c.name},
              {"auth", c.auth},
              {"allowed_senders", c.allowed_senders},
              {"max_recipients", c.max_recipients},
              {"max_message_size", c.max_message_size},
              {"rate", rate_json(c.rate)},
              {"recipient_rate", rate_json(c.recipient_rate)},
              {"submitter_rate", rate_json(c.submitter_rate)},
              {"on_limit", on_limit_name(c.on_limit)}};
    if (!c.ip.empty()) j["ip"] = c.ip;
    if (!c.password_hash.empty()) j["password_hash"] = c.password_hash;
    clients.push_back(std::move(j));
  }
  return json{{"version", 1}, {"clients", std::move(clients)}}.dump(
             2, ' ', false, json::error_handler_t::replace) +
         "\n";
}

}  // namespace sg::policy
