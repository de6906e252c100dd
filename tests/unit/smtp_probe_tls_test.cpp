// The probe's STARTTLS (RFC 3207) and implicit TLS (RFC 8314) against the scripted fake server,
// with certificates made per test by a throwaway CA: every TLS failure reason, the codes still
// recorded around them, and the certificate facts.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <optional>
#include <stdexcept>

#include "probes/smtp_probe.h"
#include "probes/tls.h"
#include "tests/support/fake_smtp_server.h"
#include "tests/support/test_certs.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using testing::FakeSmtpServer;
using testing::Leaf;
using testing::LeafSpec;
using testing::Step;
using testing::unix_now;

constexpr std::int64_t kDay = 24 * 3600;

const std::string kGreeting = "220 mx.test.local ESMTP ready\r\n";
const std::string kEhloWithStarttls =
    "250-mx.test.local Hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
const std::string kEhloOverTls = "250-mx.test.local Hello\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

/// Up to the server's "220" to STARTTLS, in plaintext.
std::vector<Step> until_starttls(const std::string& starttls_answer) {
  return {testing::send(kGreeting), testing::expect("EHLO "), testing::send(kEhloWithStarttls),
          testing::expect("STARTTLS"), testing::send(starttls_answer)};
}

/// A whole STARTTLS dialogue: the handshake with `context`, then EHLO again and QUIT over TLS.
std::vector<Step> starttls_dialogue(std::shared_ptr<asio::ssl::context> context) {
  std::vector<Step> script = until_starttls("220 2.0.0 Ready to start TLS\r\n");
  for (Step step : {testing::tls_handshake(std::move(context)), testing::expect("EHLO "),
                    testing::send(kEhloOverTls), testing::expect("QUIT"),
                    testing::send("221 2.0.0 Bye\r\n"), testing::close()}) {
    script.push_back(std::move(step));
  }
  return script;
}

const std::vector<std::string> kStarttlsLines = {"EHLO monitor.test.local", "STARTTLS",
                                                 "EHLO monitor.test.local", "QUIT"};

class SmtpProbeTlsTest : public ::testing::Test {
 protected:
  /// Settings that trust the test CA and verify mx.test.local.
  TlsSettings trusting_ca() const {
    TlsSettings settings;
    settings.ca_file = ca_.ca_file();
    settings.server_name = "mx.test.local";
    return settings;
  }

  ProbeTarget target(TlsMode mode, const TlsSettings& settings,
                     std::chrono::milliseconds timeout = 5s) const {
    ProbeTarget target;
    target.host = "127.0.0.1";
    target.helo_name = "monitor.test.local";
    target.tls = mode;
    target.tls_context = make_tls_context(settings);
    target.tls_server_name = settings.server_name;
    target.tls_insecure_skip_verify = settings.insecure_skip_verify;
    target.timeout = timeout;
    return target;
  }

  /// Serves `script` and probes it with `target`; returns once the probe is done and the server
  /// has seen the client go, so that what the server recorded is complete.
  ProbeResult probe(std::vector<Step> script, ProbeTarget target) {
    server_.emplace(io_, std::move(script));
    target.port = server_->port();
    std::optional<ProbeResult> result;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { result = co_await run_probe(target); },
        asio::detached);
    // A guard against a hang, not a timing assertion: the probe's own deadline is far shorter.
    auto give_up = std::chrono::steady_clock::now() + target.timeout + 20s;
    while (!result && std::chrono::steady_clock::now() < give_up) io_.run_one_for(100ms);
    while (server_->finished() < server_->connections() &&
           std::chrono::steady_clock::now() < give_up) {
      io_.run_one_for(100ms);
    }
    if (!result) {
      ADD_FAILURE() << "the probe did not finish";
      return {};
    }
    EXPECT_EQ(server_->finished(), server_->connections()) << "the server still holds a client";
    return *result;
  }

  testing::TestCa ca_;
  asio::io_context io_;
  std::optional<FakeSmtpServer> server_;
};

std::chrono::milliseconds ms(std::optional<std::chrono::nanoseconds> d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d.value_or(-1ms));
}

