// The hints table: what each failure means and what to check, from a ProbeResult alone.
#include "probes/diagnosis.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace smtp {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr double kNow = 1'800'000'000;  // 2027-01-15 08:00:00 UTC
constexpr double kDay = 86400;

ProbeTarget target(std::uint16_t port = 2525, TlsMode tls = TlsMode::kNone) {
  ProbeTarget t;
  t.host = "192.0.2.25";
  t.port = port;
  t.tls = tls;
  t.helo_name = "monitor.test.local";
  return t;
}

ProbeResult failed(FailureReason reason, Phase phase, std::string detail = {}) {
  ProbeResult r;
  r.failure = reason;
  r.failed_phase = phase;
  r.error_detail = std::move(detail);
  return r;
}

/// All hints of all findings, one string each.
std::vector<std::string> all_hints(const std::vector<Finding>& findings) {
  std::vector<std::string> hints;
  for (const Finding& f : findings) hints.insert(hints.end(), f.hints.begin(), f.hints.end());
  return hints;
}

TEST(DiagnosisTest, SuccessHasNoFindings) {
  ProbeResult r;
  r.phase_durations[static_cast<std::size_t>(Phase::kQuit)] = std::chrono::milliseconds(1);
  r.quit_code = 221;
  EXPECT_THAT(diagnose(target(), r, kNow), IsEmpty());
}

TEST(DiagnosisTest, EveryFailureReasonHasAProblemAndAHint) {
  for (std::size_t i = 1; i < kFailureReasonCount; ++i) {
    const auto reason = static_cast<FailureReason>(i);
    ProbeResult r = failed(reason, Phase::kEhlo, "ehlo: something");
    if (reason == FailureReason::kTlsVerifyFailed) r.tls = TlsFacts{};
    const std::vector<Finding> findings = diagnose(target(), r, kNow);
    ASSERT_FALSE(findings.empty()) << reason_name(reason);
    EXPECT_FALSE(findings.front().problem.empty()) << reason_name(reason);
    EXPECT_FALSE(findings.front().hints.empty()) << reason_name(reason);
    for (const std::string& hint : findings.front().hints) {
      // The first hint goes on Nagios' status line, whose log separates fields with ';'.
      EXPECT_THAT(hint, Not(HasSubstr(";"))) << reason_name(reason);
    }
  }
}

TEST(DiagnosisTest, RefusedConnectionAsksWhetherTheServerRunsAndWhichPort) {
  const auto findings =
      diagnose(target(2526), failed(FailureReason::kConnectRefused, Phase::kConnect), kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].problem,
            "192.0.2.25 port 2526 refused the connection: nothing listens there");
  EXPECT_THAT(findings[0].hints,
              Contains(AllOf(HasSubstr("25 for relay"), HasSubstr("587"), HasSubstr("465"))));
  EXPECT_THAT(findings[0].hints, Contains(HasSubstr("firewall")));
  EXPECT_EQ(findings[0].about, Finding::About::kFailure);
}

TEST(DiagnosisTest, SilentPort465WithoutTlsSuggestsImplicitTls) {
  const auto findings =
      diagnose(target(465), failed(FailureReason::kGreetingTimeout, Phase::kGreeting), kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].hints.front(),
            "port 465 is implicit TLS, RFC 8314: probe it with implicit TLS");
}

