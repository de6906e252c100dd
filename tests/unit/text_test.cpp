// The text helpers: case folding and the one way bytes from the network are made printable.
#include "probes/text.h"

#include <gtest/gtest.h>

#include <string>

namespace smtp {
namespace {

TEST(Printable, KeepsPrintableAsciiAndEscapesEveryOtherByte) {
  EXPECT_EQ(printable(""), "");
  EXPECT_EQ(printable("220 mx.example.org ESMTP"), "220 mx.example.org ESMTP");
  EXPECT_EQ(printable("220 ok\r\n"), "220 ok\\x0d\\x0a");
  EXPECT_EQ(printable("\x1b[31mred"), "\\x1b[31mred");  // at the start
  EXPECT_EQ(printable("a\x7f"
                      "b"),
            "a\\x7fb");                                        // DEL, in the middle
  EXPECT_EQ(printable("caf\xc3\xa9"), "caf\\xc3\\xa9");        // non-ASCII, at the end
  EXPECT_EQ(printable(std::string("\0\0", 2)), "\\x00\\x00");  // only escapes
  EXPECT_EQ(printable(" ~"), " ~");                            // the printable range's ends
}

TEST(CaseFolding, IsAsciiOnly) {
  EXPECT_TRUE(iequals("STARTTLS", "starttls"));
  EXPECT_FALSE(iequals("STARTTLS", "STARTTL"));
  EXPECT_EQ(ascii_lowered("EHLO Mx.Example"), "ehlo mx.example");
  EXPECT_EQ(ascii_lowered("\xc3\x89"), "\xc3\x89");  // a UTF-8 É is left alone
}

}  // namespace
}  // namespace smtp
