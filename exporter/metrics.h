#pragma once
/// ProbeResult -> the contract's metrics. Every metric name lives in this file's .cpp.
///
/// Two stores, for two loads:
/// - per-target series (~29 per target, 10,000 targets) live in plain structs updated on the probe
///   thread and rendered to the text format by a serializer of our own: prometheus-cpp's
///   Collect() + TextSerializer took 0.29-0.34 s for 10,000 targets, ours 31-47 ms (tests/bench);
/// - the exporter's own metrics (a few dozen series) live in a prometheus-cpp Registry.
#include <array>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "exporter/config.h"
#include "exporter/copy_on_write.h"
#include "exporter/http_observer.h"
#include "exporter/process_metrics.h"
#include "probes/probe_result.h"

namespace smtp {

/// The greeting histogram's upper bounds, in seconds.
inline constexpr std::array<double, 11> kGreetingBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5,   1.0,  2.5,   5.0,  10.0};

/// The EHLO extensions reported as `smtp_ehlo_extension_info{extension}`: the registered ones
/// (IANA's SMTP Service Extensions) an operator alerts on. Others are not reported, so the label
/// set stays bounded whatever a server advertises.
inline constexpr std::array<std::string_view, 16> kReportedExtensions = {"8BITMIME",
                                                                         "AUTH",
                                                                         "BINARYMIME",
                                                                         "CHUNKING",
                                                                         "DELIVERBY",
                                                                         "DSN",
                                                                         "ENHANCEDSTATUSCODES",
                                                                         "ETRN",
                                                                         "EXPN",
                                                                         "LIMITS",
                                                                         "MT-PRIORITY",
                                                                         "PIPELINING",
                                                                         "REQUIRETLS",
                                                                         "SIZE",
                                                                         "SMTPUTF8",
                                                                         "VRFY"};

/// Every series of one target: what its last probe found, and the counts since start.
/// Plain data.
struct TargetSeries {
  std::string labels;        // rendered label pairs, e.g. `target="mx1",team="mail"`
  MetricsSelection metrics;  // the optional families this target shows
  bool expects_hostname = false;
  bool probed = false;  // no series are shown before the first probe

  // The last probe.
  bool success = false;
  std::optional<double> greeting_seconds;  // absent while the last probe got no greeting
  double probe_duration_seconds = 0;
  double last_probe_timestamp_seconds = 0;
  int greeting_code = 0;
  int quit_code = 0;
  // The last plaintext EHLO reply seen (kept through probes that did not get one); absent
  // until one came.
  std::optional<bool> starttls_advertised;
  std::bitset<kPhaseCount> phases_ran;
  std::array<double, kPhaseCount> phase_seconds{};
  // The last banner seen: kept through failed probes, so dashboards still say who answered.
  std::string banner_hostname;
  std::string banner_software;
  bool hostname_matches = false;
  // The last EHLO answered with 250 (kept through failed probes, like the banner).
  bool ehlo_seen = false;
  std::bitset<kReportedExtensions.size()> extensions;
  double size_limit_bytes = 0;  // 0: SIZE without a number, or not advertised

  // TLS targets. The certificate's facts are those of the last handshake that completed; they
  // are kept through failed probes so that an expiry alert does not flap with the server.
  bool tls_target = false;
  bool tls_verified = false;  // the last probe's handshake verified (0 if none completed)
  bool tls_seen = false;      // a handshake has completed at least once
  double tls_cert_expiry = 0;
  std::string tls_version;
  std::string tls_cipher;

  // Since start (kept across reloads for targets that stay).
  std::array<std::uint64_t, kFailureReasonCount> probes_by_result{};
  std::array<std::uint64_t, kGreetingBuckets.size()> greeting_bucket_counts{};  // not cumulative
  std::uint64_t greeting_count = 0;
  double greeting_sum_seconds = 0;
};

/// One target's series, shared with the /metrics snapshots that scrapes take.
using SharedSeries = CopyOnWrite<TargetSeries>;

/// An MX target's own series: what its last successful MX lookup found.
struct MxSeries {
  std::string labels;  // the target's labels (no `mx`)
  bool looked_up = false;
  std::vector<std::pair<std::string, std::uint16_t>> hosts;  // MX host, preference
};

/// Every target's series, as a scrape renders them.
using SeriesList = std::vector<std::shared_ptr<const TargetSeries>>;

/// What a scrape renders: every series as it was when the snapshot was taken.
struct SeriesSnapshot {
  SeriesList series;
  std::vector<MxSeries> mx;  // a few per MX target: copied
};