/// Phases do not overlap: the durations of those that ran never add up to more than the whole.
void expect_phases_do_not_overlap(const ProbeResult& r) {
  ProbeResult::Duration sum{};
  for (const auto& duration : r.phase_durations) sum += duration.value_or(ProbeResult::Duration{});
  EXPECT_LE(sum.count(), r.total.count()) << "the phases add up to more than the probe took";
}

TEST_F(SmtpProbeTlsTest, StarttlsSucceeds) {
  Leaf leaf = ca_.issue();
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  EXPECT_FALSE(r.failed_phase.has_value());
  EXPECT_EQ(r.greeting_code, 220);
  EXPECT_EQ(r.starttls_advertised, true);  // as the plaintext EHLO reply said
  EXPECT_EQ(r.ehlo_code, 250);
  EXPECT_EQ(r.quit_code, 221);
  for (Phase p : {Phase::kConnect, Phase::kGreeting, Phase::kEhlo, Phase::kStartTls,
                  Phase::kTlsHandshake, Phase::kQuit}) {
    EXPECT_TRUE(r.phase(p).has_value()) << phase_name(p);
  }
  // The second EHLO was read by the server after its handshake, so it came over TLS.
  EXPECT_EQ(server_->received_lines(), kStarttlsLines);
  EXPECT_EQ(server_->tls_handshakes(), 1);
  EXPECT_EQ(server_->server_names(), std::vector<std::string>{"mx.test.local"});
  EXPECT_TRUE(server_->script_errors().empty()) << server_->script_errors().front();
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_EQ(r.tls->version, "TLS 1.3");
  EXPECT_FALSE(r.tls->cipher.empty());
  EXPECT_TRUE(r.tls->verified) << r.tls->verify_error;
  EXPECT_EQ(r.tls->verify_error, "");
  EXPECT_EQ(r.tls->earliest_not_after, static_cast<double>(leaf.not_after));
  expect_phases_do_not_overlap(r);
}

TEST_F(SmtpProbeTlsTest, Tls12IsSpelledAsBlackboxDoes) {
  Leaf leaf = ca_.issue();
  SSL_CTX_set_max_proto_version(leaf.server_context->native_handle(), TLS1_2_VERSION);
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_TRUE(r.success()) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_EQ(r.tls->version, "TLS 1.2");
  EXPECT_EQ(r.tls->cipher, "ECDHE-ECDSA-AES256-GCM-SHA384");  // OpenSSL's name, EC P-256 leaf
  EXPECT_TRUE(r.tls->verified);
}

