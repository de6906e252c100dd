// What the status page keeps of each endpoint: bounded latency and dialogue rings, the hint
// table's words for a failure, and the rows a target set's snapshot gives.
#include "exporter/endpoint_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "exporter/status_snapshot.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr double kNow = 1'800'000'000;

ProbeTarget target() {
  ProbeTarget t;
  t.host = "127.0.0.1";
  t.port = 2525;
  return t;
}

ProbeResult greeted(std::chrono::milliseconds latency, std::size_t lines = 2) {
  ProbeResult result;
  result.greeting_latency = latency;
  for (std::size_t i = 0; i < lines; ++i) {
    result.transcript.push_back({1ms, TranscriptLine::Direction::kReceived,
                                 "220 mx.test.local ESMTP " + std::to_string(i)});
  }
  return result;
}

/// A target probed at its own address: one endpoint, keyed "direct".
TargetConfig direct_target() {
  TargetConfig target;
  target.name = "direct";
  target.host = "127.0.0.1";
  target.port = 2525;
  return target;
}

/// Greeted, and then QUIT went unanswered: a failure with a dialogue.
ProbeResult failed_after_greeting(std::size_t lines = 2) {
  ProbeResult result = greeted(1ms, lines);
  result.failure = FailureReason::kQuitUnexpectedCode;
  result.failed_phase = Phase::kQuit;
  return result;
}

ProbeResult refused() {
  ProbeResult result;
  result.failure = FailureReason::kConnectRefused;
  result.failed_phase = Phase::kConnect;
  result.error_detail = "connect: Connection refused";
  return result;
}

TEST(EndpointStatus, KeepsTheLastThirtyLatenciesWithGapsForNoGreeting) {
  EndpointStatus status;
  for (int i = 1; i <= 40; ++i) record_status(status, target(), greeted(i * 1ms), kNow);
  record_status(status, target(), refused(), kNow);
  ASSERT_EQ(status.latencies.size(), kLatencyHistory);
  EXPECT_FLOAT_EQ(status.latencies.front(), 0.012f);  // 11 ms and older went
  EXPECT_FLOAT_EQ(status.latencies[kLatencyHistory - 2], 0.040f);
  EXPECT_TRUE(std::isnan(status.latencies.back()));
}

TEST(EndpointStatus, DiagnosesAFailureAndForgetsItOnSuccess) {
  EndpointStatus status;
  record_status(status, target(), refused(), kNow);
  EXPECT_EQ(status.failure, FailureReason::kConnectRefused);
  EXPECT_EQ(status.error_detail, "connect: Connection refused");
  EXPECT_THAT(status.problem, HasSubstr("127.0.0.1 port 2525"));
  ASSERT_THAT(status.hints, Not(IsEmpty()));

  record_status(status, target(), greeted(5ms), kNow);
  EXPECT_EQ(status.failure, FailureReason::kNone);
  EXPECT_THAT(status.problem, IsEmpty());
  EXPECT_THAT(status.hints, IsEmpty());
  EXPECT_THAT(status.error_detail, IsEmpty());
}

TEST(EndpointStatus, KeepsTheLastSuccessAndTheFailuresAroundItNewestLast) {
  EndpointStatus status;
  // Successive successes keep only the newest: a healthy endpoint holds one dialogue.
  for (int i = 1; i <= 3; ++i) record_status(status, target(), greeted(1ms), kNow + i);
  ASSERT_EQ(status.transcripts.size(), 1u);
  EXPECT_EQ(status.transcripts.back().at_unix_seconds, kNow + 3);
  EXPECT_THAT(status.transcripts.back().text, HasSubstr("+1.0 ms S: 220 mx.test.local ESMTP 0\n"));

  // Failures pile up behind it, three dialogues at most.
  record_status(status, target(), failed_after_greeting(), kNow + 4);
  record_status(status, target(), failed_after_greeting(), kNow + 5);
  ASSERT_EQ(status.transcripts.size(), kTranscriptsKept);
  EXPECT_EQ(status.transcripts.front().at_unix_seconds, kNow + 3);

  // A success after them pushes the oldest out; the next success replaces it, not the failures.
  record_status(status, target(), greeted(1ms), kNow + 6);
  record_status(status, target(), greeted(1ms), kNow + 7);
  ASSERT_EQ(status.transcripts.size(), kTranscriptsKept);
  EXPECT_EQ(status.transcripts[0].at_unix_seconds, kNow + 4);
  EXPECT_EQ(status.transcripts[0].failure, FailureReason::kQuitUnexpectedCode);
  EXPECT_EQ(status.transcripts[1].at_unix_seconds, kNow + 5);
  EXPECT_EQ(status.transcripts[2].at_unix_seconds, kNow + 7);
  EXPECT_EQ(status.transcripts[2].failure, FailureReason::kNone);
}