TEST(DiagnosisTest, SilentOtherPortMentionsImplicitTlsAsAPossibility) {
  const auto findings =
      diagnose(target(2465), failed(FailureReason::kGreetingTimeout, Phase::kGreeting), kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_THAT(findings[0].hints.front(), HasSubstr("if the port expects TLS from the first byte"));
  // With implicit TLS asked for already, the suggestion would be wrong.
  const auto with_tls = diagnose(target(2465, TlsMode::kImplicit),
                                 failed(FailureReason::kGreetingTimeout, Phase::kGreeting), kNow);
  EXPECT_THAT(all_hints(with_tls), Not(Contains(HasSubstr("probe it with implicit TLS"))));
}

TEST(DiagnosisTest, RecognisesOtherProtocolsByTheirFirstBytes) {
  EXPECT_EQ(recognise_protocol("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), "SSH");
  EXPECT_EQ(recognise_protocol("HTTP/1.1 400 Bad Request\r\n"), "HTTP");
  EXPECT_EQ(recognise_protocol(std::string("\x15\x03\x03\x00\x02\x02\x32", 7)), "TLS");
  EXPECT_EQ(recognise_protocol(std::string("\x16\x03\x01\x00\x05", 5)), "TLS");
  EXPECT_EQ(recognise_protocol("+OK POP3 server ready\r\n"), "POP3");
  EXPECT_EQ(recognise_protocol("* OK [CAPABILITY IMAP4rev1] ready\r\n"), "IMAP");
  EXPECT_EQ(recognise_protocol("garbage"), "");
  EXPECT_EQ(recognise_protocol(""), "");
  EXPECT_EQ(recognise_protocol(std::string("\x16", 1)), "");
}

TEST(DiagnosisTest, AnotherProtocolOnThePortIsNamed) {
  ProbeResult r = failed(FailureReason::kGreetingMalformed, Phase::kGreeting);
  r.unexpected_bytes = "SSH-2.0-OpenSSH_9.2p1\r\n";
  auto findings = diagnose(target(22), r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].problem, "192.0.2.25 port 22 speaks SSH, not SMTP");
  r.unexpected_bytes = std::string("\x15\x03\x03\x00\x02\x02\x32", 7);
  findings = diagnose(target(465), r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].problem, "192.0.2.25 port 465 speaks TLS, not SMTP");
  EXPECT_THAT(findings[0].hints.front(), HasSubstr("probe it with implicit TLS"));
}

TEST(DiagnosisTest, RefusedServiceNamesTheGreetingAndTheLikelyCause) {
  ProbeResult r = failed(FailureReason::kGreetingRejected, Phase::kGreeting);
  r.greeting_code = 554;
  r.greeting_lines = {"554 5.7.1 Your address is listed"};
  auto findings = diagnose(target(), r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].problem,
            "the server refuses service: it greeted with \"554 5.7.1 Your address is listed\"");
  EXPECT_THAT(findings[0].hints.front(), HasSubstr("blocklisted"));
  r.greeting_code = 421;
  r.greeting_lines = {"421 busy"};
  findings = diagnose(target(), r, kNow);
  EXPECT_THAT(findings[0].hints.front(), HasSubstr("overloaded, shutting down or in maintenance"));
}

TEST(DiagnosisTest, ImplicitTlsToAPlaintextPortSuggestsTheOtherMode) {
  ProbeResult r = failed(FailureReason::kTlsHandshakeFailed, Phase::kTlsHandshake,
                         "tls_handshake: wrong version number");
  r.tls_error_reason = SSL_R_WRONG_VERSION_NUMBER;
  const auto findings = diagnose(target(25, TlsMode::kImplicit), r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].problem,
            "192.0.2.25 port 25 does not speak TLS: it answered the handshake in plaintext");
  EXPECT_THAT(findings[0].hints.front(), HasSubstr("probe it without TLS, or with STARTTLS"));
}

TEST(DiagnosisTest, OtherHandshakeFailuresQuoteTheDetailWithoutItsPhase) {
  ProbeResult r = failed(FailureReason::kTlsHandshakeFailed, Phase::kTlsHandshake,
                         "tls_handshake: tlsv1 alert internal error");
  r.tls_error_reason = SSL_R_TLSV1_ALERT_INTERNAL_ERROR;
  const auto findings = diagnose(target(25, TlsMode::kStartTls), r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].problem, "the TLS handshake failed: tlsv1 alert internal error");
  EXPECT_THAT(findings[0].hints.front(), HasSubstr("internal error"));
}

TlsFacts unverified(long code, std::string error) {
  TlsFacts tls;
  tls.version = "TLS 1.3";
  tls.verify_code = code;
  tls.verify_error = std::move(error);
  tls.subject = "O=smtp_exporter tests,CN=other.test.local";
  tls.issuer = "CN=Some CA";
  tls.names = {"DNS:other.test.local", "IP:192.0.2.26"};
  tls.not_after = kNow + 20 * kDay + 60;
  tls.earliest_not_after = tls.not_after;
  return tls;
}

