// The c-ares Resolver against a scripted DNS server on loopback: addresses, MX records, every
// failure a server can produce, deadlines, many lookups on one channel, and destruction with
// lookups in flight.
#include "probes/resolve.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>

#include "tests/support/fake_dns_server.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::DnsAnswer;
using testing::FakeDnsServer;

class ResolveTest : public ::testing::Test {
 protected:
  ResolverOptions options(std::chrono::milliseconds attempt = 1000ms, int tries = 3) {
    ResolverOptions o;
    o.servers = {dns_.address()};
    o.attempt_timeout = attempt;
    o.tries = tries;
    return o;
  }

  /// Runs `lookup` as a coroutine on io_ and returns its result.
  template <class T>
  T run(std::function<asio::awaitable<T>()> lookup) {
    std::optional<T> result;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { result = co_await lookup(); }, asio::detached);
    run_until([&] { return result.has_value(); });
    return std::move(result).value_or(T{});
  }

  ResolveResult host(Resolver& resolver, const std::string& name,
                     std::chrono::milliseconds timeout = 5s) {
    Clock::time_point deadline = Clock::now() + timeout;
    return run<ResolveResult>([&] { return resolver.resolve_host(name, 25, deadline); });
  }

  MxResult mx(Resolver& resolver, const std::string& domain,
              std::chrono::milliseconds timeout = 5s) {
    Clock::time_point deadline = Clock::now() + timeout;
    return run<MxResult>([&] { return resolver.resolve_mx(domain, deadline); });
  }

  /// Runs io_ until `done` holds (which may depend on the DNS server's thread, hence the
  /// short waits). Running out of work first means a result was lost.
  template <class Predicate>
  void run_until(Predicate done) {
    io_.restart();
    while (!done()) {
      io_.run_one_for(20ms);
      if (!done() && io_.stopped()) {
        ADD_FAILURE() << "io_context ran out of work: a lookup never completed";
        return;
      }
    }
  }

  FakeDnsServer dns_;
  asio::io_context io_;
};

std::vector<std::string> addresses(const ResolveResult& r) {
  std::vector<std::string> out;
  for (const auto& endpoint : r.endpoints) out.push_back(endpoint.address().to_string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(ResolveTest, ErrorMessages) {
  EXPECT_EQ(make_error_code(DnsError::kNotFound).message(), "host not found");
  EXPECT_EQ(make_error_code(DnsError::kNoData).message(), "no records of the requested type");
  boost::system::error_code ec = DnsError::kTimeout;
  EXPECT_EQ(ec.category().name(), std::string("dns"));
  EXPECT_EQ(ec, boost::system::errc::timed_out);
  EXPECT_NE(ec, DnsError::kNotFound);
}

TEST_F(ResolveTest, LiteralsNeedNoServer) {
  Resolver resolver(io_.get_executor(), options());
  ResolveResult v4 = host(resolver, "192.0.2.7");
  ASSERT_EQ(v4.endpoints.size(), 1u);
  EXPECT_EQ(v4.endpoints[0], tcp::endpoint(asio::ip::make_address("192.0.2.7"), 25));
  ResolveResult v6 = host(resolver, "2001:db8::25");
  ASSERT_EQ(v6.endpoints.size(), 1u);
  EXPECT_EQ(v6.endpoints[0].address().to_string(), "2001:db8::25");
  EXPECT_FALSE(v4.error);
  EXPECT_EQ(dns_.query_count(), 0u);

  // The system-resolver path answers literals without a lookup too.
  std::optional<ResolveResult> free_result;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        free_result = co_await resolve_host("127.0.0.1", 2525, Clock::now() + 1s);
      },
      asio::detached);
  run_until([&] { return free_result.has_value(); });
  ASSERT_EQ(free_result->endpoints.size(), 1u);
  EXPECT_EQ(free_result->endpoints[0].port(), 2525);
}

