// The target set with made-up configs and DNS answers: reloads, lookups that race a reload,
// MX fan-out and its cap.
#include "exporter/target_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace smtp {
namespace {

using namespace std::chrono_literals;

TargetConfig address_target(std::string name, std::string host = "192.0.2.1") {
  TargetConfig target;
  target.name = std::move(name);
  target.host = std::move(host);
  target.port = 25;
  target.interval = 30s;
  return target;
}

TargetConfig mx_target(std::string name, std::string domain = "example.com") {
  TargetConfig target;
  target.name = std::move(name);
  target.mx_domain = std::move(domain);
  return target;
}

MxResult mx_answer(std::vector<std::pair<std::uint16_t, std::string>> records) {
  MxResult found;
  for (auto& [preference, host] : records) found.records.push_back({preference, host});
  return found;
}

std::vector<std::string> keys(const TargetSet& set) {
  std::vector<std::string> out;
  for (const auto& [key, endpoint] : set.endpoints()) out.push_back(key);
  return out;
}

std::vector<std::string> mx_hosts_of(const TargetSet& set, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& [key, endpoint] : set.endpoints()) {
    if (endpoint->config->name == name) out.push_back(endpoint->id.mx_host);
  }
  return out;
}

/// A lookup of `group`'s MX records that answered `records`.
LookupOutcome mx_outcome(const LookupGroup& group,
                         std::vector<std::pair<std::uint16_t, std::string>> records) {
  return mx_lookup_outcome(*group.config, mx_answer(std::move(records)));
}

TEST(TargetSetTest, AddressTargetsBecomeEndpointsAndMxTargetsGroups) {
  TargetSet set;
  const TargetSetChanges changes =
      set.apply_config({address_target("b"), address_target("a"), mx_target("example")});
  EXPECT_EQ(changes.added.size(), 2u);
  EXPECT_EQ(changes.groups_added.size(), 1u);
  EXPECT_TRUE(changes.removed.empty());
  EXPECT_EQ(set.configured_targets(), 3u);
  EXPECT_EQ(keys(set), (std::vector<std::string>{"a", "b"}));  // ordered, whatever the config order
  ASSERT_EQ(set.groups().size(), 1u);
  EXPECT_EQ(set.groups().at("example")->mx_series.labels, "target=\"example\"");
  EXPECT_EQ(set.endpoints().at("a")->series->labels, "target=\"a\"");
}

TEST(TargetSetTest, AReloadKeepsTheSeriesOfEndpointsThatStay) {
  TargetSet set;
  set.apply_config({address_target("stays"), address_target("goes")});
  const std::shared_ptr<Endpoint> stays = set.endpoints().at("stays");
  const std::shared_ptr<Endpoint> goes = set.endpoints().at("goes");
  stays->series.edit().probes_by_result[0] = 7;

  TargetConfig changed = address_target("stays");
  changed.interval = 10s;
  const TargetSetChanges changes = set.apply_config({changed, address_target("new")});

  EXPECT_EQ(set.endpoints().at("stays"), stays);  // the same endpoint, not a copy
  EXPECT_EQ(stays->series->probes_by_result[0], 7u);
  EXPECT_EQ(stays->config->interval, 10s);
  ASSERT_EQ(changes.rescheduled.size(), 1u);
  EXPECT_EQ(changes.rescheduled[0], stays);
  ASSERT_EQ(changes.removed.size(), 1u);
  EXPECT_EQ(changes.removed[0], goes);
  EXPECT_TRUE(goes->removed);  // a probe still in flight drops its result
  ASSERT_EQ(changes.added.size(), 1u);
  EXPECT_EQ(changes.added[0]->key, "new");
  EXPECT_EQ(keys(set), (std::vector<std::string>{"new", "stays"}));
}

TEST(TargetSetTest, LookupsAddAndRemoveEndpoints) {
  TargetSet set;
  set.apply_config({mx_target("example")});
  LookupGroup& group = *set.groups().at("example");
  const std::uint64_t generation = group.generation;

  auto first = set.apply_lookup(
      group, generation, mx_outcome(group, {{10, "a.example.com"}, {20, "b.example.com"}}), 0);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->added.size(), 2u);
  EXPECT_EQ(mx_hosts_of(set, "example"),
            (std::vector<std::string>{"a.example.com", "b.example.com"}));
  const std::shared_ptr<Endpoint> b = set.endpoints().at("example\nb.example.com\n");
  EXPECT_EQ(b->series->labels, "target=\"example\",mx=\"b.example.com\"");
  EXPECT_EQ(b->probe->host, "b.example.com");
  b->series.edit().probes_by_result[0] = 3;

  auto second = set.apply_lookup(
      group, generation, mx_outcome(group, {{10, "b.example.com"}, {20, "c.example.com"}}), 0);
  ASSERT_TRUE(second.has_value());
  ASSERT_EQ(second->added.size(), 1u);
  EXPECT_EQ(second->added[0]->id.mx_host, "c.example.com");
  ASSERT_EQ(second->removed.size(), 1u);
  EXPECT_EQ(second->removed[0]->id.mx_host, "a.example.com");
  EXPECT_EQ(set.endpoints().at("example\nb.example.com\n"), b);  // kept with its counters
  EXPECT_EQ(b->series->probes_by_result[0], 3u);
  EXPECT_EQ(group.mx_series.hosts.size(), 2u);
  EXPECT_TRUE(group.mx_series.looked_up);

  auto same = set.apply_lookup(
      group, generation, mx_outcome(group, {{10, "b.example.com"}, {20, "c.example.com"}}), 0);
  ASSERT_TRUE(same.has_value());
  EXPECT_FALSE(same->endpoints_changed());
}

