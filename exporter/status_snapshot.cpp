#include "exporter/status_snapshot.h"

#include "probes/address.h"

namespace smtp {
namespace {

StatusRow make_row(const std::string& key, const TargetConfig& config, std::string endpoint,
                   const TargetSeries& series, const EndpointStatus& status) {
  StatusRow row;
  row.key = key;
  row.target = config.name;
  row.endpoint = std::move(endpoint);
  row.probed = series.probed;
  row.up = series.probed && series.success;
  row.greeting_seconds = series.greeting_seconds;
  row.latencies = status.latencies;
  row.banner_hostname = series.banner_hostname;
  row.banner_software = series.banner_software;
  if (series.tls_seen) row.cert_expiry = series.tls_cert_expiry;
  row.last_probe_unix_seconds = series.last_probe_timestamp_seconds;
  row.failure = status.failure;
  row.problem = status.problem;
  if (!status.hints.empty()) row.hint = status.hints.front();
  return row;
}

std::string describe_endpoint(const Endpoint& endpoint) {
  std::string where = endpoint.id.mx_host;
  if (!endpoint.id.address.empty()) {
    if (!where.empty()) where += " / ";
    where += endpoint.id.address;
  }
  if (where.empty()) where = format_host_port(endpoint.probe->host, endpoint.probe->port);
  return where;
}

std::string describe_lookup(const TargetConfig& config) {
  return config.mx_domain.empty() ? "lookup of " + config.host : "MX lookup of " + config.mx_domain;
}

StatusDetail make_detail(StatusRow row, const EndpointStatus& status) {
  return {std::move(row), status.error_detail, status.hints, status.transcripts};
}

}  // namespace

StatusSnapshot take_status_snapshot(const TargetSet& targets) {
  StatusSnapshot snapshot;
  snapshot.rows.reserve(targets.endpoints().size());
  for (const auto& [key, endpoint] : targets.endpoints()) {
    snapshot.rows.push_back(make_row(key, *endpoint->config, describe_endpoint(*endpoint),
                                     *endpoint->series, endpoint->status));
  }
  for (const auto& [name, group] : targets.groups()) {
    if (!group->lookup_series->probed) continue;
    snapshot.rows.push_back(make_row(name, *group->config, describe_lookup(*group->config),
                                     *group->lookup_series, group->lookup_status));
  }
  return snapshot;
}

std::optional<StatusDetail> take_status_detail(const TargetSet& targets, std::string_view key) {
  const std::string wanted(key);
  if (auto it = targets.endpoints().find(wanted); it != targets.endpoints().end()) {
    const Endpoint& endpoint = *it->second;
    return make_detail(make_row(wanted, *endpoint.config, describe_endpoint(endpoint),
                                *endpoint.series, endpoint.status),
                       endpoint.status);
  }
  if (auto it = targets.groups().find(wanted);
      it != targets.groups().end() && it->second->lookup_series->probed) {
    const LookupGroup& group = *it->second;
    return make_detail(make_row(wanted, *group.config, describe_lookup(*group.config),
                                *group.lookup_series, group.lookup_status),
                       group.lookup_status);
  }
  return std::nullopt;
}

}  // namespace smtp
