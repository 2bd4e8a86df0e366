// The learned state of the detectors as JSON, so the monitor process can
// keep it across restarts:
//   {"format": "smtpguard-detect-baseline", "version": 1,
//    "identities": [{"name", "first_seen", "messages": [24], "distinct": [24],
//                    "samples": [24], "senders": [...]}, ...]}
// The file is ours but may be damaged or edited: from_json checks every
// field and changes nothing unless the whole document is valid.
#include <cmath>

#include "monitor/detect_state.hpp"

namespace sg::monitor {
namespace {

constexpr const char* kFormat = "smtpguard-detect-baseline";
constexpr std::size_t kMaxName = 512;
constexpr std::size_t kMaxSenders = detail::Senders::kMax;

// Names and senders may come from Exim logs as raw bytes; the JSON we hand
// out must dump without throwing, so entries that are not UTF-8 are left out.
bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();  // the same check a caller's dump() makes
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

Error bad(const std::string& what) {
  return make_error(Errc::corrupt, "detector baseline: " + what);
}

bool number_array(const nlohmann::json& j, const char* key, std::array<float, 24>& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 24) return false;
  for (std::size_t i = 0; i < 24; ++i) {
    const auto& v = (*it)[i];
    if (!v.is_number()) return false;
    double d = v.get<double>();
    if (!std::isfinite(d) || d < 0 || d > 1e9) return false;
    out[i] = float(d);
  }
  return true;
}

}  // namespace

nlohmann::json Detectors::to_json() const {
  nlohmann::json ids = nlohmann::json::array();
  // Least recent first, so loading in order rebuilds the same LRU order.
  state_->identities.each([&](std::string_view key, const detail::IdentityState& id) {
    std::string name(key);
    if (!valid_utf8(name)) return;
    nlohmann::json messages = nlohmann::json::array(), distinct = nlohmann::json::array(),
                   samples = nlohmann::json::array();
    nlohmann::json senders = nlohmann::json::array();
    id.senders.each([&](const auto& s) {
      std::string address(s.address.view());
      if (valid_utf8(address)) senders.push_back(std::move(address));
    });
    for (const auto& s : id.baseline) {
      messages.push_back(s.messages);
      distinct.push_back(s.distinct);
      samples.push_back(s.samples);
    }
    ids.push_back({{"name", name},
                   {"first_seen", id.first_seen},
                   {"messages", std::move(messages)},
                   {"distinct", std::move(distinct)},
                   {"samples", std::move(samples)},
                   {"senders", std::move(senders)}});
  });
  return {{"format", kFormat}, {"version", 1}, {"identities", std::move(ids)}};
}

Result<void> Detectors::from_json(const nlohmann::json& saved) {
  auto format = saved.is_object() ? saved.find("format") : saved.end();
  if (format == saved.end() || !format->is_string() || *format != kFormat)
    return bad("not a smtpguard detector baseline");
  auto version = saved.find("version");
  if (version == saved.end() || !version->is_number_integer() || version->get<std::int64_t>() != 1)
    return bad("unsupported version (expected 1)");
  auto list = saved.find("identities");
  if (list == saved.end() || !list->is_array()) return bad("\"identities\" is not an array");

  detail::LruTable<detail::IdentityState> fresh(state_->config.max_subjects);
  std::size_t index = 0;
  for (const auto& j : *list) {
    std::string where = "identity #" + std::to_string(index++);
    if (!j.is_object()) return bad(where + " is not an object");
    auto name = j.find("name");
    if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty() ||
        name->get_ref<const std::string&>().size() > kMaxName)
      return bad(where + ": bad name");
    auto first = j.find("first_seen");
    if (first == j.end() || !first->is_number_integer() || first->get<std::int64_t>() < 0)
      return bad(where + ": bad first_seen");
    std::array<float, 24> messages{}, distinct{}, samples{};
    if (!number_array(j, "messages", messages) || !number_array(j, "distinct", distinct) ||
        !number_array(j, "samples", samples))
      return bad(where + ": messages, distinct and samples must be 24 numbers each");
    auto senders = j.find("senders");
    if (senders == j.end() || !senders->is_array() || senders->size() > kMaxSenders)
      return bad(where + ": bad senders");
    bool created = false;
    auto& id = fresh.touch(name->get<std::string>(), created, [](const auto&) {});
    id = {};
    id.first_seen = first->get<std::int64_t>();
    for (std::size_t h = 0; h < 24; ++h)
      id.baseline[h] = {messages[h], distinct[h], static_cast<std::uint32_t>(samples[h])};
    for (const auto& s : *senders) {
      if (!s.is_string() || s.get_ref<const std::string&>().size() > kMaxName)
        return bad(where + ": bad sender");
      const auto& address = s.get_ref<const std::string&>();
      id.senders.add(detail::address_hash(address), address);
    }
  }
  state_->identities = std::move(fresh);
  state_->tracked_recipients = 0;
  return {};
}

}  // namespace sg::monitor
