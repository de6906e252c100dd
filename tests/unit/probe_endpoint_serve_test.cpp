// /probe, whole requests on an io_context against the scripted fake SMTP and DNS servers: what
// is probed, what is refused before any lookup or connection, that a name is looked up once and
// the address that was vetted is the one connected to, with the name kept for TLS.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>

#include "exporter/probe_endpoint.h"
#include "probes/resolve.h"
#include "tests/support/exposition.h"
#include "tests/support/fake_dns_server.h"
#include "tests/support/fake_smtp_server.h"
#include "tests/support/test_certs.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::sample_value;
using Query = std::map<std::string, std::string>;

// Not a timing expectation: only so that a broken endpoint fails a test instead of hanging it.
constexpr auto kHangGuard = 10s;

// Admits every port of 127.0.0.1 and the names under test.local that resolve to it.
const std::string kLoopbackRules = R"(
probe:
  allowed_targets:
    - name: loopback
      networks: [127.0.0.1]
      ports: [1-65535]
    - name: test names
      hosts: ["*.test.local"]
      networks: [127.0.0.1]
      ports: [1-65535]
)";

std::string target(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port);
}

class ProbeEndpointServeTest : public ::testing::Test {
 protected:
  void configure(const std::string& yaml) {
    endpoint_.apply(parse_config(yaml, "t.yml", "probe.test.local").probe);
  }

  /// Starts a request; its response lands in the returned slot.
  std::shared_ptr<std::optional<HttpResponse>> start(Query query, Query headers = {},
                                                     std::string method = "GET") {
    HttpRequest request;
    request.method = std::move(method);
    request.path = "/probe";
    request.query = std::move(query);
    request.headers = std::move(headers);
    auto slot = std::make_shared<std::optional<HttpResponse>>();
    asio::co_spawn(io_, endpoint_.serve(std::move(request)),
                   [slot](std::exception_ptr error, HttpResponse response) {
                     if (error) {
                       ADD_FAILURE() << "serve() threw";
                       response.status = 0;
                     }
                     *slot = std::move(response);
                   });
    return slot;
  }

  template <typename Done>
  bool run_until(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + kHangGuard;
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      // With nothing left to do the io_context stops; a request started since needs it again.
      if (io_.stopped()) io_.restart();
      io_.run_one_for(100ms);
    }
    return done();
  }

  /// A response with its body as text, for the assertions.
  struct Answer {
    int status = 0;
    std::string content_type;
    std::string body;
    std::map<std::string, std::string> headers;
  };

  Answer get(Query query, Query headers = {}, std::string method = "GET") {
    auto slot = start(std::move(query), std::move(headers), std::move(method));
    EXPECT_TRUE(run_until([&] { return slot->has_value(); })) << "no response in time";
    if (!slot->has_value()) return {};
    const HttpResponse& response = **slot;
    return {response.status, response.content_type, std::string(response.body.view()),
            response.headers};
  }

  std::size_t questions_for(const std::string& name) const {
    const auto questions = dns_.questions();
    return static_cast<std::size_t>(std::count_if(questions.begin(), questions.end(),
                                                  [&](const auto& q) { return q.first == name; }));
  }

  asio::io_context io_;
  testing::FakeDnsServer dns_;
  ExporterMetrics metrics_;
  std::shared_ptr<Resolver> resolver_ =
      std::make_shared<Resolver>(io_.get_executor(), std::vector<std::string>{dns_.address()});
  ProbeEndpoint endpoint_{metrics_,
                          {.timeout_offset = 500ms, .resolver = [this] { return resolver_; }}};
};

TEST_F(ProbeEndpointServeTest, AnAdmittedAddressIsProbed) {
  testing::FakeSmtpServer server(io_, testing::polite_dialogue());
  configure(kLoopbackRules);
  const Answer response = get({{"target", target("127.0.0.1", server.port())}});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_THAT(response.content_type, HasSubstr("version=0.0.4"));
  EXPECT_EQ(sample_value(response.body, "probe_success"), 1);
  EXPECT_EQ(sample_value(response.body, "smtp_probe_success"), 1);
  EXPECT_EQ(sample_value(response.body, "smtp_quit_code"), 221);
  EXPECT_EQ(sample_value(response.body, "probe_ip_protocol"), 4);
  EXPECT_EQ(sample_value(response.body,
                         "smtp_banner_info{hostname=\"fake.test.local\",software=\"unknown\"}"),
            1);
  EXPECT_THAT(response.body, Not(HasSubstr("target=")));
  EXPECT_THAT(response.body, Not(HasSubstr("{}")));
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(dns_.query_count(), 0u);
  EXPECT_THAT(metrics_.render(), HasSubstr("smtp_exporter_probe_requests_total{code=\"200\"} 1"));
}

