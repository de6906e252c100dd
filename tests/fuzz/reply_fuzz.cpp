// parse_reply on arbitrary bytes: never crashes, and what it reports is consistent; ReplyParser
// fed the same bytes as a growing buffer, however they are split into reads, reaches the same
// verdict in linear work.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "probes/reply.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using smtp::ParseResult;
using smtp::ParseStatus;

bool is_text_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

void check_complete(std::string_view input, const ParseResult& r) {
  FUZZ_CHECK(r.consumed > 0);
  FUZZ_CHECK(r.consumed <= input.size());
  FUZZ_CHECK(input[r.consumed - 1] == '\n');
  FUZZ_CHECK(r.consumed <= smtp::kMaxReplyBytes);
  FUZZ_CHECK(!r.reply.lines.empty());
  FUZZ_CHECK(r.reply.lines.size() <= smtp::kMaxReplyLines);
  FUZZ_CHECK(r.reply.code >= 200 && r.reply.code <= 559);
  FUZZ_CHECK(r.reply.code / 10 % 10 <= 5);  // second digit 0-5 (RFC 5321 §4.2)
  for (const std::string& line : r.reply.lines) {
    FUZZ_CHECK(line.size() < smtp::kMaxReplyLineBytes);
    for (char c : line) FUZZ_CHECK(is_text_byte(static_cast<unsigned char>(c)));
  }

  // The verdict rests on the consumed bytes alone: what follows them (the next reply,
  // pipelined) changes nothing.
  const ParseResult alone = smtp::parse_reply(input.substr(0, r.consumed));
  FUZZ_CHECK(alone.status == ParseStatus::kComplete);
  FUZZ_CHECK(alone.consumed == r.consumed);
  FUZZ_CHECK(alone.reply.code == r.reply.code);
  FUZZ_CHECK(alone.reply.lines == r.reply.lines);

  // Written out again (LF endings, never longer than the original lines), the reply parses to
  // itself.
  const std::string code = std::to_string(r.reply.code);
  std::string written;
  for (std::size_t i = 0; i < r.reply.lines.size(); ++i) {
    written += code;
    written += i + 1 < r.reply.lines.size() ? '-' : ' ';
    written += r.reply.lines[i];
    written += '\n';
  }
  const ParseResult again = smtp::parse_reply(written);
  FUZZ_CHECK(again.status == ParseStatus::kComplete);
  FUZZ_CHECK(again.consumed == written.size());
  FUZZ_CHECK(again.reply.code == r.reply.code);
  FUZZ_CHECK(again.reply.lines == r.reply.lines);
}

// Feeds `input` to a ReplyParser as a buffer grown by `next_step(size)` bytes at a time, parsing
// after each step, and checks it reaches the one-shot verdict `whole` on the prefix where that
// verdict became due, having examined each byte at most twice (plus one per call).
template <typename NextStep>
void check_grown(std::string_view input, const ParseResult& whole, NextStep next_step) {
  smtp::ReplyParser parser;
  ParseResult r;
  std::size_t size = 0;
  std::size_t calls = 0;
  do {
    size = std::min(input.size(), size + next_step(size));
    r = parser.parse(input.substr(0, size));
    ++calls;
  } while (r.status == ParseStatus::kIncomplete && size < input.size());
  FUZZ_CHECK(r.status == whole.status);
  FUZZ_CHECK(r.consumed == whole.consumed);
  FUZZ_CHECK(r.reply.code == whole.reply.code);
  FUZZ_CHECK(r.reply.lines == whole.reply.lines);
  FUZZ_CHECK(parser.bytes_examined() <= 2 * size + calls);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const ParseResult r = smtp::parse_reply(input);
  switch (r.status) {
    case ParseStatus::kComplete:
      check_complete(input, r);
      break;
    case ParseStatus::kIncomplete:
      // "Read more" is only an answer while the reply could still fit the bounded buffer.
      FUZZ_CHECK(size < smtp::kMaxReplyBytes);
      [[fallthrough]];
    case ParseStatus::kMalformed:
    case ParseStatus::kLineTooLong:
    case ParseStatus::kTooManyLines:
      FUZZ_CHECK(r.consumed == 0);
      FUZZ_CHECK(r.reply.code == 0);
      FUZZ_CHECK(r.reply.lines.empty());
      break;
    default:
      FUZZ_CHECK(false && "unknown ParseStatus");
  }

  // What the probe does with a socket's reads: one byte at a time (a dribbling server), and
  // reads of sizes taken from the bytes themselves (1 to 16), so each input is cut differently.
  check_grown(input, r, [](std::size_t) { return std::size_t{1}; });
  check_grown(input, r, [input](std::size_t size) {
    return size < input.size() ? 1 + static_cast<unsigned char>(input[size]) % 16 : 1;
  });
  return 0;
}
