#include "probes/ehlo.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "probes/reply.h"

namespace smtp {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Reply reply_of(std::string_view raw) {
  ParseResult r = parse_reply(raw);
  EXPECT_EQ(r.status, ParseStatus::kComplete) << raw;
  return r.reply;
}

EhloCapabilities ehlo(std::string_view raw) { return parse_ehlo(reply_of(raw)); }

TEST(ParseEhlo, PostfixReply) {
  const EhloCapabilities caps = ehlo(
      "250-mx.test.local\r\n"
      "250-PIPELINING\r\n"
      "250-SIZE 10240000\r\n"
      "250-VRFY\r\n"
      "250-ETRN\r\n"
      "250-STARTTLS\r\n"
      "250-ENHANCEDSTATUSCODES\r\n"
      "250-8BITMIME\r\n"
      "250-DSN\r\n"
      "250-SMTPUTF8\r\n"
      "250 CHUNKING\r\n");
  EXPECT_THAT(caps.keywords,
              ElementsAre("PIPELINING", "SIZE", "VRFY", "ETRN", "STARTTLS", "ENHANCEDSTATUSCODES",
                          "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"));
  EXPECT_EQ(caps.size_limit, 10240000u);
  EXPECT_TRUE(caps.starttls);
  EXPECT_THAT(caps.auth_mechanisms, IsEmpty());
  EXPECT_TRUE(caps.has("PIPELINING"));
  EXPECT_TRUE(caps.has("chunking"));
  EXPECT_FALSE(caps.has("AUTH"));
  EXPECT_FALSE(caps.has("mx.test.local"));
}

TEST(ParseEhlo, EximReply) {
  const EhloCapabilities caps = ehlo(
      "250-mx.test.local Hello localhost [127.0.0.1]\r\n"
      "250-SIZE 52428800\r\n"
      "250-8BITMIME\r\n"
      "250-PIPELINING\r\n"
      "250-AUTH PLAIN LOGIN\r\n"
      "250-CHUNKING\r\n"
      "250-STARTTLS\r\n"
      "250 HELP\r\n");
  EXPECT_THAT(caps.keywords, ElementsAre("SIZE", "8BITMIME", "PIPELINING", "AUTH", "CHUNKING",
                                         "STARTTLS", "HELP"));
  EXPECT_EQ(caps.size_limit, 52428800u);
  EXPECT_THAT(caps.auth_mechanisms, ElementsAre("PLAIN", "LOGIN"));
  EXPECT_TRUE(caps.starttls);
}

TEST(ParseEhlo, ExchangeReplyWithBothAuthForms) {
  const EhloCapabilities caps = ehlo(
      "250-mail.example.com Hello [192.0.2.5]\r\n"
      "250-TURN\r\n"
      "250-SIZE 37748736\r\n"
      "250-ETRN\r\n"
      "250-PIPELINING\r\n"
      "250-DSN\r\n"
      "250-ENHANCEDSTATUSCODES\r\n"
      "250-8bitmime\r\n"
      "250-BINARYMIME\r\n"
      "250-CHUNKING\r\n"
      "250-VRFY\r\n"
      "250-X-EXPS GSSAPI NTLM LOGIN\r\n"
      "250-X-EXPS=LOGIN\r\n"
      "250-AUTH GSSAPI NTLM LOGIN\r\n"
      "250-AUTH=LOGIN\r\n"
      "250-X-LINK2STATE\r\n"
      "250-XEXCH50\r\n"
      "250 OK\r\n");
  EXPECT_THAT(caps.auth_mechanisms, ElementsAre("GSSAPI", "NTLM", "LOGIN"));
  EXPECT_TRUE(caps.has("8BITMIME"));  // upper-cased
  EXPECT_TRUE(caps.has("X-EXPS"));
  EXPECT_TRUE(caps.has("XEXCH50"));
  EXPECT_EQ(caps.size_limit, 37748736u);
  EXPECT_FALSE(caps.starttls);
  // "AUTH" is listed once although two lines advertise it.
  EXPECT_EQ(std::count(caps.keywords.begin(), caps.keywords.end(), "AUTH"), 1);
}

TEST(ParseEhlo, OldAuthFormAlone) {
  const EhloCapabilities caps = ehlo("250-mx\r\n250 AUTH=LOGIN PLAIN\r\n");
  EXPECT_THAT(caps.keywords, ElementsAre("AUTH"));
  EXPECT_THAT(caps.auth_mechanisms, ElementsAre("LOGIN", "PLAIN"));
}

TEST(ParseEhlo, AuthMechanismsAreUpperCasedAndDeduplicated) {
  const EhloCapabilities caps =
      ehlo("250-mx\r\n250-auth login plain  cram-md5\tLOGIN\r\n250 AUTH=plain\r\n");
  EXPECT_THAT(caps.auth_mechanisms, ElementsAre("LOGIN", "PLAIN", "CRAM-MD5"));
}

TEST(ParseEhlo, AuthWithoutMechanisms) {
  const EhloCapabilities caps = ehlo("250-mx\r\n250 AUTH\r\n");
  EXPECT_TRUE(caps.has("AUTH"));
  EXPECT_THAT(caps.auth_mechanisms, IsEmpty());
}

TEST(ParseEhlo, SizeWithoutNumberOrZeroIsNoLimit) {
  EXPECT_EQ(ehlo("250-mx\r\n250 SIZE\r\n").size_limit, std::nullopt);
  EXPECT_EQ(ehlo("250-mx\r\n250 SIZE 0\r\n").size_limit, std::nullopt);
  EXPECT_TRUE(ehlo("250-mx\r\n250 SIZE 0\r\n").has("SIZE"));
}

TEST(ParseEhlo, SizeWithJunkIsNoLimit) {
  for (const char* raw :
       {"250-mx\r\n250 SIZE abc\r\n", "250-mx\r\n250 SIZE -5\r\n", "250-mx\r\n250 SIZE +5\r\n",
        "250-mx\r\n250 SIZE 12x\r\n", "250-mx\r\n250 SIZE 99999999999999999999999\r\n"}) {
    const EhloCapabilities caps = ehlo(raw);
    EXPECT_EQ(caps.size_limit, std::nullopt) << raw;
    EXPECT_TRUE(caps.has("SIZE")) << raw;
  }
}

TEST(ParseEhlo, LargestSize) {
  EXPECT_EQ(ehlo("250-mx\r\n250 SIZE 18446744073709551615\r\n").size_limit, 18446744073709551615u);
}

TEST(ParseEhlo, FirstSizeWins) {
  EXPECT_EQ(ehlo("250-mx\r\n250-SIZE 1000\r\n250 SIZE 2000\r\n").size_limit, 1000u);
}

TEST(ParseEhlo, KeywordsAreUpperCased) {
  const EhloCapabilities caps = ehlo("250-mx\r\n250-starttls\r\n250 Pipelining\r\n");
  EXPECT_THAT(caps.keywords, ElementsAre("STARTTLS", "PIPELINING"));
  EXPECT_TRUE(caps.starttls);
}

TEST(ParseEhlo, FirstLineIsNotAnExtension) {
  // Some servers greet with what looks like a keyword.
  const EhloCapabilities caps = ehlo("250-STARTTLS\r\n250 8BITMIME\r\n");
  EXPECT_FALSE(caps.starttls);
  EXPECT_THAT(caps.keywords, ElementsAre("8BITMIME"));
}

TEST(ParseEhlo, SingleLineReplyHasNoExtensions) {
  const EhloCapabilities caps = ehlo("250 mx.test.local Hello\r\n");
  EXPECT_THAT(caps.keywords, IsEmpty());
  EXPECT_FALSE(caps.starttls);
  EXPECT_EQ(caps.size_limit, std::nullopt);
  EXPECT_THAT(parse_ehlo(Reply{}).keywords, IsEmpty());
}

TEST(ParseEhlo, JunkLinesAreSkipped) {
  const EhloCapabilities caps = ehlo(
      "250-mx\r\n"
      "250-\r\n"
      "250-   \r\n"
      "250--DASH\r\n"
      "250-<script>\r\n"
      "250-SIZE=100\r\n"
      "250-caf\xc3\xa9\r\n"
      "250-" +
      std::string(200, 'A') +
      "\r\n"
      "250 STARTTLS\r\n");
  EXPECT_THAT(caps.keywords, ElementsAre("STARTTLS"));
  EXPECT_EQ(caps.size_limit, std::nullopt);
  EXPECT_TRUE(caps.starttls);
}

TEST(ParseEhlo, LeadingSpaceBeforeKeywordIsTolerated) {
  EXPECT_THAT(ehlo("250-mx\r\n250  STARTTLS\r\n").keywords, ElementsAre("STARTTLS"));
}

TEST(ParseEhlo, JunkMechanismsAreSkippedAndBounded) {
  std::string raw = "250-mx\r\n250 AUTH PLAIN <bad> " + std::string(21, 'X') + " LOGIN";
  for (int i = 0; i < 200; ++i) raw += " M" + std::to_string(i);
  raw += "\r\n";
  const EhloCapabilities caps = ehlo(raw);
  ASSERT_GE(caps.auth_mechanisms.size(), 3u);
  EXPECT_EQ(caps.auth_mechanisms[0], "PLAIN");
  EXPECT_EQ(caps.auth_mechanisms[1], "LOGIN");
  EXPECT_EQ(caps.auth_mechanisms[2], "M0");
  EXPECT_LE(caps.auth_mechanisms.size(), 32u);
}

TEST(ParseEhlo, ManyDuplicateKeywordsStayOne) {
  std::string raw = "250-mx\r\n";
  for (int i = 0; i < 98; ++i) raw += "250-PIPELINING\r\n";
  raw += "250 PIPELINING\r\n";
  EXPECT_THAT(ehlo(raw).keywords, ElementsAre("PIPELINING"));
}

}  // namespace
}  // namespace smtp
