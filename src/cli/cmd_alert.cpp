// `smtpguard alert test`: sends one test alert through every configured
// [[alert]] sink and says, per sink, whether it got through, so an operator
// finds a broken webhook or mail route before an incident does.
#include <sysexits.h>

#include <iostream>

#include "base/text.hpp"
#include "cli/cli.hpp"
#include "cli/upstream_access.hpp"
#include "monitor/alerts.hpp"

namespace sg::cli {
namespace {

int alert_test(const Globals& globals, const std::string& text) {
  auto cfg = load_config(globals);
  if (!cfg) return fail(cfg.error());
  if (cfg->alerts.empty())
    return fail(EX_CONFIG, "no [[alert]] sink is configured in " +
                               (cfg->source.empty() ? std::string("the embedded defaults")
                                                    : cfg->source.string()));
  // Logins of the upstreams that carry alert email, unsealed here only.
  std::map<std::string, monitor::AlertLogin> logins;
  for (const auto& a : cfg->alerts) {
    if (a.email_upstream.empty() || logins.count(a.email_upstream)) continue;
    const config::Upstream* up = cfg->find_upstream(a.email_upstream);
    if (up == nullptr || up->credential.empty()) continue;
    auto access = open_upstream(globals, a.email_upstream, std::nullopt);
    if (!access) return fail(access.error());
    if (access->credential)
      logins.emplace(a.email_upstream,
                     monitor::AlertLogin{access->credential->username,
                                         std::move(access->credential->password)});
  }
  monitor::AlertSinks sinks(cfg->alerts, cfg->upstreams, std::move(logins));
  monitor::AlertEvent alert;
  alert.key = "test";
  alert.severity = "warning";
  alert.title = text.empty() ? "test alert from smtpguard alert test" : text;
  alert.detail = "This is a test. Nothing is wrong; an operator ran `smtpguard alert test`.";
  alert.host = local_hostname();
  alert.time = unix_now();
  alert.fields = {{"detector", "test"}, {"action", "alert"}};
  int failed = 0;
  for (const auto& o : sinks.send(alert)) {
    std::cout << o.sink << ": " << (o.sent ? "sent" : "FAILED: " + o.error) << "\n";
    if (!o.sent) ++failed;
  }
  return failed == 0 ? EX_OK : EX_UNAVAILABLE;
}

}  // namespace

void add_alert_commands(CLI::App& app, Globals& globals) {
  auto* alert = app.add_subcommand("alert", "Alert sinks ([[alert]] in the configuration)");
  alert->require_subcommand(1);
  auto* test = alert->add_subcommand(
      "test", "Send one test alert through every configured sink and report each outcome");
  auto text = std::make_shared<std::string>();
  test->add_option("--message", *text, "Title of the test alert");
  test->footer(
      "Each [[alert]] entry may name a webhook (JSON POST with a Slack/Teams-compatible \"text\"\n"
      "field), syslog = true, exec (a program that gets the alert as JSON on stdin) and email\n"
      "(through email_upstream, unsealed from the vault for this command, or directly to the\n"
      "recipient's MX on port 25: MX hosts in preference order, the domain's own address when\n"
      "it has no MX; STARTTLS with a verified certificate when that works, else plain text, as\n"
      "between mail servers). The relay's monitor sends the same alerts, deduplicated per sink\n"
      "(min_interval) and rate-limited.\n\n"
      "Exit status: 0 every sink took the alert; 69 (EX_UNAVAILABLE) one or more failed;\n"
      "78 (EX_CONFIG) no sink configured or the configuration does not load.");
  test->callback([&globals, text] { globals.exit_code = alert_test(globals, *text); });
}

}  // namespace sg::cli
