// ProbeResult -> text exposition: names, types, labels, and which series exist when.
#include "exporter/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "probes/banner.h"
#include "probes/ehlo.h"
#include "probes/reply.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

TargetConfig make_target(std::string name) {
  TargetConfig target;
  target.name = std::move(name);
  target.host = "127.0.0.1";
  return target;
}

ProbeResult successful_probe(std::string banner_line = "220 mx.test.local ESMTP Postfix") {
  ProbeResult result;
  result.phase_durations[static_cast<std::size_t>(Phase::kConnect)] = 1ms;
  result.phase_durations[static_cast<std::size_t>(Phase::kGreeting)] = 150ms;
  result.phase_durations[static_cast<std::size_t>(Phase::kEhlo)] = 2ms;
  result.phase_durations[static_cast<std::size_t>(Phase::kQuit)] = 1ms;
  result.greeting_latency = 150ms;
  result.total = 154ms;
  result.greeting_code = 220;
  result.ehlo_code = 250;
  result.quit_code = 221;
  result.banner = parse_banner(parse_reply(banner_line + "\r\n").reply);
  result.starttls_advertised = false;  // a plaintext EHLO reply came, without STARTTLS
  return result;
}

ProbeResult refused_probe() {
  ProbeResult refused;
  refused.failure = FailureReason::kConnectRefused;
  refused.failed_phase = Phase::kConnect;
  refused.phase_durations[static_cast<std::size_t>(Phase::kConnect)] = 1ms;
  refused.total = 1ms;
  return refused;
}

std::string render(const std::vector<TargetSeries>& targets) {
  SeriesList shared;
  for (const TargetSeries& series : targets)
    shared.push_back(std::make_shared<TargetSeries>(series));
  std::string out;
  render_target_series(shared, out);
  return out;
}

std::vector<std::string> lines_starting_with(const std::string& text, const std::string& prefix) {
  std::vector<std::string> found;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) found.push_back(line);
  }
  return found;
}

