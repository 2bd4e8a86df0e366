// Configuration checks: upstream TLS and the relay's own listeners. The
// configuration loader already refuses the worst cases (a non-loopback
// listener without [relay.tls] or allow_from); doctor still reports them so
// that a report is complete on its own.
#include <filesystem>

#include "doctor/doctor.hpp"

namespace sg::doctor {
namespace {

bool admits_everyone(const std::string& cidr) {
  return cidr == "0.0.0.0/0" || cidr == "::/0" || cidr == "0::/0";
}

}  // namespace

std::vector<Finding> check_upstream_tls(const config::Config& cfg) {
  std::vector<Finding> out;
  for (const auto& u : cfg.upstreams) {
    const std::string where = "[upstream." + u.name + "] host = \"" + u.host + "\"";
    if (u.tls == config::TlsMode::none) {
      if (config::is_loopback_host(u.host)) continue;  // never leaves the machine
      out.push_back(
          {"upstream-tls-off", Severity::high, "upstream " + u.name + " is reached without TLS",
           where + ", tls = \"none\": the credential" +
               (u.credential.empty() ? std::string(" (none configured)") : " " + u.credential) +
               " and every message cross the network in clear text",
           "set tls = \"starttls\" (port 587) or tls = \"implicit\" (port 465) in "
           "[upstream." +
               u.name + "]; SES supports both"});
      continue;
    }
    if (!u.ca_file.empty()) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(u.ca_file, ec))
        out.push_back({"upstream-ca-missing", Severity::medium,
                       "upstream " + u.name + "'s ca_file is missing",
                       where + ", ca_file = \"" + u.ca_file +
                           "\" is not a readable file: delivery fails certificate verification",
                       "point ca_file at the CA bundle, or remove it to use the system store"});
    }
  }
  return out;
}

std::vector<Finding> check_relay_listeners(const config::Config& cfg) {
  std::vector<Finding> out;
  for (const auto& l : cfg.relay.listen) {
    auto a = config::parse_listen_address(l);
    if (!a || config::is_loopback_host(a->host)) continue;
    if (!cfg.relay.tls)
      out.push_back({"relay-listener-no-tls", Severity::high,
                     "relay listener " + l + " is not loopback and has no TLS",
                     "clients' local passwords would cross the network in clear text",
                     "add [relay.tls] cert_file/key_file, or listen on 127.0.0.1 only"});
    bool open = cfg.relay.allow_from.empty();
    for (const auto& c : cfg.relay.allow_from) open = open || admits_everyone(c);
    if (open)
      out.push_back({"relay-listener-open", Severity::high,
                     "relay listener " + l + " accepts connections from any address",
                     cfg.relay.allow_from.empty() ? "[relay] allow_from is empty"
                                                  : "[relay] allow_from admits every address",
                     "list only the application servers' networks in [relay] allow_from"});
    if (cfg.relay.tls && !open)
      out.push_back({"relay-listener-public", Severity::info,
                     "relay listener " + l + " is reachable from the network",
                     "with [relay.tls] and allow_from limited to the listed networks",
                     "keep the security group / firewall as narrow as allow_from"});
  }
  return out;
}

}  // namespace sg::doctor
