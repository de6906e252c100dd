#include "exporter/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ranges>
#include <sstream>
#include <string_view>

#include <prometheus/text_serializer.h>

#include "exporter/build_info.h"

namespace smtp {
namespace {

using Seconds = std::chrono::duration<double>;

double seconds(std::chrono::nanoseconds d) { return Seconds(d).count(); }

/// Label values in the text format escape backslash, double quote and newline.
void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out.push_back(c);
    }
  }
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty() && out.back() != '{') out.push_back(',');
  out += name;
  out += "=\"";
  append_escaped(out, value);
  out.push_back('"');
}

void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    // Whole numbers (codes, timestamps, byte counts) as integers: "1800000000", not "1.8e+09".
    char buffer[24];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, static_cast<long long>(value));
    out.append(buffer, end);
  } else {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, end);
  }
}

void append_number(std::string& out, std::uint64_t value) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, end);
}

void append_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out += "# HELP ";
  out += name;
  out.push_back(' ');
  out += help;
  out += "\n# TYPE ";
  out += name;
  out.push_back(' ');
  out += type;
  out.push_back('\n');
}

/// One sample line: name{target labels[,extra]} value, or `name value` without labels (a /probe
/// answer's series have none).
template <typename Number>
void append_sample(ExpositionOutput& output, std::string_view name, const TargetSeries& series,
                   std::string_view extra_labels, Number value) {
  std::string& out = output.text;
  out += name;
  if (!series.labels.empty() || !extra_labels.empty()) {
    out.push_back('{');
    out += series.labels;
    if (!extra_labels.empty()) {
      if (!series.labels.empty()) out.push_back(',');
      out += extra_labels;
    }
    out.push_back('}');
  }
  out += " ";
  append_number(out, value);
  out.push_back('\n');
  output.spill_if_full();
}

/// The series of a snapshot's targets, in order.
auto each_series(const SeriesList& targets) {
  return targets | std::views::transform([](const std::shared_ptr<const TargetSeries>& series)
                                             -> const TargetSeries& { return *series; });
}

/// A gauge family whose value is read from each target's series by `value_of`.
template <typename ValueOf>
void render_gauge(const SeriesList& targets, ExpositionOutput& out, std::string_view name,
                  std::string_view help, ValueOf value_of) {
  append_header(out.text, name, "gauge", help);
  for (const TargetSeries& series : each_series(targets)) {
    if (series.probed) append_sample(out, name, series, {}, static_cast<double>(value_of(series)));
  }
}

/// A gauge family that some targets lack: a target whose `value_of` is empty has no series (a
/// gap in the graph, not a false 0).
template <typename ValueOf>
void render_optional_gauge(const SeriesList& targets, ExpositionOutput& out, std::string_view name,
                           std::string_view help, ValueOf value_of) {
  append_header(out.text, name, "gauge", help);
  for (const TargetSeries& series : each_series(targets)) {
    if (!series.probed) continue;
    if (const auto value = value_of(series)) {
      append_sample(out, name, series, {}, static_cast<double>(*value));
    }
  }
}

/// Whether the optional family `shown` gets its HELP and TYPE: unless every target leaves it out.
bool family_shown(const SeriesList& targets, bool MetricsSelection::*shown) {
  return targets.empty() ||
         std::ranges::any_of(each_series(targets),
                             [shown](const TargetSeries& series) { return series.metrics.*shown; });
}

}  // namespace

std::string render_target_labels(const TargetConfig& target, std::string_view mx_host,
                                 std::string_view address) {
  std::string out;
  append_label(out, "target", target.name);
  // std::map keeps the static labels sorted, so a target's label order never changes.
  for (const auto& [name, value] : target.labels) append_label(out, name, value);
  if (!mx_host.empty()) append_label(out, "mx", mx_host);
  if (!address.empty()) append_label(out, "address", address);
  return out;
}

void render_mx_series(const std::vector<MxSeries>& groups, std::string& out) {
  append_header(out, "smtp_mx_hosts", "gauge",
                "MX targets: how many MX hosts the last successful lookup found.");
  for (const MxSeries& group : groups) {
    if (!group.looked_up) continue;
    out += "smtp_mx_hosts{";
    out += group.labels;
    out += "} ";
    append_number(out, static_cast<std::uint64_t>(group.hosts.size()));
    out.push_back('\n');
  }
  append_header(out, "smtp_mx_preference", "gauge", "MX targets: each MX host's preference.");
  for (const MxSeries& group : groups) {
    for (const auto& [host, preference] : group.hosts) {
      out += "smtp_mx_preference{";
      out += group.labels;
      append_label(out, "mx", host);
      out += "} ";
      append_number(out, static_cast<std::uint64_t>(preference));
      out.push_back('\n');
    }
  }
}

