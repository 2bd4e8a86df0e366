// The deliverer's in-memory schedule (see delivery.hpp).
#include <algorithm>

#include "delivery/delivery.hpp"

namespace sg::delivery {

void Schedule::add(const std::string& id, std::int64_t due_at) {
  if (auto b = busy_.find(id); b != busy_.end()) {
    b->second = b->second ? std::min(*b->second, due_at) : due_at;
    return;
  }
  auto it = due_.find(id);
  if (it == due_.end()) {
    due_.emplace(id, due_at);
    order_.emplace(due_at, id);
    return;
  }
  if (due_at >= it->second) return;
  order_.erase({it->second, id});
  it->second = due_at;
  order_.emplace(due_at, id);
}

std::optional<std::string> Schedule::take(std::int64_t now) {
  if (order_.empty() || order_.begin()->first > now) return std::nullopt;
  std::string id = order_.begin()->second;
  order_.erase(order_.begin());
  due_.erase(id);
  busy_.emplace(id, std::nullopt);
  return id;
}

void Schedule::finish(const std::string& id, std::optional<std::int64_t> next) {
  auto b = busy_.find(id);
  if (b == busy_.end()) return;
  std::optional<std::int64_t> again = b->second;
  busy_.erase(b);
  if (!next) return;  // finished or gone: a pending add() concerned the old message
  add(id, again ? std::min(*again, *next) : *next);
}

bool Schedule::forget(const std::string& id) {
  if (busy_.count(id)) return false;
  auto it = due_.find(id);
  if (it != due_.end()) {
    order_.erase({it->second, id});
    due_.erase(it);
  }
  return true;
}

void Schedule::make_all_due(std::int64_t now) {
  order_.clear();
  for (auto& [id, at] : due_) {
    at = std::min(at, now);
    order_.emplace(at, id);
  }
  for (auto& [id, again] : busy_) again = now;
}

std::optional<std::int64_t> Schedule::next_due() const {
  if (order_.empty()) return std::nullopt;
  return order_.begin()->first;
}

std::size_t Schedule::due_count(std::int64_t now) const {
  std::size_t n = 0;
  for (auto it = order_.begin(); it != order_.end() && it->first <= now; ++it) ++n;
  return n;
}

std::vector<std::string> Schedule::ids() const {
  std::vector<std::string> out;
  out.reserve(due_.size() + busy_.size());
  for (const auto& [id, at] : due_) out.push_back(id);
  for (const auto& [id, again] : busy_) out.push_back(id);
  return out;
}

}  // namespace sg::delivery
