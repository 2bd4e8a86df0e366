// ObservationPipe: every observation reaches the judge once, in order, with
// its text intact after the reader's buffers are gone; a failing judge
// neither hangs the reader nor loses the error.
#include "monitor/observation_pipe.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <new>
#include <string>
#include <vector>

namespace sg::monitor::exim {
namespace {

using What = Observation::What;

struct Copy {
  What what;
  std::string identity, sender, source, list;
  std::uint64_t hash;
  std::uint32_t index, recipients;
  std::int64_t time;
  bool operator==(const Copy&) const = default;
};

Copy copy_of(const Observation& o) {
  return {o.what,
          std::string(o.identity),
          std::string(o.sender),
          std::string(o.source),
          std::string(o.recipient_list),
          o.identity_hash,
          o.identity_index,
          o.recipients,
          o.time};
}

// Observation i of a made-up log: texts of varied lengths, some empty.
Copy made_up(int i) {
  const What whats[] = {What::message, What::delivery, What::deferral, What::bounce,
                        What::auth_failure};
  return {whats[i % 5],
          "auth:user" + std::to_string(i % 97) + "@example.com",
          i % 7 == 0 ? "" : "sender" + std::to_string(i) + "@example.org",
          i % 3 == 0 ? "" : "192.0.2." + std::to_string(i % 250),
          std::string(static_cast<std::size_t>(i % 300), 'r'),
          static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ull,
          static_cast<std::uint32_t>(i % 97),
          static_cast<std::uint32_t>(i % 5),
          1'790'000'000 + i};
}

TEST(ObservationPipe, EveryObservationArrivesOnceInOrderWithItsText) {
  constexpr int kCount = 3 * static_cast<int>(ObservationPipe::kBatch) * 5 + 17;
  std::vector<Copy> judged;
  ObservationPipe pipe([&](const Observation& o) { judged.push_back(copy_of(o)); });
  for (int i = 0; i < kCount; ++i) {
    Copy c = made_up(i);
    // The reader's buffer: overwritten once the observation is pushed.
    std::string buffer = c.identity + c.sender + c.source + c.list;
    std::string_view b(buffer);
    std::size_t at = 0;
    auto take = [&](std::size_t n) {
      auto v = b.substr(at, n);
      at += n;
      return v;
    };
    Observation o{c.what,
                  take(c.identity.size()),
                  c.hash,
                  c.index,
                  take(c.sender.size()),
                  take(c.source.size()),
                  take(c.list.size()),
                  c.recipients,
                  c.time};
    pipe.push(o);
    buffer.assign(buffer.size(), '#');
  }
  pipe.finish();
  ASSERT_EQ(judged.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(judged[i], made_up(i)) << i;
}

TEST(ObservationPipe, NothingPushedFinishesAtOnce) {
  int calls = 0;
  ObservationPipe pipe([&](const Observation&) { ++calls; });
  pipe.finish();
  pipe.finish();  // twice is harmless
  EXPECT_EQ(calls, 0);
}

TEST(ObservationPipe, AFailingJudgeIsReportedAndDoesNotStallTheReader) {
  int calls = 0;
  ObservationPipe pipe([&](const Observation&) {
    if (++calls == 100) throw std::bad_alloc();
  });
  const Copy c = made_up(1);
  Observation o{c.what,   c.identity, c.hash,       c.index, c.sender,
                c.source, c.list,     c.recipients, c.time};
  // Far more than kInFlight batches: the reader must not wait for a judge
  // that has stopped taking them.
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < 40 * ObservationPipe::kBatch; ++i) pipe.push(o);
  EXPECT_THROW(pipe.finish(), std::bad_alloc);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(calls, 100);
}

TEST(ObservationPipe, DestroyedWithoutFinishJudgesWhatWasPushed) {
  int calls = 0;
  {
    ObservationPipe pipe([&](const Observation&) { ++calls; });
    const Copy c = made_up(2);
    Observation o{c.what,   c.identity, c.hash,       c.index, c.sender,
                  c.source, c.list,     c.recipients, c.time};
    for (int i = 0; i < 5000; ++i) pipe.push(o);
  }
  EXPECT_EQ(calls, 5000);
}

}  // namespace
}  // namespace sg::monitor::exim
