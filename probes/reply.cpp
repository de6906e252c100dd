#include "probes/reply.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace smtp {
namespace {

// Bytes a reply's text may hold: TAB, printable ASCII, and bytes >= 0x80 (UTF-8 text from
// SMTPUTF8 servers, RFC 6531). Every other control byte, DEL and NUL marks a peer that is not
// speaking SMTP.
constexpr std::array<bool, 256> make_text_table() {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) table[c] = c == '\t' || (c >= 0x20 && c != 0x7f);
  return table;
}
constexpr std::array<bool, 256> kTextByte = make_text_table();

bool is_text_byte(char c) { return kTextByte[static_cast<unsigned char>(c)]; }

// Validates bytes [from, to) of a line's content (the line without its ending): bytes 0-2 are
// the code (RFC 5321 §4.2: the first digit 2-5, the second 0-5, the third any digit), the first
// line's code for later lines; byte 3 is the separator; the rest is text. Runs on partial lines
// too, so garbage is caught early.
bool content_ok(const char* line, std::size_t from, std::size_t to, const char* first_code) {
  static constexpr char kLowest[3] = {'2', '0', '0'};
  static constexpr char kHighest[3] = {'5', '5', '9'};
  std::size_t i = from;
  for (; i < to && i < 3; ++i) {
    const char c = line[i];
    if (first_code != nullptr ? c != first_code[i] : c < kLowest[i] || c > kHighest[i]) {
      return false;
    }
  }
  if (i == 3 && i < to) {
    if (line[3] != '-' && line[3] != ' ') return false;
    ++i;
  }
  for (; i < to; ++i) {
    if (!is_text_byte(line[i])) return false;
  }
  return true;
}

}  // namespace

void ReplyParser::start_afresh() {
  lines_ = 0;
  line_start_ = 0;
  checked_ = 0;
}

ParseResult ReplyParser::finish(ParseStatus status) {
  start_afresh();  // a verdict ends this reply: the next call starts on the next one
  ParseResult result;
  result.status = status;
  return result;
}

ParseResult ReplyParser::parse(std::string_view input) {
  const char* const data = input.data();
  const std::size_t size = input.size();
  // A shorter input than the one already worked through is not that one grown: start afresh
  // rather than read past its end.
  if (size < line_start_ + checked_) start_afresh();

  while (true) {
    if (lines_ == kMaxReplyLines) {
      // Every line so far was a continuation: this reply will have more lines than allowed.
      return finish(ParseStatus::kTooManyLines);
    }
    const std::size_t available = size - line_start_;
    if (available == 0) return {};  // kIncomplete
    const char* const line = data + line_start_;
    const std::size_t window = available < kMaxReplyLineBytes ? available : kMaxReplyLineBytes;
    // The checked bytes hold no LF: search only what is new (and a CR left pending last time).
    const void* lf = std::memchr(line + checked_, '\n', window - checked_);
    const bool complete = lf != nullptr;
    std::size_t len = complete ? static_cast<const char*>(lf) - line : window;
    examined_ += len - checked_ + (complete ? 1 : 0);
    // A CR at the very end is part of the line ending (or, unterminated, may be about to be). It
    // is never among the checked bytes: a CR anywhere else is malformed.
    if (len > checked_ && line[len - 1] == '\r') --len;

    const char* first_code = lines_ == 0 ? nullptr : data;
    examined_ += len - checked_;
    if (!content_ok(line, checked_, len, first_code)) return finish(ParseStatus::kMalformed);
    checked_ = len;
    if (!complete) {
      // Without an LF inside the window, the line is already over the limit or simply unfinished.
      if (window == kMaxReplyLineBytes) return finish(ParseStatus::kLineTooLong);
      return {};  // kIncomplete
    }
    if (len < 3) return finish(ParseStatus::kMalformed);

    const std::size_t lf_index = static_cast<const char*>(lf) - data;
    line_ends_[lines_++] = lf_index;
    line_start_ = lf_index + 1;
    checked_ = 0;
    // A bare code is only valid as a last line, which it then is.
    if (len == 3 || line[3] == ' ') break;
  }

  ParseResult result;
  result.status = ParseStatus::kComplete;
  result.consumed = line_start_;
  result.reply.code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
  result.reply.lines.reserve(lines_);
  std::size_t start = 0;
  for (std::size_t i = 0; i < lines_; ++i) {
    std::size_t end = line_ends_[i];
    if (end > start && data[end - 1] == '\r') --end;
    const std::size_t text_start = start + 4;  // past "250-" / "250 "
    if (text_start < end) {
      result.reply.lines.emplace_back(data + text_start, end - text_start);
    } else {
      result.reply.lines.emplace_back();  // a bare code, or "250 " with nothing after it
    }
    start = line_ends_[i] + 1;
  }
  start_afresh();
  return result;
}

ParseResult parse_reply(std::string_view input) { return ReplyParser().parse(input); }

}  // namespace smtp
