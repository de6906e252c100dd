#pragma once
/// What the status page shows of one endpoint beyond its series: its recent greeting latencies,
/// why its last probe failed with the operator's hints, and its last few dialogues. Plain data,
/// bounded in entries and bytes, updated on the probe thread next to the endpoint's series.
#include <cstddef>
#include <string>
#include <vector>

#include "probes/probe_result.h"
#include "probes/smtp_probe.h"

namespace smtp {

/// Greeting latencies kept per endpoint for the status page's chart.
inline constexpr std::size_t kLatencyHistory = 30;
/// Dialogues kept per endpoint (the last success and the failures around it: successive
/// successes keep only the newest), and the bytes they may take together (at 10,000 endpoints
/// at most ~40 MiB; a usual Postfix dialogue is ~0.5 KiB, so three fit in 1.5 KiB).
inline constexpr std::size_t kTranscriptsKept = 3;
inline constexpr std::size_t kTranscriptsBytes = 4096;
/// The dialogue a scheduled probe records (ProbeOptions::transcript_limit_bytes).
inline constexpr std::size_t kTranscriptProbeBytes = 2048;

/// One probe's dialogue, one line per transcript line ("+12.3 ms S: EHLO x"), already printable.
struct StoredTranscript {
  double at_unix_seconds = 0;
  FailureReason failure = FailureReason::kNone;
  std::string text;
};

struct EndpointStatus {
  /// Greeting latencies in seconds, oldest first; a probe that got no greeting leaves a NaN (a
  /// gap in the chart, not a false 0).
  std::vector<float> latencies;
  FailureReason failure = FailureReason::kNone;  // the last probe's
  std::string error_detail;                      // the last failed probe's
  std::string problem;                           // the last failure as the hint table words it
  std::vector<std::string> hints;                // what to check, the likeliest cause first
  std::vector<StoredTranscript> transcripts;     // oldest first
};

/// Folds one probe's result into `status` (taking its transcript): the latency ring, the
/// diagnosis of a failure, the transcript ring (a success replacing the success before it, the
/// oldest dropped while over the byte bound).
void record_status(EndpointStatus& status, const ProbeTarget& target, ProbeResult&& result,
                   double now_unix_seconds);

/// The printable form of a transcript: one line each, with its time and direction.
std::string format_transcript(const std::vector<TranscriptLine>& lines, bool truncated);

}  // namespace smtp