void render_target_series(const SeriesList& targets, std::string& out) {
  ExpositionOutput output;
  output.text = std::move(out);
  render_target_series(targets, output);
  out = std::move(output.text);
}

void record_probe(TargetSeries& series, const ProbeResult& result, const TargetConfig& target,
                  double now_unix_seconds) {
  series.probed = true;
  series.metrics = target.metrics;
  series.expects_hostname = target.expect_hostname.has_value();
  series.success = result.success();
  series.greeting_seconds.reset();
  if (result.greeting_latency) series.greeting_seconds = seconds(*result.greeting_latency);
  series.probe_duration_seconds = seconds(result.total);
  series.last_probe_timestamp_seconds = now_unix_seconds;
  series.greeting_code = result.greeting_code;
  series.quit_code = result.quit_code;
  if (result.starttls_advertised) series.starttls_advertised = result.starttls_advertised;
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    series.phases_ran[i] = result.phase_durations[i].has_value();
    series.phase_seconds[i] = result.phase_durations[i] ? seconds(*result.phase_durations[i]) : 0;
  }
  if (result.banner) {
    // Assign only on change: most probes see the same banner, and this keeps them allocation-free.
    if (series.banner_hostname != result.banner->hostname) {
      series.banner_hostname = result.banner->hostname;
    }
    if (series.banner_software != result.banner->software) {
      series.banner_software = result.banner->software;
    }
    series.hostname_matches =
        target.expect_hostname && result.banner->hostname == *target.expect_hostname;
  } else if (!series.banner_hostname.empty()) {
    series.hostname_matches = false;  // nobody greeted: nothing matched this time
  }
  if (result.capabilities) {
    series.ehlo_seen = true;
    series.extensions.reset();
    for (std::size_t i = 0; i < kReportedExtensions.size(); ++i) {
      series.extensions[i] = result.capabilities->has(kReportedExtensions[i]);
    }
    series.size_limit_bytes = static_cast<double>(result.capabilities->size_limit.value_or(0));
  }
  series.tls_target = target.tls != TlsMode::kNone;
  series.tls_verified = result.tls && result.tls->verified;
  if (result.tls) {
    series.tls_seen = true;
    series.tls_cert_expiry = result.tls->earliest_not_after;
    if (series.tls_version != result.tls->version) series.tls_version = result.tls->version;
    if (series.tls_cipher != result.tls->cipher) series.tls_cipher = result.tls->cipher;
  }
  ++series.probes_by_result[static_cast<std::size_t>(result.failure)];
  if (result.greeting_latency) {
    double latency = seconds(*result.greeting_latency);
    for (std::size_t i = 0; i < kGreetingBuckets.size(); ++i) {
      if (latency <= kGreetingBuckets[i]) {
        ++series.greeting_bucket_counts[i];
        break;
      }
    }
    ++series.greeting_count;
    series.greeting_sum_seconds += latency;
  }
}

