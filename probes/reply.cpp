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

// Checks the code digits a line has so far (up to three) against the rules, and against the
// first line's code for later lines. Runs on partial lines too, so garbage is caught early.
bool code_prefix_ok(const char* s, std::size_t len, const char* first_code) {
  // RFC 5321 §4.2: the first digit is 2-5, the second 0-5, the third any digit.
  static constexpr char kLowest[3] = {'2', '0', '0'};
  static constexpr char kHighest[3] = {'5', '5', '9'};
  if (len > 3) len = 3;
  for (std::size_t i = 0; i < len; ++i) {
    if (first_code != nullptr ? s[i] != first_code[i] : s[i] < kLowest[i] || s[i] > kHighest[i]) {
      return false;
    }
  }
  return true;
}

enum class LineCheck { kOk, kMalformed };

// Validates one line's content (without its line ending). `complete` says whether the line's
// end has been seen; if not, `len` bytes are all we have so far. Sets `last` for a complete line.
LineCheck check_line(const char* s, std::size_t len, bool complete, const char* first_code,
                     bool& last) {
  if (!code_prefix_ok(s, len, first_code)) return LineCheck::kMalformed;
  if (len < 3) return complete ? LineCheck::kMalformed : LineCheck::kOk;
  if (len == 3) {
    last = true;  // a bare code: only valid as a last line, which it then is
    return LineCheck::kOk;
  }
  const char sep = s[3];
  if (sep != '-' && sep != ' ') return LineCheck::kMalformed;
  for (std::size_t i = 4; i < len; ++i) {
    if (!is_text_byte(s[i])) return LineCheck::kMalformed;
  }
  last = sep == ' ';
  return LineCheck::kOk;
}

}  // namespace

ParseResult parse_reply(std::string_view input) {
  ParseResult result;
  const char* const data = input.data();
  const std::size_t size = input.size();

  // Where each line's LF is; the Reply's strings are only built once the whole reply is known
  // to be good, so the common "read more" answer allocates nothing.
  std::array<std::size_t, kMaxReplyLines> line_ends;
  std::size_t lines = 0;
  std::size_t pos = 0;

  while (true) {
    if (lines == kMaxReplyLines) {
      // Every line so far was a continuation: this reply will have more lines than allowed.
      result.status = ParseStatus::kLineTooLong;
      return result;
    }
    const std::size_t available = size - pos;
    if (available == 0) return result;  // kIncomplete

    const char* const line = data + pos;
    const std::size_t window = available < kMaxReplyLineBytes ? available : kMaxReplyLineBytes;
    const void* lf = std::memchr(line, '\n', window);
    const bool complete = lf != nullptr;
    std::size_t len = complete ? static_cast<const char*>(lf) - line : window;
    // A CR at the very end is part of the line ending (or, unterminated, may be about to be).
    if (len > 0 && line[len - 1] == '\r') --len;

    bool last = false;
    const char* first_code = lines == 0 ? nullptr : data;
    if (check_line(line, len, complete, first_code, last) == LineCheck::kMalformed) {
      result.status = ParseStatus::kMalformed;
      return result;
    }
    if (!complete) {
      // Without an LF inside the window, the line is already over the limit or simply unfinished.
      if (window == kMaxReplyLineBytes) result.status = ParseStatus::kLineTooLong;
      return result;
    }

    const std::size_t lf_index = static_cast<const char*>(lf) - data;
    line_ends[lines++] = lf_index;
    pos = lf_index + 1;
    if (last) break;
  }

  result.status = ParseStatus::kComplete;
  result.consumed = pos;
  result.reply.code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
  result.reply.lines.reserve(lines);
  std::size_t start = 0;
  for (std::size_t i = 0; i < lines; ++i) {
    std::size_t end = line_ends[i];
    if (end > start && data[end - 1] == '\r') --end;
    const std::size_t text_start = start + 4;  // past "250-" / "250 "
    if (text_start < end) {
      result.reply.lines.emplace_back(data + text_start, end - text_start);
    } else {
      result.reply.lines.emplace_back();  // a bare code, or "250 " with nothing after it
    }
    start = line_ends[i] + 1;
  }
  return result;
}

}  // namespace smtp