TEST_F(SmtpProbeTlsTest, ImplicitTlsSucceeds) {
  Leaf leaf = ca_.issue();
  ProbeResult r =
      probe({testing::tls_handshake(leaf.server_context), testing::send(kGreeting),
             testing::expect("EHLO "), testing::send(kEhloOverTls), testing::expect("QUIT"),
             testing::send("221 2.0.0 Bye\r\n"), testing::close()},
            target(TlsMode::kImplicit, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  EXPECT_EQ(r.greeting_code, 220);
  ASSERT_TRUE(r.banner.has_value());
  EXPECT_EQ(r.banner->hostname, "mx.test.local");  // the greeting was read through TLS
  EXPECT_EQ(r.quit_code, 221);
  EXPECT_TRUE(r.phase(Phase::kTlsHandshake).has_value());
  EXPECT_FALSE(r.phase(Phase::kStartTls).has_value());
  EXPECT_FALSE(r.starttls_advertised.has_value());  // no EHLO reply came in plaintext
  EXPECT_EQ(server_->received_lines(),
            (std::vector<std::string>{"EHLO monitor.test.local", "QUIT"}));
  EXPECT_EQ(server_->tls_handshakes(), 1);
  EXPECT_TRUE(server_->script_errors().empty()) << server_->script_errors().front();
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_EQ(r.tls->version, "TLS 1.3");
  EXPECT_TRUE(r.tls->verified) << r.tls->verify_error;
  EXPECT_EQ(r.tls->earliest_not_after, static_cast<double>(leaf.not_after));
}

TEST_F(SmtpProbeTlsTest, ImplicitTlsGreetingStartsWhenTheHandshakeIsDone) {
  // The server takes its time over the handshake, then greets at once: that time is the
  // handshake's, and the greeting (phase and latency alike) is measured from its end.
  Leaf leaf = ca_.issue();
  ProbeResult r =
      probe({testing::delay(100ms), testing::tls_handshake(leaf.server_context),
             testing::send(kGreeting), testing::expect("EHLO "), testing::send(kEhloOverTls),
             testing::expect("QUIT"), testing::send("221 2.0.0 Bye\r\n"), testing::close()},
            target(TlsMode::kImplicit, trusting_ca()));
  ASSERT_TRUE(r.success()) << r.error_detail;
  ASSERT_TRUE(r.greeting_latency.has_value());
  ASSERT_TRUE(r.phase(Phase::kGreeting).has_value());
  ASSERT_TRUE(r.phase(Phase::kTlsHandshake).has_value());
  EXPECT_EQ(r.greeting_latency->count(), r.phase(Phase::kGreeting)->count());
  expect_phases_do_not_overlap(r);
}

TEST_F(SmtpProbeTlsTest, ImplicitTlsToASilentServerIsHandshakeTimeout) {
  ProbeResult r = probe({testing::stall()}, target(TlsMode::kImplicit, trusting_ca(), 300ms));
  EXPECT_EQ(r.failure, FailureReason::kTlsHandshakeTimeout) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kTlsHandshake);
  EXPECT_EQ(r.greeting_code, 0);
  EXPECT_FALSE(r.phase(Phase::kGreeting).has_value());
}

TEST_F(SmtpProbeTlsTest, StarttlsNotAdvertised) {
  ProbeResult r = probe({testing::send(kGreeting), testing::expect("EHLO "),
                         testing::send("250-mx.test.local Hello\r\n250 8BITMIME\r\n"),
                         testing::expect("QUIT"), testing::send("221 2.0.0 Bye\r\n")},
                        target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kStarttlsUnavailable);
  EXPECT_EQ(r.failed_phase, Phase::kStartTls);
  EXPECT_EQ(r.starttls_advertised, false);
  EXPECT_EQ(r.ehlo_code, 250);
  EXPECT_EQ(r.quit_code, 221);  // QUIT is still said, and its answer kept
  EXPECT_TRUE(r.phase(Phase::kQuit).has_value());
  EXPECT_FALSE(r.phase(Phase::kTlsHandshake).has_value());
  EXPECT_FALSE(r.tls.has_value());
  EXPECT_EQ(server_->received_lines(),
            (std::vector<std::string>{"EHLO monitor.test.local", "QUIT"}));
}

TEST_F(SmtpProbeTlsTest, StarttlsRejected) {
  std::vector<Step> script = until_starttls("454 4.7.0 TLS not available due to local problem\r\n");
  script.push_back(testing::expect("QUIT"));
  script.push_back(testing::send("221 2.0.0 Bye\r\n"));
  ProbeResult r = probe(script, target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kStarttlsRejected);
  EXPECT_EQ(r.failed_phase, Phase::kStartTls);
  EXPECT_NE(r.error_detail.find("454"), std::string::npos) << r.error_detail;
  EXPECT_TRUE(r.phase(Phase::kStartTls).has_value());
  EXPECT_FALSE(r.phase(Phase::kTlsHandshake).has_value());
  EXPECT_EQ(r.quit_code, 221);
  EXPECT_FALSE(r.tls.has_value());
  EXPECT_EQ(server_->received_lines(),
            (std::vector<std::string>{"EHLO monitor.test.local", "STARTTLS", "QUIT"}));
}

TEST_F(SmtpProbeTlsTest, StarttlsUnanswered) {
  ProbeResult r =
      probe({testing::send(kGreeting), testing::expect("EHLO "), testing::send(kEhloWithStarttls),
             testing::expect("STARTTLS"), testing::stall()},
            target(TlsMode::kStartTls, trusting_ca(), 300ms));
  EXPECT_EQ(r.failure, FailureReason::kStarttlsTimeout) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kStartTls);
  EXPECT_TRUE(r.phase(Phase::kStartTls).has_value());
  EXPECT_FALSE(r.phase(Phase::kTlsHandshake).has_value());
  EXPECT_GE(ms(r.total), 300ms);
  EXPECT_EQ(server_->tls_handshakes(), 0);
}

