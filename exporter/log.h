#pragma once
/// Structured logging to stderr, logfmt or JSON, as Prometheus exporters do.
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace smtp::log {

enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kLogfmt, kJson };

/// Parses "debug|info|warn|error" and "logfmt|json"; false for anything else.
bool parse_level(std::string_view text, Level& out);
bool parse_format(std::string_view text, Format& out);

void configure(Level level, Format format);
bool enabled(Level level);

/// One `key=value` of a line. Numbers are written as numbers (bare in JSON too); text is quoted
/// and escaped as needed. The value's text must outlive the write() call.
class Field {
 public:
  Field(std::string_view key, std::string_view text) : key_(key), text_(text) {}
  Field(std::string_view key, const char* text) : key_(key), text_(text) {}
  Field(std::string_view key, const std::string& text) : key_(key), text_(text) {}
  template <typename Number>
  requires(std::is_arithmetic_v<Number> && !std::is_same_v<Number, bool> &&
           !std::is_same_v<Number, char>) Field(std::string_view key, Number number)
      : key_(key), number_(true) {
    const auto [end, ec] = std::to_chars(digits_.data(), digits_.data() + digits_.size(), number);
    text_ = std::string_view(digits_.data(), ec == std::errc{} ? end - digits_.data() : 0);
  }
  Field(const Field& other) : key_(other.key_), text_(other.text_), number_(other.number_) {
    // A number's text lives in the field itself: point the copy at its own digits.
    if (number_) text_ = std::string_view(digits_.data(), other.text_.size());
    digits_ = other.digits_;
  }
  Field& operator=(const Field&) = delete;

  /// A field left out of the line when `text` is empty (an optional detail such as `mx`).
  static Field unless_empty(std::string_view key, std::string_view text) {
    Field field(key, text);
    field.omit_ = text.empty();
    return field;
  }

  std::string_view key() const { return key_; }
  std::string_view text() const { return text_; }
  bool is_number() const { return number_; }
  bool omitted() const { return omit_; }

 private:
  std::string_view key_;
  std::string_view text_;
  std::array<char, 32> digits_{};
  bool number_ = false;
  bool omit_ = false;
};

/// One line: `ts=... level=info msg="..." key=value ...` (or the JSON object). Values are
/// quoted and escaped as needed. Thread-safe: a line is written with one call.
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

/// The line write() would emit, without the trailing newline: `ts` in UTC with milliseconds
/// (`2026-11-29T06:20:00.123Z`), then level, msg and the fields in order. Pure, for tests.
std::string format_line(Level level, Format format, std::chrono::system_clock::time_point ts,
                        std::string_view message, std::initializer_list<Field> fields = {});

/// Lets one line of each kind through per interval and counts the rest, so that a flood (an
/// attack on the HTTP side, a spent descriptor budget) costs one line a minute, and that line
/// says how many events it stands for. Thread-safe.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateLimiter(Clock::duration interval = std::chrono::minutes(1)) : interval_(interval) {}

  /// One event of `kind` at `now`: when a line may be written, how many events of that kind
  /// were held back since its last line; nothing when this one is held back.
  std::optional<std::uint64_t> admit(std::string_view kind, Clock::time_point now);

  /// write() if admit() lets the event through, with a last field `suppressed=N` (the events
  /// held back since the kind's last line; 0 on its first). Held-back events are only counted.
  void write(std::string_view kind, Level level, std::string_view message,
             std::initializer_list<Field> fields = {});

 private:
  struct Kind {
    Clock::time_point last_line;
    std::uint64_t suppressed = 0;
  };
  const Clock::duration interval_;
  std::mutex mutex_;
  std::map<std::string, Kind, std::less<>> kinds_;
};

}  // namespace smtp::log