TEST(DiagnosisTest, CertificateNotForTheNameShowsExpectedAndPresentedNames) {
  ProbeTarget t = target(25, TlsMode::kStartTls);
  t.tls_server_name = "mx.test.local";
  ProbeResult r = failed(FailureReason::kTlsVerifyFailed, Phase::kTlsHandshake);
  r.tls = unverified(X509_V_ERR_HOSTNAME_MISMATCH, "hostname mismatch");
  const auto findings = diagnose(t, r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].problem, "the certificate does not verify: hostname mismatch");
  EXPECT_EQ(findings[0].hints,
            (std::vector<std::string>{
                "the certificate is not for mx.test.local: probe the name the certificate "
                "carries, or fix the certificate",
                "expected name: mx.test.local",
                "names in the certificate: DNS:other.test.local, IP:192.0.2.26, subject "
                "O=smtp_exporter tests,CN=other.test.local",
                "issuer: CN=Some CA", "expires: 2027-02-04 08:01:00 UTC (20 days left)"}));
}

TEST(DiagnosisTest, ExpiredCertificateSaysSoAndWhen) {
  ProbeResult r = failed(FailureReason::kTlsVerifyFailed, Phase::kTlsHandshake);
  r.tls = unverified(X509_V_ERR_CERT_HAS_EXPIRED, "certificate has expired");
  r.tls->not_after = kNow - 3 * kDay - 60;
  const auto findings = diagnose(target(25, TlsMode::kStartTls), r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].hints.front(),
            "the certificate has expired: renew it and reload the server");
  EXPECT_THAT(findings[0].hints, Contains("expires: 2027-01-12 07:59:00 UTC (expired 3 days ago)"));
}

TEST(DiagnosisTest, QuitNotAnsweredWith221IsAFindingOfItsOwn) {
  ProbeResult r =
      failed(FailureReason::kQuitUnexpectedCode, Phase::kQuit, "quit: answered with 500");
  r.phase_durations[static_cast<std::size_t>(Phase::kQuit)] = std::chrono::milliseconds(1);
  r.quit_code = 500;
  const auto findings = diagnose(target(), r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].about, Finding::About::kQuit);
  EXPECT_EQ(findings[0].problem, "QUIT was answered with 500, not 221");
  EXPECT_THAT(findings[0].hints.front(), HasSubstr("shutting down, or it cuts sessions"));
}

TEST(DiagnosisTest, EveryProblemIsReportedNotOnlyTheFirst) {
  // The certificate did not verify (the failure), and QUIT got 500 after it.
  ProbeResult r = failed(FailureReason::kTlsVerifyFailed, Phase::kTlsHandshake);
  r.tls = unverified(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed certificate");
  r.phase_durations[static_cast<std::size_t>(Phase::kQuit)] = std::chrono::milliseconds(1);
  r.quit_code = 500;
  const auto findings = diagnose(target(25, TlsMode::kStartTls), r, kNow);
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_EQ(findings[0].about, Finding::About::kFailure);
  EXPECT_THAT(findings[0].hints.front(), HasSubstr("--ca-file"));
  EXPECT_EQ(findings[1].about, Finding::About::kQuit);
}

TEST(DiagnosisTest, UnverifiedCertificateAcceptedOnPurposeIsStillAFinding) {
  ProbeResult r;  // a success: insecure_skip_verify let it through
  r.tls = unverified(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed certificate");
  const auto findings = diagnose(target(25, TlsMode::kStartTls), r, kNow);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].about, Finding::About::kCertificate);
  EXPECT_EQ(findings[0].problem, "the certificate does not verify: self-signed certificate");
}

TEST(DiagnosisTest, ExpiryIsDatedInWholeDays) {
  EXPECT_EQ(days_left(kNow + 10 * kDay - 1, kNow), 9);
  EXPECT_EQ(days_left(kNow + 10 * kDay, kNow), 10);
  EXPECT_EQ(days_left(kNow - 1, kNow), -1);
  EXPECT_EQ(describe_expiry(kNow + kDay + 5, kNow), "2027-01-16 08:00:05 UTC (1 day left)");
  EXPECT_EQ(describe_expiry(kNow - 1.5 * kDay, kNow),
            "2027-01-13 20:00:00 UTC (expired 1 day ago)");
  EXPECT_EQ(format_utc(0), "1970-01-01 00:00:00 UTC");
}

}  // namespace
}  // namespace smtp