TEST_F(SmtpProbeTlsTest, MalformedStarttlsReplyIsReplyMalformed) {
  std::vector<Step> script = until_starttls("2x0 Ready to start TLS\r\n");
  script.push_back(testing::stall());
  ProbeResult r = probe(script, target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kReplyMalformed) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kStartTls);
  EXPECT_EQ(r.error_detail, "starttls: not an SMTP reply");
  EXPECT_EQ(r.greeting_code, 220);
  EXPECT_FALSE(r.phase(Phase::kTlsHandshake).has_value());
}

TEST_F(SmtpProbeTlsTest, MalformedEhloReplyOverTlsIsReplyMalformed) {
  Leaf leaf = ca_.issue();
  std::vector<Step> script = until_starttls("220 2.0.0 Ready to start TLS\r\n");
  script.push_back(testing::tls_handshake(leaf.server_context));
  script.push_back(testing::expect("EHLO "));
  script.push_back(testing::send("250-mx.test.local\r\n250-\x1b[31m\r\n250 8BITMIME\r\n"));
  script.push_back(testing::stall());
  ProbeResult r = probe(script, target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kReplyMalformed) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kEhlo);
  ASSERT_TRUE(r.tls.has_value());  // the handshake was done: the garbage came over TLS
}

TEST_F(SmtpProbeTlsTest, PlaintextInjectedAfterStarttlsIsCaught) {
  // RFC 3207 §5 / CVE-2011-0411: a line pipelined behind the 220 would be taken as said over
  // TLS. The probe must stop there and never start the handshake: the server expects the client
  // to close without sending a single byte (a ClientHello would be a script error).
  std::vector<Step> script = until_starttls("220 go ahead\r\n250 injected\r\n");
  script.push_back(testing::expect_close());
  ProbeResult r = probe(script, target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kStarttlsInjection) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kStartTls);
  EXPECT_FALSE(r.phase(Phase::kTlsHandshake).has_value());
  EXPECT_FALSE(r.tls.has_value());
  EXPECT_TRUE(server_->script_errors().empty()) << server_->script_errors().front();
  EXPECT_EQ(server_->finished(), 1);
}

TEST_F(SmtpProbeTlsTest, GarbageInsteadOfServerHello) {
  // The server waits for the ClientHello (so the garbage cannot be read as injected plaintext),
  // then answers it with HTTP.
  std::vector<Step> script = until_starttls("220 2.0.0 Ready to start TLS\r\n");
  script.push_back(testing::expect_raw("\x16\x03"));  // a TLS handshake record
  script.push_back(testing::send("HTTP/1.0 400\r\n\r\n"));
  script.push_back(testing::stall());
  ProbeResult r = probe(script, target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kTlsHandshakeFailed) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kTlsHandshake);
  EXPECT_TRUE(r.phase(Phase::kTlsHandshake).has_value());
  // OpenSSL's own reason for a record that is not TLS.
  const char* reason =
      ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER));
  ASSERT_NE(reason, nullptr);
  EXPECT_NE(r.error_detail.find(reason), std::string::npos) << r.error_detail;
  EXPECT_FALSE(r.tls.has_value());
  EXPECT_EQ(r.quit_code, 0);
  EXPECT_TRUE(server_->script_errors().empty()) << server_->script_errors().front();
}