TEST(TargetSetTest, ALookupStartedBeforeAReloadIsDropped) {
  // The race a review proved: a slow lookup of the old config answered after the reload's own
  // lookup and put mx-old back in place of mx-new, until the next refresh 5 minutes later.
  TargetSet set;
  set.apply_config({mx_target("example")});
  LookupGroup& group = *set.groups().at("example");
  const std::uint64_t before_reload = group.generation;

  const TargetSetChanges reload = set.apply_config({mx_target("example")});
  ASSERT_EQ(reload.groups_kept.size(), 1u);
  EXPECT_EQ(&group, reload.groups_kept[0].get());
  const std::uint64_t after_reload = group.generation;
  EXPECT_NE(before_reload, after_reload);

  ASSERT_TRUE(
      set.apply_lookup(group, after_reload, mx_outcome(group, {{10, "mx-new.example.com"}}), 0)
          .has_value());
  const auto stale =
      set.apply_lookup(group, before_reload, mx_outcome(group, {{10, "mx-old.example.com"}}), 0);
  EXPECT_FALSE(stale.has_value());
  EXPECT_EQ(mx_hosts_of(set, "example"), std::vector<std::string>{"mx-new.example.com"});
  ASSERT_EQ(group.mx_series.hosts.size(), 1u);
  EXPECT_EQ(group.mx_series.hosts[0].first, "mx-new.example.com");
}

TEST(TargetSetTest, ALookupOfARemovedGroupIsDropped) {
  TargetSet set;
  set.apply_config({mx_target("example")});
  const std::shared_ptr<LookupGroup> group = set.groups().at("example");
  const std::uint64_t generation = group->generation;
  const TargetSetChanges changes = set.apply_config({});
  ASSERT_EQ(changes.groups_removed.size(), 1u);
  EXPECT_FALSE(
      set.apply_lookup(*group, generation, mx_outcome(*group, {{10, "a.example.com"}}), 0));
  EXPECT_TRUE(set.endpoints().empty());
}

TEST(TargetSetTest, AFailedLookupKeepsTheLastGoodEndpointsAndIsShown) {
  TargetSet set;
  set.apply_config({mx_target("example")});
  LookupGroup& group = *set.groups().at("example");
  set.apply_lookup(group, group.generation, mx_outcome(group, {{10, "a.example.com"}}), 0);

  MxResult servfail;
  servfail.error = make_error_code(DnsError::kServerFailure);
  auto changes = set.apply_lookup(group, group.generation,
                                  mx_lookup_outcome(*group.config, servfail), 1800000000);
  ASSERT_TRUE(changes.has_value());
  EXPECT_FALSE(changes->endpoints_changed());
  EXPECT_EQ(mx_hosts_of(set, "example"), std::vector<std::string>{"a.example.com"});
  EXPECT_TRUE(group.lookup_series->probed);
  EXPECT_EQ(
      group.lookup_series->probes_by_result[static_cast<std::size_t>(FailureReason::kResolveError)],
      1u);
  EXPECT_EQ(group.lookup_series->last_probe_timestamp_seconds, 1800000000);

  // A good answer again: the lookup's own series steps back for the endpoints'.
  set.apply_lookup(group, group.generation, mx_outcome(group, {{10, "a.example.com"}}), 0);
  EXPECT_FALSE(group.lookup_series->probed);
}

TEST(TargetSetTest, ANullMxLeavesNoEndpoints) {
  TargetSet set;
  set.apply_config({mx_target("example")});
  LookupGroup& group = *set.groups().at("example");
  set.apply_lookup(group, group.generation, mx_outcome(group, {{10, "a.example.com"}}), 0);
  MxResult null_mx;
  null_mx.null_mx = true;
  auto changes =
      set.apply_lookup(group, group.generation, mx_lookup_outcome(*group.config, null_mx), 0);
  ASSERT_TRUE(changes.has_value());
  EXPECT_EQ(changes->removed.size(), 1u);
  EXPECT_TRUE(set.endpoints().empty());
  EXPECT_EQ(group.lookup_series->probes_by_result[static_cast<std::size_t>(FailureReason::kNullMx)],
            1u);
}

