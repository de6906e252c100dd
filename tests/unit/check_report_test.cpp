// The Nagios verdict on one probe: state, status line, perfdata and long output, from a
// ProbeResult made by hand (no network).
#include "exporter/check_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

namespace smtp {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr double kNow = 1'800'000'000;
constexpr double kDay = 86400;

ProbeTarget target(TlsMode tls = TlsMode::kNone) {
  ProbeTarget t;
  t.host = "192.0.2.25";
  t.port = 25;
  t.tls = tls;
  t.helo_name = "monitor.test.local";
  return t;
}

void set_phase(ProbeResult& r, Phase phase, std::chrono::nanoseconds took) {
  r.phase_durations[static_cast<std::size_t>(phase)] = took;
}

/// What a Postfix that behaves says, with round timings.
ProbeResult healthy() {
  ProbeResult r;
  set_phase(r, Phase::kConnect, 300us);
  set_phase(r, Phase::kGreeting, 400us);
  set_phase(r, Phase::kEhlo, 200us);
  set_phase(r, Phase::kQuit, 100us);
  r.greeting_latency = 400us;
  r.total = 1200us;
  r.greeting_code = 220;
  r.greeting_lines = {"220 mx.test.local ESMTP Postfix (Debian/GNU)"};
  r.banner = BannerInfo{"mx.test.local", "postfix"};
  r.ehlo_code = 250;
  r.quit_code = 221;
  r.peer = "192.0.2.25:25";
  r.transcript = {{400us, TranscriptLine::Direction::kReceived, r.greeting_lines.front()},
                  {500us, TranscriptLine::Direction::kSent, "EHLO monitor.test.local"},
                  {700us, TranscriptLine::Direction::kReceived, "250 mx.test.local"},
                  {800us, TranscriptLine::Direction::kSent, "QUIT"},
                  {900us, TranscriptLine::Direction::kReceived, "221 2.0.0 Bye"}};
  return r;
}

ProbeResult with_tls(ProbeResult r, double not_after, bool verified = true) {
  set_phase(r, Phase::kStartTls, 100us);
  set_phase(r, Phase::kTlsHandshake, 2ms);
  TlsFacts tls;
  tls.version = "TLS 1.3";
  tls.cipher = "TLS_AES_256_GCM_SHA384";
  tls.verified = verified;
  if (!verified) {
    tls.verify_code = X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
    tls.verify_error = "self-signed certificate";
  }
  tls.subject = "CN=mx.test.local";
  tls.issuer = "CN=mx.test.local";
  tls.names = {"DNS:mx.test.local"};
  tls.not_after = not_after;
  tls.earliest_not_after = not_after;
  r.tls = tls;
  if (!verified) {
    r.failure = FailureReason::kTlsVerifyFailed;
    r.failed_phase = Phase::kTlsHandshake;
    r.error_detail = "tls_handshake: certificate not verified: self-signed certificate";
  }
  return r;
}

std::optional<NagiosRange> range(std::string_view text) {
  std::string error;
  return parse_nagios_range(text, error);
}

TEST(CheckReportTest, HealthyServerIsOkWithBannerGreetingAndQuit) {
  const CheckReport report = evaluate_check(target(), healthy(), {}, kNow);
  EXPECT_EQ(report.state, NagiosState::kOk);
  EXPECT_EQ(report.output,
            "SMTP OK - mx.test.local (postfix) greeted in 0.4 ms, QUIT 221 | time=0.001200s;;;0 "
            "connect=0.000300s;;;0 greeting=0.000400s;;;0 ehlo=0.000200s;;;0 "
            "quit=0.000100s;;;0\n");
}

TEST(CheckReportTest, RefusedConnectionIsCriticalWithReasonAndWhatToCheck) {
  ProbeResult r;
  r.failure = FailureReason::kConnectRefused;
  r.failed_phase = Phase::kConnect;
  set_phase(r, Phase::kConnect, 100us);
  r.total = 150us;
  const CheckReport report = evaluate_check(target(), r, {}, kNow);
  EXPECT_EQ(report.state, NagiosState::kCritical);
  EXPECT_EQ(report.output,
            "SMTP CRITICAL - connect_refused: 192.0.2.25 port 25 refused the connection: nothing "
            "listens there (is the SMTP server running on 192.0.2.25?) | time=0.000150s;;;0 "
            "connect=0.000100s;;;0\n");
}

TEST(CheckReportTest, UnresolvableNameIsUnknown) {
  ProbeResult r;
  r.failure = FailureReason::kResolveError;
  r.failed_phase = Phase::kResolve;
  r.error_detail = "resolving mx.invalid: Host not found";
  EXPECT_EQ(evaluate_check(target(), r, {}, kNow).state, NagiosState::kUnknown);
  r.failure = FailureReason::kExporterOverloaded;
  EXPECT_EQ(evaluate_check(target(), r, {}, kNow).state, NagiosState::kUnknown);
}

TEST(CheckReportTest, QuitNotAnswered221IsWarningAndQMakesItOk) {
  ProbeResult r = healthy();
  r.quit_code = 500;
  r.failure = FailureReason::kQuitUnexpectedCode;
  r.failed_phase = Phase::kQuit;
  CheckReport report = evaluate_check(target(), r, {}, kNow);
  EXPECT_EQ(report.state, NagiosState::kWarning);
  EXPECT_THAT(report.output, StartsWith("SMTP WARNING - QUIT was answered with 500, not 221 - "
                                        "mx.test.local (postfix) greeted in 0.4 ms, QUIT 500 | "));
  CheckThresholds ignore;
  ignore.ignore_quit = true;
  report = evaluate_check(target(), r, ignore, kNow);
  EXPECT_EQ(report.state, NagiosState::kOk);
  EXPECT_THAT(report.output,
              StartsWith("SMTP OK - QUIT was answered with 500, not 221 (ignored: -q) - "));
}

TEST(CheckReportTest, SessionThresholdsUseNagiosRanges) {
  ProbeResult r = healthy();
  r.total = 2500ms;
  CheckThresholds t;
  t.warning = range("2");
  t.critical = range("5");
  CheckReport report = evaluate_check(target(), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kWarning);
  EXPECT_THAT(report.output,
              StartsWith("SMTP WARNING - the session took 2.500 s (warning range 2)"));
  EXPECT_THAT(report.output, HasSubstr("| time=2.500000s;2;5;0 "));
  t.critical = range("@2:3");
  report = evaluate_check(target(), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kCritical);
  EXPECT_THAT(report.output, HasSubstr("the session took 2.500 s (critical range @2:3)"));
  t.critical = range("~:1");  // an upper bound of 1 s only
  EXPECT_EQ(evaluate_check(target(), r, t, kNow).state, NagiosState::kCritical);
}

TEST(CheckReportTest, GreetingThresholdsJudgeTheGreetingAlone) {
  ProbeResult r = healthy();
  r.greeting_latency = 1500ms;
  r.total = 1600ms;
  CheckThresholds t;
  t.greeting_warning = range("0.5");
  t.greeting_critical = range("5");
  t.warning = range("10");  // the session is well within it
  const CheckReport report = evaluate_check(target(), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kWarning);
  EXPECT_THAT(report.output,
              StartsWith("SMTP WARNING - the greeting took 1.500 s (warning range 0.5) - "
                         "mx.test.local (postfix) greeted in 1.500 s"));
  EXPECT_THAT(report.output, HasSubstr(" greeting=1.500000s;0.5;5;0 "));
}

TEST(CheckReportTest, CertificateDaysAsCheckSmtpJudgesThem) {
  const ProbeResult r = with_tls(healthy(), kNow + 10 * kDay - 60);  // 9 whole days left
  CheckThresholds t;
  t.cert_warning_days = 30;
  t.cert_critical_days = 14;
  CheckReport report = evaluate_check(target(TlsMode::kStartTls), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kCritical);
  EXPECT_THAT(report.output,
              StartsWith("SMTP CRITICAL - the certificate expires in 9 days, on 2027-01-25 "
                         "07:59:00 UTC (critical at 14 or less) - mx.test.local (postfix) greeted "
                         "in 0.4 ms, QUIT 221, TLS 1.3, certificate verified, 9 days left | "));
  EXPECT_THAT(report.output, HasSubstr(" tls_handshake=0.002000s;;;0 "));
  EXPECT_THAT(report.output, HasSubstr(" cert_days=9;@~:30;@~:14\n"));
  t.cert_critical_days = 9;  // "at most": 9 days left is critical at 9
  EXPECT_EQ(evaluate_check(target(TlsMode::kStartTls), r, t, kNow).state, NagiosState::kCritical);
  t.cert_critical_days = 7;
  report = evaluate_check(target(TlsMode::kStartTls), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kWarning);
  EXPECT_THAT(report.output, HasSubstr("(warning at 30 or less)"));
  t.cert_warning_days = 8;
  EXPECT_EQ(evaluate_check(target(TlsMode::kStartTls), r, t, kNow).state, NagiosState::kOk);
}

TEST(CheckReportTest, CertificateExpiringTodayIsCriticalWithWarnAlone) {
  const ProbeResult r = with_tls(healthy(), kNow + 3600);
  CheckThresholds t;
  t.cert_warning_days = 30;
  const CheckReport report = evaluate_check(target(TlsMode::kStartTls), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kCritical);
  EXPECT_THAT(report.output, HasSubstr(" cert_days=0;@~:30;@~:0\n"));
}

TEST(CheckReportTest, ExpiredCertificateIsCritical) {
  const ProbeResult r = with_tls(healthy(), kNow - 2 * kDay);
  CheckThresholds t;
  t.cert_warning_days = 30;
  t.cert_critical_days = 14;
  const CheckReport report = evaluate_check(target(TlsMode::kStartTls), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kCritical);
  EXPECT_THAT(report.output,
              StartsWith("SMTP CRITICAL - the certificate expired on 2027-01-13 08:00:00 UTC"));
}

TEST(CheckReportTest, EveryProblemIsReportedWorstFirst) {
  ProbeResult r = with_tls(healthy(), kNow + 100 * kDay, /*verified=*/false);
  r.quit_code = 500;  // after the failed verification, QUIT still went wrong
  CheckThresholds t;
  t.cert_warning_days = 30;
  const CheckReport report = evaluate_check(target(TlsMode::kStartTls), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kCritical);
  EXPECT_THAT(report.output,
              StartsWith("SMTP CRITICAL - tls_verify_failed: the certificate does not verify: "
                         "self-signed certificate (the issuer is not trusted here: give its CA "
                         "certificate with --ca-file, or have the server send its intermediate "
                         "certificates too) - QUIT was answered with 500, not 221 - "));
}

TEST(CheckReportTest, ExpectChecksTheGreetingText) {
  CheckThresholds t;
  t.expect = "Postfix";
  EXPECT_EQ(evaluate_check(target(), healthy(), t, kNow).state, NagiosState::kOk);
  t.expect = "Exim";
  const CheckReport report = evaluate_check(target(), healthy(), t, kNow);
  EXPECT_EQ(report.state, NagiosState::kWarning);
  EXPECT_THAT(report.output, StartsWith("SMTP WARNING - the greeting does not contain 'Exim' - "));
}

TEST(CheckReportTest, VerboseAddsTheDialogueAndHintsAsLongOutput) {
  ProbeResult r = healthy();
  r.quit_code = 500;
  r.failure = FailureReason::kQuitUnexpectedCode;
  r.failed_phase = Phase::kQuit;
  r.transcript.back().text = "500 what?";
  CheckThresholds t;
  t.verbose = true;
  const CheckReport report = evaluate_check(target(), r, t, kNow);
  const std::size_t first_line_end = report.output.find('\n');
  ASSERT_NE(first_line_end, std::string::npos);
  EXPECT_EQ(report.output.substr(first_line_end + 1),
            "dialogue (ms since the check started):\n"
            "    0.400 S: 220 mx.test.local ESMTP Postfix (Debian/GNU)\n"
            "    0.500 C: EHLO monitor.test.local\n"
            "    0.700 S: 250 mx.test.local\n"
            "    0.800 C: QUIT\n"
            "    0.900 S: 500 what?\n"
            "what to check:\n"
            "  QUIT was answered with 500, not 221\n"
            "  - the server may be shutting down, or it cuts sessions it considers idle\n"
            "  - a firewall's SMTP inspection may answer or drop QUIT itself\n"
            "  - RFC 5321 requires 221 to QUIT, and a server that does not close cleanly may "
            "also break mail sessions\n");
  EXPECT_THAT(evaluate_check(target(), r, {}, kNow).output, Not(HasSubstr("dialogue")));
}

TEST(CheckReportTest, PipeFromTheServerCannotStartThePerfdata) {
  ProbeResult r = healthy();
  r.greeting_code = 554;
  r.greeting_lines = {"554 go away | x=1"};
  r.failure = FailureReason::kGreetingRejected;
  r.failed_phase = Phase::kGreeting;
  r.transcript.front().text = r.greeting_lines.front();
  CheckThresholds t;
  t.verbose = true;
  const CheckReport report = evaluate_check(target(), r, t, kNow);
  EXPECT_EQ(report.state, NagiosState::kCritical);
  // One '|' in all: the one before the perfdata.
  EXPECT_EQ(std::count(report.output.begin(), report.output.end(), '|'), 1);
  EXPECT_THAT(report.output, HasSubstr("\"554 go away \\x7c x=1\""));
}

TEST(CheckReportTest, UsageErrorIsUnknown) {
  const CheckReport report = usage_error_report("-w abc: not a Nagios range");
  EXPECT_EQ(report.state, NagiosState::kUnknown);
  EXPECT_EQ(report.output, "SMTP UNKNOWN - -w abc: not a Nagios range\n");
}

}  // namespace
}  // namespace smtp