void render_target_series(const SeriesList& targets, ExpositionOutput& out) {
  // Grown once, not doubled through 200 MB: the whole page (~2 KB a target) when it is kept, a
  // piece and the line that ends it when it is spilled.
  out.text.reserve(out.text.size() + (out.spill ? out.spill_bytes + 4096 : targets.size() * 2200));
  render_gauge(targets, out, "smtp_probe_success",
               "1 if the last probe got a 220 greeting, completed any TLS asked for, and QUIT was "
               "answered with 221.",
               [](const TargetSeries& s) { return s.success; });
  render_optional_gauge(targets, out, "smtp_greeting_seconds",
                        "Last probe: seconds from TCP connection established (implicit TLS: "
                        "handshake done) to the end of the greeting; absent if none came.",
                        [](const TargetSeries& s) { return s.greeting_seconds; });

  if (family_shown(targets, &MetricsSelection::greeting_histogram)) {
    append_header(out.text, "smtp_greeting_duration_seconds", "histogram",
                  "Seconds from TCP connection established (implicit TLS: handshake done) to the "
                  "end of the greeting, over every probe that got one since start.");
  }
  for (const TargetSeries& series : each_series(targets)) {
    if (!series.probed || !series.metrics.greeting_histogram) continue;
    std::uint64_t cumulative = 0;
    char le[48];
    for (std::size_t i = 0; i < kGreetingBuckets.size(); ++i) {
      cumulative += series.greeting_bucket_counts[i];
      std::string_view bound = "le=\"";
      std::size_t n = bound.copy(le, bound.size());
      auto [end, ec] = std::to_chars(le + n, le + sizeof le - 1, kGreetingBuckets[i]);
      *end++ = '"';
      append_sample(out, "smtp_greeting_duration_seconds_bucket", series,
                    std::string_view(le, end - le), cumulative);
    }
    append_sample(out, "smtp_greeting_duration_seconds_bucket", series, "le=\"+Inf\"",
                  series.greeting_count);
    append_sample(out, "smtp_greeting_duration_seconds_sum", series, {},
                  series.greeting_sum_seconds);
    append_sample(out, "smtp_greeting_duration_seconds_count", series, {}, series.greeting_count);
  }

  if (family_shown(targets, &MetricsSelection::phases)) {
    append_header(out.text, "smtp_phase_seconds", "gauge",
                  "Last probe: seconds spent in each phase that ran.");
  }
  std::string phase_label;
  for (const TargetSeries& series : each_series(targets)) {
    if (!series.probed || !series.metrics.phases) continue;
    for (std::size_t i = 0; i < kPhaseCount; ++i) {
      if (!series.phases_ran[i]) continue;
      phase_label = "phase=\"";
      phase_label += phase_name(static_cast<Phase>(i));
      phase_label += '"';
      append_sample(out, "smtp_phase_seconds", series, phase_label, series.phase_seconds[i]);
    }
  }

  render_gauge(targets, out, "smtp_probe_duration_seconds", "Last probe: seconds, whole.",
               [](const TargetSeries& s) { return s.probe_duration_seconds; });
  render_gauge(targets, out, "smtp_greeting_code",
               "Reply code of the last greeting (220, 421, 554 ...), 0 if none came.",
               [](const TargetSeries& s) { return s.greeting_code; });
  render_gauge(targets, out, "smtp_quit_code", "Reply code to the last QUIT, 0 if none came.",
               [](const TargetSeries& s) { return s.quit_code; });
  render_gauge(targets, out, "smtp_quit_success", "1 if the last QUIT was answered with 221.",
               [](const TargetSeries& s) { return s.quit_code == 221; });

  append_header(out.text, "smtp_banner_info", "gauge",
                "The hostname in the greeting and the server software recognised in it.");
  std::string banner_labels;
  for (const TargetSeries& series : each_series(targets)) {
    if (!series.probed || series.banner_hostname.empty()) continue;
    banner_labels.clear();
    append_label(banner_labels, "hostname", series.banner_hostname);
    append_label(banner_labels, "software", series.banner_software);
    append_sample(out, "smtp_banner_info", series, banner_labels, 1.0);
  }

  append_header(out.text, "smtp_banner_hostname_match", "gauge",
                "1 if the greeting's hostname is the target's expect_hostname.");
  for (const TargetSeries& series : each_series(targets)) {
    if (series.probed && series.expects_hostname) {
      append_sample(out, "smtp_banner_hostname_match", series, {},
                    series.hostname_matches ? 1.0 : 0.0);
    }
  }

  render_optional_gauge(targets, out, "smtp_starttls_advertised",
                        "1 if the last plaintext EHLO reply seen offered STARTTLS; absent until "
                        "one was seen.",
                        [](const TargetSeries& s) { return s.starttls_advertised; });

  append_header(out.text, "smtp_size_limit_bytes", "gauge",
                "The message size limit the last EHLO reply advertised with SIZE (0: none given).");
  for (const TargetSeries& series : each_series(targets)) {
    if (series.probed && series.ehlo_seen) {
      append_sample(out, "smtp_size_limit_bytes", series, {}, series.size_limit_bytes);
    }
  }

  if (family_shown(targets, &MetricsSelection::ehlo_extensions)) {
    append_header(
        out.text, "smtp_ehlo_extension_info", "gauge",
        "The registered SMTP extensions the last EHLO reply advertised, one series each.");
  }
  std::string extension_label;
  for (const TargetSeries& series : each_series(targets)) {
    if (!series.probed || !series.metrics.ehlo_extensions) continue;
    for (std::size_t i = 0; i < kReportedExtensions.size(); ++i) {
      if (!series.extensions[i]) continue;
      extension_label = "extension=\"";
      extension_label += kReportedExtensions[i];
      extension_label += '"';
      append_sample(out, "smtp_ehlo_extension_info", series, extension_label, 1.0);
    }
  }

  append_header(out.text, "smtp_tls_cert_verified", "gauge",
                "TLS targets: 1 if the last probe's certificate chain and name verified.");
  for (const TargetSeries& series : each_series(targets)) {
    if (series.probed && series.tls_target) {
      append_sample(out, "smtp_tls_cert_verified", series, {}, series.tls_verified ? 1.0 : 0.0);
    }
  }
  append_header(out.text, "smtp_tls_cert_expiry_timestamp_seconds", "gauge",
                "TLS targets: the earliest notAfter in the chain of the last completed handshake.");
  for (const TargetSeries& series : each_series(targets)) {
    if (series.probed && series.tls_target && series.tls_seen) {
      append_sample(out, "smtp_tls_cert_expiry_timestamp_seconds", series, {},
                    series.tls_cert_expiry);
    }
  }
  append_header(out.text, "smtp_tls_info", "gauge",
                "TLS targets: the version and cipher of the last completed handshake.");
  std::string tls_labels;
  for (const TargetSeries& series : each_series(targets)) {
    if (!series.probed || !series.tls_target || !series.tls_seen) continue;
    tls_labels.clear();
    append_label(tls_labels, "version", series.tls_version);
    append_label(tls_labels, "cipher", series.tls_cipher);
    append_sample(out, "smtp_tls_info", series, tls_labels, 1.0);
  }

  append_header(out.text, "smtp_probes_total", "counter",
                "Probes by outcome: success or the failure reason.");
  std::string result_label;
  for (const TargetSeries& series : each_series(targets)) {
    if (!series.probed) continue;
    for (std::size_t i = 0; i < kFailureReasonCount; ++i) {
      if (series.probes_by_result[i] == 0) continue;  // a counter appears at its first count
      result_label = "result=\"";
      result_label += reason_name(static_cast<FailureReason>(i));
      result_label += '"';
      append_sample(out, "smtp_probes_total", series, result_label, series.probes_by_result[i]);
    }
  }

  render_gauge(targets, out, "smtp_last_probe_timestamp_seconds",
               "Unix time when the last probe finished.",
               [](const TargetSeries& s) { return s.last_probe_timestamp_seconds; });
}

