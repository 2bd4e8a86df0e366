// EximLogReader: lines -> identities and counts (see exim_log.hpp). The
// message id ties a delivery, deferral or bounce back to the identities of
// its arrival; "Completed" forgets the id again.
#include <cstring>

#include "monitor/exim_log.hpp"

namespace sg::monitor::exim {
namespace {

using sv = std::string_view;
using What = Observation::What;

// A cwd= line of a process that submits mail (not the daemon, a queue
// runner, a delivery or Exim's own bounce: -bd, -q..., -M..., -E...).
bool submission_args(sv args) {
  std::size_t pos = 0;
  while (pos < args.size()) {
    auto end = args.find(' ', pos);
    if (end == sv::npos) end = args.size();
    sv w = args.substr(pos, end - pos);
    if (w.starts_with("-q") || w.starts_with("-M") || w.starts_with("-bd") || w.starts_with("-E") ||
        w.starts_with("-bp") || w.starts_with("-bV"))
      return false;
    pos = end + 1;
  }
  return true;
}

constexpr std::size_t kMaxPendingCwd = 64;
constexpr std::int64_t kCwdWindow = 60;  // seconds between cwd= and its arrival

}  // namespace

std::size_t EximLogReader::IdHash::operator()(const IdKey& k) const {
  std::uint64_t w[3];
  std::memcpy(w, k.b.data(), sizeof w);
  std::uint64_t h = (w[0] * 0x9e3779b97f4a7c15ull) ^ (w[1] * 0xc2b2ae3d27d4eb4full) ^ w[2];
  return static_cast<std::size_t>(h ^ (h >> 29));
}

EximLogReader::IdKey EximLogReader::key_of(sv id) {
  IdKey k;
  std::memcpy(k.b.data(), id.data(), std::min(id.size(), k.b.size()));
  return k;
}

void EximLogReader::feed(sv bytes) {
  std::size_t pos = 0;
  if (!partial_.empty()) {
    const void* nl = std::memchr(bytes.data(), '\n', bytes.size());
    std::size_t end = nl ? static_cast<const char*>(nl) - bytes.data() : bytes.size();
    partial_.append(bytes.data(), std::min(end, kMaxLine - std::min(kMaxLine, partial_.size())));
    if (nl == nullptr) return;
    line(partial_);
    partial_.clear();
    pos = end + 1;
  }
  while (pos < bytes.size()) {
    const void* nl = std::memchr(bytes.data() + pos, '\n', bytes.size() - pos);
    if (nl == nullptr) {
      std::size_t n = std::min(bytes.size() - pos, kMaxLine);
      partial_.assign(bytes.data() + pos, n);
      return;
    }
    std::size_t end = static_cast<const char*>(nl) - bytes.data();
    line(bytes.substr(pos, std::min(end - pos, kMaxLine)));
    pos = end + 1;
  }
}

void EximLogReader::finish() {
  if (!partial_.empty()) line(partial_);
  partial_.clear();
}

void EximLogReader::line(sv text) {
  ++lines_;
  Line l;
  if (!parse_line(text, l)) {
    ++unparsed_;
    return;
  }
  last_time_ = l.time;
  switch (l.kind) {
    case Kind::arrival:
      arrival(l);
      break;
    case Kind::delivery:
    case Kind::failure:
    case Kind::deferral:
      outcome(l);
      break;
    case Kind::completed:
      open_.erase(key_of(l.id));
      break;
    case Kind::auth_failure:
      auth_failure(l);
      break;
    case Kind::cwd:
      if (submission_args(l.args)) {
        PendingCwd* slot = nullptr;
        for (auto& c : cwd_)
          if (c.pid == l.pid) slot = &c;
        if (slot == nullptr) {
          if (cwd_.size() >= kMaxPendingCwd) cwd_.erase(cwd_.begin());
          slot = &cwd_.emplace_back();
          slot->pid = l.pid;
        }
        slot->dir.assign(l.cwd.substr(0, kMaxLine));
        slot->time = l.time;
      }
      break;
    case Kind::other:
      break;
  }
}

std::uint32_t EximLogReader::identity(sv prefix, sv name) {
  scratch_.assign(prefix);
  scratch_.append(name);
  if (auto it = by_name_.find(sv(scratch_)); it != by_name_.end()) return it->second;
  if (identities_.size() >= kMaxIdentities) {
    scratch_.assign(prefix);
    scratch_.append("(others)");
    if (auto it = by_name_.find(sv(scratch_)); it != by_name_.end()) return it->second;
  }
  auto index = static_cast<std::uint32_t>(identities_.size());
  identities_.push_back({scratch_, {}});
  by_name_.emplace(scratch_, index);
  return index;
}

void EximLogReader::count(std::uint32_t who, What what, const Line& l, sv sender,
                          std::uint32_t recipients, sv list) {
  if (who == kNone) return;
  Counts& c = identities_[who].counts;
  if (c.first == 0) c.first = l.time;
  c.last = l.time;
  switch (what) {
    case What::message:
      ++c.messages;
      c.recipients += recipients;
      c.bytes += l.size;
      break;
    case What::delivery:
      ++c.deliveries;
      c.recipients += recipients;
      break;
    case What::deferral:
      ++c.deferrals;
      break;
    case What::bounce:
      ++c.bounces;
      c.recipients += recipients;
      break;
    case What::auth_failure:
      ++c.auth_failures;
      break;
  }
  if (sink_) {
    Observation o{what, identities_[who].name, sender, l.host_ip, list, recipients, l.time};
    sink_(o);
  }
}

void EximLogReader::arrival(const Line& l) {
  if (!l.bounce_of.empty() && l.address == "<>") return;  // Exim's own bounce message
  Owners owners;
  owners.recipients_known = l.recipients != 0;
  const bool local = l.host_ip.empty();
  if (!l.auth.empty()) {
    owners.who[0] = identity("auth:", l.auth);
  } else if (local && !l.local_user.empty()) {
    owners.who[0] = identity("user:", l.local_user);
  }
  if (local) {
    for (auto it = cwd_.begin(); it != cwd_.end(); ++it) {
      if (it->pid == l.pid && l.time - it->time <= kCwdWindow && it->time <= l.time + 1) {
        owners.who[1] = identity("cwd:", it->dir);
        cwd_.erase(it);
        break;
      }
    }
  } else {
    owners.who[2] = identity("ip:", l.host_ip);
  }
  for (auto who : owners.who)
    count(who, What::message, l, l.address, l.recipients, l.recipient_list);
  if (open_.size() >= kMaxOpenMessages) {
    dropped_ += open_.size();
    open_.clear();
  }
  open_[key_of(l.id)] = owners;
}

void EximLogReader::outcome(const Line& l) {
  auto it = open_.find(key_of(l.id));
  if (it == open_.end()) return;  // arrived before the log starts, or Exim's own bounce
  const Owners& owners = it->second;
  What what = l.kind == Kind::delivery  ? What::delivery
              : l.kind == Kind::failure ? What::bounce
                                        : What::deferral;
  const std::uint32_t recipients = owners.recipients_known || what == What::deferral ? 0 : 1;
  for (auto who : owners.who) count(who, what, l, {}, recipients, l.address);
}

void EximLogReader::auth_failure(const Line& l) {
  if (!l.host_ip.empty())
    count(identity("ip:", l.host_ip), What::auth_failure, l, l.address, 0, {});
  if (!l.address.empty())
    count(identity("auth:", l.address), What::auth_failure, l, l.address, 0, {});
}

}  // namespace sg::monitor::exim
