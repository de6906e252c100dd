// Nagios plugin threshold ranges, as the plugin development guidelines define them.
#include "exporter/nagios_range.h"

#include <gtest/gtest.h>

#include <limits>

namespace smtp {
namespace {

NagiosRange parse(std::string_view text) {
  std::string error;
  std::optional<NagiosRange> range = parse_nagios_range(text, error);
  EXPECT_TRUE(range.has_value()) << text << ": " << error;
  return range.value_or(NagiosRange{});
}

std::string error_of(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_nagios_range(text, error).has_value()) << text;
  return error;
}

TEST(NagiosRangeTest, PlainNumberAlertsOutsideZeroToIt) {
  const NagiosRange r = parse("10");
  EXPECT_TRUE(r.alerts(-0.5));
  EXPECT_FALSE(r.alerts(0));
  EXPECT_FALSE(r.alerts(10));
  EXPECT_TRUE(r.alerts(10.001));
  EXPECT_EQ(r.text, "10");
}

TEST(NagiosRangeTest, OpenEndAlertsBelowStart) {
  const NagiosRange r = parse("10:");
  EXPECT_TRUE(r.alerts(9.999));
  EXPECT_FALSE(r.alerts(10));
  EXPECT_FALSE(r.alerts(std::numeric_limits<double>::max()));
}

TEST(NagiosRangeTest, TildeIsMinusInfinity) {
  const NagiosRange r = parse("~:10");
  EXPECT_FALSE(r.alerts(-1e9));
  EXPECT_FALSE(r.alerts(10));
  EXPECT_TRUE(r.alerts(10.5));
}

TEST(NagiosRangeTest, BothEndsAlertOutside) {
  const NagiosRange r = parse("10:20");
  EXPECT_TRUE(r.alerts(9));
  EXPECT_FALSE(r.alerts(10));
  EXPECT_FALSE(r.alerts(20));
  EXPECT_TRUE(r.alerts(21));
}

TEST(NagiosRangeTest, AtSignAlertsInsideEndsIncluded) {
  const NagiosRange r = parse("@10:20");
  EXPECT_FALSE(r.alerts(9.99));
  EXPECT_TRUE(r.alerts(10));
  EXPECT_TRUE(r.alerts(15));
  EXPECT_TRUE(r.alerts(20));
  EXPECT_FALSE(r.alerts(20.01));
  EXPECT_EQ(r.text, "@10:20");
}

TEST(NagiosRangeTest, AtSignWithTildeAlertsAtOrBelow) {
  const NagiosRange r = parse("@~:30");
  EXPECT_TRUE(r.alerts(-5));
  EXPECT_TRUE(r.alerts(30));
  EXPECT_FALSE(r.alerts(31));
}

TEST(NagiosRangeTest, FractionsAndNegatives) {
  const NagiosRange r = parse("-0.5:1.5");
  EXPECT_TRUE(r.alerts(-0.6));
  EXPECT_FALSE(r.alerts(-0.5));
  EXPECT_FALSE(r.alerts(1.5));
  EXPECT_TRUE(r.alerts(1.51));
  EXPECT_FALSE(parse("0.5").alerts(0.25));
  EXPECT_TRUE(parse("0.5").alerts(0.75));
}

TEST(NagiosRangeTest, EmptyStartIsZero) {
  const NagiosRange r = parse(":5");
  EXPECT_TRUE(r.alerts(-1));
  EXPECT_FALSE(r.alerts(5));
  EXPECT_TRUE(r.alerts(6));
}

TEST(NagiosRangeTest, RefusesWhatIsNotARange) {
  EXPECT_EQ(error_of(""), "empty range");
  EXPECT_EQ(error_of("@"), "empty range");
  EXPECT_EQ(error_of("abc"), "'abc' is not a number");
  EXPECT_EQ(error_of("10:x"), "'x' is not a number");
  EXPECT_EQ(error_of("1e999"), "'1e999' is not a number");
  EXPECT_EQ(error_of("nan"), "'nan' is not a number");
  EXPECT_EQ(error_of("20:10"), "the start is above the end");
  EXPECT_EQ(error_of("~"), "'~' is not a number");
  EXPECT_EQ(error_of("10 "), "'10 ' is not a number");
}

}  // namespace
}  // namespace smtp
