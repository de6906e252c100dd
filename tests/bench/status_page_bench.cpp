// The status page for N endpoints, each probed kLatencyHistory times (one in ten failing, with
// a hint): the snapshot on the probe thread, then on the render thread the rows made from it and
// the render of the first page, of the last page and of a filtered page. Best of `rounds`, in
// milliseconds.
//
//   status_page_bench [targets=10000] [rounds=5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "exporter/endpoint_status.h"
#include "exporter/status_page.h"
#include "exporter/status_snapshot.h"
#include "exporter/target_set.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr double kNow = 1'800'000'000;

smtp::ProbeResult probe_result(std::size_t target, std::size_t round) {
  smtp::ProbeResult result;
  if (target % 10 == 0) {
    result.failure = smtp::FailureReason::kConnectRefused;
    result.failed_phase = smtp::Phase::kConnect;
    result.error_detail = "connect: Connection refused";
    result.transcript.push_back({1ms, smtp::TranscriptLine::Direction::kNote, "refused"});
    return result;
  }
  result.greeting_latency = std::chrono::microseconds(2000 + (target * 7 + round * 13) % 900);
  result.banner = smtp::BannerInfo{"mx" + std::to_string(target) + ".test.local", "postfix"};
  for (const char* line : {"220 mx.test.local ESMTP Postfix (Debian/GNU)", "EHLO monitor",
                           "250-mx.test.local", "250-PIPELINING", "250-SIZE 10240000",
                           "250-STARTTLS", "250 8BITMIME", "QUIT", "221 2.0.0 Bye"}) {
    result.transcript.push_back({1ms, smtp::TranscriptLine::Direction::kReceived, line});
  }
  return result;
}

template <typename Work>
double best_ms(int rounds, Work work) {
  double best = 1e300;
  for (int i = 0; i < rounds; ++i) {
    const auto start = Clock::now();
    work();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t targets = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;

  std::vector<smtp::TargetConfig> configs;
  for (std::size_t i = 0; i < targets; ++i) {
    smtp::TargetConfig config;
    config.name = "mx" + std::to_string(i) + ".example.org";
    config.host = "192.0.2." + std::to_string(i % 250 + 1);
    configs.push_back(std::move(config));
  }
  smtp::TargetSet set;
  set.apply_config(std::move(configs));
  std::size_t n = 0;
  for (const auto& [key, endpoint] : set.endpoints()) {
    for (std::size_t round = 0; round < smtp::kLatencyHistory; ++round) {
      smtp::ProbeResult result = probe_result(n, round);
      smtp::record_probe(endpoint->series.edit(), result, *endpoint->config, kNow);
      smtp::record_status(endpoint->status.edit(), *endpoint->probe, std::move(result), kNow);
    }
    ++n;
  }

  smtp::StatusSources sources;
  const double take = best_ms(rounds, [&] { sources = smtp::take_status_sources(set); });
  smtp::StatusSnapshot snapshot;
  const double rows = best_ms(rounds, [&] { snapshot = smtp::make_status_snapshot(sources); });
  std::size_t bytes = 0;
  const auto render = [&](smtp::StatusQuery query) {
    return best_ms(rounds, [&] { bytes = smtp::render_status_page(snapshot, query, kNow).size(); });
  };
  const double first = render({});
  const std::size_t first_bytes = bytes;
  const double last = render({.page = targets});
  const double filtered = render({.filter = "mx99"});
  std::printf("status page, %zu endpoints (best of %d):\n", targets, rounds);
  std::printf("  snapshot (probe thread)        %8.2f ms\n", take);
  std::printf("  rows made (render thread)      %8.2f ms\n", rows);
  std::printf("  render page 1 (%zu bytes)  %8.2f ms\n", first_bytes, first);
  std::printf("  render last page               %8.2f ms\n", last);
  std::printf("  render ?q=mx99                 %8.2f ms\n", filtered);
  return 0;
}