TEST_F(ResolveTest, NameResolvesToTheServersAddresses) {
  dns_.set("mx1.test.example", DnsAnswer::addresses({"127.0.0.1", "127.0.0.2"}, {"::1"}));
  Resolver resolver(io_.get_executor(), options());
  ResolveResult r = host(resolver, "mx1.test.example");
  EXPECT_FALSE(r.error) << r.error.message();
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(addresses(r), (std::vector<std::string>{"127.0.0.1", "127.0.0.2", "::1"}));
  for (const auto& endpoint : r.endpoints) EXPECT_EQ(endpoint.port(), 25);
  // Both families were asked for, of that name only (no search list with explicit servers).
  auto questions = dns_.questions();
  std::sort(questions.begin(), questions.end());
  EXPECT_EQ(questions, (std::vector<std::pair<std::string, std::uint16_t>>{
                           {"mx1.test.example", FakeDnsServer::kTypeA},
                           {"mx1.test.example", FakeDnsServer::kTypeAaaa}}));
  EXPECT_EQ(resolver.queries_in_flight(), 0u);
}

TEST_F(ResolveTest, OnlyIpv6) {
  dns_.set("v6only.test.example", DnsAnswer::addresses({}, {"::1"}));
  Resolver resolver(io_.get_executor(), options());
  ResolveResult r = host(resolver, "v6only.test.example");
  EXPECT_EQ(addresses(r), std::vector<std::string>{"::1"});
}

TEST_F(ResolveTest, NxDomainIsAnErrorNotATimeout) {
  dns_.set("gone.test.example", DnsAnswer::nxdomain());
  Resolver resolver(io_.get_executor(), options());
  ResolveResult r = host(resolver, "gone.test.example");
  EXPECT_TRUE(r.endpoints.empty());
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.error, DnsError::kNotFound);
  EXPECT_EQ(r.error.message(), "host not found");
}

TEST_F(ResolveTest, NameWithoutAddressesIsNoData) {
  dns_.set("empty.test.example", DnsAnswer::no_data());
  Resolver resolver(io_.get_executor(), options());
  ResolveResult r = host(resolver, "empty.test.example");
  EXPECT_TRUE(r.endpoints.empty());
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.error, DnsError::kNoData);
}

TEST_F(ResolveTest, ServfailIsAnError) {
  dns_.set("broken.test.example", DnsAnswer::servfail());
  Resolver resolver(io_.get_executor(), options(1000ms, 2));
  ResolveResult r = host(resolver, "broken.test.example");
  EXPECT_TRUE(r.endpoints.empty());
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.error, DnsError::kServerFailure);
}

TEST_F(ResolveTest, ServfailFailsOverToTheNextServer) {
  FakeDnsServer second;
  dns_.set("mx1.test.example", DnsAnswer::servfail());
  second.set("mx1.test.example", DnsAnswer::addresses({"127.0.0.9"}));
  ResolverOptions o = options();
  o.servers = {dns_.address(), second.address()};
  Resolver resolver(io_.get_executor(), o);
  ResolveResult r = host(resolver, "mx1.test.example");
  EXPECT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(addresses(r), std::vector<std::string>{"127.0.0.9"});

  // When every server fails, it is an error, not a timeout (c-ares 1.18 says ECONNREFUSED).
  second.set("mx1.test.example", DnsAnswer::servfail());
  ResolveResult failed = host(resolver, "mx1.test.example");
  EXPECT_TRUE(failed.endpoints.empty());
  EXPECT_FALSE(failed.timed_out);
  EXPECT_TRUE(failed.error == DnsError::kServerFailure ||
              failed.error == DnsError::kConnectionRefused)
      << failed.error.message();
}

TEST_F(ResolveTest, SilenceTimesOutAtTheDeadlineNotCaresSchedule) {
  dns_.set("silent.test.example", DnsAnswer::silence());
  // c-ares alone would wait a minute; the lookup's deadline must end it long before.
  Resolver resolver(io_.get_executor(), options(60s, 1));
  Clock::time_point began = Clock::now();
  ResolveResult r = host(resolver, "silent.test.example", 200ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.error, DnsError::kTimeout);
  EXPECT_TRUE(r.endpoints.empty());
  EXPECT_GE(Clock::now() - began, 200ms);
  // The deadline, not c-ares, ended it: the query is still c-ares'.
  EXPECT_EQ(resolver.queries_in_flight(), 1u);
}

