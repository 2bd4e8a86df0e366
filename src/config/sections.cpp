// [relay], [vault] and [upstream.NAME]: types, ranges, enums and the
// cross-field rules that keep credentials off the network in clear.
#include "config/sections.hpp"

#include <arpa/inet.h>

#include <cctype>

#include "config/quote.hpp"
#include "config/toml_reader.hpp"

namespace sg::config::detail {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::uint64_t read_size(const TableReader& r, std::string_view key) {
  const toml::node& node = *r.find(key);
  std::string_view expected = "expected a size > 0 such as \"40MB\", \"512k\", \"1GiB\" or bytes";
  std::uint64_t size = 0;
  if (node.is_integer()) {
    std::int64_t value = node.as_integer()->get();
    if (value <= 0) r.fail_at(node, key, std::string(expected) + ", got " + describe(node));
    size = static_cast<std::uint64_t>(value);
  } else if (node.is_string()) {
    auto parsed = parse_size(node.as_string()->get());
    if (!parsed) r.fail_at(node, key, parsed.error().message);
    size = *parsed;
  } else {
    r.fail_at(node, key, std::string(expected) + ", got " + describe(node));
  }
  if (size == 0) r.fail_at(node, key, std::string(expected) + ", got " + describe(node));
  return size;
}

RelayTls read_relay_tls(const TableReader& r) {
  r.allow_only({"cert_file", "key_file"});
  RelayTls tls;
  auto cert = r.name("cert_file");
  if (!cert) r.fail("cert_file", "required: PEM certificate chain for the submission listeners");
  auto key = r.name("key_file");
  if (!key) r.fail("key_file", "required: PEM private key for cert_file");
  tls.cert_file = *cert;
  tls.key_file = *key;
  return tls;
}

// The node to blame for listen entry `i` (the array element, or the string).
const toml::node& listen_node(const TableReader& r, std::size_t i) {
  const toml::node& node = *r.find("listen");
  if (const toml::array* array = node.as_array()) return *array->get(i);
  return node;
}

// "ADDRESS/PREFIX" with a numeric IPv4 or IPv6 address and a prefix in range.
bool valid_cidr(const std::string& text) {
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  unsigned char buf[16];
  int max_prefix = ::inet_pton(AF_INET, addr.c_str(), buf) == 1    ? 32
                   : ::inet_pton(AF_INET6, addr.c_str(), buf) == 1 ? 128
                                                                    : -1;
  if (max_prefix < 0) return false;
  if (slash == std::string::npos) return true;
  std::string prefix = text.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 3 ||
      prefix.find_first_not_of("0123456789") != std::string::npos)
    return false;
  return std::stoi(prefix) <= max_prefix;
}

Relay read_relay(const TableReader& r) {
  r.allow_only({"listen", "socket", "state_dir", "max_message_size", "tls", "allow_from", "user",
                "spool_sync"});
  Relay relay;
  if (auto v = r.string("spool_sync")) {
    if (*v == "syncfs") relay.spool_sync = Relay::SpoolSync::syncfs;
    else if (*v != "fdatasync")
      r.fail("spool_sync", "expected \"fdatasync\" or \"syncfs\", got " + in_quotes(*v));
  }
  if (auto v = r.string_list("allow_from")) relay.allow_from = std::move(*v);
  if (auto v = r.name("user")) relay.user = std::move(*v);
  for (std::size_t i = 0; i < relay.allow_from.size(); ++i)
    if (!valid_cidr(relay.allow_from[i]))
      r.fail("allow_from", "expected CIDR networks such as \"192.0.2.0/24\" or \"2001:db8::/32\", got " +
                               in_quotes(relay.allow_from[i]));
  if (auto v = r.string_list("listen")) relay.listen = std::move(*v);
  if (auto v = r.name("socket")) relay.socket = std::move(*v);
  if (auto v = r.name("state_dir")) relay.state_dir = std::move(*v);
  if (r.has("max_message_size")) relay.max_message_size = read_size(r, "max_message_size");
  if (const toml::table* t = r.table("tls"))
    relay.tls = read_relay_tls(TableReader(*t, "relay.tls", "[relay.tls]", r.file()));

  for (std::size_t i = 0; i < relay.listen.size(); ++i) {
    const std::string key = "listen[" + std::to_string(i) + "]";
    auto address = parse_listen_address(relay.listen[i]);
    if (!address) r.fail_at(listen_node(r, i), key, address.error().message);
    if (!is_loopback_host(address->host) && !relay.tls) {
      r.fail_at(listen_node(r, i), key,
                in_quotes(relay.listen[i]) +
                    " is not a loopback address; listening beyond this host requires a "
                    "[relay.tls] table (cert_file, key_file), otherwise client passwords and "
                    "mail would cross the network in clear");
    }
    if (!is_loopback_host(address->host) && relay.allow_from.empty()) {
      r.fail_at(listen_node(r, i), key,
                in_quotes(relay.listen[i]) +
                    " is not a loopback address; name the client networks allowed to connect "
                    "in [relay] allow_from (e.g. allow_from = [\"10.0.0.0/8\"])");
    }
  }
  return relay;
}

