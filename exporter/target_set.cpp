#include "exporter/target_set.h"

#include <algorithm>
#include <set>

namespace smtp {
namespace {

bool is_lookup_failure(FailureReason reason) {
  return reason == FailureReason::kResolveError || reason == FailureReason::kResolveTimeout;
}

/// `ids` without repeats, first occurrence kept (two MX hosts may share an address).
std::vector<EndpointId> without_repeats(std::vector<EndpointId> ids) {
  std::set<EndpointId> seen;
  std::erase_if(ids, [&seen](const EndpointId& id) { return !seen.insert(id).second; });
  return ids;
}

}  // namespace

std::string endpoint_key(const std::string& name, const EndpointId& id) {
  if (id.mx_host.empty() && id.address.empty()) return name;
  return name + '\n' + id.mx_host + '\n' + id.address;
}

LookupOutcome mx_lookup_outcome(const TargetConfig& config, const MxResult& found) {
  LookupOutcome outcome;
  if (found.timed_out || found.error) {
    outcome.failure =
        found.timed_out ? FailureReason::kResolveTimeout : FailureReason::kResolveError;
    outcome.detail = "MX lookup of " + config.mx_domain + ": " + found.error.message();
    return outcome;
  }
  outcome.mx_found = true;
  if (found.null_mx) {
    outcome.failure = FailureReason::kNullMx;
    outcome.detail = config.mx_domain + " publishes a null MX (RFC 7505)";
    return outcome;
  }
  if (found.no_records) {
    outcome.mx_hosts.emplace_back(config.mx_domain, 0);  // RFC 5321 §5.1: the implicit MX
  } else {
    for (const MxRecord& record : found.records) {
      outcome.mx_hosts.emplace_back(record.host, record.preference);
    }
  }
  if (!config.all_addresses) {
    // Each host is probed by name; with all_addresses its addresses are looked up first.
    for (const auto& [host, preference] : outcome.mx_hosts) outcome.endpoints.push_back({host, {}});
  }
  return outcome;
}

void add_address_endpoints(LookupOutcome& outcome, const TargetConfig& config,
                           const std::string& mx_host, const std::string& host,
                           const ResolveResult& resolved) {
  const std::size_t before = outcome.endpoints.size();
  for (const tcp::endpoint& address : resolved.endpoints) {
    if (ip_family_allowed(address.address(), config.ip_protocol)) {
      outcome.endpoints.push_back({mx_host, address.address().to_string()});
    }
  }
  if (outcome.endpoints.size() > before) return;
  if (!mx_host.empty()) {
    outcome.endpoints.push_back({mx_host, {}});
    return;
  }
  outcome.failure =
      resolved.timed_out ? FailureReason::kResolveTimeout : FailureReason::kResolveError;
  outcome.detail = "address lookup of " + host + ": " +
                   (resolved.error ? resolved.error.message() : "no address of that family");
}

TargetSetChanges TargetSet::apply_config(std::vector<TargetConfig> targets) {
  ++generation_;
  TargetSetChanges changes;
  std::map<std::string, std::shared_ptr<Endpoint>> old_endpoints = std::move(endpoints_);
  std::map<std::string, std::shared_ptr<LookupGroup>> old_groups = std::move(groups_);
  endpoints_.clear();
  groups_.clear();

  for (TargetConfig& target_config : targets) {
    auto config = std::make_shared<const TargetConfig>(std::move(target_config));
    if (!config->looked_up()) {
      keep_or_add(old_endpoints, config, {}, changes);
      continue;
    }
    std::shared_ptr<LookupGroup> group;
    if (auto node = old_groups.extract(config->name)) {
      group = std::move(node.mapped());
      for (const EndpointId& id : group->endpoints) keep_or_add(old_endpoints, config, id, changes);
      changes.groups_kept.push_back(group);
    } else {
      group = std::make_shared<LookupGroup>();
      changes.groups_added.push_back(group);
    }
    group->config = config;
    group->generation = generation_;
    group->mx_series.labels = render_target_labels(*config);
    group->lookup_series.edit().labels = group->mx_series.labels;
    groups_.emplace(config->name, std::move(group));
  }
  for (auto& [key, endpoint] : old_endpoints) {
    endpoint->removed = true;
    changes.removed.push_back(std::move(endpoint));
  }
  for (auto& [name, group] : old_groups) {
    group->removed = true;
    changes.groups_removed.push_back(std::move(group));
  }
  configured_targets_ = targets.size();
  return changes;
}

std::optional<TargetSetChanges> TargetSet::apply_lookup(LookupGroup& group,
                                                        std::uint64_t generation,
                                                        LookupOutcome outcome,
                                                        double now_unix_seconds) {
  if (group.removed || generation != group.generation) return std::nullopt;
  const TargetConfig& config = *group.config;
  TargetSetChanges changes;
  if (outcome.failure != FailureReason::kNone) {
    ProbeResult lookup;
    lookup.phase_durations[static_cast<std::size_t>(Phase::kResolve)] = outcome.took;
    lookup.total = outcome.took;
    lookup.failure = outcome.failure;
    lookup.failed_phase = Phase::kResolve;
    lookup.error_detail = outcome.detail;
    record_probe(group.lookup_series.edit(), lookup, config, now_unix_seconds);
    ProbeTarget looked_up = config.probe_target();
    if (!config.mx_domain.empty()) looked_up.host = config.mx_domain;
    record_status(group.lookup_status.edit(), looked_up, std::move(lookup), now_unix_seconds);
  } else {
    group.lookup_series.edit().probed = false;  // the endpoints speak for the target now
  }
  if (outcome.mx_found) {
    group.mx_series.looked_up = true;
    group.mx_series.hosts = std::move(outcome.mx_hosts);
  }
  if (is_lookup_failure(outcome.failure)) return changes;

  std::vector<EndpointId> found = without_repeats(std::move(outcome.endpoints));
  if (found.size() > config.max_endpoints) {
    // The most preferred hosts come first: they are the ones kept.
    changes.endpoints_over_limit = found.size() - config.max_endpoints;
    found.resize(config.max_endpoints);
  }
  if (found == group.endpoints) return changes;

  std::map<std::string, std::shared_ptr<Endpoint>> old;
  for (const EndpointId& id : group.endpoints) {
    if (auto node = endpoints_.extract(endpoint_key(config.name, id))) old.insert(std::move(node));
  }
  for (const EndpointId& id : found) keep_or_add(old, group.config, id, changes);
  for (auto& [key, endpoint] : old) {
    endpoint->removed = true;
    changes.removed.push_back(std::move(endpoint));
  }
  group.endpoints = std::move(found);
  return changes;
}

void TargetSet::keep_or_add(std::map<std::string, std::shared_ptr<Endpoint>>& old,
                            const std::shared_ptr<const TargetConfig>& config, const EndpointId& id,
                            TargetSetChanges& changes) {
  std::string key = endpoint_key(config->name, id);
  std::shared_ptr<Endpoint> endpoint;
  if (auto node = old.extract(key)) {
    endpoint = std::move(node.mapped());
    if (endpoint->config->interval != config->interval) changes.rescheduled.push_back(endpoint);
  } else {
    endpoint = std::make_shared<Endpoint>();
    endpoint->key = key;
    endpoint->id = id;
    changes.added.push_back(endpoint);
  }
  ProbeTarget probe = config->probe_target();
  if (!id.mx_host.empty()) probe.host = id.mx_host;
  if (!id.address.empty()) {
    // The certificate still has to be the host's, not the address's.
    if (probe.tls_server_name.empty()) probe.tls_server_name = probe.host;
    probe.host = id.address;
  }
  endpoint->probe = std::make_shared<const ProbeTarget>(std::move(probe));
  endpoint->config = config;
  TargetSeries& series = endpoint->series.edit();
  series.labels = render_target_labels(*config, id.mx_host, id.address);
  series.metrics = config->metrics;  // a reload changes what the next scrape shows
  endpoints_.emplace(std::move(key), std::move(endpoint));
}

}  // namespace smtp