TEST_F(ResolveTest, AbandonedQueryIsReleasedWhenCaresGivesUp) {
  dns_.set("silent.test.example", DnsAnswer::silence());
  Resolver resolver(io_.get_executor(), options(300ms, 1));
  ResolveResult r = host(resolver, "silent.test.example", 50ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(resolver.queries_in_flight(), 1u);
  run_until([&] { return resolver.queries_in_flight() == 0; });
}

TEST_F(ResolveTest, AnswerAfterTheDeadlineIsDropped) {
  dns_.set("slow.test.example",
           DnsAnswer::late(DnsAnswer::addresses({"127.0.0.1"}), std::chrono::milliseconds(150)));
  Resolver resolver(io_.get_executor(), options(60s, 1));
  std::optional<ResolveResult> first;
  int deliveries = 0;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        ResolveResult r =
            co_await resolver.resolve_host("slow.test.example", 25, Clock::now() + 30ms);
        first = std::move(r);
        ++deliveries;
      },
      asio::detached);
  run_until([&] { return first.has_value(); });
  EXPECT_TRUE(first->timed_out);
  EXPECT_TRUE(first->endpoints.empty());
  // The late answer ends the query in c-ares; the coroutine that asked is long finished.
  run_until([&] { return resolver.queries_in_flight() == 0; });
  io_.restart();
  io_.poll();
  EXPECT_EQ(deliveries, 1);
  // The channel is still good for the next lookup.
  dns_.set("slow.test.example", DnsAnswer::addresses({"127.0.0.3"}));
  EXPECT_EQ(addresses(host(resolver, "slow.test.example")), std::vector<std::string>{"127.0.0.3"});
}

TEST_F(ResolveTest, CaresGivingUpBeforeTheDeadlineIsATimeout) {
  dns_.set("silent.test.example", DnsAnswer::silence());
  Resolver resolver(io_.get_executor(), options(50ms, 3));
  ResolveResult r = host(resolver, "silent.test.example", 30s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.error, DnsError::kTimeout);
  EXPECT_EQ(resolver.queries_in_flight(), 0u);
  // c-ares retried on its own schedule (driven by the resolver's timer): 3 tries of A and AAAA.
  EXPECT_EQ(dns_.query_count(), 6u);
}

TEST_F(ResolveTest, DeadlineAlreadyPassedSendsNothing) {
  dns_.set("mx1.test.example", DnsAnswer::addresses({"127.0.0.1"}));
  Resolver resolver(io_.get_executor(), options());
  Clock::time_point past = Clock::now() - 1s;
  ResolveResult r =
      run<ResolveResult>([&] { return resolver.resolve_host("mx1.test.example", 25, past); });
  EXPECT_TRUE(r.timed_out);
  MxResult m = run<MxResult>([&] { return resolver.resolve_mx("mx1.test.example", past); });
  EXPECT_TRUE(m.timed_out);
  EXPECT_EQ(dns_.query_count(), 0u);
}

TEST_F(ResolveTest, MxRecordsSortedByPreferenceThenName) {
  dns_.set("example.test", DnsAnswer::mx_records({{20, "backup.example.test"},
                                                  {10, "Zulu.example.test."},
                                                  {10, "alpha.example.test"}}));
  Resolver resolver(io_.get_executor(), options());
  MxResult r = mx(resolver, "example.test");
  EXPECT_FALSE(r.error) << r.error.message();
  EXPECT_FALSE(r.null_mx);
  EXPECT_FALSE(r.no_records);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.records, (std::vector<MxRecord>{{10, "alpha.example.test"},
                                              {10, "zulu.example.test"},
                                              {20, "backup.example.test"}}));
  EXPECT_EQ(dns_.questions(), (std::vector<std::pair<std::string, std::uint16_t>>{
                                  {"example.test", FakeDnsServer::kTypeMx}}));
}

TEST_F(ResolveTest, TwoMxOfDifferentPreference) {
  dns_.set("two.test", DnsAnswer::mx_records({{50, "mx2.two.test"}, {5, "mx1.two.test"}}));
  Resolver resolver(io_.get_executor(), options());
  MxResult r = mx(resolver, "two.test");
  EXPECT_EQ(r.records, (std::vector<MxRecord>{{5, "mx1.two.test"}, {50, "mx2.two.test"}}));
}

TEST_F(ResolveTest, NullMx) {
  dns_.set("nomail.test", DnsAnswer::mx_records({{0, ""}}));
  Resolver resolver(io_.get_executor(), options());
  MxResult r = mx(resolver, "nomail.test");
  EXPECT_TRUE(r.null_mx);
  EXPECT_TRUE(r.records.empty());
  EXPECT_FALSE(r.no_records);
  EXPECT_FALSE(r.error);
}

