// delivery::Schedule: the deliverer's in-memory queue view. The property that
// matters most is that a busy id is never handed out twice (two upstream
// sessions must not send the same message), and that notifications arriving
// while a message is being delivered are neither lost nor resurrect a
// message that is gone.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "delivery/delivery.hpp"

namespace sg::delivery {
namespace {

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Schedule, EmptyHasNothing) {
  Schedule s;
  EXPECT_FALSE(s.take(1'000'000).has_value());
  EXPECT_FALSE(s.next_due().has_value());
  EXPECT_EQ(s.due_count(1'000'000), 0u);
  EXPECT_EQ(s.waiting(), 0u);
  EXPECT_EQ(s.in_progress(), 0u);
  EXPECT_TRUE(s.ids().empty());
  EXPECT_FALSE(s.known("a"));
}

TEST(Schedule, TakesEarliestDueFirstAndOnlyWhatIsDue) {
  Schedule s;
  s.add("late", 300);
  s.add("early", 100);
  s.add("middle", 200);
  EXPECT_FALSE(s.take(99).has_value()) << "nothing is due before 100";
  EXPECT_EQ(s.take(250), "early");
  EXPECT_EQ(s.take(250), "middle");
  EXPECT_FALSE(s.take(250).has_value()) << "late is due at 300";
  EXPECT_EQ(s.take(300), "late") << "due time == now counts as due";
  EXPECT_FALSE(s.take(10'000).has_value());
}

TEST(Schedule, SameDueTimeTakesEachIdOnce) {
  Schedule s;
  for (const char* id : {"c", "a", "b"}) s.add(id, 50);
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i)
    if (auto id = s.take(50)) got.push_back(*id);
  EXPECT_EQ(sorted(got), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Schedule, BusyIdIsNeverHandedOutTwice) {
  Schedule s;
  s.add("m1", 10);
  ASSERT_EQ(s.take(10), "m1");
  EXPECT_TRUE(s.busy("m1"));
  EXPECT_TRUE(s.known("m1"));
  // A notification or rescan for the busy message must not make it takeable.
  s.add("m1", 0);
  EXPECT_FALSE(s.take(1'000'000).has_value());
  EXPECT_EQ(s.due_count(1'000'000), 0u);
  EXPECT_FALSE(s.next_due().has_value());
  EXPECT_EQ(s.waiting(), 0u);
  EXPECT_EQ(s.in_progress(), 1u);
}

TEST(Schedule, AddOnKnownIdKeepsTheEarlierTime) {
  Schedule s;
  s.add("m", 100);
  s.add("m", 500);  // later: ignored
  EXPECT_EQ(s.next_due(), 100);
  s.add("m", 40);  // earlier: wins
  EXPECT_EQ(s.next_due(), 40);
  EXPECT_EQ(s.waiting(), 1u) << "one id, not one entry per add";
  EXPECT_EQ(s.due_count(40), 1u);
  EXPECT_EQ(s.take(40), "m");
  EXPECT_FALSE(s.take(1'000'000).has_value()) << "the old time 100 left no second entry";
}

TEST(Schedule, FinishReschedulesOrForgets) {
  Schedule s;
  s.add("retry", 0);
  s.add("done", 0);
  ASSERT_TRUE(s.take(0));
  ASSERT_TRUE(s.take(0));
  s.finish("retry", 600);
  s.finish("done", std::nullopt);
  EXPECT_FALSE(s.busy("retry"));
  EXPECT_TRUE(s.known("retry"));
  EXPECT_FALSE(s.known("done"));
  EXPECT_EQ(s.in_progress(), 0u);
  EXPECT_EQ(s.waiting(), 1u);
  EXPECT_EQ(s.next_due(), 600);
  EXPECT_FALSE(s.take(599).has_value());
  EXPECT_EQ(s.take(600), "retry");
}

TEST(Schedule, AddWhileBusyMakesItDueAgainAtFinish) {
  Schedule s;
  s.add("m", 0);
  ASSERT_EQ(s.take(0), "m");
  s.add("m", 50);      // e.g. a rescan saw it while a session had it
  s.finish("m", 900);  // the delivery itself would retry at 900
  EXPECT_EQ(s.next_due(), 50) << "the earlier add wins over finish's time";
  EXPECT_EQ(s.take(50), "m");

  // And when finish's time is the earlier one, it wins.
  s.add("m", 700);
  s.finish("m", 300);
  EXPECT_EQ(s.next_due(), 300);
}

TEST(Schedule, FinishWithoutNextForgetsEvenAfterAddWhileBusy) {
  Schedule s;
  s.add("m", 0);
  ASSERT_EQ(s.take(0), "m");
  s.add("m", 5);  // pending notification for a message that is now gone
  s.finish("m", std::nullopt);
  EXPECT_FALSE(s.known("m"));
  EXPECT_TRUE(s.ids().empty());
  EXPECT_FALSE(s.take(1'000'000).has_value());
}

TEST(Schedule, FinishOfAnIdThatIsNotBusyChangesNothing) {
  Schedule s;
  s.add("waiting", 100);
  s.finish("waiting", 5);  // not busy: must not move it
  s.finish("unknown", 5);  // never seen: must not create it
  EXPECT_EQ(s.next_due(), 100);
  EXPECT_FALSE(s.known("unknown"));
  EXPECT_EQ(s.waiting(), 1u);
}

TEST(Schedule, ForgetRefusesBusyIds) {
  Schedule s;
  s.add("busy", 0);
  s.add("idle", 10);
  ASSERT_EQ(s.take(0), "busy");
  EXPECT_FALSE(s.forget("busy"));
  EXPECT_TRUE(s.busy("busy"));
  EXPECT_TRUE(s.forget("idle"));
  EXPECT_FALSE(s.known("idle"));
  EXPECT_FALSE(s.take(1'000'000).has_value()) << "a forgotten id is not handed out";
  EXPECT_TRUE(s.forget("never-seen")) << "forgetting an unknown id is not an error";
  // The busy one is still finished normally.
  s.finish("busy", 20);
  EXPECT_EQ(s.take(20), "busy");
}

TEST(Schedule, MakeAllDueFlushesWaitingAndBusy) {
  Schedule s;
  s.add("a", 1000);
  s.add("b", 2000);
  s.add("soon", 10);
  s.add("c", 0);
  ASSERT_EQ(s.take(0), "c");
  s.make_all_due(100);
  EXPECT_EQ(s.due_count(100), 3u);
  EXPECT_EQ(s.next_due(), 10) << "an id already due earlier keeps its time";
  std::vector<std::string> got;
  while (auto id = s.take(100)) got.push_back(*id);
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(got.front(), "soon");
  EXPECT_EQ(sorted(got), (std::vector<std::string>{"a", "b", "soon"}));
  // The busy one is due at the flush time once finished, though its own retry was later.
  s.finish("c", 5000);
  EXPECT_EQ(s.next_due(), 100);
  EXPECT_EQ(s.take(100), "c");
}

TEST(Schedule, DueCountAndNextDueIgnoreBusyIds) {
  Schedule s;
  s.add("x", 5);
  s.add("y", 7);
  s.add("z", 30);
  EXPECT_EQ(s.due_count(4), 0u);
  EXPECT_EQ(s.due_count(5), 1u);
  EXPECT_EQ(s.due_count(29), 2u);
  EXPECT_EQ(s.due_count(30), 3u);
  EXPECT_EQ(s.next_due(), 5);
  ASSERT_EQ(s.take(10), "x");
  EXPECT_EQ(s.next_due(), 7);
  EXPECT_EQ(s.due_count(30), 2u);
}

TEST(Schedule, IdsWaitingAndInProgressCountEveryKnownId) {
  Schedule s;
  s.add("a", 1);
  s.add("b", 2);
  s.add("c", 3);
  ASSERT_EQ(s.take(1), "a");
  EXPECT_EQ(s.waiting(), 2u);
  EXPECT_EQ(s.in_progress(), 1u);
  EXPECT_EQ(sorted(s.ids()), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_TRUE(s.forget("b"));
  s.finish("a", std::nullopt);
  EXPECT_EQ(s.ids(), (std::vector<std::string>{"c"}));
  EXPECT_EQ(s.waiting(), 1u);
  EXPECT_EQ(s.in_progress(), 0u);
}

}  // namespace
}  // namespace sg::delivery
