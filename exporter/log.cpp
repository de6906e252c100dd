#include "exporter/log.h"

#include "exporter/utf8.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <span>
#include <vector>

namespace smtp::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kLogfmt};
std::mutex g_write_mutex;

constexpr std::string_view kReplacement = "\\ufffd";
constexpr char kHex[] = "0123456789abcdef";

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "unknown";
}

// Length of the well-formed UTF-8 sequence starting at text[i], or 0 if it is not one.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  char32_t code = 0;
  return utf8_sequence(text, i, code);
}

void append_unicode_escape(std::string& out, unsigned char c) {
  out += "\\u00";
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

// The escapes logfmt (as go-logfmt writes it) and JSON share; invalid UTF-8 becomes U+FFFD so
// that a line is always valid UTF-8, whatever a server sent.
void append_escaped(std::string& out, std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = utf8_length(text, i);
      if (length == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          append_unicode_escape(out, c);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
}

bool logfmt_needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  std::size_t i = 0;
  while (i < value.size()) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c <= ' ' || c == '=' || c == '"' || c == 0x7f) return true;
    const std::size_t length = utf8_length(value, i);
    if (length == 0) return true;
    i += length;
  }
  return false;
}

void append_logfmt_key(std::string& out, std::string_view key) {
  if (key.empty()) {
    out += '_';
    return;
  }
  // Keys come from our own code, but a bad one must still not break the line's syntax.
  for (const char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    out += (c <= ' ' || c == '=' || c == '"' || c >= 0x7f) ? '_' : ch;
  }
}

void append_logfmt_pair(std::string& out, std::string_view key, std::string_view value) {
  if (!out.empty()) out += ' ';
  append_logfmt_key(out, key);
  out += '=';
  if (logfmt_needs_quotes(value)) {
    out += '"';
    append_escaped(out, value);
    out += '"';
  } else {
    out.append(value);
  }
}

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  // JSON's escapes are logfmt's plus \b and \f, which append_escaped writes as \u0008, \u000c:
  // equally valid JSON.
  append_escaped(out, text);
  out += '"';
}

void append_json_pair(std::string& out, std::string_view key, std::string_view value,
                      bool is_number = false) {
  if (out.size() > 1) out += ',';
  append_json_string(out, key);
  out += ':';
  if (is_number) {
    out.append(value);
  } else {
    append_json_string(out, value);
  }
}

std::string format_timestamp(std::chrono::system_clock::time_point ts) {
  using namespace std::chrono;
  const auto millis = floor<milliseconds>(ts);
  const auto seconds = floor<std::chrono::seconds>(millis);
  const std::time_t time =
      system_clock::to_time_t(time_point_cast<system_clock::duration>(seconds));
  std::tm tm{};
  gmtime_r(&time, &tm);
  char buffer[64];  // room for any int year, which -Wformat-truncation checks
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>((millis - seconds).count()));
  return buffer;
}

}  // namespace

bool parse_level(std::string_view text, Level& out) {
  for (const Level level : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == level_name(level)) {
      out = level;
      return true;
    }
  }
  return false;
}

bool parse_format(std::string_view text, Format& out) {
  if (text == "logfmt") {
    out = Format::kLogfmt;
    return true;
  }
  if (text == "json") {
    out = Format::kJson;
    return true;
  }
  return false;
}

void configure(Level level, Format format) {
  g_level.store(level, std::memory_order_relaxed);
  g_format.store(format, std::memory_order_relaxed);
}

bool enabled(Level level) { return level >= g_level.load(std::memory_order_relaxed); }

namespace {

std::string format_fields(Level level, Format format, std::chrono::system_clock::time_point ts,
                          std::string_view message, std::span<const Field> fields) {
  std::string out;
  out.reserve(96 + message.size());
  const std::string time = format_timestamp(ts);
  if (format == Format::kJson) {
    out += '{';
    append_json_pair(out, "ts", time);
    append_json_pair(out, "level", level_name(level));
    append_json_pair(out, "msg", message);
    for (const Field& field : fields) {
      if (!field.omitted()) append_json_pair(out, field.key(), field.text(), field.is_number());
    }
    out += '}';
  } else {
    append_logfmt_pair(out, "ts", time);
    append_logfmt_pair(out, "level", level_name(level));
    append_logfmt_pair(out, "msg", message);
    for (const Field& field : fields) {
      if (!field.omitted()) append_logfmt_pair(out, field.key(), field.text());
    }
  }
  return out;
}

void write_fields(Level level, std::string_view message, std::span<const Field> fields) {
  if (!enabled(level)) return;
  std::string line = format_fields(level, g_format.load(std::memory_order_relaxed),
                                   std::chrono::system_clock::now(), message, fields);
  line += '\n';
  // One write(2) per line so that lines from threads (and processes sharing stderr) never mix;
  // the loop only matters if the kernel takes part of it (a full pipe, a signal).
  const std::lock_guard<std::mutex> lock(g_write_mutex);
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string format_line(Level level, Format format, std::chrono::system_clock::time_point ts,
                        std::string_view message, std::initializer_list<Field> fields) {
  return format_fields(level, format, ts, message, {fields.begin(), fields.size()});
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  write_fields(level, message, {fields.begin(), fields.size()});
}

std::optional<std::uint64_t> RateLimiter::admit(std::string_view kind, Clock::time_point now) {
  const std::lock_guard<std::mutex> lock(mutex_);
  auto it = kinds_.find(kind);
  if (it == kinds_.end()) {
    kinds_.emplace(std::string(kind), Kind{now, 0});
    return 0;
  }
  Kind& state = it->second;
  if (now - state.last_line < interval_) {
    ++state.suppressed;
    return std::nullopt;
  }
  const std::uint64_t suppressed = state.suppressed;
  state = Kind{now, 0};
  return suppressed;
}

void RateLimiter::write(std::string_view kind, Level level, std::string_view message,
                        std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  const std::optional<std::uint64_t> suppressed = admit(kind, Clock::now());
  if (!suppressed) return;
  std::vector<Field> all(fields);
  const std::string count = std::to_string(*suppressed);
  all.emplace_back("suppressed", count);
  write_fields(level, message, all);
}

}  // namespace smtp::log
