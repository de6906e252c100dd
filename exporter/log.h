#pragma once
/// Structured logging to stderr, logfmt or JSON, as Prometheus exporters do.
#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace smtp::log {

enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kLogfmt, kJson };

/// Parses "debug|info|warn|error" and "logfmt|json"; false for anything else.
bool parse_level(std::string_view text, Level& out);
bool parse_format(std::string_view text, Format& out);

void configure(Level level, Format format);
bool enabled(Level level);

using Field = std::pair<std::string_view, std::string_view>;

/// One line: `ts=... level=info msg="..." key=value ...` (or the JSON object). Values are
/// quoted and escaped as needed. Thread-safe: a line is written with one call.
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

/// The line write() would emit, without the trailing newline: `ts` in UTC with milliseconds
/// (`2026-11-29T06:20:00.123Z`), then level, msg and the fields in order. Pure, for tests.
std::string format_line(Level level, Format format, std::chrono::system_clock::time_point ts,
                        std::string_view message, std::initializer_list<Field> fields = {});

}  // namespace smtp::log
