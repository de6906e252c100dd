#pragma once
/// Threshold ranges as the Nagios plugin development guidelines define them, for the check face.
#include <optional>
#include <string>
#include <string_view>

namespace smtp {

/// `10` (alert outside 0..10), `10:` (outside 10..infinity), `~:10` (outside -infinity..10),
/// `10:20` (outside 10..20); a leading `@` alerts inside the range instead, ends included.
struct NagiosRange {
  std::optional<double> start;  // none: -infinity (`~`)
  std::optional<double> end;    // none: +infinity
  bool alert_inside = false;    // `@`
  std::string text;             // as given, for the perfdata's warn and crit fields

  /// True if `value` is in the alerting part of the range.
  bool alerts(double value) const;
};

/// Parses `text`; nothing, with `error` saying why, if it is not a range.
std::optional<NagiosRange> parse_nagios_range(std::string_view text, std::string& error);

}  // namespace smtp