TEST(TargetSetTest, ADomainWithoutMxRecordsIsItsOwnMx) {
  MxResult none;
  none.no_records = true;
  const LookupOutcome outcome = mx_lookup_outcome(mx_target("example"), none);
  EXPECT_EQ(outcome.failure, FailureReason::kNone);
  ASSERT_EQ(outcome.endpoints.size(), 1u);
  EXPECT_EQ(outcome.endpoints[0].mx_host, "example.com");
}

TEST(TargetSetTest, MaxEndpointsKeepsTheMostPreferredHosts) {
  TargetConfig config = mx_target("example");
  config.max_endpoints = 2;
  TargetSet set;
  set.apply_config({config});
  LookupGroup& group = *set.groups().at("example");
  auto changes = set.apply_lookup(group, group.generation,
                                  mx_outcome(group, {{10, "a.example.com"},
                                                     {20, "b.example.com"},
                                                     {30, "c.example.com"},
                                                     {40, "d.example.com"}}),
                                  0);
  ASSERT_TRUE(changes.has_value());
  EXPECT_EQ(changes->endpoints_over_limit, 2u);
  EXPECT_EQ(mx_hosts_of(set, "example"),
            (std::vector<std::string>{"a.example.com", "b.example.com"}));
  EXPECT_EQ(group.mx_series.hosts.size(), 4u);  // the lookup still reports what DNS said
}

TEST(TargetSetTest, AllAddressesMakesOneEndpointPerAddressOfTheWantedFamily) {
  TargetConfig config = address_target("each", "mx1.example.com");
  config.all_addresses = true;
  config.ip_protocol = IpProtocol::kIp4;
  ResolveResult resolved;
  resolved.endpoints = {tcp::endpoint(asio::ip::make_address("2001:db8::25"), 25),
                        tcp::endpoint(asio::ip::make_address("192.0.2.25"), 25),
                        tcp::endpoint(asio::ip::make_address("192.0.2.26"), 25)};
  LookupOutcome outcome;
  add_address_endpoints(outcome, config, "", config.host, resolved);
  EXPECT_EQ(outcome.failure, FailureReason::kNone);
  ASSERT_EQ(outcome.endpoints.size(), 2u);
  EXPECT_EQ(outcome.endpoints[0].address, "192.0.2.25");

  TargetSet set;
  set.apply_config({config});
  LookupGroup& group = *set.groups().at("each");
  set.apply_lookup(group, group.generation, outcome, 0);
  const std::shared_ptr<Endpoint> endpoint = set.endpoints().at("each\n\n192.0.2.25");
  EXPECT_EQ(endpoint->series->labels, "target=\"each\",address=\"192.0.2.25\"");
  EXPECT_EQ(endpoint->probe->host, "192.0.2.25");
  // The certificate to verify is still the host's, not the address's.
  EXPECT_EQ(endpoint->probe->tls_server_name, "mx1.example.com");
}

TEST(TargetSetTest, AnAddressTargetWithoutAnAddressFailsItsLookup) {
  TargetConfig config = address_target("each", "mx1.example.com");
  config.all_addresses = true;
  ResolveResult resolved;
  resolved.error = make_error_code(DnsError::kNotFound);
  LookupOutcome outcome;
  add_address_endpoints(outcome, config, "", config.host, resolved);
  EXPECT_EQ(outcome.failure, FailureReason::kResolveError);
  EXPECT_NE(outcome.detail.find("mx1.example.com"), std::string::npos);

  // An MX host without addresses is still probed by name, so its own probes say why.
  LookupOutcome of_mx;
  add_address_endpoints(of_mx, config, "mx2.example.com", "mx2.example.com", resolved);
  EXPECT_EQ(of_mx.failure, FailureReason::kNone);
  ASSERT_EQ(of_mx.endpoints.size(), 1u);
  EXPECT_EQ(of_mx.endpoints[0].mx_host, "mx2.example.com");
  EXPECT_EQ(of_mx.endpoints[0].address, "");
}

TEST(TargetSetTest, ATargetThatTurnsIntoAnMxTargetLosesItsOldEndpoint) {
  TargetSet set;
  set.apply_config({address_target("example")});
  const TargetSetChanges changes = set.apply_config({mx_target("example")});
  EXPECT_EQ(changes.removed.size(), 1u);
  EXPECT_EQ(changes.groups_added.size(), 1u);
  EXPECT_TRUE(set.endpoints().empty());  // until the lookup answers
}

}  // namespace
}  // namespace smtp