TEST_F(ProbeEndpointServeTest, ARefusedAddressIsNeverConnectedTo) {
  testing::FakeSmtpServer server(io_, testing::polite_dialogue());
  configure(
      "probe:\n  allowed_targets:\n    - {name: other, networks: [127.0.0.2], ports: [1-65535]}\n");
  const Answer response = get({{"target", target("127.0.0.1", server.port())}});
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(
      response.body,
      "no rule of probe.allowed_targets admits 127.0.0.1 (it is in none of their networks)\n");
  EXPECT_EQ(server.connections(), 0);
  EXPECT_THAT(metrics_.render(), HasSubstr("smtp_exporter_probe_requests_total{code=\"403\"} 1"));
}

TEST_F(ProbeEndpointServeTest, WithoutAllowedTargetsEverythingIsRefused) {
  testing::FakeSmtpServer server(io_, testing::polite_dialogue());
  configure("targets: []\n");
  for (const std::string host : {"127.0.0.1", "mx.test.local"}) {
    const Answer response = get({{"target", target(host, server.port())}});
    EXPECT_EQ(response.status, 403);
    EXPECT_THAT(response.body, HasSubstr("probe.allowed_targets is not set"));
  }
  EXPECT_EQ(server.connections(), 0);
  EXPECT_EQ(dns_.query_count(), 0u);
}

TEST_F(ProbeEndpointServeTest, ANameNoRuleMatchesIsNeverLookedUp) {
  configure(kLoopbackRules);
  const Answer response = get({{"target", "mx.example.org:25"}});
  EXPECT_EQ(response.status, 403);
  EXPECT_THAT(response.body, HasSubstr("no rule of probe.allowed_targets admits the host "
                                       "\"mx.example.org\""));
  EXPECT_EQ(dns_.query_count(), 0u);
}

TEST_F(ProbeEndpointServeTest, ANameThatResolvesIntoARefusedNetworkIsRefused) {
  testing::FakeSmtpServer server(io_, testing::polite_dialogue());
  dns_.set("mx.test.local", testing::DnsAnswer::addresses({"127.0.0.1"}));
  configure(R"(
probe:
  allowed_targets:
    - {name: lab, hosts: ["*.test.local"], networks: [127.0.0.2], ports: [1-65535]}
)");
  const Answer response = get({{"target", target("mx.test.local", server.port())}});
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(response.body,
            "rule \"lab\" admits the host \"mx.test.local\", but it resolves to 127.0.0.1, which "
            "is in none of the rule's networks\n");
  EXPECT_GT(questions_for("mx.test.local"), 0u);
  EXPECT_EQ(server.connections(), 0);
}

