#include "exporter/endpoint_status.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "probes/diagnosis.h"

namespace smtp {
namespace {

std::size_t transcripts_bytes(const std::vector<StoredTranscript>& transcripts) {
  std::size_t bytes = 0;
  for (const StoredTranscript& t : transcripts) bytes += t.text.size();
  return bytes;
}

}  // namespace

std::string format_transcript(const std::vector<TranscriptLine>& lines, bool truncated) {
  // This runs for every probe: one allocation, and the time as whole tenths of a millisecond
  // (printf's floating point was a tenth of a probe's instructions, to_chars' half that).
  std::size_t size = truncated ? 16 : 0;
  for (const TranscriptLine& line : lines) size += line.text.size() + 24;
  std::string out;
  out.reserve(size);
  for (const TranscriptLine& line : lines) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(line.at).count();
    const auto tenths = (micros + 50) / 100;  // rounded to the nearest
    char at[24];
    const auto [end, ec] = std::to_chars(at, at + sizeof at, tenths / 10);
    out += '+';
    out.append(at, end);
    out += '.';
    out += static_cast<char>('0' + tenths % 10);
    out += " ms ";
    out += transcript_marker(line.direction);
    out += ' ';
    out += line.text;
    out += '\n';
  }
  if (truncated) out += "-- (truncated)\n";
  return out;
}

void record_status(EndpointStatus& status, const ProbeTarget& target, ProbeResult&& result,
                   double now_unix_seconds) {
  if (status.latencies.size() == kLatencyHistory) status.latencies.erase(status.latencies.begin());
  status.latencies.push_back(result.greeting_latency
                                 ? std::chrono::duration<float>(*result.greeting_latency).count()
                                 : std::numeric_limits<float>::quiet_NaN());

  status.failure = result.failure;
  status.problem.clear();
  status.hints.clear();
  status.error_detail.clear();
  if (!result.success()) {
    status.error_detail = result.error_detail;
    // Only for failures: a clean probe has nothing to diagnose, and most probes are clean.
    std::vector<Finding> findings = diagnose(target, result, now_unix_seconds);
    if (!findings.empty()) {
      status.problem = std::move(findings.front().problem);
      status.hints = std::move(findings.front().hints);
    }
  }

  if (result.transcript.empty()) return;
  // A success after a success replaces it: what is kept is the last success and the failures
  // around it. A healthy endpoint holds one dialogue, not three (~1 KiB less per endpoint:
  // 100 MiB at 100,000 endpoints).
  if (result.success() && !status.transcripts.empty() &&
      status.transcripts.back().failure == FailureReason::kNone) {
    status.transcripts.pop_back();
  }
  if (status.transcripts.size() == kTranscriptsKept) {
    status.transcripts.erase(status.transcripts.begin());
  }
  StoredTranscript stored{now_unix_seconds, result.failure,
                          format_transcript(result.transcript, result.transcript_truncated)};
  // The newest always stays (cut to the bound itself); older ones go while over the bound.
  if (stored.text.size() > kTranscriptsBytes) stored.text.resize(kTranscriptsBytes);
  status.transcripts.push_back(std::move(stored));
  while (transcripts_bytes(status.transcripts) > kTranscriptsBytes) {
    status.transcripts.erase(status.transcripts.begin());
  }
}

}  // namespace smtp