void render_blackbox_series(const ProbeResult& result, int ip_protocol, std::string& out) {
  const auto gauge = [&out](std::string_view name, std::string_view help, std::string_view labels,
                            double value) {
    append_header(out, name, "gauge", help);
    out += name;
    out += labels;
    out.push_back(' ');
    append_number(out, value);
    out.push_back('\n');
  };
  gauge("probe_success", "Whether the probe succeeded (blackbox_exporter's name).", {},
        result.success() ? 1 : 0);
  gauge("probe_duration_seconds", "How long the probe took, in seconds.", {},
        seconds(result.total));
  if (const auto lookup = result.phase(Phase::kResolve)) {
    gauge("probe_dns_lookup_time_seconds", "How long the DNS lookup took, in seconds.", {},
          seconds(*lookup));
  }
  gauge("probe_ip_protocol", "The IP protocol of the probe's connection (4 or 6; 0: none).", {},
        ip_protocol);
  if (result.tls) {
    gauge("probe_ssl_earliest_cert_expiry",
          "The earliest notAfter of the presented certificate chain, in Unix seconds.", {},
          result.tls->earliest_not_after);
    std::string labels = "{";
    append_label(labels, "version", result.tls->version);
    labels.push_back('}');
    gauge("probe_tls_version_info", "The negotiated TLS version.", labels, 1);
  }
}

