// /probe, the pure parts: the request's checks (with a fuzz-ish loop over hostile queries), the
// deadline and the answer. probe_endpoint_serve_test.cpp runs whole requests.
#include "exporter/probe_endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "tests/support/exposition.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

ProbeEndpointConfig config_of(const std::string& yaml) {
  return parse_config(yaml, "t.yml", "probe.test.local").probe;
}

using testing::sample_value;

// --- the deadline -----------------------------------------------------------------------

TEST(ProbeDeadline, ScrapeTimeoutMinusTheOffsetCappedByTheModule) {
  const std::string ten = "10", two = "2", fraction = "0.75", tiny = "0.6";
  EXPECT_EQ(probe_deadline(nullptr, 7s, 500ms), 7s);  // no header: the module's
  EXPECT_EQ(probe_deadline(&ten, 7s, 500ms), 7s);
  EXPECT_EQ(probe_deadline(&two, 7s, 500ms), 1500ms);
  EXPECT_EQ(probe_deadline(&fraction, 7s, 0ms), 750ms);
  EXPECT_EQ(probe_deadline(&tiny, 7s, 500ms), 300ms);  // never under half the scrape timeout
  for (const char* bad : {"", "0", "-1", "abc", "1s", "nan", "inf", "1e999", " 1", "1 "}) {
    const std::string text = bad;
    EXPECT_FALSE(probe_deadline(&text, 7s, 500ms)) << bad;
  }
}

// --- the request's parameters -----------------------------------------------------------

class ProbeRequestTest : public ::testing::Test {
 protected:
  std::variant<ProbeRequest, ProbeRefusal> parse(std::map<std::string, std::string> query,
                                                 std::map<std::string, std::string> headers = {}) {
    return parse_probe_request(query, headers, config_, 500ms);
  }
  std::string refusal(std::map<std::string, std::string> query,
                      std::map<std::string, std::string> headers = {}) {
    auto result = parse(std::move(query), std::move(headers));
    const auto* refused = std::get_if<ProbeRefusal>(&result);
    if (!refused) return "(accepted)";
    EXPECT_EQ(refused->status, 400);
    return refused->message;
  }
  ProbeRequest accepted(std::map<std::string, std::string> query,
                        std::map<std::string, std::string> headers = {}) {
    auto result = parse(std::move(query), std::move(headers));
    if (const auto* refused = std::get_if<ProbeRefusal>(&result)) {
      ADD_FAILURE() << refused->message;
      return {};
    }
    return std::get<ProbeRequest>(result);
  }

  ProbeEndpointConfig config_ = config_of("modules:\n  submission: {tls: starttls, timeout: 4s}\n");
};

TEST_F(ProbeRequestTest, TargetsAreNormalised) {
  ProbeRequest name = accepted({{"target", "MX1.Example.ORG.:587"}});
  EXPECT_EQ(name.host, "mx1.example.org");
  EXPECT_EQ(name.port, 587);
  EXPECT_FALSE(name.literal);
  EXPECT_EQ(name.module_name, "smtp");  // as blackbox defaults its module
  EXPECT_EQ(name.timeout, 10s);
  EXPECT_EQ(accepted({{"target", "mx1.example.org"}}).port, 25);
  ProbeRequest mapped = accepted({{"target", "[::ffff:127.0.0.1]:25"}});
  EXPECT_EQ(mapped.host, "127.0.0.1");
  EXPECT_TRUE(mapped.literal);
  EXPECT_EQ(accepted({{"target", "[2001:DB8::1]:25"}}).host, "2001:db8::1");
}