TEST_F(ProbeEndpointServeTest, ANameIsLookedUpOnceAndTheVettedAddressConnectedTo) {
  testing::FakeSmtpServer server(io_, testing::polite_dialogue());
  dns_.set("baseline.test.local", testing::DnsAnswer::addresses({"127.0.0.1"}));
  dns_.set("mx.test.local", testing::DnsAnswer::addresses({"127.0.0.1"}));
  configure(kLoopbackRules);
  // How many questions one lookup asks (A and AAAA), measured, not assumed.
  std::optional<ResolveResult> baseline;
  asio::co_spawn(
      io_,
      resolver_->resolve_host("baseline.test.local", 25, std::chrono::steady_clock::now() + 5s),
      [&](std::exception_ptr, ResolveResult result) { baseline = std::move(result); });
  ASSERT_TRUE(run_until([&] { return baseline.has_value(); }));
  const std::size_t one_lookup = questions_for("baseline.test.local");
  ASSERT_GT(one_lookup, 0u);

  const Answer response = get({{"target", target("MX.test.local.", server.port())}});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(sample_value(response.body, "probe_success"), 1);
  EXPECT_EQ(questions_for("mx.test.local"), one_lookup);  // no second lookup by the probe
  EXPECT_EQ(server.connections(), 1);
  EXPECT_TRUE(sample_value(response.body, "probe_dns_lookup_time_seconds"));
  EXPECT_TRUE(sample_value(response.body, "smtp_phase_seconds{phase=\"resolve\"}"));
  EXPECT_GE(sample_value(response.body, "probe_duration_seconds").value_or(-1),
            sample_value(response.body, "probe_dns_lookup_time_seconds").value_or(0));

  // Every request is vetted anew: the name now points elsewhere.
  dns_.set("mx.test.local", testing::DnsAnswer::addresses({"127.0.0.3"}));
  EXPECT_EQ(get({{"target", target("mx.test.local", server.port())}}).status, 403);
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(ProbeEndpointServeTest, ALookupThatFailsIsAFailedProbe) {
  dns_.set("gone.test.local", testing::DnsAnswer::nxdomain());
  dns_.set("v4only.test.local", testing::DnsAnswer::addresses({"127.0.0.1"}));
  configure(kLoopbackRules + "modules:\n  v6: {ip_protocol: ip6}\n");
  const Answer gone = get({{"target", "gone.test.local:25"}});
  ASSERT_EQ(gone.status, 200) << gone.body;
  EXPECT_EQ(sample_value(gone.body, "probe_success"), 0);
  EXPECT_EQ(sample_value(gone.body, "smtp_probes_total{result=\"resolve_error\"}"), 1);
  EXPECT_EQ(sample_value(gone.body, "probe_ip_protocol"), 0);
  const Answer v6 = get({{"target", "v4only.test.local:25"}, {"module", "v6"}});
  ASSERT_EQ(v6.status, 200) << v6.body;
  EXPECT_EQ(sample_value(v6.body, "smtp_probes_total{result=\"resolve_error\"}"), 1);
}

TEST_F(ProbeEndpointServeTest, TlsVerifiesTheNameNotTheAddress) {
  testing::TestCa ca;
  const testing::Leaf leaf = ca.issue();  // mx.test.local, no IP in it
  std::vector<testing::Step> script = {testing::send("220 mx.test.local ESMTP\r\n"),
                                       testing::expect("EHLO "),
                                       testing::send("250-mx.test.local\r\n250 STARTTLS\r\n"),
                                       testing::expect("STARTTLS"),
                                       testing::send("220 go ahead\r\n"),
                                       testing::tls_handshake(leaf.server_context),
                                       testing::expect("EHLO "),
                                       testing::send("250 mx.test.local\r\n"),
                                       testing::expect("QUIT"),
                                       testing::send("221 bye\r\n"),
                                       testing::close()};
  testing::FakeSmtpServer server(io_, script);
  dns_.set("mx.test.local", testing::DnsAnswer::addresses({"127.0.0.1"}));
  configure(kLoopbackRules +
            "modules:\n  starttls: {tls: starttls, tls_config: {ca_file: " + ca.ca_file() + "}}\n");

  const Answer by_name =
      get({{"target", target("mx.test.local", server.port())}, {"module", "starttls"}});
  ASSERT_EQ(by_name.status, 200) << by_name.body;
  EXPECT_EQ(sample_value(by_name.body, "probe_success"), 1) << by_name.body;
  EXPECT_EQ(sample_value(by_name.body, "smtp_tls_cert_verified"), 1);
  EXPECT_EQ(sample_value(by_name.body, "probe_ssl_earliest_cert_expiry"),
            static_cast<double>(leaf.not_after));
  EXPECT_TRUE(sample_value(by_name.body, "probe_tls_version_info{version=\"TLS 1.3\"}"));

  // An address with `hostname=`: connected to the address, verified against the name.
  const Answer by_address = get({{"target", target("127.0.0.1", server.port())},
                                 {"module", "starttls"},
                                 {"hostname", "mx.test.local"}});
  EXPECT_EQ(sample_value(by_address.body, "smtp_tls_cert_verified"), 1) << by_address.body;
  EXPECT_THAT(server.server_names(), ::testing::ElementsAre("mx.test.local", "mx.test.local"));
}

TEST_F(ProbeEndpointServeTest, DebugAnswersTheDialogueAndTheVerdict) {
  testing::FakeSmtpServer server(io_, testing::polite_dialogue());
  configure(kLoopbackRules);
  const Answer response = get({{"target", target("127.0.0.1", server.port())}, {"debug", "true"}});
  ASSERT_EQ(response.status, 200);
  EXPECT_THAT(response.content_type, Not(HasSubstr("version=0.0.4")));
  EXPECT_THAT(response.body, HasSubstr("Logs for the probe:"));
  EXPECT_THAT(response.body, HasSubstr("S: 220 fake.test.local ESMTP ready"));
  EXPECT_THAT(response.body, HasSubstr("C: QUIT"));
  EXPECT_THAT(response.body, HasSubstr("verdict: success"));
  EXPECT_THAT(response.body, HasSubstr("Metrics that would have been returned:"));
  EXPECT_THAT(response.body, HasSubstr("\nprobe_success 1\n"));
  EXPECT_THAT(response.body, HasSubstr("Module configuration:\nmodule: smtp\n"));
  EXPECT_THAT(response.body, HasSubstr("allowed: rule \"loopback\" admits 127.0.0.1"));
}

TEST_F(ProbeEndpointServeTest, ConcurrentRequestsAreCapped) {
  std::optional<testing::FakeSmtpServer> silent(std::in_place, io_,
                                                std::vector<testing::Step>{testing::stall()});
  testing::FakeSmtpServer polite(io_, testing::polite_dialogue());
  configure(kLoopbackRules + "  max_concurrent: 1\n");
  auto first = start({{"target", target("127.0.0.1", silent->port())}});
  ASSERT_TRUE(run_until([&] { return silent->connections() == 1; }));
  const Answer refused = get({{"target", target("127.0.0.1", polite.port())}});
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.body, "too many /probe requests at once (probe.max_concurrent is 1)\n");
  EXPECT_EQ(polite.connections(), 0);

  silent.reset();  // the first probe ends: connection closed
  ASSERT_TRUE(run_until([&] { return first->has_value(); }));
  EXPECT_EQ(sample_value(std::string((*first)->body.view()),
                         "smtp_probes_total{result=\"connection_closed\"}"),
            1);
  EXPECT_EQ(get({{"target", target("127.0.0.1", polite.port())}}).status, 200);
}

