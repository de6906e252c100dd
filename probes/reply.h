#pragma once
/// Pure parser: bytes from an SMTP server -> one reply (RFC 5321 §4.2).
#include <array>
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
  kComplete,      // `reply` holds a whole reply, `consumed` bytes of the input made it
  kIncomplete,    // no complete reply yet and nothing wrong so far: read more
  kMalformed,     // not an SMTP reply: garbage, NUL, code out of range, codes that differ
  kLineTooLong,   // a line over kMaxReplyLineBytes
  kTooManyLines,  // more than kMaxReplyLines lines
};

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  Reply reply;
  std::size_t consumed = 0;
};

/// Parses one reply from a buffer that grows between calls (what the socket has delivered so
/// far), resuming at the line where the last call stopped, so that each byte is examined a
/// bounded number of times however the reply is split into reads: a server dribbling the end of
/// a long reply one byte at a time costs linear, not quadratic, work.
///
/// Lines end in CRLF; a bare LF is tolerated. A line is `CODE` or `CODE SP text` (last line) or
/// `CODE-text` (continuation). CODE is three digits, the first 2-5 and the second 0-5. Every line
/// of one reply must carry the same code.
class ReplyParser {
 public:
  /// `input` is the previous call's input with bytes appended; on the first call, and after any
  /// status but kIncomplete (the parser then starts afresh), it begins with a reply's first byte.
  /// Verdicts are final: once a prefix gets one, every longer input would get the same.
  ParseResult parse(std::string_view input);

  /// Bytes looked at so far (searching for line ends, validating), over every call: at most two
  /// per byte parsed, plus one per call (a CR that may end a line is looked at again).
  std::size_t bytes_examined() const { return examined_; }

 private:
  void start_afresh();
  ParseResult finish(ParseStatus status);

  std::array<std::size_t, kMaxReplyLines> line_ends_{};  // where each complete line's LF is
  std::size_t lines_ = 0;                                // complete lines so far
  std::size_t line_start_ = 0;                           // where the unfinished line starts
  std::size_t checked_ = 0;  // bytes of the unfinished line validated, none of them an LF
  std::size_t examined_ = 0;
};

/// Parses the first reply at the start of `input` in one go (as ReplyParser does).
ParseResult parse_reply(std::string_view input);

}  // namespace smtp
