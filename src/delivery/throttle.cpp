// SES specifics: transaction splitting, throttling actions, the send-rate
// token bucket.
#include <algorithm>
#include <cmath>

#include "delivery/delivery.hpp"

namespace sg::delivery {
namespace {

// Float slack so a token that is due "exactly now" by wait_time() is takeable.
constexpr double kEpsilon = 1e-9;

}  // namespace

std::vector<std::vector<std::size_t>> split_recipients(const std::vector<std::size_t>& due,
                                                       std::size_t max_per_transaction) {
  std::vector<std::vector<std::size_t>> chunks;
  const std::size_t size = max_per_transaction == 0 ? due.size() : max_per_transaction;
  for (std::size_t start = 0; start < due.size(); start += size) {
    const std::size_t end = std::min(due.size(), start + size);
    chunks.emplace_back(due.begin() + static_cast<std::ptrdiff_t>(start),
                        due.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return chunks;
}

ThrottleAction on_reply(const ses::Classification& classification, const RetryPolicy& retry,
                        const ThrottlePolicy& throttle) {
  ThrottleAction action;
  action.hint = classification.hint;
  switch (classification.cls) {
    case ses::ReplyClass::throttled_rate:
      action.slow_down = true;
      action.slow_factor = throttle.rate_factor;
      action.slow_seconds = throttle.rate_slow_seconds;
      break;
    case ses::ReplyClass::throttled_daily_quota:
      action.pause_upstream = retry.quota_retry.count();
      action.alert = true;
      action.bounce_allowed = false;
      break;
    case ses::ReplyClass::bad_credentials:
      action.pause_upstream = retry.credentials_retry.count();
      action.alert = true;
      action.bounce_allowed = false;
      break;
    case ses::ReplyClass::session_limit:
      action.reconnect = true;
      break;
    default:
      break;
  }
  return action;
}

TokenBucket::TokenBucket(double rate_per_s, double burst)
    : rate_(std::isfinite(rate_per_s) && rate_per_s > 0 ? rate_per_s : 0),
      burst_(std::isfinite(burst) && burst > 1 ? burst : 1),
      tokens_(burst_) {}

double TokenBucket::tokens_at(double now_s) const {
  if (!started_) return tokens_;
  const double t = std::max(now_s, last_);
  const double slowed = std::max(0.0, std::min(t, slow_until_) - last_);
  const double normal = std::max(0.0, t - std::max(last_, slow_until_));
  return std::min(burst_, tokens_ + rate_ * (factor_ * slowed + normal));
}

bool TokenBucket::try_take(double now_s) {
  if (rate_ == 0) return true;
  if (!std::isfinite(now_s)) return false;
  const double t = started_ ? std::max(now_s, last_) : now_s;
  tokens_ = tokens_at(t);
  last_ = t;
  started_ = true;
  if (t >= slow_until_) factor_ = 1;
  if (tokens_ < 1 - kEpsilon) return false;
  tokens_ = std::max(0.0, tokens_ - 1);
  return true;
}

double TokenBucket::wait_time(double now_s) const {
  if (rate_ == 0) return 0;
  const double t = started_ ? std::max(now_s, last_) : now_s;
  const double need = 1 - tokens_at(t);
  if (need <= kEpsilon) return 0;
  if (t < slow_until_) {
    const double slow_rate = rate_ * factor_;
    const double slow_window = slow_until_ - t;
    if (slow_window * slow_rate >= need) return need / slow_rate;
    return slow_window + (need - slow_window * slow_rate) / rate_;
  }
  return need / rate_;
}

void TokenBucket::slow_down(double factor, double now_s, double for_seconds) {
  if (!std::isfinite(now_s)) return;
  const double t = started_ ? std::max(now_s, last_) : now_s;
  tokens_ = tokens_at(t);
  last_ = t;
  started_ = true;
  if (t >= slow_until_) factor_ = 1;  // an earlier slow-down is over: start afresh
  if (!std::isfinite(factor) || factor <= 0) factor = kMinFactor;
  factor_ = std::clamp(factor_ * std::min(factor, 1.0), kMinFactor, 1.0);
  if (std::isfinite(for_seconds) && for_seconds > 0)
    slow_until_ = std::max(slow_until_, t + for_seconds);
  tokens_ = 0;  // the server just said we sent too fast: no burst now
}

double TokenBucket::effective_rate(double now_s) const {
  return started_ && now_s < slow_until_ ? rate_ * factor_ : rate_;
}

}  // namespace sg::delivery
