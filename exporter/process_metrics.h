#pragma once
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

namespace smtp {
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};
}  // namespace smtp
