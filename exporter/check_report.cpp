#include "exporter/check_report.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "probes/diagnosis.h"

namespace smtp {
namespace {

/// Between the status line's parts. Not "; ": Nagios writes ';' as ':' in its log, whose
/// fields it separates.
constexpr const char* kSeparator = " - ";

/// One check the plugin made, and how it came out.
struct Verdict {
  NagiosState state = NagiosState::kOk;
  std::string text;
};

/// How bad each state is, for "the worst of them". UNKNOWN (the server could not be judged)
/// outranks WARNING, so that a side remark such as a slow session does not hide it.
int severity(NagiosState state) {
  switch (state) {
    case NagiosState::kOk:
      return 0;
    case NagiosState::kWarning:
      return 1;
    case NagiosState::kUnknown:
      return 2;
    case NagiosState::kCritical:
      return 3;
  }
  return 2;
}

/// Server text may hold '|', which Nagios would take for the start of the perfdata.
std::string nagios_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '|') {
      out += "\\x7c";
    } else {
      out += c;
    }
  }
  return out;
}

/// "0.4 ms" below a second (a greeting on a LAN takes well under a millisecond), "2.003 s" above.
std::string format_seconds(double value) {
  char text[32];
  if (value < 1) {
    std::snprintf(text, sizeof text, "%.1f ms", value * 1000);
  } else {
    std::snprintf(text, sizeof text, "%.3f s", value);
  }
  return text;
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

NagiosState failure_state(FailureReason reason) {
  switch (reason) {
    case FailureReason::kNone:
      return NagiosState::kOk;
    // Not a verdict on the server: the name did not resolve, or the plugin had no socket.
    case FailureReason::kResolveError:
    case FailureReason::kResolveTimeout:
    case FailureReason::kExporterOverloaded:
      return NagiosState::kUnknown;
    default:
      return NagiosState::kCritical;
  }
}

/// -w/-c or -W/-C against `value` seconds: the worse of the two, with the range crossed.
void judge_time(std::vector<Verdict>& verdicts, std::string_view what, double value,
                const std::optional<NagiosRange>& warning,
                const std::optional<NagiosRange>& critical) {
  if (critical && critical->alerts(value)) {
    verdicts.push_back({NagiosState::kCritical, std::string(what) + " took " +
                                                    format_seconds(value) + " (critical range " +
                                                    critical->text + ")"});
  } else if (warning && warning->alerts(value)) {
    verdicts.push_back({NagiosState::kWarning, std::string(what) + " took " +
                                                   format_seconds(value) + " (warning range " +
                                                   warning->text + ")"});
  }
}

/// -D as check_smtp reads it: whole days left, at most `warn` is WARNING, at most `crit` (0 if
/// not given: a certificate that expires today) is CRITICAL, an expired one is CRITICAL.
void judge_certificate_days(std::vector<Verdict>& verdicts, const TlsFacts& tls,
                            const CheckThresholds& thresholds, double now) {
  if (!thresholds.cert_warning_days) return;
  const int days = days_left(tls.earliest_not_after, now);
  const int critical_days = thresholds.cert_critical_days.value_or(0);
  const std::string expires = "the certificate expires in " + std::to_string(days) + " days, on " +
                              format_utc(tls.earliest_not_after);
  if (tls.earliest_not_after < now) {
    verdicts.push_back({NagiosState::kCritical,
                        "the certificate expired on " + format_utc(tls.earliest_not_after)});
  } else if (days <= critical_days) {
    verdicts.push_back({NagiosState::kCritical,
                        expires + " (critical at " + std::to_string(critical_days) + " or less)"});
  } else if (days <= *thresholds.cert_warning_days) {
    verdicts.push_back(
        {NagiosState::kWarning,
         expires + " (warning at " + std::to_string(*thresholds.cert_warning_days) + " or less)"});
  }
}

/// What went well, for the end of the status line: the banner, the greeting time, QUIT, TLS.
std::string good_news(const ProbeResult& result, double now) {
  if (result.greeting_code != 220 || !result.greeting_latency || !result.banner) return {};
  std::string text = result.banner->hostname + " (" + result.banner->software + ") greeted in " +
                     format_seconds(seconds(*result.greeting_latency));
  if (result.quit_code != 0) text += ", QUIT " + std::to_string(result.quit_code);
  if (result.tls) {
    text += ", " + result.tls->version;
    text += result.tls->verified ? ", certificate verified" : ", certificate not verified";
    text += ", " + std::to_string(days_left(result.tls->earliest_not_after, now)) + " days left";
  }
  return text;
}

std::string perfdata(const ProbeResult& result, const CheckThresholds& thresholds, double now) {
  std::string out;
  const auto add_time = [&out](std::string_view label, std::optional<std::chrono::nanoseconds> d,
                               const std::optional<NagiosRange>& warning = std::nullopt,
                               const std::optional<NagiosRange>& critical = std::nullopt) {
    if (!d) return;  // a phase that never ran has no value (not a false 0)
    char value[64];
    std::snprintf(value, sizeof value, "=%.6fs;", seconds(*d));
    if (!out.empty()) out += ' ';
    out += std::string(label) + value + (warning ? warning->text : "") + ";" +
           (critical ? critical->text : "") + ";0";
  };
  add_time("time", result.total, thresholds.warning, thresholds.critical);
  add_time("connect", result.phase(Phase::kConnect));
  add_time("greeting", result.greeting_latency, thresholds.greeting_warning,
           thresholds.greeting_critical);
  add_time("ehlo", result.phase(Phase::kEhlo));
  add_time("tls_handshake", result.phase(Phase::kTlsHandshake));
  add_time("quit", result.phase(Phase::kQuit));
  if (result.tls) {
    // "@~:30" alerts at 30 or less: -D's thresholds as Nagios ranges.
    const auto range = [](const std::optional<int>& days) {
      return days ? "@~:" + std::to_string(*days) : std::string();
    };
    const std::optional<int> critical_days = thresholds.cert_warning_days
                                                 ? thresholds.cert_critical_days.value_or(0)
                                                 : std::optional<int>();
    out += " cert_days=" + std::to_string(days_left(result.tls->earliest_not_after, now)) + ";" +
           range(thresholds.cert_warning_days) + ";" + range(critical_days);
    while (out.back() == ';') out.pop_back();  // the guidelines let empty trailing fields go
  }
  return out;
}

void append_long_output(std::string& out, const ProbeTarget& target, const ProbeResult& result,
                        const std::vector<Finding>& findings, double now) {
  char line[64];
  out += "dialogue (ms since the check started):\n";
  for (const TranscriptLine& entry : result.transcript) {
    std::snprintf(line, sizeof line, "%9.3f ",
                  std::chrono::duration<double, std::milli>(entry.at).count());
    const char* direction = entry.direction == TranscriptLine::Direction::kSent       ? "C: "
                            : entry.direction == TranscriptLine::Direction::kReceived ? "S: "
                                                                                      : "-- ";
    out += line + std::string(direction) + nagios_text(entry.text) + "\n";
  }
  if (result.tls) {
    const TlsFacts& tls = *result.tls;
    std::string names;
    for (const std::string& name : tls.names) names += (names.empty() ? "" : ", ") + name;
    out += "TLS: " + tls.version + ", " + tls.cipher + "\n";
    out += "certificate: " +
           (tls.verified ? std::string("verified") : "not verified: " + tls.verify_error) + "\n";
    out += "  expected name: " + nagios_text(expected_tls_name(target)) + "\n";
    out += "  subject: " + nagios_text(tls.subject) + "\n";
    out += "  names: " + nagios_text(names.empty() ? "none" : names) + "\n";
    out += "  issuer: " + nagios_text(tls.issuer) + "\n";
    out += "  expires: " + describe_expiry(tls.not_after, now) + "\n";
  }
  if (!findings.empty()) out += "what to check:\n";
  for (const Finding& finding : findings) {
    out += "  " + nagios_text(finding.problem) + "\n";
    for (const std::string& hint : finding.hints) out += "  - " + nagios_text(hint) + "\n";
  }
}

}  // namespace