TEST_F(ProbeRequestTest, ModuleDebugHostnameAndTheScrapeTimeout) {
  ProbeRequest r = accepted({{"target", "192.0.2.1:587"},
                             {"module", "submission"},
                             {"debug", "true"},
                             {"hostname", "mx.example.org"}},
                            {{"x-prometheus-scrape-timeout-seconds", "3"}});
  EXPECT_EQ(r.module_name, "submission");
  ASSERT_NE(r.module, nullptr);
  EXPECT_EQ(r.module->tls, TlsMode::kStartTls);
  EXPECT_TRUE(r.debug);
  EXPECT_EQ(r.hostname, "mx.example.org");
  EXPECT_EQ(r.timeout, 2500ms);
  EXPECT_FALSE(accepted({{"target", "192.0.2.1:25"}, {"debug", "false"}}).debug);
}

TEST_F(ProbeRequestTest, BadParametersAreRefusedWithTheReason) {
  EXPECT_EQ(refusal({}), "missing parameter \"target\" (target=HOST:PORT)");
  EXPECT_EQ(refusal({{"target", ""}}), "missing parameter \"target\" (target=HOST:PORT)");
  EXPECT_THAT(refusal({{"target", "mx..example.org:25"}}), HasSubstr("invalid target"));
  EXPECT_THAT(refusal({{"target", "2001:db8::1:25"}}), HasSubstr("needs brackets"));
  EXPECT_THAT(refusal({{"target", "mx.example.org:0"}}), HasSubstr("invalid port"));
  EXPECT_THAT(refusal({{"target", "mx.example.org:99999"}}), HasSubstr("invalid port"));
  EXPECT_THAT(refusal({{"target", "mx.example.org\r\n:25"}}), HasSubstr("\\x0d\\x0a"));
  EXPECT_EQ(refusal({{"target", "a.example:25"}, {"module", "nope"}}),
            "unknown module \"nope\" (configured: \"smtp\", \"submission\")");
  EXPECT_THAT(refusal({{"target", "a.example:25"}, {"module", ""}}), HasSubstr("unknown module"));
  EXPECT_EQ(refusal({{"target", "a.example:25"}, {"modul", "smtp"}}),
            "unknown parameter \"modul\" (expected target, module, debug, hostname)");
  EXPECT_EQ(refusal({{"target", "a.example:25"}, {"debug", "1"}}),
            "debug must be true or false, not \"1\"");
  EXPECT_THAT(refusal({{"target", "a.example:25"}, {"hostname", "a b"}}),
              HasSubstr("invalid hostname"));
  EXPECT_EQ(refusal({{"target", "a.example:25"}}, {{"x-prometheus-scrape-timeout-seconds", "-3"}}),
            "invalid X-Prometheus-Scrape-Timeout-Seconds \"-3\" (expected a positive number of "
            "seconds)");
}

// Random and hostile query strings: every one is a request or a 400 with a printable reason,
// never an exception or a crash (the sanitizer build runs this too).
TEST_F(ProbeRequestTest, FuzzedQueriesAreRequestsOrClear400s) {
  std::mt19937 random(20261202);  // fixed: the same inputs every run
  const std::vector<std::string> keys = {"target", "module", "debug", "hostname", "x", ""};
  const std::vector<std::string> pieces = {"mx.example.org",
                                           ":",
                                           "25",
                                           "[",
                                           "]",
                                           "::1",
                                           "127.0.0.1",
                                           "%",
                                           std::string(1, '\0'),
                                           "\r\n",
                                           "*",
                                           "..",
                                           "-",
                                           "smtp",
                                           "submission",
                                           "true",
                                           "ü",
                                           "\xff",
                                           "99999",
                                           "[::ffff:10.0.0.1]",
                                           std::string(300, 'a')};
  int accepted_count = 0;
  for (int i = 0; i < 20000; ++i) {
    std::map<std::string, std::string> query;
    const int fields = static_cast<int>(random() % 5);
    for (int f = 0; f < fields; ++f) {
      std::string value;
      const int parts = static_cast<int>(random() % 5);
      for (int p = 0; p < parts; ++p) {
        if (random() % 4 == 0) {
          value.push_back(static_cast<char>(random() % 256));
        } else {
          value += pieces[random() % pieces.size()];
        }
      }
      query[keys[random() % keys.size()]] = value;
    }
    std::map<std::string, std::string> headers;
    if (random() % 3 == 0) headers["x-prometheus-scrape-timeout-seconds"] = query["x"];
    query.erase("x");
    std::variant<ProbeRequest, ProbeRefusal> result;
    ASSERT_NO_THROW(result = parse(query, headers));
    if (const auto* request = std::get_if<ProbeRequest>(&result)) {
      ++accepted_count;
      EXPECT_FALSE(request->host.empty());
      EXPECT_GT(request->port, 0);
      ASSERT_NE(request->module, nullptr);
      EXPECT_GT(request->timeout, 0ns);
      EXPECT_LE(request->timeout, request->module->timeout);
    } else {
      const ProbeRefusal& refused = std::get<ProbeRefusal>(result);
      EXPECT_EQ(refused.status, 400);
      EXPECT_FALSE(refused.message.empty());
      for (const char c : refused.message) {
        ASSERT_TRUE(static_cast<unsigned char>(c) >= 0x20) << refused.message;
      }
    }
  }
  EXPECT_GT(accepted_count, 0);  // the generator reaches the probing path too
}

