#include "probes/reply.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace smtp {
namespace {

using ::testing::ElementsAre;
using namespace std::string_literals;

ParseResult parse(std::string_view input) { return parse_reply(input); }

TEST(ParseReply, SingleLine) {
  const std::string input = "220 mx.test.local ESMTP Postfix (Debian/GNU)\r\n";
  const ParseResult r = parse(input);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.reply.code, 220);
  EXPECT_THAT(r.reply.lines, ElementsAre("mx.test.local ESMTP Postfix (Debian/GNU)"));
  EXPECT_EQ(r.consumed, input.size());
}

TEST(ParseReply, MultiLine) {
  const std::string input =
      "250-mx.test.local\r\n"
      "250-PIPELINING\r\n"
      "250-SIZE 10240000\r\n"
      "250 CHUNKING\r\n";
  const ParseResult r = parse(input);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.reply.code, 250);
  EXPECT_THAT(r.reply.lines,
              ElementsAre("mx.test.local", "PIPELINING", "SIZE 10240000", "CHUNKING"));
  EXPECT_EQ(r.consumed, input.size());
}

TEST(ParseReply, BareLfIsTolerated) {
  const std::string input = "250-first\n250-second\r\n250 last\n";
  const ParseResult r = parse(input);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_THAT(r.reply.lines, ElementsAre("first", "second", "last"));
  EXPECT_EQ(r.consumed, input.size());
}

