// parse_duration on arbitrary text, and format_duration on arbitrary values: what one accepts or
// writes, the other reads back to the same number of milliseconds.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "exporter/duration.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using std::chrono::milliseconds;

// The largest duration accepted: one that still fits std::chrono::nanoseconds.
constexpr std::int64_t kMaxMillis = std::numeric_limits<std::int64_t>::max() / 1'000'000;

void check_round_trip(milliseconds value) {
  const std::string text = smtp::format_duration(value);
  FUZZ_CHECK(!text.empty());
  const std::optional<milliseconds> back = smtp::parse_duration(text);
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(*back == value);
  FUZZ_CHECK(smtp::format_duration(*back) == text);  // one spelling per value
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const std::optional<milliseconds> parsed = smtp::parse_duration(text)) {
    FUZZ_CHECK(parsed->count() >= 0);
    FUZZ_CHECK(parsed->count() <= kMaxMillis);
    FUZZ_CHECK(!text.empty());
    check_round_trip(*parsed);
  }

  // The same bytes as a number of milliseconds, folded into what parse_duration accepts.
  if (size >= sizeof(std::uint64_t)) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, data, sizeof bits);
    check_round_trip(milliseconds(static_cast<std::int64_t>(bits % (kMaxMillis + 1))));
  }
  return 0;
}
