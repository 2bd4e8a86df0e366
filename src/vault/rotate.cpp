// Rotation: the credential a rotation replaces is kept as NAME.previous, so a
// rollback can restore it (until the operator revokes it at the provider).
#include <algorithm>

#include "vault/vault.hpp"

namespace sg::vault {
namespace {

Entry* find_mut(Contents& contents, std::string_view name) {
  for (auto& e : contents.entries)
    if (e.name == name) return &e;
  return nullptr;
}

// Inserts or replaces `e`, keeping the entries sorted by name.
void put_sorted(Contents& contents, Entry e) {
  remove_entry(contents, e.name);
  auto it = std::lower_bound(contents.entries.begin(), contents.entries.end(), e.name,
                             [](const Entry& x, const std::string& n) { return x.name < n; });
  contents.entries.insert(it, std::move(e));
}

Entry copy_as(const Entry& e, std::string name) {
  Entry out;
  out.name = std::move(name);
  out.username = e.username;
  out.upstream_host = e.upstream_host;
  out.password = e.password.clone();
  out.created_at = e.created_at;
  out.rotated_at = e.rotated_at;
  out.fingerprint = e.fingerprint;
  out.previous_fingerprints = e.previous_fingerprints;
  return out;
}

}  // namespace

Result<std::string> previous_entry_name(std::string_view name) {
  std::string out = std::string(name) + std::string(kPreviousSuffix);
  if (!valid_entry_name(name) || !valid_entry_name(out))
    return make_error(Errc::invalid_input,
                      "entry name '" + std::string(name) +
                          "' cannot keep a rollback copy (NAME.previous must be a valid name "
                          "of at most 64 characters)");
  return out;
}

bool is_previous_entry_name(std::string_view name) {
  return name.size() > kPreviousSuffix.size() && name.ends_with(kPreviousSuffix);
}

Result<RotationReport> rotate_entry(Contents& contents, const MasterKey& key, EntryUpdate update,
                                    std::int64_t now) {
  auto prev_name = previous_entry_name(update.name);
  if (!prev_name) return prev_name.error();
  const std::string name = update.name;
  std::optional<Entry> kept;
  if (const Entry* cur = contents.find(name)) {
    if (cur->username == update.username &&
        cur->fingerprint == key.fingerprint(update.password.view()))
      return make_error(Errc::conflict,
                        "the new credential is the one '" + name + "' already holds");
    kept = copy_as(*cur, *prev_name);
    // Its history stays with NAME (put_entry extends it); the copy needs none.
    kept->previous_fingerprints.clear();
  }
  auto put = put_entry(contents, key, std::move(update), now);
  if (!put) return put.error();
  Entry* fresh = find_mut(contents, name);
  fresh->rotated_at = now;  // also for a first credential: the rotation is recorded
  RotationReport report;
  report.username = fresh->username;
  if (kept) {
    report.previous_username = kept->username;
    put_sorted(contents, std::move(*kept));
  }
  return report;
}

Result<RotationReport> rollback_entry(Contents& contents, std::string_view name) {
  auto prev_name = previous_entry_name(name);
  if (!prev_name) return prev_name.error();
  const Entry* prev = contents.find(*prev_name);
  if (prev == nullptr)
    return make_error(Errc::not_found, "vault has no entry '" + *prev_name +
                                           "': there is no earlier credential to roll back to");
  Entry restored = copy_as(*prev, std::string(name));
  std::optional<Entry> demoted;
  if (const Entry* cur = contents.find(name)) {
    demoted = copy_as(*cur, *prev_name);
    // NAME's history of fingerprints (for the leak scanner) stays with NAME and
    // now includes the demoted password.
    auto& h = restored.previous_fingerprints;
    h = cur->previous_fingerprints;
    h.push_back(cur->fingerprint);
    h.erase(std::remove(h.begin(), h.end(), restored.fingerprint), h.end());
    demoted->previous_fingerprints.clear();
  }
  RotationReport report;
  report.username = restored.username;
  put_sorted(contents, std::move(restored));
  if (demoted) {
    report.previous_username = demoted->username;
    put_sorted(contents, std::move(*demoted));
  } else {
    remove_entry(contents, *prev_name);
  }
  return report;
}

Result<RotationReport> rotate(const config::Config& cfg, EntryUpdate update, const KeyOptions& opts,
                              std::int64_t now) {
  RotationReport report;
  auto r = modify(cfg, opts, [&](Contents& c, const MasterKey& key) -> Result<void> {
    auto done = rotate_entry(c, key, std::move(update), now);
    if (!done) return done.error();
    report = std::move(done).value();
    return {};
  });
  if (!r) return r.error();
  return report;
}

Result<RotationReport> rollback(const config::Config& cfg, std::string_view name,
                                const KeyOptions& opts) {
  RotationReport report;
  auto r = modify(cfg, opts, [&](Contents& c, const MasterKey&) -> Result<void> {
    auto done = rollback_entry(c, name);
    if (!done) return done.error();
    report = std::move(done).value();
    return {};
  });
  if (!r) return r.error();
  return report;
}

}  // namespace sg::vault