TEST_F(SmtpProbeTlsTest, StallDuringHandshakeIsHandshakeTimeout) {
  std::vector<Step> script = until_starttls("220 2.0.0 Ready to start TLS\r\n");
  script.push_back(testing::stall());
  ProbeResult r = probe(script, target(TlsMode::kStartTls, trusting_ca(), 500ms));
  EXPECT_EQ(r.failure, FailureReason::kTlsHandshakeTimeout) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kTlsHandshake);
  EXPECT_TRUE(r.phase(Phase::kStartTls).has_value());
  EXPECT_TRUE(r.phase(Phase::kTlsHandshake).has_value());
  EXPECT_FALSE(r.tls.has_value());
  // The probe's one deadline ends the handshake: not before it, and not long after it (the
  // bound is slack for a loaded machine; without the deadline the wait would be endless).
  EXPECT_GE(ms(r.total), 500ms);
  EXPECT_LT(ms(r.total), 500ms + 3s);
}

TEST_F(SmtpProbeTlsTest, ExpiryIsTheLeafsWhenItExpiresFirstInTheChain) {
  Leaf leaf = ca_.issue();  // 30 days, the CA a year
  ProbeResult r = probe(starttls_dialogue(ca_.server_context_with_chain(leaf)),
                        target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_TRUE(r.success()) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_EQ(r.tls->earliest_not_after, static_cast<double>(leaf.not_after));
}

TEST_F(SmtpProbeTlsTest, ExpiryIsTheIssuersWhenItExpiresFirstInTheChain) {
  // A leaf that outlives its CA: the chain stops working when the CA expires.
  Leaf leaf = ca_.issue({.not_after = ca_.not_after() + 30 * kDay});
  ProbeResult r = probe(starttls_dialogue(ca_.server_context_with_chain(leaf)),
                        target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_TRUE(r.success()) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_EQ(r.tls->earliest_not_after, static_cast<double>(ca_.not_after()));
  EXPECT_LT(r.tls->earliest_not_after, static_cast<double>(leaf.not_after));
}

TEST_F(SmtpProbeTlsTest, ExpiredCertificateFailsVerificationButKeepsFacts) {
  std::int64_t now = unix_now();
  Leaf leaf = ca_.issue({.not_before = now - 30 * kDay, .not_after = now - kDay});
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kTlsVerifyFailed) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kTlsHandshake);
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_FALSE(r.tls->verified);
  EXPECT_EQ(r.tls->verify_error, X509_verify_cert_error_string(X509_V_ERR_CERT_HAS_EXPIRED));
  EXPECT_EQ(r.tls->earliest_not_after, static_cast<double>(leaf.not_after));
  EXPECT_LT(r.tls->earliest_not_after, static_cast<double>(now));
  // The dialogue went on over TLS to a clean QUIT.
  EXPECT_EQ(r.quit_code, 221);
  EXPECT_EQ(server_->received_lines(), kStarttlsLines);
}

TEST_F(SmtpProbeTlsTest, ExpiredCertificateWithInsecureSkipVerifySucceeds) {
  std::int64_t now = unix_now();
  Leaf leaf = ca_.issue({.not_before = now - 30 * kDay, .not_after = now - kDay});
  TlsSettings settings = trusting_ca();
  settings.insecure_skip_verify = true;
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, settings));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_FALSE(r.tls->verified);  // still reported as it is
  EXPECT_EQ(r.tls->verify_error, X509_verify_cert_error_string(X509_V_ERR_CERT_HAS_EXPIRED));
  EXPECT_EQ(r.tls->earliest_not_after, static_cast<double>(leaf.not_after));
  EXPECT_EQ(r.quit_code, 221);
}

TEST_F(SmtpProbeTlsTest, NotYetValidCertificateFailsVerification) {
  std::int64_t now = unix_now();
  Leaf leaf = ca_.issue({.not_before = now + kDay, .not_after = now + 30 * kDay});
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kTlsVerifyFailed) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_FALSE(r.tls->verified);
  EXPECT_EQ(r.tls->verify_error, X509_verify_cert_error_string(X509_V_ERR_CERT_NOT_YET_VALID));
  EXPECT_EQ(r.quit_code, 221);
}

TEST_F(SmtpProbeTlsTest, NameMismatchFailsVerification) {
  Leaf leaf = ca_.issue({.common_name = "other.test.local", .dns_names = {"other.test.local"}});
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kTlsVerifyFailed) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_FALSE(r.tls->verified);
  EXPECT_EQ(r.tls->verify_error, X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH));
  EXPECT_EQ(r.quit_code, 221);
}

