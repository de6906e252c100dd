#pragma once
/// The Nagios verdict on one probe: the state, the status line, the long output and the perfdata
/// (the plugin development guidelines' format). Pure: unit-tested without a network.
#include <optional>
#include <string>

#include "exporter/nagios_range.h"
#include "probes/probe_result.h"
#include "probes/smtp_probe.h"

namespace smtp {

/// Nagios states, as plugin exit codes.
enum class NagiosState : int { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };

/// "OK", "WARNING", "CRITICAL", "UNKNOWN".
std::string_view nagios_state_name(NagiosState state);

/// What the check was asked to judge, beyond the probe's own verdict.
struct CheckThresholds {
  std::optional<NagiosRange> warning;            // -w: seconds of the whole session
  std::optional<NagiosRange> critical;           // -c
  std::optional<NagiosRange> greeting_warning;   // -W: seconds to the greeting's last line
  std::optional<NagiosRange> greeting_critical;  // -C
  std::optional<int> cert_warning_days;          // -D warn[,crit]: days left at most alert
  std::optional<int> cert_critical_days;         // (0 when only warn is given)
  std::string expect;        // -e: text the greeting must contain (empty: not checked)
  bool ignore_quit = false;  // -q: a QUIT not answered with 221 is OK
  bool verbose = false;      // -v: the dialogue and every hint as long output
};

struct CheckReport {
  NagiosState state = NagiosState::kUnknown;
  /// The whole plugin output: `SMTP <STATE> - <summary> | <perfdata>`, then the long output.
  std::string output;
};

/// Judges `result` against `thresholds`: every check asked for is made and reported, the state
/// is the worst of them. `now` (Unix seconds) dates the certificate.
CheckReport evaluate_check(const ProbeTarget& target, const ProbeResult& result,
                           const CheckThresholds& thresholds, double now);

/// The output for arguments that cannot be used: `SMTP UNKNOWN - <message>` (exit code 3).
CheckReport usage_error_report(const std::string& message);

}  // namespace smtp
