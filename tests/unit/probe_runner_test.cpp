// The runner on a real io_context: probes are a stand-in function (they would need servers), the
// MX lookups go to the scripted DNS server.
#include "exporter/probe_runner.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "exporter/log.h"
#include "tests/support/capture_stderr.h"
#include "tests/support/fake_dns_server.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using smtp::testing::DnsAnswer;
using smtp::testing::FakeDnsServer;

// Generous: the loop ends as soon as what a test waits for has happened.
constexpr auto kDeadline = 20s;

TargetConfig address_target(std::string name, std::chrono::milliseconds interval = 20ms) {
  TargetConfig target;
  target.name = std::move(name);
  target.host = "192.0.2.1";
  target.port = 25;
  target.interval = interval;
  target.timeout = 10ms;
  return target;
}

/// Runs `io` until `done()` holds (checked every millisecond) or the deadline passes.
bool run_until(asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_for(1ms);
  }
  return true;
}

asio::awaitable<ProbeResult> succeed(const ProbeTarget&, ProbeOptions) {
  ProbeResult result;
  result.greeting_code = 220;
  result.quit_code = 221;
  co_return result;
}

class ProbeRunnerTest : public ::testing::Test {
 protected:
  ProbeRunnerTest() { log::configure(log::Level::kInfo, log::Format::kLogfmt); }

  const TargetSeries* series_of(const ProbeRunner& runner, const std::string& key) {
    const auto& endpoints = runner.targets().endpoints();
    const auto it = endpoints.find(key);
    return it == endpoints.end() ? nullptr : &*it->second->series;
  }

  asio::io_context io_;
  ExporterMetrics metrics_;
};

TEST_F(ProbeRunnerTest, ProbesEveryEndpointAndRecordsItsResult) {
  std::map<std::string, int> calls;
  ProbeRunner runner(
      io_.get_executor(), metrics_,
      {.max_concurrency = 4, .probe = [&calls](const ProbeTarget& target, ProbeOptions options) {
         ++calls[target.host + ":" + std::to_string(target.port)];
         return succeed(target, std::move(options));
       }});
  Config config;
  config.targets = {address_target("a"), address_target("b")};
  config.targets[1].host = "192.0.2.2";
  const ApplySummary summary = runner.apply(config);
  EXPECT_EQ(summary.targets, 2u);
  EXPECT_EQ(summary.endpoints_added, 2u);
  runner.start();
  ASSERT_TRUE(run_until(io_, [&] { return calls.size() == 2 && calls["192.0.2.1:25"] >= 2; }));
  const TargetSeries* a = series_of(runner, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->probed);
  EXPECT_TRUE(a->success);
  EXPECT_GE(a->probes_by_result[0], 1u);
  const SeriesSnapshot snapshot = runner.snapshot();
  ASSERT_EQ(snapshot.series.size(), 2u);
  EXPECT_EQ(snapshot.series[0]->labels, "target=\"a\"");
}

TEST_F(ProbeRunnerTest, AnExceptionInAProbeFreesItsSlotAndIsLogged) {
  // Before the slot guard, a throwing probe left its schedule slot taken: with one slot, no
  // target was ever probed again, and nothing said why.
  int calls = 0;
  ProbeRunner runner(io_.get_executor(), metrics_,
                     {.max_concurrency = 1,
                      .probe = [&calls](const ProbeTarget& target,
                                        ProbeOptions options) -> asio::awaitable<ProbeResult> {
                        if (++calls == 1) throw std::runtime_error("injected failure");
                        return succeed(target, std::move(options));
                      }});
  Config config;
  config.targets = {address_target("flaky")};
  runner.apply(config);
  runner.start();
  const std::string log = smtp::testing::capture_stderr(
      [&] { ASSERT_TRUE(run_until(io_, [&] { return calls >= 3; })); });
  EXPECT_NE(log.find("internal error"), std::string::npos) << log;
  EXPECT_NE(log.find("target=flaky"), std::string::npos) << log;
  EXPECT_NE(log.find("injected failure"), std::string::npos) << log;
  const TargetSeries* flaky = series_of(runner, "flaky");
  ASSERT_NE(flaky, nullptr);
  EXPECT_TRUE(flaky->success);  // a later probe ran and was recorded
}

TEST_F(ProbeRunnerTest, AFailedProbeLogNamesTheEndpointAndItsAddress) {
  ProbeRunner runner(
      io_.get_executor(), metrics_,
      {.max_concurrency = 1,
       .probe = [](const ProbeTarget&, ProbeOptions) -> asio::awaitable<ProbeResult> {
         ProbeResult result;
         result.failure = FailureReason::kLineTooLong;
         result.failed_phase = Phase::kGreeting;
         result.error_detail = "greeting: a reply line over 2048 bytes";
         result.peer = "192.0.2.1:25";
         co_return result;
       }});
  Config config;
  config.targets = {address_target("mx1")};
  runner.apply(config);
  runner.start();
  const std::string log = smtp::testing::capture_stderr([&] {
    ASSERT_TRUE(run_until(io_, [&] {
      const TargetSeries* s = series_of(runner, "mx1");
      return s != nullptr && s->probed;
    }));
  });
  EXPECT_NE(log.find("target=mx1 endpoint=192.0.2.1:25 peer=192.0.2.1:25 reason=line_too_long "
                     "phase=greeting err=\"greeting: a reply line over 2048 bytes\""),
            std::string::npos)
      << log;
}