TEST_F(ProbeEndpointServeTest, BadRequestsAre400AndOtherMethods405) {
  configure(kLoopbackRules);
  EXPECT_EQ(get({{"target", "127.0.0.1:25"}, {"module", "nope"}}).status, 400);
  EXPECT_EQ(get({}).status, 400);
  const Answer post = get({{"target", "127.0.0.1:25"}}, {}, "POST");
  EXPECT_EQ(post.status, 405);
  ASSERT_TRUE(post.headers.contains("Allow"));
  EXPECT_EQ(post.headers.at("Allow"), "GET");
}

// Through the real HTTP server: the header reaches the endpoint, and raw query strings of every
// shape (bad escapes, NULs, repeated and empty keys) get an answer, never a crash or a 500.
asio::awaitable<int> http_get(tcp::endpoint server, std::string target, std::string timeout,
                              std::string* body) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(kHangGuard);
  co_await stream.async_connect(server, asio::use_awaitable);
  beast::http::request<beast::http::empty_body> request{beast::http::verb::get, target, 11};
  request.set(beast::http::field::host, "127.0.0.1");
  if (!timeout.empty()) request.set("X-Prometheus-Scrape-Timeout-Seconds", timeout);
  co_await beast::http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  beast::http::response<beast::http::string_body> response;
  co_await beast::http::async_read(stream, buffer, response, asio::use_awaitable);
  *body = response.body();
  co_return response.result_int();
}

TEST_F(ProbeEndpointServeTest, ThroughTheHttpServer) {
  testing::FakeSmtpServer server(io_, testing::polite_dialogue());
  configure(kLoopbackRules);
  HttpServer http(io_.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  http.handle("/probe", {beast::http::verb::get},
              [this](const HttpRequest& request) { return endpoint_.serve(request); });
  http.start();
  const auto fetch = [&](std::string target, std::string timeout = "") {
    std::optional<int> status;
    std::string body;
    asio::co_spawn(io_,
                   http_get(http.local_endpoint(), std::move(target), std::move(timeout), &body),
                   [&](std::exception_ptr error, int code) { status = error ? -1 : code; });
    EXPECT_TRUE(run_until([&] { return status.has_value(); }));
    return std::make_pair(status.value_or(0), body);
  };
  const std::string ok = "/probe?target=127.0.0.1%3A" + std::to_string(server.port());
  EXPECT_EQ(fetch(ok, "5").first, 200);
  const auto [status, body] = fetch(ok, "abc");
  EXPECT_EQ(status, 400);
  EXPECT_THAT(body, HasSubstr("invalid X-Prometheus-Scrape-Timeout-Seconds \"abc\""));

  std::mt19937 random(7);
  const std::string alphabet = "%0aAz:=&?[]._-+/\\\"'#";
  for (int i = 0; i < 300; ++i) {
    std::string query;
    const int length = static_cast<int>(random() % 40);
    for (int c = 0; c < length; ++c) query += alphabet[random() % alphabet.size()];
    const int code = fetch("/probe?" + query).first;
    EXPECT_TRUE(code == 400 || code == 403) << query << " -> " << code;
  }
  http.stop();
}

}  // namespace
}  // namespace smtp
