#pragma once
/// The standard process_* metrics, named and typed as the Go and Python clients export them.
#include <optional>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

namespace smtp {

/// Reads /proc/self at every Collect(): process_cpu_seconds_total, process_resident_memory_bytes,
/// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds.
/// A family whose source cannot be read is left out of that scrape rather than reported as 0.
/// Collect() is safe to call from several threads at once.
class ProcessCollector : public prometheus::Collectable {
 public:
  ProcessCollector();

  /// The families above, each with one unlabelled series.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // The start time never changes; it is worked out once.
  std::optional<double> start_time_seconds_;
};

}  // namespace smtp