TEST(MetricsTest, SuccessfulProbeGivesTheContractSeries) {
  TargetConfig target = make_target("postfix");
  TargetSeries series;
  series.labels = render_target_labels(target);
  record_probe(series, successful_probe(), target, 1700000000.5);
  std::string text = render({series});

  EXPECT_THAT(text, HasSubstr("# TYPE smtp_probe_success gauge\n"));
  EXPECT_THAT(text, HasSubstr("smtp_probe_success{target=\"postfix\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("smtp_greeting_seconds{target=\"postfix\"} 0.15\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE smtp_greeting_duration_seconds histogram\n"));
  EXPECT_THAT(
      text, HasSubstr("smtp_greeting_duration_seconds_bucket{target=\"postfix\",le=\"0.1\"} 0\n"));
  EXPECT_THAT(
      text, HasSubstr("smtp_greeting_duration_seconds_bucket{target=\"postfix\",le=\"0.25\"} 1\n"));
  EXPECT_THAT(
      text, HasSubstr("smtp_greeting_duration_seconds_bucket{target=\"postfix\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("smtp_greeting_duration_seconds_count{target=\"postfix\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("smtp_phase_seconds{target=\"postfix\",phase=\"greeting\"} 0.15\n"));
  EXPECT_THAT(text, HasSubstr("smtp_probe_duration_seconds{target=\"postfix\"} 0.154\n"));
  EXPECT_THAT(text, HasSubstr("smtp_greeting_code{target=\"postfix\"} 220\n"));
  EXPECT_THAT(text, HasSubstr("smtp_quit_code{target=\"postfix\"} 221\n"));
  EXPECT_THAT(text, HasSubstr("smtp_quit_success{target=\"postfix\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("smtp_banner_info{target=\"postfix\",hostname=\"mx.test.local\","
                              "software=\"postfix\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE smtp_probes_total counter\n"));
  EXPECT_THAT(text, HasSubstr("smtp_probes_total{target=\"postfix\",result=\"success\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("smtp_last_probe_timestamp_seconds{target=\"postfix\"} 1700000000.5\n"));
  EXPECT_THAT(text, HasSubstr("smtp_starttls_advertised{target=\"postfix\"} 0\n"));
  // Phases that did not run have no series; without expect_hostname there is no match gauge.
  EXPECT_THAT(text, Not(HasSubstr("phase=\"resolve\"")));
  EXPECT_THAT(text, Not(HasSubstr("phase=\"starttls\"")));
  EXPECT_THAT(text, Not(HasSubstr("smtp_banner_hostname_match{")));
}

TEST(SharedSeriesTest, ASnapshotKeepsTheSeriesAsTheyWereWhenItWasTaken) {
  const TargetConfig target = make_target("mx1");
  SharedSeries live;
  live.edit().labels = render_target_labels(target);
  record_probe(live.edit(), successful_probe(), target, 1000);

  const std::shared_ptr<const TargetSeries> snapshot = live.share();
  record_probe(live.edit(), refused_probe(), target, 1010);
  EXPECT_TRUE(snapshot->success);  // the probe after the snapshot went to a copy
  EXPECT_EQ(snapshot->last_probe_timestamp_seconds, 1000);
  EXPECT_FALSE(live->success);
  EXPECT_EQ(live->last_probe_timestamp_seconds, 1010);
  EXPECT_EQ(live->labels, "target=\"mx1\"");
  EXPECT_EQ(live->probes_by_result[0], 1u);  // the counts carried over to the copy
}

TEST(SharedSeriesTest, SeriesNoSnapshotHoldsAreChangedInPlace) {
  const TargetConfig target = make_target("mx1");
  SharedSeries live;
  const TargetSeries* before = &live.edit();
  live.share();  // a snapshot taken and let go
  record_probe(live.edit(), successful_probe(), target, 1000);
  EXPECT_EQ(&*live, before);
  EXPECT_TRUE(live->success);
}

TEST(MetricsTest, SpilledTextIsTheWholeTextInPiecesOfWholeLines) {
  std::vector<TargetSeries> targets;
  for (int i = 0; i < 50; ++i) {
    const TargetConfig target = make_target("mx" + std::to_string(i));
    TargetSeries& series = targets.emplace_back();
    series.labels = render_target_labels(target);
    record_probe(series, successful_probe(), target, 1000);
  }
  const std::string whole = render(targets);

  SeriesList shared;
  for (const TargetSeries& series : targets)
    shared.push_back(std::make_shared<TargetSeries>(series));
  std::vector<std::string> pieces;
  ExpositionOutput out;
  out.spill = [&pieces](std::string_view piece) { pieces.emplace_back(piece); };
  out.spill_bytes = 500;
  render_target_series(shared, out);
  ASSERT_GT(pieces.size(), 10u);
  std::string joined;
  for (const std::string& piece : pieces) {
    EXPECT_GE(piece.size(), 500u);
    EXPECT_EQ(piece.back(), '\n');
    joined += piece;
  }
  EXPECT_LT(out.text.size(), 500u + 200u);  // the rest, less than a piece and its last line
  EXPECT_EQ(joined + out.text, whole);
}

TEST(MetricsTest, NoSeriesBeforeTheFirstProbe) {
  TargetSeries series;
  series.labels = render_target_labels(make_target("fresh"));
  std::string text = render({series});
  EXPECT_THAT(text, Not(HasSubstr("fresh")));
  EXPECT_THAT(text, HasSubstr("# TYPE smtp_probe_success gauge"));  // families still declared
}

TEST(MetricsTest, FailedProbeCountsItsReasonAndZeroesCodes) {
  TargetConfig target = make_target("down");
  TargetSeries series;
  series.labels = render_target_labels(target);
  record_probe(series, successful_probe(), target, 1);
  const ProbeResult refused = refused_probe();
  record_probe(series, refused, target, 2);
  record_probe(series, refused, target, 3);
  std::string text = render({series});
  EXPECT_THAT(text, HasSubstr("smtp_probe_success{target=\"down\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("smtp_greeting_code{target=\"down\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("smtp_quit_code{target=\"down\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("smtp_probes_total{target=\"down\",result=\"connect_refused\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("smtp_probes_total{target=\"down\",result=\"success\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("phase=\"greeting\"")));  // the last probe had no greeting
  EXPECT_THAT(text, HasSubstr("smtp_greeting_duration_seconds_count{target=\"down\"} 1\n"));
  // The last banner seen stays, so an outage still shows who used to answer.
  EXPECT_THAT(text, HasSubstr("smtp_banner_info{target=\"down\",hostname=\"mx.test.local\""));
}

TEST(MetricsTest, GreetingSecondsIsAGapWhileNoGreetingCame) {
  // A 0 would drag latency panels and averages down exactly when the server is down.
  TargetConfig target = make_target("gap");
  TargetSeries series;
  series.labels = render_target_labels(target);
  record_probe(series, successful_probe(), target, 1);
  EXPECT_THAT(render({series}), HasSubstr("smtp_greeting_seconds{target=\"gap\"} 0.15\n"));
  record_probe(series, refused_probe(), target, 2);
  std::string text = render({series});
  EXPECT_THAT(text, HasSubstr("# TYPE smtp_greeting_seconds gauge\n"));
  EXPECT_THAT(text, HasSubstr("smtp_probe_success{target=\"gap\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("smtp_greeting_seconds{")));
  record_probe(series, successful_probe(), target, 3);
  EXPECT_THAT(render({series}), HasSubstr("smtp_greeting_seconds{target=\"gap\"} 0.15\n"));
}

TEST(MetricsTest, StarttlsAdvertisedOnlyOnceAPlaintextEhloReplyWasSeen) {
  TargetConfig target = make_target("tls");
  target.tls = TlsMode::kStartTls;
  TargetSeries series;
  series.labels = render_target_labels(target);
  record_probe(series, refused_probe(), target, 1);
  std::string text = render({series});
  EXPECT_THAT(text, HasSubstr("smtp_probe_success{target=\"tls\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("smtp_starttls_advertised{")));  // unknown: no EHLO yet

  ProbeResult offered = successful_probe();
  offered.starttls_advertised = true;
  record_probe(series, offered, target, 2);
  EXPECT_THAT(render({series}), HasSubstr("smtp_starttls_advertised{target=\"tls\"} 1\n"));
  // A probe that never reached EHLO says nothing about it: the last reply seen stands.
  record_probe(series, refused_probe(), target, 3);
  EXPECT_THAT(render({series}), HasSubstr("smtp_starttls_advertised{target=\"tls\"} 1\n"));
  record_probe(series, successful_probe(), target, 4);
  EXPECT_THAT(render({series}), HasSubstr("smtp_starttls_advertised{target=\"tls\"} 0\n"));
}

TEST(MetricsTest, ChangingBannerDateKeepsOneInfoSeries) {
  TargetConfig target = make_target("exim");
  TargetSeries series;
  series.labels = render_target_labels(target);
  for (int second = 0; second < 20; ++second) {
    record_probe(series,
                 successful_probe("220 mx.test.local ESMTP Exim 4.96 Sun, 29 Nov 2026 06:00:" +
                                  std::to_string(10 + second) + " +0000"),
                 target, second);
  }
  std::string text = render({series});
  auto info = lines_starting_with(text, "smtp_banner_info{");
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0],
            "smtp_banner_info{target=\"exim\",hostname=\"mx.test.local\","
            "software=\"exim\"} 1");
}

TEST(MetricsTest, HostnameMatchOnlyWhereExpected) {
  TargetConfig target = make_target("checked");
  target.expect_hostname = "mx.test.local";
  TargetSeries series;
  series.labels = render_target_labels(target);
  record_probe(series, successful_probe(), target, 1);
  EXPECT_THAT(render({series}), HasSubstr("smtp_banner_hostname_match{target=\"checked\"} 1\n"));
  record_probe(series, successful_probe("220 other.test.local ESMTP"), target, 2);
  EXPECT_THAT(render({series}), HasSubstr("smtp_banner_hostname_match{target=\"checked\"} 0\n"));
}

TEST(MetricsTest, StaticLabelsAreSortedAndEscaped) {
  TargetConfig target = make_target("we\"ird\\name");
  target.labels = {{"team", "mail"}, {"env", "line\nbreak"}};
  EXPECT_EQ(render_target_labels(target),
            "target=\"we\\\"ird\\\\name\",env=\"line\\nbreak\",team=\"mail\"");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  TargetConfig target = make_target("h");
  TargetSeries series;
  series.labels = render_target_labels(target);
  for (auto latency : {3ms, 30ms, 300ms, 3000ms, 30000ms}) {
    ProbeResult r = successful_probe();
    r.greeting_latency = latency;
    record_probe(series, r, target, 1);
  }
  std::string text = render({series});
  EXPECT_THAT(text, HasSubstr("_bucket{target=\"h\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("_bucket{target=\"h\",le=\"0.05\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("_bucket{target=\"h\",le=\"0.5\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("_bucket{target=\"h\",le=\"5\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("_bucket{target=\"h\",le=\"10\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("_bucket{target=\"h\",le=\"+Inf\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("smtp_greeting_duration_seconds_sum{target=\"h\"} 33.333\n"));
}

TEST(MetricsTest, FamiliesAreContiguousAcrossTargets) {
  std::vector<TargetSeries> all;
  for (std::string name : {"a", "b", "c"}) {
    TargetConfig target = make_target(name);
    TargetSeries series;
    series.labels = render_target_labels(target);
    record_probe(series, successful_probe(), target, 1);
    all.push_back(series);
  }
  std::string text = render(all);
  // Every sample of a family follows its TYPE line before the next family starts.
  std::istringstream in(text);
  std::string family;
  std::set<std::string> seen;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(seen.insert(family).second) << family << " declared twice";
    } else if (line[0] != '#') {
      EXPECT_EQ(line.rfind(family, 0), 0u) << line << " outside its family " << family;
    }
  }
  EXPECT_EQ(lines_starting_with(text, "smtp_probe_success{").size(), 3u);
}

TEST(MetricsTest, ExporterMetricsRenderWithPrometheusCpp) {
  ExporterMetrics metrics;
  metrics.set_config_reload(true, 1700000000);
  metrics.set_targets(3);
  metrics.observe_schedule_lag(2ms);
  std::string text = metrics.render();
  EXPECT_THAT(text, HasSubstr("smtp_exporter_config_last_reload_successful 1"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_targets 3"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_schedule_lag_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_build_info{"));
  EXPECT_THAT(text, HasSubstr("process_open_fds"));
  metrics.set_config_reload(false, 1700000100);
  EXPECT_THAT(metrics.render(), HasSubstr("smtp_exporter_config_last_reload_successful 0"));
}

TEST(MetricsTest, ExporterMetricsCountWhatTheHttpServerReports) {
  ExporterMetrics metrics;
  // Every series exists from the start, at 0, so that rate() and alerts see the first event.
  std::string text = metrics.render();
  EXPECT_THAT(text, HasSubstr("smtp_exporter_http_connections 0\n"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_http_connections_rejected_total 0\n"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_http_connections_evicted_total{reason=\"idle\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("smtp_exporter_http_connections_timed_out_total{stage=\"response\"} 0\n"));

  HttpObserver& observer = metrics;
  metrics.set_http_connections_max(56);
  observer.http_connections(7);
  observer.http_connection_rejected();
  observer.http_connection_rejected();
  observer.http_connection_evicted(HttpEviction::kIdle);
  observer.http_connection_evicted(HttpEviction::kIncompleteRequest);
  observer.http_connection_evicted(HttpEviction::kIncompleteRequest);
  observer.http_connection_evicted(HttpEviction::kSlowReader);
  observer.http_connection_timed_out(HttpTimeout::kRequest);
  observer.http_connection_timed_out(HttpTimeout::kResponse);
  observer.http_connection_timed_out(HttpTimeout::kResponse);
  observer.http_pinned_bytes(6000000);
  text = metrics.render();
  EXPECT_THAT(text, HasSubstr("smtp_exporter_http_connections 7\n"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_http_connections_max 56\n"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_http_connections_rejected_total 2\n"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_http_connections_evicted_total{reason=\"idle\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("smtp_exporter_http_connections_evicted_total{reason=\"incomplete_request\"} 2\n"));
  EXPECT_THAT(
      text, HasSubstr("smtp_exporter_http_connections_evicted_total{reason=\"slow_reader\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("smtp_exporter_http_connections_timed_out_total{stage=\"request\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("smtp_exporter_http_connections_timed_out_total{stage=\"response\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("smtp_exporter_http_response_bytes_pinned 6000000\n"));
}

}  // namespace
}  // namespace smtp

namespace smtp {
namespace {

TEST(MetricsTest, TlsTargetSeries) {
  TargetConfig target = make_target("tls");
  target.tls = TlsMode::kStartTls;
  TargetSeries series;
  series.labels = render_target_labels(target);

  // Before any handshake: verified reads 0, and there is no expiry (0 would fire expiry alerts).
  ProbeResult refused;
  refused.failure = FailureReason::kConnectRefused;
  record_probe(series, refused, target, 1);
  std::string text = render({series});
  EXPECT_THAT(text, HasSubstr("smtp_tls_cert_verified{target=\"tls\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("smtp_tls_cert_expiry_timestamp_seconds{")));
  EXPECT_THAT(text, Not(HasSubstr("smtp_tls_info{")));

  ProbeResult ok = successful_probe();
  ok.tls = TlsFacts{"TLS 1.3", "TLS_AES_256_GCM_SHA384", 1800000000, true, ""};
  record_probe(series, ok, target, 2);
  text = render({series});
  EXPECT_THAT(text, HasSubstr("smtp_tls_cert_verified{target=\"tls\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("smtp_tls_cert_expiry_timestamp_seconds{target=\"tls\"} 1800000000\n"));
  EXPECT_THAT(text, HasSubstr("smtp_tls_info{target=\"tls\",version=\"TLS 1.3\","
                              "cipher=\"TLS_AES_256_GCM_SHA384\"} 1\n"));

  // A later failed probe: not verified now, but the certificate's expiry is still known.
  record_probe(series, refused, target, 3);
  text = render({series});
  EXPECT_THAT(text, HasSubstr("smtp_tls_cert_verified{target=\"tls\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("smtp_tls_cert_expiry_timestamp_seconds{target=\"tls\"} 1800000000\n"));
}

TEST(MetricsTest, PlainTargetsHaveNoTlsSeries) {
  TargetConfig target = make_target("plain");
  TargetSeries series;
  series.labels = render_target_labels(target);
  record_probe(series, successful_probe(), target, 1);
  EXPECT_THAT(render({series}), Not(HasSubstr("smtp_tls_cert_verified{")));
}

TEST(MetricsTest, EhloExtensionsAreBoundedAndSizeIsReported) {
  TargetConfig target = make_target("ext");
  TargetSeries series;
  series.labels = render_target_labels(target);
  ProbeResult r = successful_probe();
  Reply ehlo = parse_reply(
                   "250-mx.test.local\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                   "250-X-WHATEVER-12345\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n")
                   .reply;
  r.capabilities = parse_ehlo(ehlo);
  record_probe(series, r, target, 1);
  std::string text = render({series});
  EXPECT_THAT(text, HasSubstr("smtp_size_limit_bytes{target=\"ext\"} 10240000\n"));
  EXPECT_THAT(text,
              HasSubstr("smtp_ehlo_extension_info{target=\"ext\",extension=\"PIPELINING\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("smtp_ehlo_extension_info{target=\"ext\",extension=\"SMTPUTF8\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("smtp_ehlo_extension_info{target=\"ext\",extension=\"SIZE\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("X-WHATEVER")));  // unregistered keywords never become labels
  EXPECT_EQ(lines_starting_with(text, "smtp_ehlo_extension_info{").size(), 3u);
}

TEST(MetricsTest, MxSeriesAndEndpointLabels) {
  TargetConfig target = make_target("example");
  target.labels = {{"team", "mail"}};
  EXPECT_EQ(render_target_labels(target, "mx1.example.com"),
            "target=\"example\",team=\"mail\",mx=\"mx1.example.com\"");
  MxSeries group;
  group.labels = render_target_labels(target);
  group.looked_up = true;
  group.hosts = {{"mx1.example.com", 10}, {"mx2.example.com", 20}};
  std::string text;
  render_mx_series({group}, text);
  EXPECT_THAT(text, HasSubstr("smtp_mx_hosts{target=\"example\",team=\"mail\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("smtp_mx_preference{target=\"example\",team=\"mail\","
                              "mx=\"mx2.example.com\"} 20\n"));
  MxSeries not_yet;
  not_yet.labels = "target=\"later\"";
  text.clear();
  render_mx_series({not_yet}, text);
  EXPECT_THAT(text, Not(HasSubstr("later")));
}

}  // namespace
}  // namespace smtp