TEST(ParseReply, BareCodeIsALastLine) {
  const ParseResult r = parse("220\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.reply.code, 220);
  EXPECT_THAT(r.reply.lines, ElementsAre(""));
  EXPECT_EQ(r.consumed, 5u);
}

TEST(ParseReply, BareCodeEndsAMultiLineReply) {
  const ParseResult r = parse("250-one\r\n250\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_THAT(r.reply.lines, ElementsAre("one", ""));
  EXPECT_EQ(r.consumed, 13u);
}

TEST(ParseReply, EmptyTextAfterSpaceOrHyphen) {
  const ParseResult r = parse("221-\r\n221 \r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.reply.code, 221);
  EXPECT_THAT(r.reply.lines, ElementsAre("", ""));
}

TEST(ParseReply, TextKeepsTabsAndUtf8) {
  const ParseResult r = parse("250 caf\xc3\xa9\tok\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_THAT(r.reply.lines, ElementsAre("caf\xc3\xa9\tok"));
}

TEST(ParseReply, CodesAtTheEdgesOfTheRange) {
  for (const char* input : {"200 a\r\n", "259 a\r\n", "421 a\r\n", "554 a\r\n", "559 a\r\n"}) {
    EXPECT_EQ(parse(input).status, ParseStatus::kComplete) << input;
  }
  EXPECT_EQ(parse("554 5.7.1 no\r\n").reply.code, 554);
}

TEST(ParseReply, EmptyInputIsIncomplete) { EXPECT_EQ(parse("").status, ParseStatus::kIncomplete); }

TEST(ParseReply, EveryPrefixOfAValidReplyIsIncomplete) {
  const std::string input = "250-mx.test.local\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
  for (std::size_t n = 0; n < input.size(); ++n) {
    const ParseResult r = parse(std::string_view(input).substr(0, n));
    EXPECT_EQ(r.status, ParseStatus::kIncomplete) << "prefix of " << n << " bytes";
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_TRUE(r.reply.lines.empty());
  }
  EXPECT_EQ(parse(input).status, ParseStatus::kComplete);
}

TEST(ParseReply, PartialLineIsIncomplete) {
  EXPECT_EQ(parse("2").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parse("22").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parse("220").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parse("220\r").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parse("220 mx.test").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parse("220 mx.test\r").status, ParseStatus::kIncomplete);
}

TEST(ParseReply, PartialMultiLineIsIncomplete) {
  EXPECT_EQ(parse("220-first\r\n").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parse("220-first\r\n220-second\r\n220").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parse("220-first\r\n220 last").status, ParseStatus::kIncomplete);
}

TEST(ParseReply, PipelinedDataAfterTheReplyIsNotConsumed) {
  const std::string reply = "250-a\r\n250 b\r\n";
  const std::string input = reply + "221 bye\r\n354 go";
  const ParseResult r = parse(input);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_THAT(r.reply.lines, ElementsAre("a", "b"));
  EXPECT_EQ(r.consumed, reply.size());

  const ParseResult next = parse(std::string_view(input).substr(r.consumed));
  ASSERT_EQ(next.status, ParseStatus::kComplete);
  EXPECT_EQ(next.reply.code, 221);
  EXPECT_EQ(next.consumed, 9u);
}

TEST(ParseReply, GarbageAfterTheReplyDoesNotSpoilIt) {
  const ParseResult r = parse("220 ok\r\n\x16\x03\x01garbage"s);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, 8u);
}

TEST(ParseReply, CodeMismatchIsMalformed) {
  EXPECT_EQ(parse("250-a\r\n251 b\r\n").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("250-a\r\n350 b\r\n").status, ParseStatus::kMalformed);
  // Seen as soon as the differing digit arrives.
  EXPECT_EQ(parse("250-a\r\n25").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parse("250-a\r\n251").status, ParseStatus::kMalformed);
}

TEST(ParseReply, CodeOutOfRangeIsMalformed) {
  for (const char* input : {"600 no\r\n", "100 no\r\n", "000 no\r\n", "999 no\r\n", "270 no\r\n",
                            "260 no\r\n", "590 no\r\n", "599 no\r\n"}) {
    EXPECT_EQ(parse(input).status, ParseStatus::kMalformed) << input;
  }
  // Decided on the offending digit, without waiting for the line end.
  EXPECT_EQ(parse("6").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("27").status, ParseStatus::kMalformed);
}

TEST(ParseReply, BadCodeShapeIsMalformed) {
  for (const char* input : {"22 ok\r\n", "2200 ok\r\n", "22a ok\r\n", "220\tok\r\n", "220_ok\r\n",
                            " 220 ok\r\n", "\r\n", "\n", "22\r\n", "-220 ok\r\n"}) {
    EXPECT_EQ(parse(input).status, ParseStatus::kMalformed) << '"' << input << '"';
  }
}

TEST(ParseReply, NulIsMalformed) {
  EXPECT_EQ(parse("220 mx\0test\r\n"s).status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("\0"s).status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("220 ok\0"s).status, ParseStatus::kMalformed);  // before any line end
  EXPECT_EQ(parse("250-a\r\n250-b\0\r\n250 c\r\n"s).status, ParseStatus::kMalformed);
}

TEST(ParseReply, ControlBytesAreMalformed) {
  EXPECT_EQ(parse("220 a\x01 b\r\n").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("220 a\x1b[31m\r\n").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("220 a\x7f\r\n").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("220 a\rb\r\n").status, ParseStatus::kMalformed);  // CR not before LF
  EXPECT_EQ(parse("220 a\r\r\n").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("220\r220 a\r\n").status, ParseStatus::kMalformed);
}

TEST(ParseReply, GarbageIsMalformedWithoutANewline) {
  EXPECT_EQ(parse("HTTP/1.1").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("H").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("SSH-2.0-OpenSSH_9.2p1 Debian-2").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("+OK POP3 ready").status, ParseStatus::kMalformed);
  EXPECT_EQ(parse("* OK IMAP4rev1").status, ParseStatus::kMalformed);
}

TEST(ParseReply, HttpResponseIsMalformed) {
  const ParseResult r = parse(
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
      "400 Bad Request");
  EXPECT_EQ(r.status, ParseStatus::kMalformed);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_TRUE(r.reply.lines.empty());
}

TEST(ParseReply, TlsServerHelloIsMalformed) {
  // A TLS record header (handshake, TLS 1.0 record version) then the start of a ServerHello:
  // what a client speaking plain SMTP to an implicit-TLS port gets in answer to its silence.
  const std::string server_hello = "\x16\x03\x01\x00\x5a\x02\x00\x00\x56\x03\x03"s;
  EXPECT_EQ(parse(server_hello).status, ParseStatus::kMalformed);
  EXPECT_EQ(parse(server_hello.substr(0, 1)).status, ParseStatus::kMalformed);
  // A TLS alert (e.g. after we sent plaintext to a TLS port).
  EXPECT_EQ(parse("\x15\x03\x03\x00\x02\x02\x32"s).status, ParseStatus::kMalformed);
}

std::string line_of(std::size_t total_bytes, const char* prefix, const char* ending) {
  const std::size_t fixed =
      std::char_traits<char>::length(prefix) + std::char_traits<char>::length(ending);
  return prefix + std::string(total_bytes - fixed, 'x') + ending;
}

TEST(ParseReply, LineExactlyAtTheLimit) {
  const std::string crlf = line_of(kMaxReplyLineBytes, "220 ", "\r\n");
  ASSERT_EQ(crlf.size(), kMaxReplyLineBytes);
  const ParseResult r = parse(crlf);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.reply.lines.at(0).size(), kMaxReplyLineBytes - 6);
  EXPECT_EQ(r.consumed, kMaxReplyLineBytes);

  EXPECT_EQ(parse(line_of(kMaxReplyLineBytes, "220 ", "\n")).status, ParseStatus::kComplete);
  // Unfinished at the limit minus one: the LF may still come in time.
  EXPECT_EQ(parse(crlf.substr(0, kMaxReplyLineBytes - 1)).status, ParseStatus::kIncomplete);
}

TEST(ParseReply, LineOneByteOverTheLimit) {
  EXPECT_EQ(parse(line_of(kMaxReplyLineBytes + 1, "220 ", "\r\n")).status,
            ParseStatus::kLineTooLong);
  EXPECT_EQ(parse(line_of(kMaxReplyLineBytes + 1, "220 ", "\n")).status, ParseStatus::kLineTooLong);
}

TEST(ParseReply, OverLongContinuationLine) {
  const std::string input =
      "250-ok\r\n" + line_of(kMaxReplyLineBytes + 1, "250-", "\r\n") + "250 end\r\n";
  EXPECT_EQ(parse(input).status, ParseStatus::kLineTooLong);
}

TEST(ParseReply, UnterminatedOverLongLine) {
  // No line end yet, but already at the limit: the LF could only make it longer.
  const std::string body = "220 " + std::string(kMaxReplyLineBytes - 4, 'x');
  EXPECT_EQ(parse(body).status, ParseStatus::kLineTooLong);
  EXPECT_EQ(parse(body + std::string(100000, 'y')).status, ParseStatus::kLineTooLong);
  EXPECT_EQ(parse(body.substr(0, body.size() - 1)).status, ParseStatus::kIncomplete);
  // Ending in the CR of a line ending that would be one byte too long.
  EXPECT_EQ(parse(body.substr(0, body.size() - 1) + "\r").status, ParseStatus::kLineTooLong);
}

TEST(ParseReply, GarbageInsideAnOverLongLineIsMalformed) {
  std::string body = "220 " + std::string(kMaxReplyLineBytes + 10, 'x');
  body[100] = '\0';
  EXPECT_EQ(parse(body).status, ParseStatus::kMalformed);
}

std::string reply_of(std::size_t lines) {
  std::string input;
  for (std::size_t i = 1; i < lines; ++i) input += "250-line\r\n";
  input += "250 last\r\n";
  return input;
}

TEST(ParseReply, HundredLinesAreAllowed) {
  const std::string input = reply_of(kMaxReplyLines);
  const ParseResult r = parse(input);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.reply.lines.size(), kMaxReplyLines);
  EXPECT_EQ(r.reply.lines.back(), "last");
  EXPECT_EQ(r.consumed, input.size());
}

TEST(ParseReply, HundredAndOneLinesAreTooMany) {
  EXPECT_EQ(parse(reply_of(kMaxReplyLines + 1)).status, ParseStatus::kTooManyLines);
  // A hundredth line that is a continuation already promises a hundred and first.
  std::string continuations;
  for (std::size_t i = 0; i < kMaxReplyLines; ++i) continuations += "250-line\r\n";
  EXPECT_EQ(parse(continuations).status, ParseStatus::kTooManyLines);
  EXPECT_EQ(parse(continuations.substr(0, continuations.size() - 1)).status,
            ParseStatus::kIncomplete);
}

TEST(ParseReply, LargestReplyFitsTheBufferBound) {
  std::string input;
  for (std::size_t i = 1; i < kMaxReplyLines; ++i) {
    input += line_of(kMaxReplyLineBytes, "250-", "\r\n");
  }
  input += line_of(kMaxReplyLineBytes, "250 ", "\r\n");
  ASSERT_EQ(input.size(), kMaxReplyBytes);
  const ParseResult r = parse(input);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, kMaxReplyBytes);
}

