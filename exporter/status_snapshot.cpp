#include "exporter/status_snapshot.h"

#include "probes/address.h"

namespace smtp {
namespace {

StatusSource source_of(const std::string& key, const Endpoint& endpoint) {
  return {key,
          endpoint.id.mx_host,
          endpoint.id.address,
          endpoint.config,
          endpoint.probe,
          endpoint.series.share(),
          endpoint.status.share()};
}

StatusSource source_of(const std::string& name, const LookupGroup& group) {
  return {name,
          {},
          {},
          group.config,
          nullptr,
          group.lookup_series.share(),
          group.lookup_status.share()};
}

/// "host:port", the MX host and address the endpoint stands for, or which lookup failed.
std::string describe(const StatusSource& source) {
  const TargetConfig& config = *source.config;
  if (!source.probe) {
    return config.mx_domain.empty() ? "lookup of " + config.host
                                    : "MX lookup of " + config.mx_domain;
  }
  std::string where = source.endpoint_mx_host;
  if (!source.endpoint_address.empty()) {
    if (!where.empty()) where += " / ";
    where += source.endpoint_address;
  }
  if (where.empty()) where = format_host_port(source.probe->host, source.probe->port);
  return where;
}

StatusRow make_row(const StatusSource& source) {
  const TargetSeries& series = *source.series;
  const EndpointStatus& status = *source.status;
  StatusRow row;
  row.key = source.key;
  row.target = source.config->name;
  row.endpoint = describe(source);
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

StatusDetail make_detail(const StatusSource& source) {
  const EndpointStatus& status = *source.status;
  return {make_row(source), status.error_detail, status.hints, status.transcripts};
}

}  // namespace

StatusSources take_status_sources(const TargetSet& targets) {
  StatusSources sources;
  sources.reserve(targets.endpoints().size());
  for (const auto& [key, endpoint] : targets.endpoints()) {
    sources.push_back(source_of(key, *endpoint));
  }
  for (const auto& [name, group] : targets.groups()) {
    if (group->lookup_series->probed) sources.push_back(source_of(name, *group));
  }
  return sources;
}

StatusSnapshot make_status_snapshot(const StatusSources& sources) {
  StatusSnapshot snapshot;
  snapshot.rows.reserve(sources.size());
  for (const StatusSource& source : sources) snapshot.rows.push_back(make_row(source));
  return snapshot;
}

std::optional<StatusDetail> take_status_detail(const TargetSet& targets, std::string_view key) {
  const std::string wanted(key);
  if (auto it = targets.endpoints().find(wanted); it != targets.endpoints().end()) {
    return make_detail(source_of(wanted, *it->second));
  }
  if (auto it = targets.groups().find(wanted);
      it != targets.groups().end() && it->second->lookup_series->probed) {
    return make_detail(source_of(wanted, *it->second));
  }
  return std::nullopt;
}

}  // namespace smtp