bool valid_key_source(std::string_view key) {
  if (key == "passphrase") return true;
  for (std::string_view prefix : {"file:", "systemd:", "env:"}) {
    if (key.substr(0, prefix.size()) == prefix) return key.size() > prefix.size();
  }
  return false;
}

Vault read_vault(const TableReader& r) {
  r.allow_only({"key", "path", "rotation_warn_days", "rotation_max_days"});
  Vault vault;
  if (auto v = r.name("key")) {
    // The value is not echoed: someone may have pasted key material here.
    if (!valid_key_source(*v))
      r.fail("key", "expected file:PATH, systemd:NAME, passphrase or env:VAR (value not shown)");
    vault.key = std::move(*v);
  }
  if (auto v = r.name("path")) vault.path = std::move(*v);
  if (auto v = r.integer("rotation_warn_days", 1, 3650))
    vault.rotation_warn_days = static_cast<std::uint32_t>(*v);
  if (auto v = r.integer("rotation_max_days", 1, 3650))
    vault.rotation_max_days = static_cast<std::uint32_t>(*v);
  if (vault.rotation_warn_days > vault.rotation_max_days)
    r.fail(r.find("rotation_warn_days") ? "rotation_warn_days" : "rotation_max_days",
           "rotation_warn_days (" + std::to_string(vault.rotation_warn_days) +
               ") must not exceed rotation_max_days (" + std::to_string(vault.rotation_max_days) +
               ")");
  return vault;
}

TlsMode read_tls_mode(const TableReader& r) {
  auto v = r.string("tls");
  if (!v || *v == "starttls") return TlsMode::starttls;
  if (*v == "implicit") return TlsMode::implicit;
  if (*v == "none") return TlsMode::none;
  r.fail("tls", "expected \"starttls\", \"implicit\" or \"none\", got " + in_quotes(*v));
}

Upstream read_upstream(const TableReader& r, std::string name) {
  r.allow_only({"host", "port", "tls", "ca_file", "credential", "max_connections", "max_send_rate",
                "ehlo_name", "timeout_seconds", "max_messages_per_connection",
                "idle_timeout_seconds", "configuration_set"});
  Upstream u;
  u.name = std::move(name);
  auto host = r.name("host");
  if (!host)
    r.fail("host", "required: the upstream server, e.g. email-smtp.us-east-1.amazonaws.com");
  for (char c : *host)
    if (c == ' ' || c == '\t' || c == '/')
      r.fail("host", "expected a host name or IP address, got " + in_quotes(*host));
  u.host = std::move(*host);
  u.tls = read_tls_mode(r);
  // Where the port is silent, the conventional one for the TLS mode.
  u.port = u.tls == TlsMode::implicit ? 465 : u.tls == TlsMode::none ? 25 : 587;
  if (auto v = r.integer("port", 1, 65535)) u.port = static_cast<std::uint16_t>(*v);
  if (auto v = r.string("ca_file")) u.ca_file = std::move(*v);
  if (auto v = r.string("credential")) u.credential = std::move(*v);
  if (auto v = r.integer("max_connections", 1, 1000))
    u.max_connections = static_cast<std::uint32_t>(*v);
  if (auto v = r.number("max_send_rate", 0, "messages per second, 0 = no limit"))
    u.max_send_rate = *v;
  if (auto v = r.name("ehlo_name")) u.ehlo_name = std::move(*v);
  if (auto v = r.integer("timeout_seconds", 1, 3600))
    u.timeout_seconds = static_cast<std::uint32_t>(*v);

  if (auto v = r.integer("max_messages_per_connection", 0, 1000000))
    u.max_messages_per_connection = static_cast<std::uint32_t>(*v);
  if (auto v = r.integer("idle_timeout_seconds", 0, 3600))
    u.idle_timeout_seconds = static_cast<std::uint32_t>(*v);
  if (auto v = r.string("configuration_set")) {
    for (char c : *v)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
        r.fail("configuration_set",
               "expected an SES configuration set name (letters, digits, '-' and '_'), got " +
                   in_quotes(*v));
    if (v->size() > 64) r.fail("configuration_set", "at most 64 characters");
    u.configuration_set = std::move(*v);
  }

  if (u.tls == TlsMode::none && !is_loopback_host(u.host)) {
    r.fail("tls",
           "\"none\" is allowed only when host is a loopback address (127.0.0.0/8, ::1, "
           "localhost), and host is " +
               in_quotes(u.host) +
               ": the credential and the mail would cross the network in clear");
  }
  if (u.credential.empty() && u.tls != TlsMode::none) {
    r.fail("credential",
           "required (the vault entry holding this upstream's password); it may be empty "
           "only with tls = \"none\"");
  }
  return u;
}