TEST(ParseReply, NonCompleteResultsCarryNoReply) {
  for (const std::string& input : {"250-a\r\n"s, "HTTP/1.1"s, reply_of(kMaxReplyLines + 1)}) {
    const ParseResult r = parse(input);
    EXPECT_NE(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_EQ(r.reply.code, 0);
    EXPECT_TRUE(r.reply.lines.empty());
  }
}

// The verdict on a prefix is final: once a prefix is complete, malformed or too long, every
// longer input gets the same answer. This is what lets the caller decide on partial reads.
TEST(ParseReply, VerdictsOnPrefixesAreFinal) {
  static constexpr std::string_view kPieces[] = {
      "2",  "5",  "0",    "7", "9",  "250", "251",       "-",         " ",
      "\r", "\n", "\r\n", "x", "\t", "\0",  "250-a\r\n", "250 b\r\n", "HTTP"};
  std::mt19937 rng(12345);  // fixed: the same inputs on every run
  std::uniform_int_distribution<std::size_t> pick(0, std::size(kPieces) - 1);
  for (int round = 0; round < 2000; ++round) {
    std::string input;
    for (int i = 0; i < 12; ++i) input += kPieces[pick(rng)];
    std::optional<ParseResult> decided;
    for (std::size_t n = 0; n <= input.size(); ++n) {
      const ParseResult r = parse(std::string_view(input).substr(0, n));
      if (decided) {
        ASSERT_EQ(r.status, decided->status) << testing::PrintToString(input) << " at " << n;
        ASSERT_EQ(r.consumed, decided->consumed);
        ASSERT_EQ(r.reply.lines, decided->reply.lines);
      } else if (r.status != ParseStatus::kIncomplete) {
        decided = r;
        if (r.status == ParseStatus::kComplete) {
          ASSERT_EQ(r.consumed, n) << "completes on the LF that ends it";
        }
      }
    }
  }
}

// --- ReplyParser: the same verdicts from a buffer that grows between calls --------------------

// Feeds `input` to one ReplyParser as a socket would deliver it: a buffer grown by `steps` bytes
// at a time (cycled), parsed after every step, until a verdict.
ParseResult parse_grown(ReplyParser& parser, std::string_view input,
                        const std::vector<std::size_t>& steps) {
  std::size_t size = 0;
  for (std::size_t i = 0;; ++i) {
    size = std::min(input.size(), size + steps[i % steps.size()]);
    ParseResult r = parser.parse(input.substr(0, size));
    if (r.status != ParseStatus::kIncomplete || size == input.size()) return r;
  }
}

void expect_same(const ParseResult& grown, const ParseResult& whole, std::string_view input) {
  EXPECT_EQ(grown.status, whole.status) << testing::PrintToString(std::string(input));
  EXPECT_EQ(grown.consumed, whole.consumed);
  EXPECT_EQ(grown.reply.code, whole.reply.code);
  EXPECT_EQ(grown.reply.lines, whole.reply.lines);
}

std::string long_line(const char* prefix) {
  return line_of(2000, prefix, "\r\n");  // what a hostile server sends to waste our time
}

TEST(ReplyParser, DribbledEndOfALongReplyCostsLinearWork) {
  // 99 long continuation lines at once, then the last line one byte per read: parsing from the
  // start on every read would examine the 198,000 bytes before it 2,000 times over.
  std::string input;
  for (int i = 0; i < 99; ++i) input += long_line("250-");
  const std::size_t head = input.size();
  input += long_line("250 ");
  ReplyParser parser;
  EXPECT_EQ(parser.parse(std::string_view(input).substr(0, head)).status, ParseStatus::kIncomplete);
  ParseResult r;
  for (std::size_t size = head + 1; size <= input.size(); ++size) {
    r = parser.parse(std::string_view(input).substr(0, size));
    if (size < input.size()) {
      ASSERT_EQ(r.status, ParseStatus::kIncomplete) << size;
    }
  }
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, input.size());
  EXPECT_EQ(r.reply.lines.size(), 100u);
  EXPECT_LE(parser.bytes_examined(), 3 * input.size());
  EXPECT_GE(parser.bytes_examined(), input.size());  // every byte was looked at
}

