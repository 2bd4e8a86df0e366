// See observation_pipe.hpp.
#include "monitor/observation_pipe.hpp"

#include <string_view>
#include <utility>

namespace sg::monitor::exim {

ObservationPipe::ObservationPipe(Judge judge)
    : judge_(std::move(judge)), filling_(std::make_unique<Batch>()) {
  filling_->items.reserve(kBatch);
  thread_ = std::thread([this] { run(); });
}

ObservationPipe::~ObservationPipe() {
  try {
    finish();
  } catch (...) {
  }
}

void ObservationPipe::push(const Observation& o) {
  Batch& b = *filling_;
  Batch::Item item{o.what, o.identity_index, o.recipients, o.identity_hash, o.time, {}, {}};
  const std::string_view parts[4] = {o.identity, o.sender, o.source, o.recipient_list};
  for (int i = 0; i < 4; ++i) {
    item.at[i] = static_cast<std::uint32_t>(b.text.size());
    item.size[i] = static_cast<std::uint32_t>(parts[i].size());
    b.text.append(parts[i]);
  }
  b.items.push_back(item);
  if (b.items.size() < kBatch) return;
  std::unique_ptr<Batch> next;
  {
    std::unique_lock lock(mutex_);
    if (!spare_.empty()) {
      next = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  if (next == nullptr) {
    next = std::make_unique<Batch>();
    next->items.reserve(kBatch);
  }
  send(std::exchange(filling_, std::move(next)));
}

void ObservationPipe::finish() {
  if (thread_.joinable()) {
    if (filling_ != nullptr && !filling_->items.empty()) send(std::move(filling_));
    send(nullptr);
    thread_.join();
  }
  if (failed_) std::rethrow_exception(std::exchange(failed_, nullptr));
}

void ObservationPipe::send(std::unique_ptr<Batch> batch) {
  std::unique_lock lock(mutex_);
  // A judge that failed takes nothing more; the reader need not wait for it.
  changed_.wait(lock, [&] { return full_.size() < kInFlight || finished_; });
  if (finished_) {
    if (batch != nullptr) {
      batch->items.clear();
      batch->text.clear();
      spare_.push_back(std::move(batch));
    }
    return;
  }
  full_.push_back(std::move(batch));
  changed_.notify_all();
}

void ObservationPipe::run() {
  for (;;) {
    std::unique_ptr<Batch> batch;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return !full_.empty(); });
      batch = std::move(full_.front());
      full_.pop_front();
      changed_.notify_all();
    }
    if (batch == nullptr) break;  // the end
    try {
      const char* text = batch->text.data();
      for (const auto& it : batch->items) {
        auto part = [&](int i) { return std::string_view(text + it.at[i], it.size[i]); };
        Observation o{it.what, part(0),       it.identity_hash, it.identity_index, part(1), part(2),
                      part(3), it.recipients, it.time};
        judge_(o);
      }
    } catch (...) {
      std::unique_lock lock(mutex_);
      failed_ = std::current_exception();
      finished_ = true;
      full_.clear();
      changed_.notify_all();
      return;
    }
    batch->items.clear();
    batch->text.clear();
    std::unique_lock lock(mutex_);
    spare_.push_back(std::move(batch));
  }
  std::unique_lock lock(mutex_);
  finished_ = true;
  changed_.notify_all();
}

}  // namespace sg::monitor::exim
