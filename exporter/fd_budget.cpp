#include "exporter/fd_budget.h"

#include <sys/resource.h>

#include <algorithm>

namespace smtp {
namespace {

/// An unlimited (or absurdly large) limit is planned as this many: the parts are capped anyway.
constexpr std::uint64_t kLargestLimit = std::uint64_t{1} << 24;
/// The reserve: a sixteenth of the limit, at least this many (what the process holds besides
/// sockets is a few dozen descriptors)...
constexpr std::size_t kMinReserve = 32;
/// ...and at most this many: past it, more would only sit idle.
constexpr std::size_t kMaxReserve = 256;

}  // namespace

FdBudget plan_fd_budget(std::uint64_t open_file_limit, std::size_t requested_concurrency) {
  FdBudget budget;
  budget.limit = open_file_limit;
  const auto limit = static_cast<std::size_t>(std::min(open_file_limit, kLargestLimit));
  // A limit too small to run with still gets a plan: one probe and one connection, and the
  // failures (EMFILE) show where the exporter runs out.
  budget.reserve = std::min(std::clamp(limit / 16, kMinReserve, kMaxReserve), limit / 2);
  const std::size_t sockets = limit - budget.reserve;
  // A quarter of the sockets for HTTP: with a small limit the cap shrinks with it, so that idle
  // or hostile clients can hold at most that quarter.
  budget.http_connections = std::clamp<std::size_t>(sockets / 4, 1, kMaxHttpConnections);
  const std::size_t probe_sockets =
      sockets > budget.http_connections ? sockets - budget.http_connections : 0;
  const std::size_t wanted =
      requested_concurrency == 0 ? kDefaultMaxConcurrency : requested_concurrency;
  budget.probe_slots = std::max<std::size_t>(1, std::min(wanted, probe_sockets / kFdsPerProbe));
  return budget;
}

FdBudget raise_fd_limit_and_plan(std::size_t requested_concurrency) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    // Cannot happen for RLIMIT_NOFILE; plan for the historical default.
    return plan_fd_budget(1024, requested_concurrency);
  }
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  const std::uint64_t fds = limit.rlim_cur == RLIM_INFINITY ? kLargestLimit : limit.rlim_cur;
  return plan_fd_budget(fds, requested_concurrency);
}

}  // namespace smtp
