// Runs every check in a fixed order and renders the report.
#include "doctor/doctor.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "base/text.hpp"
#include "scan/scan.hpp"

namespace sg::doctor {
namespace {

constexpr std::array<Severity, 4> kOrder = {Severity::high, Severity::medium, Severity::low,
                                            Severity::info};

void append(std::vector<Finding>& to, std::vector<Finding> from) {
  for (auto& f : from) to.push_back(std::move(f));
}

// Fingerprints of every vault credential, so the MTA check says "ACTIVE
// credential exposed" for our own secrets. The key is random per run.
scan::OwnSecrets own_secrets(const vault::Contents& contents) {
  scan::OwnSecrets own;
  ::randombytes_buf(own.key.data(), own.key.size());
  for (const auto& e : contents.entries) {
    const std::string label =
        "vault entry " + e.name + (vault::is_previous_entry_name(e.name) ? "" : " (current)");
    for (auto& d : scan::digest_variants(e.password, e.username, label, own.key))
      own.digests.push_back(std::move(d));
  }
  return own;
}

std::string indent(std::string_view text, std::string_view prefix) {
  std::string out;
  for (auto line : split(text, '\n')) out += std::string(prefix) + std::string(line) + "\n";
  return out;
}

}  // namespace

std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::info:
      return "info";
    case Severity::low:
      return "low";
    case Severity::medium:
      return "medium";
    case Severity::high:
      return "high";
  }
  return "info";
}

bool Report::has_high() const {
  return std::any_of(findings.begin(), findings.end(),
                     [](const Finding& f) { return f.severity == Severity::high; });
}

Report run(const config::Config& cfg, const Options& options) {
  Report r;
  auto& out = r.findings;
  append(out, check_key_source(cfg));
  append(out, check_state_files(cfg));
  auto vault = open_vault(cfg);
  append(out, std::move(vault.findings));
  if (vault.contents)
    append(out,
           check_credential_age(cfg, *vault.contents, options.now != 0 ? options.now : unix_now()));
  append(out, check_upstream_tls(cfg));
  append(out, check_relay_listeners(cfg));
  append(out, check_smtp_listeners(options));
  auto scanner =
      scan::Scanner::create(vault.contents ? own_secrets(*vault.contents) : scan::OwnSecrets{});
  if (scanner)
    append(out, check_mta_secrets(options.root, *scanner));
  else
    out.push_back({"mta-scan-failed", Severity::medium, "MTA files could not be scanned",
                   scanner.error().message, "run smtpguard scan /etc"});
  append(out, check_php_sendmail(options.root));
  append(out, check_egress(options));
  std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) {
    return static_cast<int>(a.severity) > static_cast<int>(b.severity);
  });
  return r;
}

std::string render_text(const Report& report) {
  std::array<std::size_t, 4> count{};
  for (const auto& f : report.findings) ++count[static_cast<std::size_t>(f.severity)];
  if (report.findings.empty()) return "smtpguard doctor: no problems found\n";
  std::string out = "smtpguard doctor: " + std::to_string(count[3]) + " high, " +
                    std::to_string(count[2]) + " medium, " + std::to_string(count[1]) + " low, " +
                    std::to_string(count[0]) + " info\n";
  for (Severity s : kOrder) {
    if (count[static_cast<std::size_t>(s)] == 0) continue;
    out += "\n" + to_lower(to_string(s)) + ":\n";
    for (const auto& f : report.findings) {
      if (f.severity != s) continue;
      out += "  [" + f.id + "] " + f.title + "\n";
      if (!f.detail.empty()) out += indent(f.detail, "      ");
      if (!f.fix.empty()) out += indent("fix: " + f.fix, "      ");
    }
  }
  return out;
}

std::string render_json(const Report& report) {
  nlohmann::json summary = {{"high", 0}, {"medium", 0}, {"low", 0}, {"info", 0}};
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : report.findings) {
    summary[std::string(to_string(f.severity))] =
        summary[std::string(to_string(f.severity))].get<int>() + 1;
    findings.push_back({{"id", f.id},
                        {"severity", to_string(f.severity)},
                        {"title", f.title},
                        {"detail", f.detail},
                        {"fix", f.fix}});
  }
  nlohmann::json doc = {{"summary", summary}, {"findings", findings}};
  // Paths are bytes; never let an odd file name make dump() throw.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace sg::doctor