TEST_F(ProbeRunnerTest, AnOverloadedExporterLogsOnceAMinuteNotOncePerProbe) {
  int calls = 0;
  ProbeRunner runner(
      io_.get_executor(), metrics_,
      {.max_concurrency = 2,
       .probe = [&calls](const ProbeTarget&, ProbeOptions) -> asio::awaitable<ProbeResult> {
         ++calls;
         ProbeResult result;
         result.failure = FailureReason::kExporterOverloaded;
         result.failed_phase = Phase::kConnect;
         result.error_detail = "connect: no socket";
         co_return result;
       }});
  Config config;
  config.targets = {address_target("a"), address_target("b")};
  runner.apply(config);
  runner.start();
  const std::string log = smtp::testing::capture_stderr(
      [&] { ASSERT_TRUE(run_until(io_, [&] { return calls >= 10; })); });
  std::size_t lines = 0;
  for (auto at = log.find("open-file limit is spent"); at != std::string::npos;
       at = log.find("open-file limit is spent", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << log;
  EXPECT_EQ(log.find("msg=\"probe failed\""), std::string::npos) << log;
  const TargetSeries* a = series_of(runner, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_GE(a->probes_by_result[static_cast<std::size_t>(FailureReason::kExporterOverloaded)], 1u);
}

TEST_F(ProbeRunnerTest, AReloadDuringASlowLookupIsNotUndoneByIt) {
  // The old config's lookup answers late with mx-old; the reload's answer (mx-new) must stay.
  FakeDnsServer dns;
  dns.set("example.test",
          DnsAnswer::late(DnsAnswer::mx_records({{10, "mx-old.example.test"}}), 800ms));
  ProbeRunner runner(io_.get_executor(), metrics_, {.max_concurrency = 8, .probe = succeed});
  TargetConfig target;
  target.name = "example";
  target.mx_domain = "example.test";
  target.interval = 1h;  // no probes needed: the endpoints are what this test watches
  target.timeout = 5s;
  Config config;
  config.targets = {target};
  config.dns.servers = {dns.address()};
  runner.apply(config);
  runner.start();
  // The first lookup is in flight (its answer is 800 ms away) when the reload comes.
  ASSERT_TRUE(run_until(io_, [&] { return dns.query_count() >= 1; }));
  dns.set("example.test", DnsAnswer::mx_records({{10, "mx-new.example.test"}}));
  runner.apply(config);

  const auto mx_hosts = [&] {
    std::vector<std::string> hosts;
    for (const auto& [key, endpoint] : runner.targets().endpoints()) {
      hosts.push_back(endpoint->id.mx_host);
    }
    return hosts;
  };
  ASSERT_TRUE(run_until(
      io_, [&] { return mx_hosts() == std::vector<std::string>{"mx-new.example.test"}; }));
  // Both lookups have been answered by now: the old answer came first (the new lookup waited
  // for it, one refresh of a group at a time) and was dropped.
  EXPECT_EQ(dns.query_count(), 2u);
  io_.run_for(100ms);
  EXPECT_EQ(mx_hosts(), std::vector<std::string>{"mx-new.example.test"});
}

TEST_F(ProbeRunnerTest, AnEndpointRemovedWhileItsProbeRunsDropsTheResult) {
  bool probing = false;
  bool release = false;
  ProbeRunner runner(io_.get_executor(), metrics_,
                     {.max_concurrency = 1,
                      .probe = [&](const ProbeTarget& target,
                                   ProbeOptions options) -> asio::awaitable<ProbeResult> {
                        probing = true;
                        asio::steady_timer wait(co_await asio::this_coro::executor);
                        while (!release) {
                          wait.expires_after(1ms);
                          co_await wait.async_wait(asio::use_awaitable);
                        }
                        co_return co_await succeed(target, std::move(options));
                      }});
  Config config;
  config.targets = {address_target("leaving")};
  const ProbeRunner& view = runner;
  runner.apply(config);
  runner.start();
  ASSERT_TRUE(run_until(io_, [&] { return probing; }));
  const std::shared_ptr<Endpoint> leaving = view.targets().endpoints().at("leaving");
  runner.apply(Config{});
  release = true;
  ASSERT_TRUE(run_until(io_, [&] { return view.schedule().running() == 0; }));
  EXPECT_TRUE(leaving->removed);
  EXPECT_FALSE(leaving->series->probed);
  EXPECT_TRUE(runner.snapshot().series.empty());
}

}  // namespace
}  // namespace smtp
