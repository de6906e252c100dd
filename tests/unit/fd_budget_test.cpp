#include "exporter/fd_budget.h"

#include <sys/resource.h>

#include <gtest/gtest.h>

#include <cstdint>

namespace smtp {
namespace {

// Every descriptor the plan hands out fits in the limit.
std::uint64_t planned(const FdBudget& budget) {
  return budget.probe_slots * kFdsPerProbe + budget.http_connections + budget.reserve;
}

TEST(FdBudgetTest, ASmallLimitShrinksTheHttpCapAndKeepsProbesApart) {
  // ulimit -n 256: the case where 300 idle HTTP connections used to starve every probe.
  const FdBudget budget = plan_fd_budget(256, 0);
  EXPECT_EQ(budget.limit, 256u);
  EXPECT_EQ(budget.reserve, 32u);
  EXPECT_EQ(budget.http_connections, 56u);
  EXPECT_EQ(budget.probe_slots, 84u);
  EXPECT_LE(planned(budget), 256u);
}

TEST(FdBudgetTest, ALargeLimitCapsEachPart) {
  const FdBudget budget = plan_fd_budget(20000, 0);
  EXPECT_EQ(budget.http_connections, kMaxHttpConnections);
  EXPECT_EQ(budget.probe_slots, kDefaultMaxConcurrency);
  EXPECT_EQ(budget.reserve, 256u);
  const FdBudget huge = plan_fd_budget(UINT64_MAX, 0);
  EXPECT_EQ(huge.http_connections, kMaxHttpConnections);
  EXPECT_EQ(huge.probe_slots, kDefaultMaxConcurrency);
  EXPECT_EQ(huge.limit, UINT64_MAX);
}

TEST(FdBudgetTest, RequestedConcurrencyCapsProbesButNeverTakesFromHttp) {
  const FdBudget few = plan_fd_budget(20000, 10);
  EXPECT_EQ(few.probe_slots, 10u);
  EXPECT_EQ(few.http_connections, kMaxHttpConnections);
  // Asking for more than the limit allows gets what fits, and HTTP keeps its part.
  const FdBudget greedy = plan_fd_budget(20000, 100000);
  EXPECT_EQ(greedy.probe_slots, (20000u - 256u - kMaxHttpConnections) / kFdsPerProbe);
  EXPECT_EQ(greedy.http_connections, kMaxHttpConnections);
  EXPECT_LE(planned(greedy), 20000u);
  const FdBudget small = plan_fd_budget(256, 100000);
  EXPECT_EQ(small.http_connections, 56u);
  EXPECT_EQ(small.probe_slots, 84u);
}

TEST(FdBudgetTest, EveryLimitGetsAPlanThatFits) {
  std::size_t last_http = 0;
  for (std::uint64_t limit = 1; limit <= 70000; limit += limit < 600 ? 1 : 97) {
    const FdBudget budget = plan_fd_budget(limit, 0);
    ASSERT_GE(budget.probe_slots, 1u) << limit;
    ASSERT_GE(budget.http_connections, 1u) << limit;
    ASSERT_LE(budget.http_connections, kMaxHttpConnections) << limit;
    ASSERT_LE(budget.probe_slots, kDefaultMaxConcurrency) << limit;
    // The HTTP cap grows with the limit, never shrinks.
    ASSERT_GE(budget.http_connections, last_http) << limit;
    last_http = budget.http_connections;
    // Below a few dozen descriptors nothing fits anyway; from there on, the plan does.
    if (limit >= 16) {
      ASSERT_LE(planned(budget), limit) << limit;
    }
  }
}

TEST(FdBudgetTest, RaisesTheSoftLimitToTheHardOneAndPlansForIt) {
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  if (before.rlim_max > 1024) {
    rlimit lowered = before;
    lowered.rlim_cur = 1024;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  }
  const FdBudget budget = raise_fd_limit_and_plan(0);
  rlimit after{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
  EXPECT_EQ(budget.limit, after.rlim_cur);
  const FdBudget expected = plan_fd_budget(after.rlim_cur, 0);
  EXPECT_EQ(budget.probe_slots, expected.probe_slots);
  EXPECT_EQ(budget.http_connections, expected.http_connections);
}

}  // namespace
}  // namespace smtp
