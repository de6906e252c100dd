#pragma once
/// Pure parser: bytes from an SMTP server -> one reply (RFC 5321 §4.2).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace smtp {

/// Limits on what a server may send us in one reply. Over them the probe fails with
/// `line_too_long` instead of buffering more.
inline constexpr std::size_t kMaxReplyLineBytes = 2048;  // including the line ending
inline constexpr std::size_t kMaxReplyLines = 100;
/// The most bytes one reply can take; every read buffer is bounded by this.
inline constexpr std::size_t kMaxReplyBytes = kMaxReplyLineBytes * kMaxReplyLines;

/// One complete SMTP reply: the code and the text of each line (after "250-" / "250 ").
struct Reply {
  int code = 0;
  std::vector<std::string> lines;
};

enum class ParseStatus {
  kComplete,     // `reply` holds a whole reply, `consumed` bytes of the input made it
  kIncomplete,   // no complete reply yet and nothing wrong so far: read more
  kMalformed,    // not an SMTP reply: garbage, NUL, code out of range, codes that differ
  kLineTooLong,  // a line over kMaxReplyLineBytes, or more than kMaxReplyLines lines
};

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  Reply reply;
  std::size_t consumed = 0;
};

/// Parses the first reply at the start of `input`. Lines end in CRLF; a bare LF is tolerated.
/// A line is `CODE` or `CODE SP text` (last line) or `CODE-text` (continuation). CODE is three
/// digits, the first 2-5 and the second 0-5. Every line of one reply must carry the same code.
ParseResult parse_reply(std::string_view input);

}  // namespace smtp