ExporterMetrics::ExporterMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      reload_successful_(prometheus::BuildGauge()
                             .Name("smtp_exporter_config_last_reload_successful")
                             .Help("1 if the last config load or reload succeeded.")
                             .Register(*registry_)
                             .Add({})),
      reload_success_timestamp_(
          prometheus::BuildGauge()
              .Name("smtp_exporter_config_last_reload_success_timestamp_seconds")
              .Help("Unix time of the last successful config load or reload.")
              .Register(*registry_)
              .Add({})),
      targets_(prometheus::BuildGauge()
                   .Name("smtp_exporter_targets")
                   .Help("Targets in the running config that this replica probes.")
                   .Register(*registry_)
                   .Add({})),
      in_flight_(prometheus::BuildGauge()
                     .Name("smtp_exporter_probes_in_flight")
                     .Help("Probes running now.")
                     .Register(*registry_)
                     .Add({})),
      schedule_lag_(prometheus::BuildHistogram()
                        .Name("smtp_exporter_schedule_lag_seconds")
                        .Help("Seconds between a probe's planned and actual start.")
                        .Register(*registry_)
                        .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05,
                                                                         0.1, 0.5, 1, 5})),
      endpoints_over_limit_(
          prometheus::BuildCounter()
              .Name("smtp_exporter_endpoints_over_limit_total")
              .Help("Endpoints that MX or address lookups found beyond their target's "
                    "max_endpoints, and that are therefore not probed.")
              .Register(*registry_)
              .Add({})),
      http_connections_(prometheus::BuildGauge()
                            .Name("smtp_exporter_http_connections")
                            .Help("HTTP connections open now.")
                            .Register(*registry_)
                            .Add({})),
      http_connections_max_(
          prometheus::BuildGauge()
              .Name("smtp_exporter_http_connections_max")
              .Help("Most HTTP connections open at once: the HTTP part of the open-file limit.")
              .Register(*registry_)
              .Add({})),
      http_rejected_(prometheus::BuildCounter()
                         .Name("smtp_exporter_http_connections_rejected_total")
                         .Help("HTTP connections closed as soon as accepted: at the cap, with "
                               "every open connection busy with a request.")
                         .Register(*registry_)
                         .Add({})),
      http_pinned_bytes_(prometheus::BuildGauge()
                             .Name("smtp_exporter_http_response_bytes_pinned")
                             .Help("Bytes of response bodies held by unfinished writes, a body "
                                   "shared by several connections counted once.")
                             .Register(*registry_)
                             .Add({})),
      probe_requests_(prometheus::BuildCounter()
                          .Name("smtp_exporter_probe_requests_total")
                          .Help("/probe requests by HTTP status: 200 probed, 400 bad request, "
                                "403 not admitted by probe.allowed_targets, 503 too many at once.")
                          .Register(*registry_)) {
  auto& evicted =
      prometheus::BuildCounter()
          .Name("smtp_exporter_http_connections_evicted_total")
          .Help(
              "HTTP connections closed to make room: at the cap, the one waiting longest for "
              "a request (reason idle: no byte of it yet; incomplete_request: begun); or, when "
              "unfinished responses held too many bytes, the earliest writer (slow_reader).")
          .Register(*registry_);
  http_evicted_[static_cast<std::size_t>(HttpEviction::kIdle)] = &evicted.Add({{"reason", "idle"}});
  http_evicted_[static_cast<std::size_t>(HttpEviction::kIncompleteRequest)] =
      &evicted.Add({{"reason", "incomplete_request"}});
  http_evicted_[static_cast<std::size_t>(HttpEviction::kSlowReader)] =
      &evicted.Add({{"reason", "slow_reader"}});
  auto& timed_out =
      prometheus::BuildCounter()
          .Name("smtp_exporter_http_connections_timed_out_total")
          .Help(
              "HTTP connections closed for taking too long: no complete request within the "
              "request timeout (stage request), or no byte of a response taken within the "
              "write-stall timeout (stage response).")
          .Register(*registry_);
  http_timed_out_[static_cast<std::size_t>(HttpTimeout::kRequest)] =
      &timed_out.Add({{"stage", "request"}});
  http_timed_out_[static_cast<std::size_t>(HttpTimeout::kResponse)] =
      &timed_out.Add({{"stage", "response"}});
  prometheus::BuildGauge()
      .Name("smtp_exporter_build_info")
      .Help("The exporter's version and the revision it was built from.")
      .Register(*registry_)
      .Add({{"version", std::string(kExporterVersion)},
            {"revision", std::string(kExporterRevision)}})
      .Set(1);
}

void ExporterMetrics::set_config_reload(bool successful, double now_unix_seconds) {
  reload_successful_.Set(successful ? 1 : 0);
  if (successful) reload_success_timestamp_.Set(now_unix_seconds);
}

void ExporterMetrics::set_shard(std::size_t index, std::size_t count) {
  prometheus::BuildGauge()
      .Name("smtp_exporter_shard_info")
      .Help(
          "The shard of the config's targets this replica probes (--shard.index of "
          "--shard.count); smtp_exporter_targets counts the targets it owns.")
      .Register(*registry_)
      .Add({{"index", std::to_string(index)}, {"count", std::to_string(count)}})
      .Set(1);
}

void ExporterMetrics::count_probe_request(int status) {
  probe_requests_.Add({{"code", std::to_string(status)}}).Increment();
}

void ExporterMetrics::observe_schedule_lag(std::chrono::nanoseconds lag) {
  schedule_lag_.Observe(seconds(lag));
}

void ExporterMetrics::http_connection_evicted(HttpEviction why) {
  http_evicted_[static_cast<std::size_t>(why)]->Increment();
}

void ExporterMetrics::http_connection_timed_out(HttpTimeout what) {
  http_timed_out_[static_cast<std::size_t>(what)]->Increment();
}

std::string ExporterMetrics::render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::vector<prometheus::MetricFamily> process = process_.Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

}  // namespace smtp
