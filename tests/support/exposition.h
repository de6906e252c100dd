#pragma once
/// Reading the text exposition format in tests. Header-only: the test support library's sources
/// are fixed by tests/CMakeLists.txt.
#include <optional>
#include <sstream>
#include <string>

namespace smtp::testing {

/// The value of the one sample line `series value` in `body` (`series` written exactly as the
/// line starts: `name` or `name{labels}`); nothing if there is no such line, or more than one.
inline std::optional<double> sample_value(const std::string& body, const std::string& series) {
  std::istringstream lines(body);
  std::optional<double> found;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) != 0) continue;
    if (found) return std::nullopt;
    found = std::stod(line.substr(series.size() + 1));
  }
  return found;
}

}  // namespace smtp::testing
