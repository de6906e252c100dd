#pragma once
/// The running config's endpoints: which mail servers are probed, and what each has shown so far.
///
/// Pure: no I/O, no clock, no scheduling. A config and DNS answers go in; the endpoints and what
/// changed come out, for the runner to schedule. So reloads, lookups that race a reload and MX
/// fan-out are unit-tested with made-up answers.
#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "exporter/config.h"
#include "exporter/copy_on_write.h"
#include "exporter/endpoint_status.h"
#include "exporter/metrics.h"
#include "probes/probe_result.h"
#include "probes/resolve.h"

namespace smtp {

/// Where one endpoint of a target points: with `mx`, one MX host; with `all_addresses`, one
/// address (of the target's host, or of an MX host). Both empty: the target's own address.
struct EndpointId {
  std::string mx_host;
  std::string address;
  auto operator<=>(const EndpointId&) const = default;
};

/// One probed endpoint of a configured target.
struct Endpoint {
  std::string key;  // unique: the target's name, plus the endpoint's MX host and address
  EndpointId id;
  // Replaced (not mutated) at reload: a probe in flight keeps the version it started with.
  std::shared_ptr<const TargetConfig> config;
  std::shared_ptr<const ProbeTarget> probe;
  SharedSeries series;
  CopyOnWrite<EndpointStatus> status;  // what the status page shows beyond the series
  bool removed = false;   // left the config or DNS: a probe still in flight drops its result
  std::uint32_t job = 0;  // the runner's schedule job; the set only carries it
};

/// A target whose endpoints come from DNS (`mx`, or `all_addresses`), looked up every
/// mx_refresh and at every reload.
struct LookupGroup {
  std::shared_ptr<const TargetConfig> config;
  /// The config generation the group's lookups belong to. A lookup started before a reload
  /// answers for the old config: its answer is dropped, never applied to the new one.
  std::uint64_t generation = 0;
  std::vector<EndpointId> endpoints;  // from the last good lookup, in the order probed
  MxSeries mx_series;                 // MX targets only
  // Shown only while the lookup fails or finds a null MX: then there is nothing else to show.
  SharedSeries lookup_series;
  CopyOnWrite<EndpointStatus> lookup_status;
  bool removed = false;
  std::uint32_t job = 0;  // the runner's refresh job
};

/// What one lookup of a group found: its endpoints, or why there are none.
struct LookupOutcome {
  FailureReason failure = FailureReason::kNone;
  std::string detail;
  bool mx_found = false;  // the MX lookup answered (hosts, implicit MX or null MX)
  std::vector<std::pair<std::string, std::uint16_t>> mx_hosts;  // host, preference
  std::vector<EndpointId> endpoints;  // in preference order, before the max_endpoints cap
  std::chrono::nanoseconds took{};
};

/// The first part of a group's outcome: what its MX lookup says (no endpoints yet when it lists
/// hosts: their addresses may still have to be looked up).
LookupOutcome mx_lookup_outcome(const TargetConfig& config, const MxResult& found);

/// Adds the endpoints one host's addresses give an `all_addresses` group (`mx_host` empty for an
/// address target). An MX host without usable addresses is probed by name, so that its own
/// probes say why; an address target without one makes the whole lookup fail.
void add_address_endpoints(LookupOutcome& outcome, const TargetConfig& config,
                           const std::string& mx_host, const std::string& host,
                           const ResolveResult& resolved);

/// What an apply changed, for the scheduler.
struct TargetSetChanges {
  std::vector<std::shared_ptr<Endpoint>> added;            // need a schedule job
  std::vector<std::shared_ptr<Endpoint>> rescheduled;      // stayed, but their interval changed
  std::vector<std::shared_ptr<Endpoint>> removed;          // their jobs go
  std::vector<std::shared_ptr<LookupGroup>> groups_added;  // need a refresh job, run now
  std::vector<std::shared_ptr<LookupGroup>> groups_kept;   // stayed: look them up again now
  std::vector<std::shared_ptr<LookupGroup>> groups_removed;
  /// Endpoints a lookup found beyond the target's max_endpoints, left out.
  std::size_t endpoints_over_limit = 0;

  bool endpoints_changed() const {
    return !added.empty() || !removed.empty() || !rescheduled.empty();
  }
};

class TargetSet {
 public:
  /// Makes `targets` the running config. Endpoints that stay (by key) keep their series;
  /// endpoints that left are marked removed and lose every series at once. Groups that stay keep
  /// their endpoints until their next lookup says otherwise.
  TargetSetChanges apply_config(std::vector<TargetConfig> targets);

  /// Applies the lookup that `group` started under `generation`. Returns nothing if the answer
  /// is stale (the config was reloaded since, or the group left it). A failed lookup keeps the
  /// endpoints of the last good one (a DNS hiccup is not an outage of the mail servers); a null
  /// MX leaves none. `now_unix_seconds` stamps the lookup's own series when it failed.
  std::optional<TargetSetChanges> apply_lookup(LookupGroup& group, std::uint64_t generation,
                                               LookupOutcome outcome, double now_unix_seconds);

  /// Every endpoint, ordered by key (so /metrics lists a target's endpoints together).
  const std::map<std::string, std::shared_ptr<Endpoint>>& endpoints() const { return endpoints_; }
  /// Every lookup group, ordered by target name.
  const std::map<std::string, std::shared_ptr<LookupGroup>>& groups() const { return groups_; }
  /// Targets in the running config (an MX target counts once, whatever its endpoints).
  std::size_t configured_targets() const { return configured_targets_; }
  std::uint64_t generation() const { return generation_; }

 private:
  /// Puts the endpoint `id` of `config` in the set: the one from `old` with its series, or a
  /// new one.
  void keep_or_add(std::map<std::string, std::shared_ptr<Endpoint>>& old,
                   const std::shared_ptr<const TargetConfig>& config, const EndpointId& id,
                   TargetSetChanges& changes);

  std::map<std::string, std::shared_ptr<Endpoint>> endpoints_;
  std::map<std::string, std::shared_ptr<LookupGroup>> groups_;
  std::size_t configured_targets_ = 0;
  std::uint64_t generation_ = 0;
};

/// The key an endpoint of target `name` is known by.
std::string endpoint_key(const std::string& name, const EndpointId& id);

}  // namespace smtp