// --- the answer -------------------------------------------------------------------------

TEST(ProbeAnswer, SeriesWithoutLabelsAndBlackboxNames) {
  ProbeResult result;
  result.total = 250ms;
  result.greeting_code = 220;
  result.quit_code = 221;
  result.greeting_latency = 20ms;
  result.phase_durations[static_cast<std::size_t>(Phase::kResolve)] = 5ms;
  result.tls = TlsFacts{"TLS 1.3", "TLS_AES_256_GCM_SHA384", 1800000000, true, ""};
  TargetConfig module;
  module.tls = TlsMode::kStartTls;
  const std::string body = render_probe_answer(result, module, 6, 1790000000);
  EXPECT_THAT(body, Not(HasSubstr("{}")));
  EXPECT_THAT(body, Not(HasSubstr("target=")));
  EXPECT_EQ(sample_value(body, "smtp_probe_success"), 1);
  EXPECT_EQ(sample_value(body, "smtp_quit_code"), 221);
  EXPECT_EQ(sample_value(body, "smtp_tls_cert_expiry_timestamp_seconds"), 1800000000);
  EXPECT_EQ(sample_value(body, "smtp_phase_seconds{phase=\"resolve\"}"), 0.005);
  EXPECT_EQ(sample_value(body, "probe_success"), 1);
  EXPECT_EQ(sample_value(body, "probe_duration_seconds"), 0.25);
  EXPECT_EQ(sample_value(body, "probe_dns_lookup_time_seconds"), 0.005);
  EXPECT_EQ(sample_value(body, "probe_ip_protocol"), 6);
  EXPECT_EQ(sample_value(body, "probe_ssl_earliest_cert_expiry"), 1800000000);
  EXPECT_EQ(sample_value(body, "probe_tls_version_info{version=\"TLS 1.3\"}"), 1);

  result.failure = FailureReason::kConnectRefused;
  result.tls.reset();
  const std::string failed = render_probe_answer(result, TargetConfig{}, 0, 1790000000);
  EXPECT_EQ(sample_value(failed, "probe_success"), 0);
  EXPECT_EQ(sample_value(failed, "smtp_probes_total{result=\"connect_refused\"}"), 1);
  EXPECT_EQ(sample_value(failed, "probe_ip_protocol"), 0);
  // No certificate seen: no expiry series (a 0 would fire every expiry alert).
  EXPECT_THAT(failed, Not(HasSubstr("probe_ssl_earliest_cert_expiry ")));
  EXPECT_THAT(failed, Not(HasSubstr("probe_tls_version_info{")));
}

}  // namespace
}  // namespace smtp
