#include "exporter/duration.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

namespace smtp {
namespace {

struct Unit {
  std::string_view name;
  std::int64_t millis;
};

constexpr std::int64_t kSecond = 1000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
constexpr std::int64_t kWeek = 7 * kDay;
constexpr std::int64_t kYear = 365 * kDay;

// Largest first: a unit may only follow the units before it in this table.
constexpr std::array<Unit, 7> kUnits{{
    {"y", kYear},
    {"w", kWeek},
    {"d", kDay},
    {"h", kHour},
    {"m", kMinute},
    {"s", kSecond},
    {"ms", 1},
}};

// Durations end up as std::chrono::nanoseconds (the probe's deadline), so the largest duration
// accepted is the one that still fits there, as in Prometheus (about 292 years).
constexpr std::int64_t kMaxMillis = std::numeric_limits<std::int64_t>::max() / 1'000'000;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  // Prometheus accepts a bare "0" as the one number without a unit.
  if (text == "0") return std::chrono::milliseconds(0);

  std::int64_t total = 0;
  std::size_t next_unit = 0;  // index into kUnits of the largest unit still allowed
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t digits_start = pos;
    std::int64_t number = 0;
    while (pos < text.size() && is_digit(text[pos])) {
      const int digit = text[pos] - '0';
      if (number > (kMaxMillis - digit) / 10) return std::nullopt;  // overflow, whatever the unit
      number = number * 10 + digit;
      ++pos;
    }
    if (pos == digits_start) return std::nullopt;  // a sign, a dot, a space, a unit without number

    const std::size_t unit_start = pos;
    while (pos < text.size() && is_letter(text[pos])) ++pos;
    const std::string_view unit_name = text.substr(unit_start, pos - unit_start);

    std::size_t index = next_unit;
    while (index < kUnits.size() && kUnits[index].name != unit_name) ++index;
    if (index == kUnits.size()) return std::nullopt;  // unknown, repeated or out of order

    const std::int64_t millis = kUnits[index].millis;
    if (number > kMaxMillis / millis) return std::nullopt;
    const std::int64_t part = number * millis;
    if (part > kMaxMillis - total) return std::nullopt;
    total += part;
    next_unit = index + 1;
  }
  return std::chrono::milliseconds(total);
}

std::optional<std::chrono::milliseconds> parse_duration_or_seconds(std::string_view text) {
  if (auto duration = parse_duration(text)) return duration;
  double seconds = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), seconds, std::chars_format::fixed);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
      !std::isfinite(seconds) || seconds < 0 || seconds * 1000 > static_cast<double>(kMaxMillis)) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(std::llround(seconds * 1000));
}

std::string format_duration(std::chrono::milliseconds duration) {
  std::int64_t left = duration.count();
  if (left == 0) return "0s";
  std::string out;
  if (left < 0) {
    out = "-";
    // -min would overflow; no duration this code parses comes near it.
    if (left == std::numeric_limits<std::int64_t>::min()) ++left;
    left = -left;
  }
  for (const Unit& unit : kUnits) {
    // Years and weeks only when they divide evenly: "90d" reads better than "12w6d".
    const bool only_exact = unit.millis == kYear || unit.millis == kWeek;
    if (only_exact && left % unit.millis != 0) continue;
    const std::int64_t count = left / unit.millis;
    if (count == 0) continue;
    out += std::to_string(count);
    out += unit.name;
    left -= count * unit.millis;
  }
  return out;
}

}  // namespace smtp
