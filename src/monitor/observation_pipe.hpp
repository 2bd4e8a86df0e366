// monitor/observation_pipe: hands the Exim log reader's observations from the
// reading thread to a judging thread, in order, so that reading and parsing
// a whole log (about half the work) runs beside the detectors (the other
// half) when two CPUs are free. Observations point into the reader's
// buffers, valid only during the reader's callback: the pipe copies their
// text into batches, which go round between the two threads (at most
// kInFlight full ones, so memory stays bounded however far the reader gets
// ahead).
//
// The judge runs on the pipe's own thread and sees every observation once,
// in the order pushed. An exception it throws (std::bad_alloc) ends the
// judging and is rethrown by finish(). Nothing here reads files or clocks.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "monitor/exim_log.hpp"

namespace sg::monitor::exim {

class ObservationPipe {
 public:
  using Judge = std::function<void(const Observation&)>;

  // Starts the judging thread.
  explicit ObservationPipe(Judge judge);
  ~ObservationPipe();  // finish(), any exception dropped
  ObservationPipe(const ObservationPipe&) = delete;
  ObservationPipe& operator=(const ObservationPipe&) = delete;

  // From the reading thread: a copy of o goes to the judge.
  void push(const Observation& o);
  // Waits until everything pushed is judged and the thread has ended;
  // rethrows what the judge threw. Push nothing after it.
  void finish();

  static constexpr std::size_t kBatch = 2048;  // observations per batch
  static constexpr std::size_t kInFlight = 8;  // full batches waiting at most

 private:
  struct Batch {
    struct Item {
      Observation::What what;
      std::uint32_t identity_index, recipients;
      std::uint64_t identity_hash;
      std::int64_t time;
      std::uint32_t at[4], size[4];  // identity, sender, source, recipient list in text
    };
    std::vector<Item> items;
    std::string text;
  };
  void send(std::unique_ptr<Batch> batch);  // nullptr: the end
  void run();

  Judge judge_;
  std::unique_ptr<Batch> filling_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<Batch>> full_;    // to judge, oldest first; nullptr ends
  std::vector<std::unique_ptr<Batch>> spare_;  // judged, for reuse
  std::exception_ptr failed_;
  bool finished_ = false;
  std::thread thread_;
};

}  // namespace sg::monitor::exim
