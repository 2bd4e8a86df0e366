// Reporters and baselines of `smtpguard scan`. Findings arrive redacted; the
// only secret-derived text shown is Finding::redacted.
#include <fmt/format.h>

#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "base/file.hpp"
#include "cli/scan_support.hpp"

namespace sg::cli::scan_support {
namespace {

using nlohmann::json;

// Display paths are valid UTF-8, but usernames and hosts come from scanned
// files: never let a stray byte throw.
std::string dump(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string_view fix_of(const scan::Finding& f) {
  const scan::Rule* r = scan::find_rule(f.rule_id);
  return r != nullptr ? r->fix : std::string_view();
}

std::string shown(const scan::Finding& f) {
  return f.redacted.empty() ? std::string("(redacted)") : f.redacted;
}

const Verdict* verdict_of(const std::map<std::size_t, Verdict>& verdicts, std::size_t i) {
  auto it = verdicts.find(i);
  return it == verdicts.end() ? nullptr : &it->second;
}

std::string_view sarif_level(scan::Severity s) {
  switch (s) {
    case scan::Severity::critical:
    case scan::Severity::high:
      return "error";
    case scan::Severity::medium:
      return "warning";
    case scan::Severity::low:
      return "note";
  }
  return "warning";
}

// GitHub code scanning reads this property (0.1-10) to rank security results.
std::string_view security_severity(scan::Severity s) {
  switch (s) {
    case scan::Severity::critical:
      return "9.8";
    case scan::Severity::high:
      return "8.0";
    case scan::Severity::medium:
      return "5.5";
    case scan::Severity::low:
      return "2.0";
  }
  return "5.5";
}

// RFC 3986: a path's bytes as a URI reference. ':' is encoded too, so that
// "x.git:COMMIT:file" can never read as a scheme.
std::string uri_of(std::string_view display) {
  std::string path = real_path(display);
  std::string out = path.starts_with('/') ? "file://" : "";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string message_of(const scan::Finding& f) {
  if (!f.message.empty()) return f.message;
  const scan::Rule* r = scan::find_rule(f.rule_id);
  return std::string(r != nullptr ? r->description : f.rule_id) + " (" + shown(f) + ")";
}

}  // namespace

void write_text(std::ostream& out, const std::vector<scan::Finding>& findings,
                const std::map<std::size_t, Verdict>& verdicts, const Summary& summary) {
  std::array<std::size_t, 4> by_severity{};
  std::size_t files = 0;
  const std::string* current = nullptr;
  for (std::size_t i = 0; i < findings.size(); ++i) {
    const auto& f = findings[i];
    if (current == nullptr || *current != f.path) {
      out << (current == nullptr ? "" : "\n") << f.path << "\n";
      current = &f.path;
      ++files;
    }
    ++by_severity[static_cast<std::size_t>(f.severity)];
    out << fmt::format("  {}:{}  {}  {}  {}", f.line, f.column, f.rule_id,
                       scan::to_string(f.severity), shown(f));
    if (!f.message.empty()) out << "  " << f.message;
    if (auto fix = fix_of(f); !fix.empty()) out << " \u2014 " << fix;
    if (const Verdict* v = verdict_of(verdicts, i)) {
      out << "  [verify: " << v->state << (v->detail.empty() ? "" : ": " + v->detail) << "]";
    }
    out << "\n";
  }
  if (!findings.empty()) out << "\n";
  std::string counts;
  for (auto s : {scan::Severity::critical, scan::Severity::high, scan::Severity::medium,
                 scan::Severity::low}) {
    if (auto n = by_severity[static_cast<std::size_t>(s)]; n > 0)
      counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, scan::to_string(s));
  }
  out << fmt::format("{} finding{} in {} file{}{}; {} file{} ({} bytes) scanned", findings.size(),
                     findings.size() == 1 ? "" : "s", files, files == 1 ? "" : "s",
                     counts.empty() ? "" : " (" + counts + ")", summary.files,
                     summary.files == 1 ? "" : "s", summary.bytes);
  if (summary.binary_skipped > 0) out << fmt::format(", {} binary skipped", summary.binary_skipped);
  if (summary.suppressed > 0)
    out << fmt::format(", {} suppressed by the baseline", summary.suppressed);
  out << "\n";
}

void write_json_lines(std::ostream& out, const std::vector<scan::Finding>& findings,
                      const std::map<std::size_t, Verdict>& verdicts) {
  for (std::size_t i = 0; i < findings.size(); ++i) {
    const auto& f = findings[i];
    json j = {{"path", f.path},
              {"line", f.line},
              {"column", f.column},
              {"rule", f.rule_id},
              {"severity", scan::to_string(f.severity)},
              {"redacted", f.redacted},
              {"fingerprint", f.fingerprint},
              {"message", f.message},
              {"username", f.username},
              {"host", f.host},
              {"port", f.port},
              {"fix", fix_of(f)}};
    if (const Verdict* v = verdict_of(verdicts, i))
      j["verify"] = {{"state", v->state}, {"detail", v->detail}};
    out << dump(j) << "\n";
  }
}

void write_sarif(std::ostream& out, const std::vector<scan::Finding>& findings,
                 const std::map<std::size_t, Verdict>& verdicts) {
  json rules = json::array();
  std::map<std::string, std::size_t, std::less<>> index;
  for (const auto& r : scan::rules()) {
    index.emplace(std::string(r.id), rules.size());
    rules.push_back({{"id", r.id},
                     {"name", r.id},
                     {"shortDescription", {{"text", r.description}}},
                     {"help", {{"text", r.fix}}},
                     {"defaultConfiguration", {{"level", sarif_level(r.severity)}}},
                     {"properties",
                      {{"tags", {"security", "secret"}},
                       {"security-severity", security_severity(r.severity)}}}});
  }
  json results = json::array();
  for (std::size_t i = 0; i < findings.size(); ++i) {
    const auto& f = findings[i];
    json region = {{"startLine", std::max<std::uint64_t>(f.line, 1)},
                   {"startColumn", std::max<std::uint64_t>(f.column, 1)}};
    json r = {{"ruleId", f.rule_id},
              {"level", sarif_level(f.severity)},
              {"message", {{"text", message_of(f)}}},
              {"locations",
               {{{"physicalLocation",
                  {{"artifactLocation", {{"uri", uri_of(f.path)}}}, {"region", region}}}}}},
              {"partialFingerprints", {{"smtpguard/v1", f.fingerprint}}}};
    if (auto it = index.find(f.rule_id); it != index.end()) r["ruleIndex"] = it->second;
    if (const Verdict* v = verdict_of(verdicts, i))
      r["properties"] = {{"verify", v->state}, {"verifyDetail", v->detail}};
    results.push_back(std::move(r));
  }
  json log = {
      {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
      {"version", "2.1.0"},
      {"runs",
       {{{"tool", {{"driver", {{"name", "smtpguard"}, {"version", "0.1.0"}, {"rules", rules}}}}},
         {"results", results}}}}};
  out << dump(log, 2) << "\n";
}

Result<std::set<std::string>> read_baseline(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("findings") || !j["findings"].is_array())
    return make_error(Errc::invalid_input, path + ": not a smtpguard scan baseline");
  std::set<std::string> out;
  for (const auto& f : j["findings"]) {
    if (f.is_object() && f.contains("fingerprint") && f["fingerprint"].is_string())
      out.insert(f["fingerprint"].get<std::string>());
  }
  return out;
}

Result<void> write_baseline(const std::string& path, const std::vector<scan::Finding>& findings) {
  json list = json::array();
  for (const auto& f : findings)
    list.push_back({{"fingerprint", f.fingerprint}, {"rule", f.rule_id}, {"path", f.path}});
  json doc = {
      {"version", 1},
      {"comment", "smtpguard scan baseline: fingerprints of accepted findings (no secrets)"},
      {"findings", list}};
  return write_file_atomic(path, dump(doc, 2) + "\n", 0644);
}

}  // namespace sg::cli::scan_support