std::string_view nagios_state_name(NagiosState state) {
  switch (state) {
    case NagiosState::kOk:
      return "OK";
    case NagiosState::kWarning:
      return "WARNING";
    case NagiosState::kCritical:
      return "CRITICAL";
    case NagiosState::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

CheckReport evaluate_check(const ProbeTarget& target, const ProbeResult& result,
                           const CheckThresholds& thresholds, double now) {
  const std::vector<Finding> findings = diagnose(target, result, now);
  std::vector<Verdict> verdicts;
  for (const Finding& finding : findings) {
    switch (finding.about) {
      case Finding::About::kFailure: {
        std::string text = std::string(reason_name(result.failure)) + ": " + finding.problem;
        if (!finding.hints.empty()) text += " (" + finding.hints.front() + ")";
        verdicts.push_back({failure_state(result.failure), std::move(text)});
        break;
      }
      case Finding::About::kQuit:
        verdicts.push_back({thresholds.ignore_quit ? NagiosState::kOk : NagiosState::kWarning,
                            finding.problem + (thresholds.ignore_quit ? " (ignored: -q)" : "")});
        break;
      case Finding::About::kCertificate:
        verdicts.push_back(
            {NagiosState::kOk, finding.problem + " (ignored: insecure-skip-verify)"});
        break;
    }
  }
  if (!thresholds.expect.empty() && !result.greeting_lines.empty()) {
    std::string greeting;
    for (const std::string& line : result.greeting_lines) greeting += line + "\n";
    if (greeting.find(thresholds.expect) == std::string::npos) {
      verdicts.push_back(
          {NagiosState::kWarning, "the greeting does not contain '" + thresholds.expect + "'"});
    }
  }
  if (result.greeting_latency) {
    judge_time(verdicts, "the greeting", seconds(*result.greeting_latency),
               thresholds.greeting_warning, thresholds.greeting_critical);
  }
  judge_time(verdicts, "the session", seconds(result.total), thresholds.warning,
             thresholds.critical);
  if (result.tls) judge_certificate_days(verdicts, *result.tls, thresholds, now);

  std::stable_sort(verdicts.begin(), verdicts.end(), [](const Verdict& a, const Verdict& b) {
    return severity(a.state) > severity(b.state);
  });
  CheckReport report;
  report.state = NagiosState::kOk;
  std::string summary;
  for (const Verdict& verdict : verdicts) {
    if (severity(verdict.state) > severity(report.state)) report.state = verdict.state;
    summary += (summary.empty() ? "" : kSeparator) + verdict.text;
  }
  const std::string news = good_news(result, now);
  if (!news.empty()) summary += (summary.empty() ? "" : kSeparator) + news;
  report.output = "SMTP " + std::string(nagios_state_name(report.state)) + " - " +
                  nagios_text(summary) + " | " + perfdata(result, thresholds, now) + "\n";
  if (thresholds.verbose) append_long_output(report.output, target, result, findings, now);
  return report;
}

CheckReport usage_error_report(const std::string& message) {
  return {NagiosState::kUnknown, "SMTP UNKNOWN - " + nagios_text(message) + "\n"};
}

}  // namespace smtp