TEST_F(SmtpProbeTlsTest, PartialWildcardIsRefused) {
  // RFC 6125 §7.2: "m*" matching "mx" is a partial wildcard, which no client should honour.
  Leaf leaf = ca_.issue({.common_name = "m*.test.local", .dns_names = {"m*.test.local"}});
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kTlsVerifyFailed) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_FALSE(r.tls->verified);
  EXPECT_EQ(r.tls->verify_error, X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH));
}

TEST_F(SmtpProbeTlsTest, WholeLabelWildcardVerifies) {
  Leaf leaf = ca_.issue({.common_name = "*.test.local", .dns_names = {"*.test.local"}});
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_TRUE(r.tls->verified) << r.tls->verify_error;
}

TEST_F(SmtpProbeTlsTest, TrailingDotIsDroppedFromSniAndVerification) {
  // An absolute name ("mx.test.local.", as DNS and some configs write it) names the same host;
  // RFC 6066 §3 forbids the trailing dot in SNI.
  Leaf leaf = ca_.issue();
  TlsSettings settings = trusting_ca();
  settings.server_name = "mx.test.local.";
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, settings));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_TRUE(r.tls->verified) << r.tls->verify_error;
  EXPECT_EQ(server_->server_names(), std::vector<std::string>{"mx.test.local"});
}

TEST_F(SmtpProbeTlsTest, IpAddressSanVerifies) {
  Leaf leaf =
      ca_.issue({.common_name = "127.0.0.1", .dns_names = {}, .ip_addresses = {"127.0.0.1"}});
  TlsSettings settings = trusting_ca();
  settings.server_name = "127.0.0.1";
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, settings));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_TRUE(r.tls->verified) << r.tls->verify_error;
  // RFC 6066 §3: SNI carries host names only, never an address literal.
  EXPECT_EQ(server_->server_names(), std::vector<std::string>{""});
}

TEST_F(SmtpProbeTlsTest, WithoutServerNameTheHostAddressIsVerified) {
  Leaf leaf =
      ca_.issue({.common_name = "127.0.0.1", .dns_names = {}, .ip_addresses = {"127.0.0.1"}});
  TlsSettings settings = trusting_ca();
  settings.server_name.clear();  // the target's host, 127.0.0.1, is what must match
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, settings));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_TRUE(r.tls->verified) << r.tls->verify_error;
}

TEST_F(SmtpProbeTlsTest, IpAddressMismatchFailsVerification) {
  Leaf leaf =
      ca_.issue({.common_name = "127.0.0.2", .dns_names = {}, .ip_addresses = {"127.0.0.2"}});
  TlsSettings settings = trusting_ca();
  settings.server_name = "127.0.0.1";
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, settings));
  EXPECT_EQ(r.failure, FailureReason::kTlsVerifyFailed) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_EQ(r.tls->verify_error, X509_verify_cert_error_string(X509_V_ERR_IP_ADDRESS_MISMATCH));
}

TEST_F(SmtpProbeTlsTest, SystemStoreDoesNotTrustTheTestCa) {
  Leaf leaf = ca_.issue();
  TlsSettings settings = trusting_ca();
  settings.ca_file.clear();  // the system's CA store, read from local files
  // The server sends its leaf alone, whose issuer the store does not have.
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, settings));
  EXPECT_EQ(r.failure, FailureReason::kTlsVerifyFailed) << r.error_detail;
  ASSERT_TRUE(r.tls.has_value());
  EXPECT_FALSE(r.tls->verified);
  EXPECT_EQ(r.tls->verify_error,
            X509_verify_cert_error_string(X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE));
  EXPECT_EQ(r.tls->earliest_not_after, static_cast<double>(leaf.not_after));
  EXPECT_EQ(r.quit_code, 221);
}

