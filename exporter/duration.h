#pragma once
/// Prometheus-style durations: "500ms", "10s", "1m30s", "1h", "2d", "1w", "1y".
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace smtp {

/// Parses a Prometheus duration (units y w d h m s ms, each at most once, largest first).
/// Returns nothing for anything else, including negative numbers and an empty string. "0s" is 0.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// parse_duration, or a plain number of seconds such as "0.5" (as blackbox_exporter's flags take
/// them), rounded to milliseconds. Nothing for a negative or non-finite number.
std::optional<std::chrono::milliseconds> parse_duration_or_seconds(std::string_view text);

/// The inverse: 90000ms -> "1m30s", 0 -> "0s".
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace smtp