/// The `target="..."` label and the target's static labels, escaped, in a stable order; for an
/// endpoint of an MX target `mx="<host>"` too, and with all_addresses `address="<ip>"`.
std::string render_target_labels(const TargetConfig& target, std::string_view mx_host = {},
                                 std::string_view address = {});

/// Folds one probe's result into the target's series. `now_unix_seconds` stamps it.
void record_probe(TargetSeries& series, const ProbeResult& result, const TargetConfig& target,
                  double now_unix_seconds);

/// Where the text exposition goes: kept whole in `text`, or, with `spill`, handed on in pieces of
/// about `spill_bytes` (to a compressor) as it is written, so that the text of 100,000 targets
/// (190 MB) is never whole in memory.
struct ExpositionOutput {
  std::string text;
  std::function<void(std::string_view)> spill;  // empty: everything stays in `text`
  std::size_t spill_bytes = std::size_t{1} << 20;

  /// Called after each whole line: hands `text` to `spill` and empties it once it is full.
  void spill_if_full() {
    if (spill && text.size() >= spill_bytes) {
      spill(text);
      text.clear();
    }
  }
};

/// Appends the text exposition (format 0.0.4) of every probed target's series to `out`, grouped
/// by family with one HELP and TYPE each. An optional family (MetricsSelection) has the series of
/// the targets that show it, and no HELP and TYPE when none of them does.
void render_target_series(const SeriesList& targets, ExpositionOutput& out);
/// The same, kept whole in a string.
void render_target_series(const SeriesList& targets, std::string& out);

/// Appends `smtp_mx_hosts` and `smtp_mx_preference` for every MX target that was looked up.
void render_mx_series(const std::vector<MxSeries>& groups, std::string& out);

/// Appends blackbox_exporter's names for what one /probe answer's probe found, where they mean
/// what ours do (so its users' alerts keep working): probe_success, probe_duration_seconds,
/// probe_dns_lookup_time_seconds, probe_ip_protocol (`ip_protocol`: 4, 6, or 0 for none) and,
/// once a handshake completed, probe_ssl_earliest_cert_expiry and probe_tls_version_info.
void render_blackbox_series(const ProbeResult& result, int ip_protocol, std::string& out);

/// The exporter's own metrics, in a prometheus-cpp registry. Also what the HTTP server reports
/// about its connections (the HttpObserver calls).
class ExporterMetrics final : public HttpObserver {
 public:
  ExporterMetrics();

  void set_config_reload(bool successful, double now_unix_seconds);
  void set_targets(std::size_t count) { targets_.Set(static_cast<double>(count)); }
  /// `smtp_exporter_shard_info{index,count}`: which part of the targets this replica probes.
  void set_shard(std::size_t index, std::size_t count);
  void set_probes_in_flight(std::size_t count) { in_flight_.Set(static_cast<double>(count)); }
  void observe_schedule_lag(std::chrono::nanoseconds lag);
  /// A lookup found `count` endpoints more than its target's max_endpoints.
  void count_endpoints_over_limit(std::size_t count) {
    endpoints_over_limit_.Increment(static_cast<double>(count));
  }
  /// The HTTP connection cap (the HTTP part of the open-file budget).
  void set_http_connections_max(std::size_t count) {
    http_connections_max_.Set(static_cast<double>(count));
  }

  void http_connections(std::size_t open) override {
    http_connections_.Set(static_cast<double>(open));
  }
  void http_connection_rejected() override { http_rejected_.Increment(); }
  void http_connection_evicted(HttpEviction why) override;
  void http_connection_timed_out(HttpTimeout what) override;
  void http_pinned_bytes(std::size_t bytes) override {
    http_pinned_bytes_.Set(static_cast<double>(bytes));
  }

  /// One /probe request answered with HTTP `status`.
  void count_probe_request(int status);

  /// prometheus-cpp's text rendering of this registry and the process metrics (thread-safe).
  std::string render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  ProcessCollector process_;  // reads /proc at each render; the start time once
  prometheus::Gauge& reload_successful_;
  prometheus::Gauge& reload_success_timestamp_;
  prometheus::Gauge& targets_;
  prometheus::Gauge& in_flight_;
  prometheus::Histogram& schedule_lag_;
  prometheus::Counter& endpoints_over_limit_;
  prometheus::Gauge& http_connections_;
  prometheus::Gauge& http_connections_max_;
  prometheus::Counter& http_rejected_;
  std::array<prometheus::Counter*, 3> http_evicted_{};    // by HttpEviction
  std::array<prometheus::Counter*, 2> http_timed_out_{};  // by HttpTimeout
  prometheus::Gauge& http_pinned_bytes_;
  prometheus::Family<prometheus::Counter>& probe_requests_;
};

}  // namespace smtp
