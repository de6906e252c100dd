// The `metrics` block's switches: each leaves out exactly its family, per target.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "exporter/metrics.h"
#include "probes/banner.h"
#include "probes/ehlo.h"
#include "probes/reply.h"

namespace smtp {
namespace {

using namespace std::chrono_literals;

/// A probe that fills every optional family: phases, a greeting, and two extensions.
ProbeResult full_probe() {
  ProbeResult result;
  result.phase_durations[static_cast<std::size_t>(Phase::kConnect)] = 1ms;
  result.phase_durations[static_cast<std::size_t>(Phase::kGreeting)] = 20ms;
  result.phase_durations[static_cast<std::size_t>(Phase::kEhlo)] = 2ms;
  result.phase_durations[static_cast<std::size_t>(Phase::kQuit)] = 1ms;
  result.greeting_latency = 20ms;
  result.total = 24ms;
  result.greeting_code = 220;
  result.ehlo_code = 250;
  result.quit_code = 221;
  result.banner = parse_banner(parse_reply("220 mx.test.local ESMTP Postfix\r\n").reply);
  result.capabilities =
      parse_ehlo(parse_reply("250-mx.test.local\r\n250-PIPELINING\r\n250 8BITMIME\r\n").reply);
  result.starttls_advertised = false;
  return result;
}

TargetSeries probed(const std::string& name, const MetricsSelection& selection) {
  TargetConfig target;
  target.name = name;
  target.host = "127.0.0.1";
  target.metrics = selection;
  TargetSeries series;
  series.labels = render_target_labels(target);
  record_probe(series, full_probe(), target, 1);
  return series;
}

std::set<std::string> lines_of(const std::vector<TargetSeries>& targets) {
  SeriesList shared;
  for (const TargetSeries& series : targets)
    shared.push_back(std::make_shared<TargetSeries>(series));
  std::string text;
  render_target_series(shared, text);
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

/// The lines of `all` that `some` lacks.
std::set<std::string> removed(const std::set<std::string>& all, const std::set<std::string>& some) {
  std::set<std::string> out;
  for (const std::string& line : all) {
    if (!some.contains(line)) out.insert(line);
  }
  return out;
}

/// Whether `line` belongs to `family` (a sample, or its HELP or TYPE line).
bool of_family(const std::string& line, const std::string& family) {
  for (const std::string& prefix :
       {family + "{", family + "_bucket{", family + "_sum{", family + "_count{",
        "# HELP " + family + " ", "# TYPE " + family + " "}) {
    if (line.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

struct Switch {
  bool MetricsSelection::*shown;
  std::string family;
  std::size_t samples;  // what full_probe() gives the family for one target
};

const std::vector<Switch> kSwitches = {
    {&MetricsSelection::greeting_histogram, "smtp_greeting_duration_seconds", 14},
    {&MetricsSelection::phases, "smtp_phase_seconds", 4},
    {&MetricsSelection::ehlo_extensions, "smtp_ehlo_extension_info", 2},
};

TEST(MetricsSelectionTest, DefaultShowsEveryFamily) {
  const std::set<std::string> all = lines_of({probed("t", {})});
  for (const Switch& s : kSwitches) {
    std::size_t samples = 0;
    for (const std::string& line : all) {
      if (of_family(line, s.family) && line[0] != '#') ++samples;
    }
    EXPECT_EQ(samples, s.samples) << s.family;
  }
}

TEST(MetricsSelectionTest, EachSwitchRemovesExactlyItsFamily) {
  const std::set<std::string> all = lines_of({probed("t", {})});
  for (const Switch& s : kSwitches) {
    MetricsSelection selection;
    selection.*s.shown = false;
    const std::set<std::string> some = lines_of({probed("t", selection)});
    EXPECT_TRUE(removed(some, all).empty()) << s.family << ": switching off added lines";
    const std::set<std::string> gone = removed(all, some);
    EXPECT_EQ(gone.size(), s.samples + 2) << s.family << ": its samples, HELP and TYPE";
    for (const std::string& line : gone) EXPECT_TRUE(of_family(line, s.family)) << line;
  }
}

TEST(MetricsSelectionTest, AllSwitchesOffRemoveTheSumOfTheirFamilies) {
  MetricsSelection none{false, false, false};
  const std::set<std::string> all = lines_of({probed("t", {})});
  const std::set<std::string> gone = removed(all, lines_of({probed("t", none)}));
  std::size_t expected = 0;
  for (const Switch& s : kSwitches) expected += s.samples + 2;
  EXPECT_EQ(gone.size(), expected);
}

TEST(MetricsSelectionTest, OneTargetsSwitchLeavesTheOthersSeries) {
  for (const Switch& s : kSwitches) {
    MetricsSelection selection;
    selection.*s.shown = false;
    const std::set<std::string> both = lines_of({probed("on", {}), probed("off", selection)});
    std::size_t on = 0;
    for (const std::string& line : both) {
      if (!of_family(line, s.family)) continue;
      EXPECT_EQ(line.find("target=\"off\""), std::string::npos) << line;
      if (line.find("target=\"on\"") != std::string::npos) ++on;
    }
    EXPECT_EQ(on, s.samples) << s.family;
    EXPECT_TRUE(both.contains("# TYPE " + s.family + (s.samples == 14 ? " histogram" : " gauge")));
  }
}

}  // namespace
}  // namespace smtp
