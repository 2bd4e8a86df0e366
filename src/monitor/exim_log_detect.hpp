// monitor/exim_log_detect: feeds what EximLogReader observes to the anomaly
// detectors (detect.hpp). Identities are "auth:USER" (A=authenticator:USER),
// "user:NAME" (U= of a local submission), "cwd:DIR" (the submitting script's
// directory, log_selector +arguments) and "ip:ADDR" (the SMTP client). The
// clock is the log's own time, so replaying a log gives the same actions.
// Delivery outcomes (delivered, deferred, bounced) are fed for the sending
// identities, not for "ip:" ones.
// I/O-free; input is untrusted (see exim_log.hpp); never throws on input.
#pragma once

#include <vector>

#include "config/config.hpp"
#include "monitor/detect.hpp"
#include "monitor/exim_log.hpp"

namespace sg::monitor::exim {

class DetectorFeed {
 public:
  explicit DetectorFeed(config::Detect config = {}) : detectors_(std::move(config)) {}

  // One observation -> at most one Event; actions that fire are appended to `out`.
  void observe(const Observation& o, std::vector<Action>& out);
  const Detectors& detectors() const { return detectors_; }
  std::uint64_t events() const { return events_; }

 private:
  Detectors detectors_;
  std::vector<std::string_view> recipients_;  // the event's, reused
  // By Observation::identity_index (of the one reader feeding this): where
  // the detectors keep that identity. Bounded by the reader's identity cap.
  std::vector<Detectors::IdentityHint> hints_;
  std::int64_t clock_ = 0;
  std::uint64_t events_ = 0;
};

}  // namespace sg::monitor::exim