TEST_F(ResolveTest, RootMixedWithHostsIsNotNullMx) {
  dns_.set("confused.test", DnsAnswer::mx_records({{0, ""}, {10, "mx.confused.test"}}));
  Resolver resolver(io_.get_executor(), options());
  MxResult r = mx(resolver, "confused.test");
  EXPECT_FALSE(r.null_mx);
  EXPECT_EQ(r.records, (std::vector<MxRecord>{{10, "mx.confused.test"}}));
}

TEST_F(ResolveTest, DomainWithoutMx) {
  dns_.set("implicit.test", DnsAnswer::addresses({"127.0.0.1"}));  // an A record, no MX
  Resolver resolver(io_.get_executor(), options());
  MxResult r = mx(resolver, "implicit.test");
  EXPECT_TRUE(r.no_records);
  EXPECT_FALSE(r.null_mx);
  EXPECT_TRUE(r.records.empty());
  EXPECT_FALSE(r.error);
}

TEST_F(ResolveTest, MxFailures) {
  dns_.set("gone.test", DnsAnswer::nxdomain());
  dns_.set("broken.test", DnsAnswer::servfail());
  dns_.set("silent.test", DnsAnswer::silence());
  Resolver resolver(io_.get_executor(), options(60s, 1));
  MxResult gone = mx(resolver, "gone.test");
  EXPECT_EQ(gone.error, DnsError::kNotFound);
  EXPECT_FALSE(gone.no_records);
  EXPECT_FALSE(gone.timed_out);
  MxResult broken = mx(resolver, "broken.test");
  EXPECT_EQ(broken.error, DnsError::kServerFailure);
  MxResult silent = mx(resolver, "silent.test", 100ms);
  EXPECT_TRUE(silent.timed_out);
  EXPECT_EQ(silent.error, DnsError::kTimeout);
}

TEST_F(ResolveTest, ManyConcurrentLookupsOnOneChannel) {
  constexpr int kLookups = 400;
  for (int i = 0; i < kLookups; ++i) {
    std::string v4 = "127.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    dns_.set("host" + std::to_string(i) + ".test", DnsAnswer::addresses({v4}));
    dns_.set("mail" + std::to_string(i) + ".test",
             DnsAnswer::mx_records(
                 {{static_cast<std::uint16_t>(i), "mx.host" + std::to_string(i) + ".test"}}));
  }
  dns_.set("silent.test", DnsAnswer::silence());
  // Short attempts: if the kernel drops a datagram under this burst, c-ares' retry recovers it.
  Resolver resolver(io_.get_executor(), options(250ms, 8));
  Clock::time_point deadline = Clock::now() + 30s;
  std::vector<std::optional<ResolveResult>> hosts(kLookups);
  std::vector<std::optional<MxResult>> mxs(kLookups);
  std::optional<ResolveResult> silent;
  int done = 0;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        silent = co_await resolver.resolve_host("silent.test", 25, Clock::now() + 300ms);
        ++done;
      },
      asio::detached);
  for (int i = 0; i < kLookups; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          hosts[i] =
              co_await resolver.resolve_host("host" + std::to_string(i) + ".test", 25, deadline);
          ++done;
        },
        asio::detached);
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          mxs[i] = co_await resolver.resolve_mx("mail" + std::to_string(i) + ".test", deadline);
          ++done;
        },
        asio::detached);
  }
  run_until([&] { return done == 2 * kLookups + 1; });
  for (int i = 0; i < kLookups; ++i) {
    std::string v4 = "127.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    ASSERT_TRUE(hosts[i].has_value());
    EXPECT_EQ(addresses(*hosts[i]), std::vector<std::string>{v4}) << i;
    ASSERT_TRUE(mxs[i].has_value());
    EXPECT_EQ(mxs[i]->records, (std::vector<MxRecord>{{static_cast<std::uint16_t>(i),
                                                       "mx.host" + std::to_string(i) + ".test"}}))
        << i;
  }
  // The silent one timed out on its own deadline while the others were answered.
  EXPECT_TRUE(silent->timed_out);
}