TEST(EndpointStatus, BoundsTheDialoguesInBytes) {
  EndpointStatus status;
  // Each dialogue is about 1.9 KiB: two fit in the bound, the third pushes the oldest out.
  for (int i = 1; i <= 3; ++i) {
    record_status(status, target(), failed_after_greeting(50), kNow + i);
  }
  std::size_t bytes = 0;
  for (const StoredTranscript& t : status.transcripts) bytes += t.text.size();
  EXPECT_LE(bytes, kTranscriptsBytes);
  ASSERT_EQ(status.transcripts.size(), 2u);
  EXPECT_EQ(status.transcripts.back().at_unix_seconds, kNow + 3);

  // One dialogue larger than the whole bound is cut, never dropped: it is the newest.
  record_status(status, target(), failed_after_greeting(500), kNow + 4);
  ASSERT_EQ(status.transcripts.size(), 1u);
  EXPECT_EQ(status.transcripts.back().text.size(), kTranscriptsBytes);
}

TEST(EndpointStatus, MarksATruncatedDialogue) {
  EXPECT_THAT(format_transcript({{2500us, TranscriptLine::Direction::kSent, "EHLO x"}}, true),
              "+2.5 ms C: EHLO x\n-- (truncated)\n");
}

TEST(EndpointStatus, DialogueTimesAreInTenthsOfAMillisecondRounded) {
  using Direction = TranscriptLine::Direction;
  EXPECT_EQ(format_transcript({{0us, Direction::kNote, "connected"},
                               {2549us, Direction::kReceived, "220 a"},
                               {2550us, Direction::kSent, "EHLO x"},
                               {1234567us, Direction::kReceived, "221 bye"}},
                              false),
            "+0.0 ms -- connected\n+2.5 ms S: 220 a\n+2.6 ms C: EHLO x\n"
            "+1234.6 ms S: 221 bye\n");
}

TEST(StatusSnapshot, RowsForEveryEndpointAndAFailedLookup) {
  const TargetConfig address = direct_target();
  TargetConfig mx;
  mx.name = "domain";
  mx.mx_domain = "example.com";
  TargetSet set;
  set.apply_config({address, mx});
  Endpoint& endpoint = *set.endpoints().at("direct");
  ProbeResult result = greeted(12ms);
  result.banner = BannerInfo{"mx.test.local", "postfix"};
  record_probe(endpoint.series.edit(), result, *endpoint.config, kNow);
  record_status(endpoint.status.edit(), *endpoint.probe, std::move(result), kNow);

  LookupGroup& group = *set.groups().at("domain");
  LookupOutcome failed;
  failed.failure = FailureReason::kResolveError;
  failed.detail = "NXDOMAIN";
  ASSERT_TRUE(set.apply_lookup(group, group.generation, failed, kNow));

  const StatusSnapshot snapshot = make_status_snapshot(take_status_sources(set));
  ASSERT_EQ(snapshot.rows.size(), 2u);
  const StatusRow& up = snapshot.rows[0];
  EXPECT_EQ(up.key, "direct");
  EXPECT_EQ(up.endpoint, "127.0.0.1:2525");
  EXPECT_TRUE(up.up);
  EXPECT_EQ(up.banner_software, "postfix");
  EXPECT_EQ(up.latencies.size(), 1u);
  const StatusRow& lookup = snapshot.rows[1];
  EXPECT_EQ(lookup.key, "domain");
  EXPECT_EQ(lookup.endpoint, "MX lookup of example.com");
  EXPECT_FALSE(lookup.up);
  EXPECT_EQ(lookup.failure, FailureReason::kResolveError);
  EXPECT_THAT(lookup.hint, Not(IsEmpty()));

  const std::optional<StatusDetail> detail = take_status_detail(set, "direct");
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->transcripts.size(), 1u);
  EXPECT_FALSE(take_status_detail(set, "unknown"));
}

TEST(StatusSnapshot, RowsShowTheEndpointsAsTheyWereWhenTaken) {
  TargetSet set;
  set.apply_config({direct_target()});
  Endpoint& endpoint = *set.endpoints().at("direct");
  record_probe(endpoint.series.edit(), greeted(12ms), *endpoint.config, kNow);
  record_status(endpoint.status.edit(), *endpoint.probe, greeted(12ms), kNow);

  const StatusSources taken = take_status_sources(set);
  // A failure after the snapshot goes to copies: the rows made later still show the success.
  record_probe(endpoint.series.edit(), refused(), *endpoint.config, kNow + 10);
  record_status(endpoint.status.edit(), *endpoint.probe, refused(), kNow + 10);
  const StatusSnapshot before = make_status_snapshot(taken);
  ASSERT_EQ(before.rows.size(), 1u);
  EXPECT_TRUE(before.rows[0].up);
  EXPECT_EQ(before.rows[0].failure, FailureReason::kNone);
  EXPECT_EQ(before.rows[0].latencies.size(), 1u);

  const StatusSnapshot after = make_status_snapshot(take_status_sources(set));
  ASSERT_EQ(after.rows.size(), 1u);
  EXPECT_FALSE(after.rows[0].up);
  EXPECT_EQ(after.rows[0].failure, FailureReason::kConnectRefused);
  EXPECT_EQ(after.rows[0].latencies.size(), 2u);
  EXPECT_EQ(after.rows[0].last_probe_unix_seconds, kNow + 10);
}

}  // namespace
}  // namespace smtp