TEST(ReplyParser, EverySplitGivesTheOneShotVerdict) {
  std::string hundred_one;
  for (std::size_t i = 0; i < kMaxReplyLines; ++i) hundred_one += "250-x\r\n";
  const std::vector<std::string> inputs = {
      "250-mx.test.local\r\n250-PIPELINING\r\n250 CHUNKING\r\n221 pipelined\r\n",
      "220\r\n",
      "250-a\n250-b\r\n250\n",
      "250-a\r\n251 b\r\n",
      "250-a\r\n250-b\0\r\n250 c\r\n"s,
      "220 a\rb\r\n",
      "220\r\r\n",
      "HTTP/1.1 400 Bad Request\r\n",
      "220 ok\r\n\x16\x03\x01garbage"s,
      long_line("250-") + "250 " + std::string(kMaxReplyLineBytes, 'y'),
      "250-ok\r\n" + line_of(kMaxReplyLineBytes + 1, "250-", "\r\n") + "250 end\r\n",
      "220 " + std::string(kMaxReplyLineBytes - 5, 'x') + "\r",
      hundred_one + "250 end\r\n",
      reply_of(kMaxReplyLines),
  };
  const std::vector<std::vector<std::size_t>> splits = {{1}, {2}, {3, 1}, {7}, {4096}, {1, 2000}};
  for (const std::string& input : inputs) {
    const ParseResult whole = parse(input);
    for (const auto& steps : splits) {
      ReplyParser parser;
      expect_same(parse_grown(parser, input, steps), whole, input);
    }
  }
}

