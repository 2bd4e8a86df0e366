// Observation -> monitor::EventView (see exim_log_detect.hpp).
#include "monitor/exim_log_detect.hpp"

namespace sg::monitor::exim {
namespace {

using What = Observation::What;

// Up to this many recipient addresses of one message are handed to the
// recipients detector (the count is always exact).
constexpr std::size_t kMaxListed = 1000;

// out = the words of list (views into it), at most kMaxListed.
void split_into(std::string_view list, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t pos = 0;
  while (pos < list.size() && out.size() < kMaxListed) {
    auto end = list.find(' ', pos);
    if (end == std::string_view::npos) end = list.size();
    if (end > pos) out.push_back(list.substr(pos, end - pos));
    pos = end + 1;
  }
}

}  // namespace

void DetectorFeed::observe(const Observation& o, std::vector<Action>& out) {
  const bool from_ip = o.identity.starts_with("ip:");
  // A client address is judged by what it submits and its AUTH failures;
  // delivery outcomes count for the sender's identity only (they are most
  // of a log, and most of an address's are inbound mail to local users).
  if (from_ip && o.what != What::message && o.what != What::auth_failure) return;
  EventView e;
  switch (o.what) {
    case What::message:
      e.kind = EventKind::received;
      break;
    case What::delivery:
      e.kind = EventKind::delivered;
      break;
    case What::deferral:
      e.kind = EventKind::deferred;
      break;
    case What::bounce:
      e.kind = EventKind::bounced;
      break;
    case What::auth_failure:
      // Reported once per failure: by the client address when known.
      if (!from_ip && !o.source.empty()) return;
      e.kind = EventKind::auth_failed;
      break;
  }
  e.time = o.time;
  if (o.what == What::auth_failure) {
    e.sender = o.sender;  // a name someone tried is not an identity that sent
    recipients_.clear();
  } else {
    e.identity = o.identity;
    e.sender = o.sender;
    // An outcome's recipient was counted with its arrival when the arrival
    // listed recipients (o.recipients == 0 then); only otherwise is it news.
    const bool listed = o.what != What::message && o.recipients == 0;
    split_into(listed ? std::string_view() : o.recipient_list, recipients_);
  }
  e.recipients = recipients_;
  e.recipient_count = std::max<std::uint32_t>(o.recipients, recipients_.size());
  if (o.what != What::message && o.what != What::auth_failure) e.recipient_count = 1;
  e.remote = o.source;
  ++events_;
  if (o.time > clock_) {
    if (clock_ != 0) {
      for (auto& a : detectors_.tick(o.time)) out.push_back(std::move(a));
    }
    clock_ = o.time;
  }
  // The reader hashed the name already; an auth failure's event has none.
  Detectors::IdentityHint none;
  Detectors::IdentityHint* hint = &none;
  if (e.identity.empty()) {
    none.hash = name_hash({});
  } else {
    if (o.identity_index >= hints_.size()) hints_.resize(o.identity_index + 1);
    hint = &hints_[o.identity_index];
    hint->hash = o.identity_hash;
  }
  detectors_.observe(e, *hint, out);
}

}  // namespace sg::monitor::exim
