// The schedule's rules with a fake clock: spreading, no overlap, the concurrency cap, catch-up.
#include "exporter/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

namespace smtp {
namespace {

using namespace std::chrono_literals;
using TimePoint = Schedule::TimePoint;

const TimePoint kT0 = TimePoint(std::chrono::hours(1000));

TEST(ScheduleTest, SpreadIsDeterministicAndWithinTheInterval) {
  for (int i = 0; i < 1000; ++i) {
    std::string name = "mx" + std::to_string(i);
    auto offset = Schedule::spread_offset(name, 10s);
    EXPECT_GE(offset, 0s);
    EXPECT_LT(offset, 10s);
    EXPECT_EQ(offset, Schedule::spread_offset(name, 10s));
  }
}

TEST(ScheduleTest, ManyTargetsSpreadEvenlyOverTheInterval) {
  // 10,000 targets over 10 s in 100 ms slots: no slot may get more than twice its share.
  Schedule schedule(100000);
  std::vector<int> per_slot(100, 0);
  for (int i = 0; i < 10000; ++i) schedule.add("target-" + std::to_string(i), 10s, kT0);
  for (int slot = 0; slot < 100; ++slot) {
    per_slot[slot] = static_cast<int>(schedule.take_due(kT0 + (slot + 1) * 100ms - 1ns).size());
  }
  int total = 0;
  for (int n : per_slot) total += n;
  EXPECT_EQ(total, 10000);
  EXPECT_LE(*std::max_element(per_slot.begin(), per_slot.end()), 200);
  EXPECT_GE(*std::min_element(per_slot.begin(), per_slot.end()), 50);
}

TEST(ScheduleTest, NothingIsDueBeforeItsOffset) {
  Schedule schedule(10);
  auto job = schedule.add("alpha", 30s, kT0);
  auto offset = Schedule::spread_offset("alpha", 30s);
  ASSERT_TRUE(schedule.next_wakeup().has_value());
  EXPECT_EQ(*schedule.next_wakeup(), kT0 + offset);
  if (offset > 0s) {
    EXPECT_TRUE(schedule.take_due(kT0 + offset - 1ns).empty());
  }
  auto due = schedule.take_due(kT0 + offset);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].job, job);
  EXPECT_EQ(due[0].planned, kT0 + offset);
}

TEST(ScheduleTest, RunsEveryIntervalAndNeverOverlapsItself) {
  Schedule schedule(10);
  auto job = schedule.add("alpha", 10s, kT0);
  TimePoint first = kT0 + Schedule::spread_offset("alpha", 10s);
  ASSERT_EQ(schedule.take_due(first).size(), 1u);
  // Still running at its next planned time: it is not started again.
  EXPECT_TRUE(schedule.take_due(first + 10s).empty());
  EXPECT_FALSE(schedule.next_wakeup().has_value());
  schedule.finished(job, first + 2s);
  auto due = schedule.take_due(first + 10s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].planned, first + 10s);
}

TEST(ScheduleTest, AStallSkipsMissedRunsAndKeepsThePhase) {
  Schedule schedule(10);
  auto job = schedule.add("alpha", 10s, kT0);
  TimePoint first = kT0 + Schedule::spread_offset("alpha", 10s);
  ASSERT_EQ(schedule.take_due(first).size(), 1u);
  schedule.finished(job, first + 35s);  // the process was stalled for three intervals
  ASSERT_TRUE(schedule.next_wakeup().has_value());
  EXPECT_EQ(*schedule.next_wakeup(), first + 40s);
}

TEST(ScheduleTest, ConcurrencyCapHoldsJobsInPlanOrder) {
  Schedule schedule(2);
  std::vector<Schedule::JobId> jobs;
  for (int i = 0; i < 5; ++i) {
    // Not "t" + std::to_string(i): a false -Wrestrict of GCC 12 at -O3 (GCC bug 105651).
    jobs.push_back(schedule.add(std::string("t").append(std::to_string(i)), 10s, kT0));
  }
  auto due = schedule.take_due(kT0 + 10s);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(schedule.running(), 2u);
  EXPECT_LE(due[0].planned, due[1].planned);
  EXPECT_FALSE(schedule.next_wakeup().has_value());  // full: wait for finished()
  EXPECT_TRUE(schedule.take_due(kT0 + 10s).empty());

  std::set<Schedule::JobId> started = {due[0].job, due[1].job};
  std::vector<Schedule::JobId> running = {due[0].job, due[1].job};
  TimePoint last_plan = due[1].planned;
  while (started.size() < 5) {
    schedule.finished(running.front(), kT0 + 10s);
    running.erase(running.begin());
    ASSERT_TRUE(schedule.next_wakeup().has_value());
    EXPECT_LE(*schedule.next_wakeup(), kT0 + 10s);  // the waiting job is due at once
    due = schedule.take_due(kT0 + 10s);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_GE(due[0].planned, last_plan);  // oldest plan first
    last_plan = due[0].planned;
    EXPECT_TRUE(started.insert(due[0].job).second);
    running.push_back(due[0].job);
  }
  EXPECT_EQ(schedule.running(), 2u);
}