TEST(ReplyParser, StartsAfreshAfterAVerdict) {
  const std::string input = "250-a\r\n250 b\r\n221 bye\r\n";
  ReplyParser parser;
  EXPECT_EQ(parser.parse(std::string_view(input).substr(0, 9)).status, ParseStatus::kIncomplete);
  const ParseResult first = parser.parse(input);
  ASSERT_EQ(first.status, ParseStatus::kComplete);
  EXPECT_THAT(first.reply.lines, ElementsAre("a", "b"));
  // The caller drops the consumed bytes; what is left begins the next reply.
  const ParseResult second = parser.parse(std::string_view(input).substr(first.consumed));
  ASSERT_EQ(second.status, ParseStatus::kComplete);
  EXPECT_EQ(second.reply.code, 221);

  EXPECT_EQ(parser.parse("HTTP").status, ParseStatus::kMalformed);
  EXPECT_EQ(parser.parse("220 again\r\n").status, ParseStatus::kComplete);
}

TEST(ReplyParser, AShorterInputIsANewReply) {
  // Not a grown buffer: the parser must not trust what it saw before (nor read past the end).
  ReplyParser parser;
  EXPECT_EQ(parser.parse("250-aaaaaaaa").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parser.parse("22").status, ParseStatus::kIncomplete);
  const ParseResult r = parser.parse("220 x\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.reply.code, 220);
}

}  // namespace
}  // namespace smtp
