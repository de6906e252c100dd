#pragma once
/// How the exporter shares its open-file limit: the probes and the HTTP side each get a fixed
/// part, so that a flood of HTTP connections can never take the sockets the probes need (every
/// target would look down), nor a burst of probes the ones a scraper needs.
#include <cstddef>
#include <cstdint>

namespace smtp {

/// Sockets one probe may hold at once: an RFC 8305 race over IPv6 and IPv4 has two attempts open.
inline constexpr std::size_t kFdsPerProbe = 2;
/// With no --probe.max-concurrency, never more than this many probes at once.
inline constexpr std::size_t kDefaultMaxConcurrency = 4096;
/// Never more HTTP connections than this, however high the limit: a few scrapers need a few.
inline constexpr std::size_t kMaxHttpConnections = 512;

/// The parts of the open-file limit.
struct FdBudget {
  std::uint64_t limit = 0;           ///< the open-file limit that was split
  std::size_t probe_slots = 0;       ///< probes in flight at once (kFdsPerProbe sockets each)
  std::size_t http_connections = 0;  ///< HTTP connections open at once
  /// Left for everything else: stdio, the event loop, the listener and the one connection the
  /// accept loop holds while it decides whom to evict, logs, config reads, DNS, /proc.
  std::size_t reserve = 0;
};

/// Splits `open_file_limit` (RLIMIT_NOFILE's soft limit, after raising it to the hard one).
/// `requested_concurrency` (--probe.max-concurrency; 0: kDefaultMaxConcurrency) caps the probe
/// slots; it never takes descriptors from the HTTP side or the reserve. Pure.
FdBudget plan_fd_budget(std::uint64_t open_file_limit, std::size_t requested_concurrency);

/// Raises the soft open-file limit to the hard one and plans the budget for the result.
FdBudget raise_fd_limit_and_plan(std::size_t requested_concurrency);

}  // namespace smtp
