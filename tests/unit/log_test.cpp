#include "exporter/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/support/capture_stderr.h"

namespace smtp::log {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;

// 2026-11-29T06:20:00.123Z
const std::chrono::system_clock::time_point kTs =
    std::chrono::system_clock::time_point(std::chrono::seconds(1795933200)) + 123ms;

TEST(FormatLine, LogfmtPlain) {
  EXPECT_EQ(format_line(Level::kInfo, Format::kLogfmt, kTs, "started", {{"port", "9101"}}),
            "ts=2026-11-29T06:20:00.123Z level=info msg=started port=9101");
}

TEST(FormatLine, NumbersAreNumbersInJson) {
  const std::size_t targets = 10000;
  EXPECT_EQ(format_line(Level::kInfo, Format::kJson, kTs, "loaded",
                        {{"targets", targets}, {"seconds", 0.25}, {"signal", -1}, {"name", "7"}}),
            R"({"ts":"2026-11-29T06:20:00.123Z","level":"info","msg":"loaded","targets":10000,)"
            R"("seconds":0.25,"signal":-1,"name":"7"})");
  EXPECT_EQ(format_line(Level::kInfo, Format::kLogfmt, kTs, "loaded",
                        {{"targets", targets}, {"seconds", 0.25}}),
            "ts=2026-11-29T06:20:00.123Z level=info msg=loaded targets=10000 seconds=0.25");
}

TEST(FormatLine, EmptyOptionalFieldsAreLeftOut) {
  EXPECT_EQ(format_line(Level::kWarn, Format::kLogfmt, kTs, "m",
                        {{"target", "a"}, Field::unless_empty("mx", ""), {"err", ""}}),
            R"(ts=2026-11-29T06:20:00.123Z level=warn msg=m target=a err="")");
  EXPECT_EQ(format_line(Level::kWarn, Format::kLogfmt, kTs, "m",
                        {Field::unless_empty("mx", "mx1.example.com")}),
            "ts=2026-11-29T06:20:00.123Z level=warn msg=m mx=mx1.example.com");
}

TEST(FormatLine, LevelNames) {
  EXPECT_EQ(format_line(Level::kDebug, Format::kLogfmt, kTs, "m"),
            "ts=2026-11-29T06:20:00.123Z level=debug msg=m");
  EXPECT_EQ(format_line(Level::kWarn, Format::kLogfmt, kTs, "m"),
            "ts=2026-11-29T06:20:00.123Z level=warn msg=m");
  EXPECT_EQ(format_line(Level::kError, Format::kJson, kTs, "m"),
            R"({"ts":"2026-11-29T06:20:00.123Z","level":"error","msg":"m"})");
}

TEST(FormatLine, TimestampIsUtcWithMilliseconds) {
  const auto epoch = std::chrono::system_clock::time_point{};
  EXPECT_EQ(format_line(Level::kInfo, Format::kLogfmt, epoch, "m"),
            "ts=1970-01-01T00:00:00.000Z level=info msg=m");
  // Sub-millisecond parts are cut, not rounded: the line never claims a later time.
  EXPECT_EQ(format_line(Level::kInfo, Format::kLogfmt, epoch + 999999us, "m"),
            "ts=1970-01-01T00:00:00.999Z level=info msg=m");
  EXPECT_EQ(format_line(Level::kInfo, Format::kLogfmt, epoch + 86400s + 7ms, "m"),
            "ts=1970-01-02T00:00:00.007Z level=info msg=m");
}

TEST(FormatLine, LogfmtQuotesWhenNeeded) {
  const auto line = [](std::string_view value) {
    const std::string full = format_line(Level::kInfo, Format::kLogfmt, kTs, "m", {{"k", value}});
    return full.substr(full.find(" k=") + 3);
  };
  EXPECT_EQ(line("plain"), "plain");
  EXPECT_EQ(line("127.0.0.1:25"), "127.0.0.1:25");
  EXPECT_EQ(line(""), R"("")");
  EXPECT_EQ(line("two words"), R"("two words")");
  EXPECT_EQ(line("a=b"), R"("a=b")");
  EXPECT_EQ(line(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(line("tab\there"), R"("tab\there")");
  EXPECT_EQ(line("line1\nline2"), R"("line1\nline2")");
  EXPECT_EQ(line("cr\r"), R"("cr\r")");
  EXPECT_EQ(line("nul\0x"sv), R"("nul\u0000x")");
  EXPECT_EQ(line("bell\x07"), R"("bell\u0007")");
  EXPECT_EQ(line("del\x7f"), R"("del\u007f")");
  // A backslash alone needs no quotes; inside quotes it is escaped.
  EXPECT_EQ(line(R"(C:\dir)"), R"(C:\dir)");
  EXPECT_EQ(line(R"(a b\c)"), R"("a b\\c")");
  // Valid UTF-8 passes through unquoted; invalid bytes become U+FFFD escapes.
  EXPECT_EQ(line("Zürich"), "Zürich");
  EXPECT_EQ(line("bad\xff"), R"("bad\ufffd")");
  EXPECT_EQ(line("\xc3"), R"("\ufffd")");
  EXPECT_EQ(line("\xc0\xaf"), R"("\ufffd\ufffd")");  // overlong '/'
}

TEST(FormatLine, LogfmtMessageIsQuotedLikeAnyValue) {
  EXPECT_EQ(format_line(Level::kInfo, Format::kLogfmt, kTs, "probe failed",
                        {{"target", "mx1"}, {"reason", "connect timeout"}}),
            R"(ts=2026-11-29T06:20:00.123Z level=info msg="probe failed" target=mx1 )"
            R"(reason="connect timeout")");
}

TEST(FormatLine, LogfmtBadKeysCannotBreakTheLine) {
  EXPECT_EQ(format_line(Level::kInfo, Format::kLogfmt, kTs, "m", {{"a b=\"c", "v"}, {"", "w"}}),
            "ts=2026-11-29T06:20:00.123Z level=info msg=m a_b__c=v _=w");
}

TEST(FormatLine, Json) {
  EXPECT_EQ(format_line(Level::kInfo, Format::kJson, kTs, "probe failed",
                        {{"target", "mx1"}, {"reason", "connect timeout"}}),
            R"({"ts":"2026-11-29T06:20:00.123Z","level":"info","msg":"probe failed",)"
            R"("target":"mx1","reason":"connect timeout"})");
}

TEST(FormatLine, JsonEscaping) {
  const auto value = [](std::string_view v) {
    const std::string full = format_line(Level::kInfo, Format::kJson, kTs, "m", {{"k", v}});
    const std::string prefix = R"("k":)";
    return full.substr(full.find(prefix) + prefix.size(),
                       full.size() - full.find(prefix) - prefix.size() - 1);
  };
  EXPECT_EQ(value(""), R"("")");
  EXPECT_EQ(value("a=b c"), R"("a=b c")");
  EXPECT_EQ(value(R"(q"b\)"), R"("q\"b\\")");
  EXPECT_EQ(value("n\nr\rt\t"), R"("n\nr\rt\t")");
  EXPECT_EQ(value("\b\f"), R"("\u0008\u000c")");
  EXPECT_EQ(value("\0\x1f"sv), R"("\u0000\u001f")");
  EXPECT_EQ(value("Zürich €"), R"("Zürich €")");
  EXPECT_EQ(value("x\xfe"), R"("x\ufffd")");
  EXPECT_EQ(value("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // a UTF-16 surrogate
  // Keys are escaped too.
  EXPECT_NE(
      format_line(Level::kInfo, Format::kJson, kTs, "m", {{"a\"b", "v"}}).find(R"("a\"b":"v")"),
      std::string::npos);
  EXPECT_EQ(format_line(Level::kInfo, Format::kJson, kTs, "say \"hi\"\n"),
            R"({"ts":"2026-11-29T06:20:00.123Z","level":"info","msg":"say \"hi\"\n"})");
}

TEST(ParseLevelAndFormat, AcceptsTheFlagValues) {
  Level level = Level::kError;
  EXPECT_TRUE(parse_level("debug", level));
  EXPECT_EQ(level, Level::kDebug);
  EXPECT_TRUE(parse_level("info", level));
  EXPECT_EQ(level, Level::kInfo);
  EXPECT_TRUE(parse_level("warn", level));
  EXPECT_EQ(level, Level::kWarn);
  EXPECT_TRUE(parse_level("error", level));
  EXPECT_EQ(level, Level::kError);
  for (const char* bad : {"", "INFO", "warning", "fatal", "info "}) {
    EXPECT_FALSE(parse_level(bad, level)) << bad;
  }

  Format format = Format::kLogfmt;
  EXPECT_TRUE(parse_format("json", format));
  EXPECT_EQ(format, Format::kJson);
  EXPECT_TRUE(parse_format("logfmt", format));
  EXPECT_EQ(format, Format::kLogfmt);
  EXPECT_FALSE(parse_format("text", format));
  EXPECT_FALSE(parse_format("", format));
}

TEST(Enabled, FollowsTheConfiguredLevel) {
  configure(Level::kWarn, Format::kLogfmt);
  EXPECT_FALSE(enabled(Level::kDebug));
  EXPECT_FALSE(enabled(Level::kInfo));
  EXPECT_TRUE(enabled(Level::kWarn));
  EXPECT_TRUE(enabled(Level::kError));
  configure(Level::kDebug, Format::kLogfmt);
  EXPECT_TRUE(enabled(Level::kDebug));
  configure(Level::kInfo, Format::kLogfmt);
}

using smtp::testing::capture_stderr;

TEST(Write, WritesOneLineInTheConfiguredFormatAndFiltersByLevel) {
  const std::string out = capture_stderr([] {
    configure(Level::kInfo, Format::kJson);
    write(Level::kDebug, "hidden");
    write(Level::kInfo, "shown", {{"k", "v w"}});
    configure(Level::kInfo, Format::kLogfmt);
    write(Level::kError, "also shown", {{"k", "v"}});
  });
  const std::size_t first_end = out.find('\n');
  ASSERT_NE(first_end, std::string::npos) << out;
  const std::string first = out.substr(0, first_end);
  const std::string second = out.substr(first_end + 1);
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_EQ(first.rfind(R"({"ts":")", 0), 0u) << first;
  EXPECT_NE(first.find(R"("level":"info","msg":"shown","k":"v w"})"), std::string::npos) << first;
  EXPECT_EQ(second.rfind("ts=", 0), 0u) << second;
  EXPECT_NE(second.find(" level=error msg=\"also shown\" k=v\n"), std::string::npos) << second;
  EXPECT_EQ(second.back(), '\n');
  EXPECT_EQ(second.find('\n'), second.size() - 1);
}

TEST(RateLimiter, LetsOneEventPerIntervalThroughAndCountsTheRest) {
  RateLimiter limiter(std::chrono::minutes(1));
  const RateLimiter::Clock::time_point t0{std::chrono::hours(1)};
  EXPECT_EQ(limiter.admit("evicted", t0), 0u);
  EXPECT_EQ(limiter.admit("evicted", t0 + 1s), std::nullopt);
  EXPECT_EQ(limiter.admit("evicted", t0 + 30s), std::nullopt);
  EXPECT_EQ(limiter.admit("evicted", t0 + 59s), std::nullopt);
  // A minute after the last line: through, with the three held back since.
  EXPECT_EQ(limiter.admit("evicted", t0 + 60s), 3u);
  EXPECT_EQ(limiter.admit("evicted", t0 + 61s), std::nullopt);
  // The interval runs from the last line written, not from the last event.
  EXPECT_EQ(limiter.admit("evicted", t0 + 119s), std::nullopt);
  EXPECT_EQ(limiter.admit("evicted", t0 + 120s), 2u);
  EXPECT_EQ(limiter.admit("evicted", t0 + 1h), 0u);
}

TEST(RateLimiter, KindsAreLimitedSeparately) {
  RateLimiter limiter(std::chrono::minutes(1));
  const RateLimiter::Clock::time_point t0{std::chrono::hours(1)};
  EXPECT_EQ(limiter.admit("evicted", t0), 0u);
  EXPECT_EQ(limiter.admit("rejected", t0), 0u);
  EXPECT_EQ(limiter.admit("evicted", t0 + 1s), std::nullopt);
  EXPECT_EQ(limiter.admit("exporter_overloaded", t0 + 1s), 0u);
  EXPECT_EQ(limiter.admit("rejected", t0 + 60s), 0u);
  EXPECT_EQ(limiter.admit("evicted", t0 + 60s), 1u);
}

TEST(RateLimiter, WritesTheFirstLineWithItsCountAndHoldsBackTheRest) {
  const std::string out = capture_stderr([] {
    configure(Level::kInfo, Format::kLogfmt);
    RateLimiter limiter(std::chrono::hours(1));
    for (int i = 0; i < 100; ++i) {
      limiter.write("rejected", Level::kWarn, "connection rejected", {{"max", "512"}});
    }
    limiter.write("evicted", Level::kWarn, "connection evicted");
    limiter.write("hidden", Level::kDebug, "below the level");
  });
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  EXPECT_NE(out.find(" level=warn msg=\"connection rejected\" max=512 suppressed=0\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(" level=warn msg=\"connection evicted\" suppressed=0\n"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("below the level"), std::string::npos) << out;
}

}  // namespace
}  // namespace smtp::log
