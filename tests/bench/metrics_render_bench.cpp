// /metrics for N targets: the exporter's own renderer against prometheus-cpp's Collect() +
// TextSerializer over the same series, in one run, reported as a ratio (the machine is shared:
// absolute times drift, ratios hold). Also the parts a scrape costs: the snapshot on the probe
// thread, gzip of the whole text (a scrape without gzip), and the text gzipped as it is rendered
// (a scrape with gzip: Prometheus's).
//
//   metrics_render_bench [targets=10000] [rounds=3]
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "exporter/metrics.h"
#include "exporter/metrics_endpoint.h"
#include "probes/banner.h"
#include "probes/ehlo.h"
#include "probes/reply.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

smtp::ProbeResult typical_result() {
  smtp::ProbeResult result;
  for (smtp::Phase phase :
       {smtp::Phase::kConnect, smtp::Phase::kGreeting, smtp::Phase::kEhlo, smtp::Phase::kQuit}) {
    result.phase_durations[static_cast<std::size_t>(phase)] = 700us;
  }
  result.greeting_latency = 3ms;
  result.total = 4ms;
  result.greeting_code = 220;
  result.ehlo_code = 250;
  result.quit_code = 221;
  result.banner = smtp::parse_banner(
      smtp::parse_reply("220 mx.test.local ESMTP Postfix (Debian/GNU)\r\n").reply);
  result.capabilities = smtp::parse_ehlo(
      smtp::parse_reply("250-mx\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n").reply);
  return result;
}

/// The same series in a prometheus-cpp registry, as an exporter built on its families would
/// hold them.
void fill_registry(prometheus::Registry& registry, const std::vector<smtp::TargetConfig>& targets,
                   const smtp::ProbeResult& result) {
  auto gauge = [&](const char* name) -> prometheus::Family<prometheus::Gauge>& {
    return prometheus::BuildGauge().Name(name).Help("help").Register(registry);
  };
  std::vector<prometheus::Family<prometheus::Gauge>*> gauges = {
      &gauge("smtp_probe_success"),
      &gauge("smtp_greeting_seconds"),
      &gauge("smtp_probe_duration_seconds"),
      &gauge("smtp_greeting_code"),
      &gauge("smtp_quit_code"),
      &gauge("smtp_quit_success"),
      &gauge("smtp_starttls_advertised"),
      &gauge("smtp_size_limit_bytes"),
      &gauge("smtp_last_probe_timestamp_seconds")};
  auto& phases = gauge("smtp_phase_seconds");
  auto& banner = gauge("smtp_banner_info");
  auto& extensions = gauge("smtp_ehlo_extension_info");
  auto& probes =
      prometheus::BuildCounter().Name("smtp_probes_total").Help("help").Register(registry);
  auto& histogram = prometheus::BuildHistogram()
                        .Name("smtp_greeting_duration_seconds")
                        .Help("help")
                        .Register(registry);
  prometheus::Histogram::BucketBoundaries buckets(smtp::kGreetingBuckets.begin(),
                                                  smtp::kGreetingBuckets.end());
  for (const smtp::TargetConfig& target : targets) {
    prometheus::Labels labels = {{"target", target.name}, {"team", "mail"}};
    for (auto* family : gauges) family->Add(labels).Set(1);
    for (const char* phase : {"connect", "greeting", "ehlo", "quit"}) {
      auto with_phase = labels;
      with_phase["phase"] = phase;
      phases.Add(with_phase).Set(0.0007);
    }
    auto with_banner = labels;
    with_banner["hostname"] = result.banner->hostname;
    with_banner["software"] = result.banner->software;
    banner.Add(with_banner).Set(1);
    for (const char* extension : {"PIPELINING", "SIZE", "8BITMIME"}) {
      auto with_extension = labels;
      with_extension["extension"] = extension;
      extensions.Add(with_extension).Set(1);
    }
    auto with_result = labels;
    with_result["result"] = "success";
    probes.Add(with_result).Increment();
    histogram.Add(labels, buckets).Observe(0.003);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int target_count = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const smtp::ProbeResult result = typical_result();

  std::vector<smtp::TargetConfig> targets(target_count);
  std::vector<smtp::SharedSeries> series(target_count);
  for (int i = 0; i < target_count; ++i) {
    targets[i].name = "target-" + std::to_string(i);
    targets[i].labels = {{"team", "mail"}};
    smtp::TargetSeries& target_series = series[i].edit();
    target_series.labels = smtp::render_target_labels(targets[i]);
    smtp::record_probe(target_series, result, targets[i], 1.8e9);
  }
  prometheus::Registry registry;
  fill_registry(registry, targets, result);

  std::printf("%d targets, %d rounds\n", target_count, rounds);
  std::vector<double> ratios;
  for (int round = 0; round < rounds; ++round) {
    auto start = Clock::now();
    smtp::SeriesList snapshot;
    snapshot.reserve(series.size());
    for (const smtp::SharedSeries& target_series : series)
      snapshot.push_back(target_series.share());
    double snapshot_ms = ms_since(start);
    start = Clock::now();
    std::string ours;
    smtp::render_target_series(snapshot, ours);
    double ours_ms = ms_since(start);
    const double text_mb = ours.size() / 1e6;
    const auto lines = static_cast<long>(std::count(ours.begin(), ours.end(), '\n'));
    start = Clock::now();
    std::string compressed = smtp::gzip_compress(ours);
    double gzip_ms = ms_since(start);
    ours.clear();
    ours.shrink_to_fit();

    // What a gzip scrape does: the text compressed as it is rendered, never whole.
    start = Clock::now();
    smtp::GzipStream stream(snapshot.size() * 2000);
    smtp::ExpositionOutput spilled;
    spilled.spill = [&stream](std::string_view piece) { stream.write(piece); };
    smtp::render_target_series(snapshot, spilled);
    stream.write(spilled.text);
    const std::string streamed = stream.finish();
    double streamed_ms = ms_since(start);

    start = Clock::now();
    std::vector<prometheus::MetricFamily> families = registry.Collect();
    double collect_ms = ms_since(start);
    start = Clock::now();
    std::ostringstream theirs;
    prometheus::TextSerializer().Serialize(theirs, families);
    double serialize_ms = ms_since(start);

    double ratio = ours_ms / (collect_ms + serialize_ms);
    ratios.push_back(ratio);
    std::printf(
        "round %d: ours: snapshot %.1f ms (probe thread) + render %.1f ms (%.1f MB, %ld lines)"
        " + gzip %.1f ms (%.2f MB); streamed render+gzip %.1f ms | prometheus-cpp: Collect %.1f "
        "ms + TextSerializer %.1f ms (%.1f MB) | render ratio ours/prometheus-cpp %.2f\n",
        round + 1, snapshot_ms, ours_ms, text_mb, lines, gzip_ms, compressed.size() / 1e6,
        streamed_ms, collect_ms, serialize_ms, theirs.str().size() / 1e6, ratio);
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf("median render ratio ours/prometheus-cpp: %.2f\n", ratios[ratios.size() / 2]);
}
