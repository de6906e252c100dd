#include "exporter/duration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace smtp {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

constexpr std::int64_t kDayMs = 24 * 3600 * 1000LL;

TEST(ParseDuration, SingleUnits) {
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("10s"), 10s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  EXPECT_EQ(parse_duration("2d"), milliseconds(2 * kDayMs));
  EXPECT_EQ(parse_duration("1w"), milliseconds(7 * kDayMs));
  EXPECT_EQ(parse_duration("1y"), milliseconds(365 * kDayMs));
}

TEST(ParseDuration, CombinedUnitsInDecreasingOrder) {
  EXPECT_EQ(parse_duration("1m30s"), 90s);
  EXPECT_EQ(parse_duration("1h1m1s1ms"), 3'661'001ms);
  EXPECT_EQ(parse_duration("1y1w1d1h1m1s1ms"), milliseconds(373 * kDayMs + 3'661'001));
  EXPECT_EQ(parse_duration("1d12h"), 36h);
  EXPECT_EQ(parse_duration("2s500ms"), 2500ms);
}

TEST(ParseDuration, Zero) {
  EXPECT_EQ(parse_duration("0s"), 0ms);
  EXPECT_EQ(parse_duration("0ms"), 0ms);
  // Prometheus accepts a bare 0.
  EXPECT_EQ(parse_duration("0"), 0ms);
}

TEST(ParseDuration, LeadingZerosAndLargeNumbers) {
  EXPECT_EQ(parse_duration("010s"), 10s);
  EXPECT_EQ(parse_duration("90m"), 90min);
  EXPECT_EQ(parse_duration("3600s"), 1h);
  EXPECT_EQ(parse_duration("1500ms"), 1500ms);
}

TEST(ParseDuration, RejectsMalformed) {
  for (const char* text : {
           "",     " ",    "10",   "1",     "s",    "ms",    "-1s",  "+1s",   "1.5s", ".5s",
           "1,5s", "10 s", " 10s", "10s ",  "10S",  "10sec", "1min", "1hour", "10us", "10ns",
           "1M",   "1D",   "1m30", "1h-1m", "1s1m", "1ms1s", "1s1s", "1m1m",  "1d1y", "1w1y",
           "1h1d", "1s1h", "1mss", "10s\n", "1e3s", "0x10s", "∞s",   "10s10", "10ss", "s10",
       }) {
    EXPECT_EQ(parse_duration(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(ParseDuration, RejectsEmbeddedNul) {
  using namespace std::string_view_literals;
  EXPECT_EQ(parse_duration("10s\0"sv), std::nullopt);
  EXPECT_EQ(parse_duration("1\0s"sv), std::nullopt);
}

TEST(ParseDuration, RejectsOverflow) {
  // The limit is what still fits in int64 nanoseconds: 9223372036854 ms, about 292 years.
  EXPECT_EQ(parse_duration("9223372036854ms"), milliseconds(9223372036854));
  EXPECT_EQ(parse_duration("9223372036855ms"), std::nullopt);
  EXPECT_EQ(parse_duration("292y"), milliseconds(292 * 365 * kDayMs));
  EXPECT_EQ(parse_duration("293y"), std::nullopt);
  EXPECT_EQ(parse_duration("292y52w"), std::nullopt);
  EXPECT_EQ(parse_duration("99999999999999999999999s"), std::nullopt);
  EXPECT_EQ(parse_duration("18446744073709551616ms"), std::nullopt);
}

TEST(FormatDuration, Inverse) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(90000ms), "1m30s");
  EXPECT_EQ(format_duration(500ms), "500ms");
  EXPECT_EQ(format_duration(10s), "10s");
  EXPECT_EQ(format_duration(1h), "1h");
  EXPECT_EQ(format_duration(3'661'001ms), "1h1m1s1ms");
  EXPECT_EQ(format_duration(milliseconds(7 * kDayMs)), "1w");
  EXPECT_EQ(format_duration(milliseconds(365 * kDayMs)), "1y");
  EXPECT_EQ(format_duration(-10s), "-10s");
}

TEST(FormatDuration, YearsAndWeeksOnlyWhenExact) {
  EXPECT_EQ(format_duration(milliseconds(90 * kDayMs)), "90d");
  EXPECT_EQ(format_duration(milliseconds(14 * kDayMs)), "2w");
  EXPECT_EQ(format_duration(milliseconds(8 * kDayMs)), "8d");
  EXPECT_EQ(format_duration(milliseconds(8 * kDayMs + 1000)), "8d1s");
}

TEST(FormatDuration, RoundTrips) {
  for (const char* text : {"1ms", "999ms", "1s", "59s", "1m", "1m30s", "1h", "23h59m59s999ms", "1d",
                           "6d23h", "1w", "2w", "1y", "2y", "90d", "1d1ms"}) {
    const auto parsed = parse_duration(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(format_duration(*parsed), text);
  }
}

}  // namespace
}  // namespace smtp
