#pragma once
/// The probe thread's work: the schedule loop, the probe and DNS-refresh coroutines, and the slot
/// guard that gives a probe's schedule slot back whatever happens to it.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "exporter/config.h"
#include "exporter/metrics.h"
#include "exporter/scheduler.h"
#include "exporter/target_set.h"
#include "probes/asio.h"
#include "probes/smtp_probe.h"

namespace smtp {

/// Runs one probe: run_probe, or a stand-in in tests.
using ProbeFunction = std::function<asio::awaitable<ProbeResult>(const ProbeTarget&, ProbeOptions)>;

struct ProbeRunnerOptions {
  std::size_t max_concurrency = 1;
  ProbeFunction probe = [](const ProbeTarget& target, ProbeOptions options) {
    return run_probe(target, std::move(options));
  };
};

/// What applying a config did, for the log.
struct ApplySummary {
  std::size_t targets = 0;
  std::size_t endpoints_added = 0;
  std::size_t lookups_due = 0;  // MX and all_addresses targets, looked up at once
  /// When the first and the last of the new endpoints' first probes are due (spread over their
  /// interval); zero when no endpoint was added.
  std::chrono::nanoseconds first_probe_in{};
  std::chrono::nanoseconds last_probe_in{};
};

/// Owns the schedule and the target set, and runs their probes on one executor (the probe
/// thread). Every member function must be called on that executor.
class ProbeRunner {
 public:
  ProbeRunner(asio::any_io_executor executor, ExporterMetrics& metrics, ProbeRunnerOptions options);
  ~ProbeRunner();  // stop()s
  ProbeRunner(const ProbeRunner&) = delete;
  ProbeRunner& operator=(const ProbeRunner&) = delete;

  /// Makes `config` the running one: a new DNS resolver (so /etc/resolv.conf is read again),
  /// the target set's changes put into the schedule. Throws (and changes nothing) if the
  /// resolver cannot start with the configured servers.
  ApplySummary apply(Config config);

  /// Starts the schedule loop. stop() ends it and abandons the probes in flight.
  void start();
  void stop();

  /// Every series, copied for a scrape.
  SeriesSnapshot snapshot() const;

  /// The running config's DNS resolver (for /probe's lookups, on the same executor).
  std::shared_ptr<Resolver> resolver() const;

  const TargetSet& targets() const;
  const Schedule& schedule() const;

  struct Core;  // shared with the coroutines, which may outlive the runner

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace smtp