TEST(ScheduleTest, RemovedJobIsNeverStartedAgain) {
  Schedule schedule(10);
  auto keep = schedule.add("keep", 10s, kT0);
  auto drop = schedule.add("drop", 10s, kT0);
  schedule.remove(drop);
  EXPECT_EQ(schedule.jobs(), 1u);
  auto due = schedule.take_due(kT0 + 10s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].job, keep);
}

TEST(ScheduleTest, RemovingARunningJobFreesItsSlotWhenItFinishes) {
  Schedule schedule(1);
  auto job = schedule.add("alpha", 10s, kT0);
  ASSERT_EQ(schedule.take_due(kT0 + 10s).size(), 1u);
  schedule.remove(job);
  EXPECT_EQ(schedule.running(), 1u);
  auto other = schedule.add("beta", 10s, kT0 + 10s);
  EXPECT_NE(other, job);  // the running job's id is not reused while it runs
  schedule.finished(job, kT0 + 11s);
  EXPECT_EQ(schedule.running(), 0u);
  auto due = schedule.take_due(kT0 + 30s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].job, other);
}

TEST(ScheduleTest, AddAtRunsFirstAtTheGivenTime) {
  Schedule schedule(10);
  auto job = schedule.add_at(5min, kT0);
  auto due = schedule.take_due(kT0);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].job, job);
  schedule.finished(job, kT0 + 1s);
  EXPECT_EQ(*schedule.next_wakeup(), kT0 + 5min);
}

TEST(ScheduleTest, ZeroConcurrencyStillRunsOneAtATime) {
  Schedule schedule(0);
  EXPECT_EQ(schedule.max_concurrency(), 1u);
}

TEST(ScheduleTest, ReplanOfAnIdleJobMovesItsNextRun) {
  Schedule schedule(10);
  auto job = schedule.add_at(5min, kT0 + 4min);
  schedule.replan(job, 1min, kT0);
  auto due = schedule.take_due(kT0);
  ASSERT_EQ(due.size(), 1u);  // now, not in 4 minutes
  EXPECT_EQ(due[0].job, job);
  schedule.finished(job, kT0 + 1s);
  ASSERT_TRUE(schedule.next_wakeup().has_value());
  EXPECT_EQ(*schedule.next_wakeup(), kT0 + 1min);                // the new interval
  EXPECT_TRUE(schedule.take_due(kT0 + 4min - 1s).size() == 1u);  // the old plan is gone
  EXPECT_TRUE(schedule.take_due(kT0 + 4min).empty());
}

TEST(ScheduleTest, ReplanOfARunningJobWaitsForItsEnd) {
  // A reload while a DNS refresh runs: the refresh is wanted again at once, but a job never runs
  // twice at the same time.
  Schedule schedule(10);
  auto job = schedule.add_at(5min, kT0);
  ASSERT_EQ(schedule.take_due(kT0).size(), 1u);
  schedule.replan(job, 5min, kT0 + 1s);
  EXPECT_TRUE(schedule.take_due(kT0 + 2s).empty());  // still running: not started again
  schedule.finished(job, kT0 + 3s);
  auto due = schedule.take_due(kT0 + 3s);
  ASSERT_EQ(due.size(), 1u);  // at once after its end, not 5 minutes later
  EXPECT_EQ(due[0].planned, kT0 + 3s);
}

TEST(ScheduleTest, ReplanOfARemovedJobIsIgnored) {
  Schedule schedule(10);
  auto job = schedule.add_at(1min, kT0);
  schedule.remove(job);
  schedule.replan(job, 1min, kT0);
  EXPECT_TRUE(schedule.take_due(kT0 + 1h).empty());
  EXPECT_EQ(schedule.jobs(), 0u);
}

}  // namespace
}  // namespace smtp