TEST_F(ResolveTest, DestroyingTheResolverWithLookupsInFlight) {
  dns_.set("silent.test", DnsAnswer::silence());
  auto resolver = std::make_unique<Resolver>(io_.get_executor(), options(60s, 1));
  constexpr int kWaiting = 20;
  constexpr int kAbandoned = 5;
  std::vector<ResolveResult> hosts;
  std::vector<MxResult> mxs;
  std::vector<ResolveResult> abandoned;
  int finished = 0;
  for (int i = 0; i < kWaiting; ++i) {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          ResolveResult r = co_await resolver->resolve_host("silent.test", 25, Clock::now() + 60s);
          hosts.push_back(std::move(r));
          ++finished;
        },
        asio::detached);
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          MxResult r = co_await resolver->resolve_mx("silent.test", Clock::now() + 60s);
          mxs.push_back(std::move(r));
          ++finished;
        },
        asio::detached);
  }
  for (int i = 0; i < kAbandoned; ++i) {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          ResolveResult r = co_await resolver->resolve_host("silent.test", 25, Clock::now() + 1ms);
          abandoned.push_back(std::move(r));
          ++finished;
        },
        asio::detached);
  }
  // Wait until the short ones have timed out and the server has seen the queries.
  run_until([&] { return finished == kAbandoned && dns_.query_count() >= 2 * kWaiting; });
  EXPECT_EQ(resolver->queries_in_flight(), static_cast<std::size_t>(2 * kWaiting + kAbandoned));
  resolver.reset();
  run_until([&] { return finished == 2 * kWaiting + kAbandoned; });
  for (const auto& r : hosts) {
    EXPECT_EQ(r.error, DnsError::kDestroyed);
    EXPECT_FALSE(r.timed_out);
  }
  for (const auto& r : mxs) EXPECT_EQ(r.error, DnsError::kDestroyed);
  for (const auto& r : abandoned) EXPECT_TRUE(r.timed_out);  // answered once, by the deadline
  EXPECT_EQ(hosts.size() + mxs.size() + abandoned.size(),
            static_cast<std::size_t>(2 * kWaiting + kAbandoned));
  // Whatever the aborted waits left behind runs without the Resolver.
  io_.restart();
  io_.run();
}

TEST_F(ResolveTest, DestroyingTheResolverWithAnAnswerPosted) {
  dns_.set("mx1.test.example", DnsAnswer::addresses({"127.0.0.1"}));
  auto resolver = std::make_unique<Resolver>(io_.get_executor(), options());
  std::optional<ResolveResult> r;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        r = co_await resolver->resolve_host("mx1.test.example", 25, Clock::now() + 5s);
        resolver.reset();  // the coroutine itself drops the resolver once answered
      },
      asio::detached);
  run_until([&] { return r.has_value(); });
  EXPECT_EQ(addresses(*r), std::vector<std::string>{"127.0.0.1"});
  io_.restart();
  io_.run();
}

TEST_F(ResolveTest, MalformedServersAreRefused) {
  for (const char* bad : {"nonsense", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x", "[::1",
                          "[::1]x", "mx.example.com:53"}) {
    ResolverOptions o;
    o.servers = {bad};
    EXPECT_THROW(Resolver(io_.get_executor(), o), std::invalid_argument) << bad;
  }
  for (const char* good : {"127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53", "[::1]"}) {
    ResolverOptions o;
    o.servers = {good};
    EXPECT_NO_THROW(Resolver(io_.get_executor(), o)) << good;
  }
}

TEST_F(ResolveTest, ClosedDnsPortIsConnectionRefused) {
  // A UDP port with nobody behind it: the kernel answers ICMP port unreachable.
  asio::ip::udp::socket closed(io_,
                               asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::string address = "127.0.0.1:" + std::to_string(closed.local_endpoint().port());
  closed.close();
  ResolverOptions o;
  o.servers = {address};
  o.attempt_timeout = 100ms;
  o.tries = 2;
  Resolver resolver(io_.get_executor(), o);
  ResolveResult r = host(resolver, "mx1.test.example", 10s);
  EXPECT_TRUE(r.endpoints.empty());
  EXPECT_EQ(r.error, DnsError::kConnectionRefused);
  EXPECT_FALSE(r.timed_out);
}

}  // namespace
}  // namespace smtp
