#pragma once
/// What a failed probe means and what to check next, in an experienced operator's words: the one
/// table of hints that the terminal face, the Nagios face and the status page all print.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "probes/probe_result.h"
#include "probes/smtp_probe.h"

namespace smtp {

/// One problem a probe found.
struct Finding {
  /// What the problem is about: the probe's failure reason, the reply to QUIT, or a certificate
  /// that did not verify although the probe was told to go on (insecure_skip_verify).
  enum class About : std::uint8_t { kFailure, kQuit, kCertificate };
  std::string problem;             // one line: what went wrong, with the facts that show it
  std::vector<std::string> hints;  // what to check, the likeliest cause first
  About about = About::kFailure;
};

/// Every problem in `result`: the failure reason's first, then a QUIT not answered with 221 and
/// a certificate that did not verify (when they were not the failure, e.g. with
/// insecure_skip_verify). Empty for a clean success. `now` (Unix seconds) dates the certificate.
std::vector<Finding> diagnose(const ProbeTarget& target, const ProbeResult& result, double now);

/// The protocol spoken by a server whose first bytes were `first_bytes`, when they are
/// recognisable: "SSH", "HTTP", "TLS", "POP3", "IMAP"; empty otherwise.
std::string_view recognise_protocol(std::string_view first_bytes);

/// Whole days from `now` to `not_after` (Unix seconds), rounded down; negative once expired.
int days_left(double not_after, double now);

/// "2026-12-29 10:00:00 UTC".
std::string format_utc(double unix_seconds);

/// "2026-12-29 10:00:00 UTC (29 days left)", or "(expired 3 days ago)".
std::string describe_expiry(double not_after, double now);

/// The name a TLS target's certificate must carry: the server name, or the host.
std::string expected_tls_name(const ProbeTarget& target);

}  // namespace smtp
