#pragma once
/// Structured logging to stderr, logfmt or JSON, as Prometheus exporters do.
#include <initializer_list>
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

}  // namespace smtp::log