TEST_F(SmtpProbeTlsTest, ClientCertificateIsPresented) {
  Leaf server_leaf = ca_.issue();
  Leaf client_leaf =
      ca_.issue({.common_name = "monitor.test.local", .dns_names = {"monitor.test.local"}});
  TlsSettings settings = trusting_ca();
  settings.cert_file = client_leaf.cert_file;
  settings.key_file = client_leaf.key_file;
  ProbeResult r = probe(starttls_dialogue(ca_.server_context_requesting_client_cert(server_leaf)),
                        target(TlsMode::kStartTls, settings));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  EXPECT_EQ(server_->client_certificates(), std::vector<std::string>{"monitor.test.local"});
}

TEST_F(SmtpProbeTlsTest, NoClientCertificateUnlessConfigured) {
  Leaf server_leaf = ca_.issue();
  ProbeResult r = probe(starttls_dialogue(ca_.server_context_requesting_client_cert(server_leaf)),
                        target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kNone) << r.error_detail;
  EXPECT_EQ(server_->client_certificates(), std::vector<std::string>{""});
}

TEST_F(SmtpProbeTlsTest, ServerRequiringAClientCertificateRejectsTheProbeWithout) {
  // TLS 1.3: the client's handshake is over before the server has looked at the client; the
  // refusal comes as an alert on the first read, and is still the handshake's failure.
  Leaf server_leaf = ca_.issue();
  ProbeResult r = probe(
      starttls_dialogue(ca_.server_context_requesting_client_cert(server_leaf, /*require=*/true)),
      target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kTlsHandshakeFailed) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kTlsHandshake);
  const char* reason =
      ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED));
  ASSERT_NE(reason, nullptr);
  EXPECT_NE(r.error_detail.find(reason), std::string::npos) << r.error_detail;
  EXPECT_EQ(server_->tls_handshakes(), 0);
}

TEST_F(SmtpProbeTlsTest, Tls12ServerRequiringAClientCertificateRejectsTheProbeWithout) {
  Leaf server_leaf = ca_.issue();
  auto context = ca_.server_context_requesting_client_cert(server_leaf, /*require=*/true);
  SSL_CTX_set_max_proto_version(context->native_handle(), TLS1_2_VERSION);
  ProbeResult r = probe(starttls_dialogue(context), target(TlsMode::kStartTls, trusting_ca()));
  EXPECT_EQ(r.failure, FailureReason::kTlsHandshakeFailed) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kTlsHandshake);
  EXPECT_FALSE(r.tls.has_value());
}

TEST_F(SmtpProbeTlsTest, MinVersionAboveTheServersFailsTheHandshake) {
  Leaf leaf = ca_.issue();
  SSL_CTX_set_max_proto_version(leaf.server_context->native_handle(), TLS1_2_VERSION);
  TlsSettings settings = trusting_ca();
  settings.min_version = "TLS13";
  ProbeResult r =
      probe(starttls_dialogue(leaf.server_context), target(TlsMode::kStartTls, settings));
  EXPECT_EQ(r.failure, FailureReason::kTlsHandshakeFailed) << r.error_detail;
  EXPECT_EQ(r.failed_phase, Phase::kTlsHandshake);
  EXPECT_FALSE(r.tls.has_value());
}

TEST(MakeTlsContextTest, UnknownMinVersionThrows) {
  TlsSettings settings;
  settings.min_version = "SSL3";
  EXPECT_THROW(make_tls_context(settings), std::runtime_error);
}

TEST(MakeTlsContextTest, MissingCaFileNamesTheFile) {
  TlsSettings settings;
  settings.ca_file = "/nonexistent/smtp-test-ca.pem";
  try {
    make_tls_context(settings);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(settings.ca_file), std::string::npos) << e.what();
  }
}

TEST(MakeTlsContextTest, MismatchedClientKeyNamesTheKeyFile) {
  testing::TestCa ca;
  Leaf one = ca.issue();
  Leaf other = ca.issue();
  TlsSettings settings;
  settings.ca_file = ca.ca_file();
  settings.cert_file = one.cert_file;
  settings.key_file = other.key_file;
  try {
    make_tls_context(settings);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(other.key_file), std::string::npos) << message;
    EXPECT_NE(message.find("mismatch"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace smtp
