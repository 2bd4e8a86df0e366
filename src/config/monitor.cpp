// [monitor] and [[alert]]: where the audit log goes, the metrics listener,
// and the alert sinks. Every alert entry must name at least one sink.
#include <algorithm>

#include "config/quote.hpp"
#include "config/sections.hpp"

namespace sg::config::detail {
namespace {

bool is_loopback_host(std::string_view host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

bool valid_email(std::string_view text) {
  auto at = text.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= text.size()) return false;
  for (char c : text)
    if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>' || c == ',') return false;
  return text.find('@', at + 1) == std::string_view::npos;
}

Alert read_alert(const TableReader& r) {
  r.allow_only(
      {"webhook", "exec", "syslog", "email", "email_upstream", "email_from", "min_interval"});
  Alert alert;
  if (auto v = r.name("webhook")) {
    if (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0)
      r.fail("webhook", "expected an http:// or https:// URL, got " + in_quotes(*v));
    alert.webhook = std::move(*v);
  }
  if (auto v = r.name("exec")) {
    if ((*v)[0] != '/')
      r.fail("exec", "expected an absolute path to a program, got " + in_quotes(*v));
    alert.exec = std::move(*v);
  }
  if (const toml::node* s = r.find("syslog")) {
    if (!s->is_boolean()) r.fail_at(*s, "syslog", "expected true or false, got " + describe(*s));
    alert.syslog = s->as_boolean()->get();
  }
  if (auto v = r.name("email")) {
    if (!valid_email(*v))
      r.fail("email", "expected one address like ops@example.com, got " + in_quotes(*v));
    alert.email = std::move(*v);
  }
  if (auto v = r.name("email_upstream")) alert.email_upstream = std::move(*v);
  if (auto v = r.name("email_from")) {
    if (!valid_email(*v)) r.fail("email_from", "expected one address, got " + in_quotes(*v));
    alert.email_from = std::move(*v);
  }
  if (alert.email.empty() && !alert.email_upstream.empty())
    r.fail("email_upstream", "set only together with email");
  if (r.has("min_interval")) {
    const toml::node& node = *r.find("min_interval");
    auto seconds = node.is_integer()  ? Result<std::uint64_t>(static_cast<std::uint64_t>(
                                           std::max<std::int64_t>(0, node.as_integer()->get())))
                   : node.is_string() ? parse_duration(node.as_string()->get())
                                      : Result<std::uint64_t>(make_error(Errc::config, "bad"));
    if (!seconds || *seconds > 7 * 86400)
      r.fail_at(node, "min_interval",
                "expected a duration up to 7 days such as \"5m\", got " + describe(node));
    alert.min_interval_seconds = static_cast<std::uint32_t>(*seconds);
  }
  if (alert.webhook.empty() && alert.exec.empty() && !alert.syslog && alert.email.empty())
    r.fail_table("names no sink: set webhook, exec, syslog = true or email");
  return alert;
}

}  // namespace

Monitor read_monitor(const TableReader& r) {
  r.allow_only({"listen", "audit_log", "audit_max_size", "audit_keep", "audit_syslog"});
  Monitor m;
  if (auto v = r.string("listen")) {
    m.listen = std::move(*v);
    if (!m.listen.empty()) {
      auto address = parse_listen_address(m.listen);
      if (!address) r.fail("listen", address.error().message);
      // The status page and metrics carry no authentication.
      if (!is_loopback_host(address->host))
        r.fail("listen",
               "must be a loopback address (the status page has no authentication), got " +
                   in_quotes(m.listen));
    }
  }
  // "" keeps the default (STATE_DIR/audit.jsonl), as in the documented example.
  if (auto v = r.string("audit_log"); v && !v->empty()) m.audit_log = std::move(*v);
  if (const toml::node* node = r.find("audit_max_size")) {
    if (node->is_integer() && node->as_integer()->get() >= 0) {
      m.audit_max_size = static_cast<std::uint64_t>(node->as_integer()->get());
    } else if (node->is_string()) {
      auto size = parse_size(node->as_string()->get());
      if (!size) r.fail_at(*node, "audit_max_size", size.error().message);
      m.audit_max_size = *size;
    } else {
      r.fail_at(*node, "audit_max_size",
                "expected a size such as \"100MB\" or 0 (never rotate), got " + describe(*node));
    }
    if (m.audit_max_size != 0 && m.audit_max_size < 4096)
      r.fail_at(*node, "audit_max_size", "expected at least 4096 bytes or 0 (never rotate)");
  }
  if (auto v = r.integer("audit_keep", 1, 1000)) m.audit_keep = static_cast<std::uint32_t>(*v);
  if (const toml::node* s = r.find("audit_syslog")) {
    if (!s->is_boolean())
      r.fail_at(*s, "audit_syslog", "expected true or false, got " + describe(*s));
    m.audit_syslog = s->as_boolean()->get();
  }
  return m;
}

std::vector<Alert> read_alerts(const toml::node& node, std::string_view file) {
  std::vector<Alert> out;
  const toml::array* array = node.as_array();
  if (array == nullptr || (!array->empty() && !array->is_array_of_tables())) {
    throw ConfigFailure{location(file, node.source()) +
                        "alert: expected an array of tables ([[alert]]), got " + describe(node)};
  }
  for (std::size_t i = 0; i < array->size(); ++i) {
    const std::string path = "alert[" + std::to_string(i) + "]";
    out.push_back(read_alert(TableReader(*array->get(i)->as_table(), path, path, file)));
  }
  return out;
}

}  // namespace sg::config::detail
