#include "exporter/nagios_range.h"

#include <charconv>
#include <cmath>

namespace smtp {
namespace {

std::optional<double> parse_number(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

}  // namespace

bool NagiosRange::alerts(double value) const {
  const bool inside = (!start || value >= *start) && (!end || value <= *end);
  return alert_inside ? inside : !inside;
}

std::optional<NagiosRange> parse_nagios_range(std::string_view text, std::string& error) {
  NagiosRange range;
  range.text = std::string(text);
  std::string_view rest = text;
  if (!rest.empty() && rest.front() == '@') {
    range.alert_inside = true;
    rest.remove_prefix(1);
  }
  if (rest.empty()) {
    error = "empty range";
    return std::nullopt;
  }
  const std::size_t colon = rest.find(':');
  // The guidelines: "start" may be left out when it is 0, "~" is minus infinity, an end left out
  // is infinity.
  std::string_view start_text = colon == std::string_view::npos ? "" : rest.substr(0, colon);
  std::string_view end_text = colon == std::string_view::npos ? rest : rest.substr(colon + 1);
  if (start_text == "~") {
    range.start.reset();
  } else if (start_text.empty()) {
    range.start = 0.0;
  } else {
    range.start = parse_number(start_text);
    if (!range.start) {
      error = "'" + std::string(start_text) + "' is not a number";
      return std::nullopt;
    }
  }
  if (!end_text.empty()) {
    range.end = parse_number(end_text);
    if (!range.end) {
      error = "'" + std::string(end_text) + "' is not a number";
      return std::nullopt;
    }
  } else if (colon == std::string_view::npos) {
    error = "empty range";
    return std::nullopt;
  }
  if (range.start && range.end && *range.start > *range.end) {
    error = "the start is above the end";
    return std::nullopt;
  }
  return range;
}

}  // namespace smtp
