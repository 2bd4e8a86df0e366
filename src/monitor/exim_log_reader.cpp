// EximLogReader: lines -> identities and counts (see exim_log.hpp). The
// message id ties a delivery, deferral or bounce back to the identities of
// its arrival; "Completed" forgets the id again.
#include <algorithm>
#include <bit>
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

// The top bits of a mix of all 24 bytes pick the home slot.
std::size_t EximLogReader::OpenMessages::home(const IdKey& k) const {
  std::uint64_t w[3];
  std::memcpy(w, k.b.data(), sizeof w);
  std::uint64_t h = (w[0] ^ std::rotl(w[1], 21) ^ std::rotl(w[2], 42)) * 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 32)) * 0xc2b2ae3d27d4eb4full;
  return static_cast<std::size_t>(h >> 32) & (slots_.size() - 1);
}

std::size_t EximLogReader::OpenMessages::slot_of(const IdKey& k) const {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(k);
  while (slots_[i].key.b[0] != 0 && !(slots_[i].key == k)) i = (i + 1) & mask;
  return i;
}

EximLogReader::Owners* EximLogReader::OpenMessages::find(const IdKey& k) {
  if (size_ == 0) return nullptr;
  Slot& s = slots_[slot_of(k)];
  return s.key.b[0] == 0 ? nullptr : &s.owners;
}

void EximLogReader::OpenMessages::put(const IdKey& k, const Owners& o) {
  if ((size_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(1024, old.size() * 2), Slot{});
    for (const Slot& s : old)
      if (s.key.b[0] != 0) slots_[slot_of(s.key)] = s;
  }
  Slot& s = slots_[slot_of(k)];
  if (s.key.b[0] == 0) {
    s.key = k;
    ++size_;
  }
  s.owners = o;
}

// Backward-shift deletion: later slots of the probe run move up so every
// key stays reachable from its home.
void EximLogReader::OpenMessages::erase(const IdKey& k) {
  if (size_ == 0) return;
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = slot_of(k);
  if (slots_[i].key.b[0] == 0) return;
  --size_;
  for (std::size_t j = i;;) {
    slots_[i].key.b[0] = 0;
    for (;;) {
      j = (j + 1) & mask;
      if (slots_[j].key.b[0] == 0) return;
      std::size_t h = home(slots_[j].key);
      bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (!stays) break;
    }
    slots_[i] = slots_[j];
    i = j;
  }
}

void EximLogReader::OpenMessages::clear() {
  std::fill(slots_.begin(), slots_.end(), Slot{});
  size_ = 0;
}

EximLogReader::IdKey EximLogReader::key_of(sv id) {
  IdKey k;
  if (id.size() == 16) {  // the usual lengths as fixed-size copies
    std::memcpy(k.b.data(), id.data(), 16);
  } else if (id.size() == 23) {
    std::memcpy(k.b.data(), id.data(), 23);
  } else {
    std::memcpy(k.b.data(), id.data(), std::min(id.size(), k.b.size()));
  }
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
  Line& l = line_;  // parse_line() resets it; a member spares a second reset
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
        for (std::size_t i = 0; i < cwd_live_; ++i)
          if (cwd_[i].pid == l.pid) slot = &cwd_[i];
        if (slot == nullptr) {
          if (cwd_live_ >= kMaxPendingCwd) forget_cwd(0);  // the oldest
          if (cwd_live_ == cwd_.size()) cwd_.emplace_back();
          slot = &cwd_[cwd_live_++];
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

// Takes cwd_[i] out of the live ones, the others keeping their order; its
// strings go past the end with their buffers, for the next cwd= line.
void EximLogReader::forget_cwd(std::size_t i) {
  std::rotate(cwd_.begin() + static_cast<std::ptrdiff_t>(i),
              cwd_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
              cwd_.begin() + static_cast<std::ptrdiff_t>(cwd_live_));
  --cwd_live_;
}

std::uint32_t EximLogReader::identity(sv prefix, sv name) {
  // The name is put together on the stack when it fits (nearly always):
  // string appends per arrival cost more than the lookup itself.
  char small[96];
  sv key;
  if (prefix.size() + name.size() <= sizeof small) {
    std::memcpy(small, prefix.data(), prefix.size());
    if (!name.empty()) std::memcpy(small + prefix.size(), name.data(), name.size());
    key = sv(small, prefix.size() + name.size());
  } else {
    scratch_.assign(prefix);
    scratch_.append(name);
    key = scratch_;
  }
  std::uint64_t h = name_hash(key);
  auto is_key = [&](std::uint32_t i) {
    return identities_[i].hash == h && sv(identities_[i].name) == key;
  };
  if (auto found = by_name_.find(h, is_key); found != kNone) return found;
  if (identities_.size() >= kMaxIdentities) {
    scratch_.assign(prefix);
    scratch_.append("(others)");
    key = scratch_;
    h = name_hash(key);
    if (auto found = by_name_.find(h, is_key); found != kNone) return found;
  }
  auto index = static_cast<std::uint32_t>(identities_.size());
  identities_.push_back({std::string(key), h, {}});
  by_name_.insert(h, index);
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
    const Identity& id = identities_[who];
    Observation o{what, id.name, id.hash, who, sender, l.host_ip, list, recipients, l.time};
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
    for (std::size_t i = 0; i < cwd_live_; ++i) {
      const PendingCwd& c = cwd_[i];
      if (c.pid == l.pid && l.time - c.time <= kCwdWindow && c.time <= l.time + 1) {
        owners.who[1] = identity("cwd:", c.dir);
        forget_cwd(i);
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
  open_.put(key_of(l.id), owners);
}

void EximLogReader::outcome(const Line& l) {
  const Owners* found = open_.find(key_of(l.id));
  if (found == nullptr) return;  // arrived before the log starts, or Exim's own bounce
  const Owners owners = *found;
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