std::uint32_t read_duration(const TableReader& r, std::string_view key, std::uint64_t min) {
  const toml::node& node = *r.find(key);
  std::uint64_t seconds = 0;
  if (node.is_integer() && node.as_integer()->get() >= 0) {
    seconds = static_cast<std::uint64_t>(node.as_integer()->get());
  } else if (node.is_string()) {
    auto parsed = parse_duration(node.as_string()->get());
    if (!parsed) r.fail_at(node, key, parsed.error().message);
    seconds = *parsed;
  } else {
    r.fail_at(node, key,
              "expected a duration such as \"30s\", \"15m\", \"2h\", \"5d\", \"1w\" or a number of "
              "seconds, got " +
                  describe(node));
  }
  constexpr std::uint64_t kMax = 366ull * 86400;
  if (seconds < min || seconds > kMax)
    r.fail_at(node, key,
              "expected a duration between " + std::to_string(min) + " s and 366 days, got " +
                  describe(node));
  return static_cast<std::uint32_t>(seconds);
}

Delivery read_delivery(const TableReader& r) {
  r.allow_only({"queue_lifetime", "first_retry", "max_retry_interval", "bounces"});
  Delivery d;
  if (r.has("queue_lifetime")) d.queue_lifetime_seconds = read_duration(r, "queue_lifetime", 60);
  if (r.has("first_retry")) d.first_retry_seconds = read_duration(r, "first_retry", 1);
  if (r.has("max_retry_interval"))
    d.max_retry_interval_seconds = read_duration(r, "max_retry_interval", 1);
  if (d.max_retry_interval_seconds < d.first_retry_seconds) {
    // The default cap follows a long first_retry; an explicit one must not be shorter.
    if (!r.has("max_retry_interval"))
      d.max_retry_interval_seconds = d.first_retry_seconds;
    else
      r.fail("max_retry_interval", "must not be shorter than first_retry");
  }
  if (const toml::node* b = r.find("bounces")) {
    if (!b->is_boolean()) r.fail_at(*b, "bounces", "expected true or false, got " + describe(*b));
    d.bounces = b->as_boolean()->get();
  }
  return d;
}

std::vector<Upstream> read_upstreams(const TableReader& root) {
  std::vector<Upstream> out;
  const toml::table* table = root.table("upstream");
  if (table == nullptr) return out;
  TableReader upstreams(*table, "upstream", "[upstream]", root.file());
  for (auto&& [key, value] : *table) {
    std::string name(key.str());
    bool valid = !name.empty();
    for (char c : name) valid = valid && is_name_char(c);
    if (!valid) {
      throw ConfigFailure{location(root.file(), key.source()) + "upstream name " + in_quotes(name) +
                          ": use only letters, digits, '.', '_' and '-'"};
    }
    if (!value.is_table())
      upstreams.fail_at(value, name,
                        "expected a table [upstream." + name + "], got " + describe(value));
    TableReader r(*value.as_table(), "upstream." + name, "[upstream." + name + "]", root.file());
    out.push_back(read_upstream(r, name));
  }
  return out;
}

}  // namespace

Config build_config(const toml::table& root, std::string_view file) {
  TableReader top(root, "", "", file);
  top.allow_only({"relay", "vault", "upstream", "client", "delivery", "monitor", "alert",
                 "detect"});
  Config config;
  if (const toml::table* t = top.table("relay"))
    config.relay = read_relay(TableReader(*t, "relay", "[relay]", file));
  if (const toml::table* t = top.table("vault"))
    config.vault = read_vault(TableReader(*t, "vault", "[vault]", file));
  config.upstreams = read_upstreams(top);
  if (const toml::table* t = top.table("delivery"))
    config.delivery = read_delivery(TableReader(*t, "delivery", "[delivery]", file));
  if (const toml::node* clients = top.find("client")) config.clients = read_clients(*clients, file);
  if (const toml::table* t = top.table("monitor"))
    config.monitor = read_monitor(TableReader(*t, "monitor", "[monitor]", file));
  if (const toml::node* alerts = top.find("alert")) config.alerts = read_alerts(*alerts, file);
  if (const toml::table* t = top.table("detect"))
    config.detect = read_detect(TableReader(*t, "detect", "[detect]", file));
  for (std::size_t i = 0; i < config.alerts.size(); ++i) {
    const std::string& via = config.alerts[i].email_upstream;
    if (!via.empty() && config.find_upstream(via) == nullptr)
      throw ConfigFailure{std::string(file) + ": alert[" + std::to_string(i) +
                          "].email_upstream: no [upstream." + via + "] is configured"};
  }
  resolve_state_paths(config);
  return config;
}

}  // namespace sg::config::detail
