#include "probes/banner.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "probes/reply.h"

namespace smtp {
namespace {

// Parses raw greeting bytes the way the probe does, so the tests use banners as sent.
Reply greeting(std::string_view raw) {
  ParseResult r = parse_reply(raw);
  EXPECT_EQ(r.status, ParseStatus::kComplete) << raw;
  return r.reply;
}

BannerInfo banner(std::string_view raw) { return parse_banner(greeting(raw)); }

struct RealBanner {
  const char* raw;
  const char* hostname;
  const char* software;
};

// Greetings as the servers send them, from their sources, documentation and transcripts.
const RealBanner kRealBanners[] = {
    {"220 mx.test.local ESMTP Postfix (Debian/GNU)\r\n", "mx.test.local", "postfix"},
    {"220 mail.example.com ESMTP Postfix (Ubuntu)\r\n", "mail.example.com", "postfix"},
    {"220 mx.test.local ESMTP Postfix\r\n", "mx.test.local", "postfix"},
    {"220 mx.test.local ESMTP Exim 4.96 Sun, 29 Nov 2026 06:00:00 +0000\r\n", "mx.test.local",
     "exim"},
    // cPanel's Exim: a multi-line greeting with a build number.
    {"220-server.example.com ESMTP Exim 4.96.2 #2 Sun, 29 Nov 2026 06:00:00 +0000 \r\n"
     "220-We do not authorize the use of this system to transport unsolicited, \r\n"
     "220 and/or bulk e-mail.\r\n",
     "server.example.com", "exim"},
    {"220 mail.example.com ESMTP Sendmail 8.15.2/8.15.2; Sun, 29 Nov 2026 06:00:00 -0500\r\n",
     "mail.example.com", "sendmail"},
    {"220 connect.example.com ESMTP Sendmail 8.14.4/8.14.4/Debian-2ubuntu2; Mon, 15 Apr 2013 "
     "01:07:17 +0400; (No UCE/UBE) logging access from: client.example.net(OK)\r\n",
     "connect.example.com", "sendmail"},
    {"220 mx.test.local ESMTP OpenSMTPD\r\n", "mx.test.local", "opensmtpd"},
    {"220 EXCH01.corp.example.com Microsoft ESMTP MAIL Service ready at Sun, 29 Nov 2026 "
     "06:00:00 +0100\r\n",
     "exch01.corp.example.com", "microsoft"},
    {"220 AM0PR01MB1234.eurprd01.prod.exchangelabs.com Microsoft ESMTP MAIL Service ready at "
     "Sun, 29 Nov 2026 06:00:00 +0000\r\n",
     "am0pr01mb1234.eurprd01.prod.exchangelabs.com", "microsoft"},
    {"220 BL2NAM06FT004.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready at Thu, 26 "
     "Sep 2019 10:51:20 +0000\r\n",
     "bl2nam06ft004.mail.protection.outlook.com", "microsoft"},
    // IIS 6 SMTP service (and Exchange 2003 on it).
    {"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Sat, 3 "
     "Sep 2011 08:39:16 -0700\r\n",
     "mail.example.com", "microsoft"},
    // Exchange 5.5.
    {"220 mail.example.com ESMTP Server (Microsoft Exchange Internet Mail Service 5.5.2653.13) "
     "ready\r\n",
     "mail.example.com", "microsoft"},
    // qmail's and Courier's defaults are both just "<me> ESMTP": they name no software.
    {"220 mail.example.com ESMTP\r\n", "mail.example.com", "unknown"},
    {"220 mail.example.com ESMTP qmail\r\n", "mail.example.com", "qmail"},
    {"220 mail.example.com ESMTP netqmail-1.06\r\n", "mail.example.com", "qmail"},
    {"220 mail.example.com ESMTP Courier 1.0.16\r\n", "mail.example.com", "courier"},
    {"220 mail.example.com ESMTP Haraka/3.0.2 ready\r\n", "mail.example.com", "haraka"},
    {"220 redcross ESMTP Haraka 2.8.8 ready\r\n", "redcross", "haraka"},
    {"220 mx.google.com ESMTP a1si123456wrb.45 - gsmtp\r\n", "mx.google.com", "google"},
    {"220 smtp.gmail.com ESMTP 5b1f17b1804b1-4a6e2c3d5f7si12345f8.21 - gsmtp\r\n", "smtp.gmail.com",
     "google"},
    // Older Google greetings had no "gsmtp": the host name still tells.
    {"220 mx.google.com ESMTP m5sm6471201gve.3\r\n", "mx.google.com", "google"},
    {"220 smtp.mail.yahoo.com ESMTP ready\r\n", "smtp.mail.yahoo.com", "yahoo"},
    {"220 mtaproxy121.aol.mail.ne1.yahoo.com ESMTP ready\r\n", "mtaproxy121.aol.mail.ne1.yahoo.com",
     "yahoo"},
    {"220 email-smtp.amazonaws.com ESMTP SimpleEmailService-d-VCSHDP1YZ A1b2C3d4E5f6G7h8I9j0\r\n",
     "email-smtp.amazonaws.com", "amazon_ses"},
};

TEST(ParseBanner, RealBanners) {
  for (const RealBanner& b : kRealBanners) {
    const BannerInfo info = banner(b.raw);
    EXPECT_EQ(info.hostname, b.hostname) << b.raw;
    EXPECT_EQ(info.software, b.software) << b.raw;
  }
}

TEST(ParseBanner, SoftwareIsOneOfAFixedSet) {
  const std::set<std::string> allowed = {"postfix",   "exim",  "sendmail",   "opensmtpd",
                                         "microsoft", "qmail", "courier",    "haraka",
                                         "google",    "yahoo", "amazon_ses", "unknown"};
  for (const RealBanner& b : kRealBanners) {
    EXPECT_EQ(allowed.count(banner(b.raw).software), 1u) << b.raw;
  }
  // A banner that changes on every connection yields the same labels every time.
  EXPECT_EQ(banner("220 mx ESMTP Exim 4.96 Sun, 29 Nov 2026 06:00:00 +0000\r\n").software,
            banner("220 mx ESMTP Exim 4.96 Mon, 30 Nov 2026 07:11:12 +0000\r\n").software);
  EXPECT_EQ(banner("220 x ESMTP Randomware 1.2.3 token-8f7e6d\r\n").software, "unknown");
}

TEST(ParseBanner, SoftwareIsCaseInsensitive) {
  EXPECT_EQ(banner("220 mx.example.com ESMTP POSTFIX\r\n").software, "postfix");
  EXPECT_EQ(banner("220 mx.example.com esmtp exim 4.96\r\n").software, "exim");
  EXPECT_EQ(banner("220 mx.example.com microsoft esmtp mail service ready\r\n").software,
            "microsoft");
}

TEST(ParseBanner, SoftwareIsMatchedAsAWord) {
  // Not fooled by substrings: "postfixed", "eximious", "maxqmailer".
  EXPECT_EQ(banner("220 mx.example.com ESMTP postfixed eximious maxqmailer\r\n").software,
            "unknown");
  EXPECT_EQ(banner("220 mx.example.com ESMTP Microsoft-friendly\r\n").software, "unknown");
}

TEST(ParseBanner, HostnameIsNotTakenForSoftware) {
  EXPECT_EQ(banner("220 postfix.example.com ESMTP\r\n").software, "unknown");
  EXPECT_EQ(banner("220 exim ESMTP ready\r\n").software, "unknown");
  EXPECT_EQ(banner("220 postfix.example.com ESMTP Exim 4.96\r\n").software, "exim");
}

TEST(ParseBanner, SoftwareOnALaterLine) {
  const BannerInfo info = banner(
      "220-mail.example.com ESMTP\r\n"
      "220-Unsolicited bulk mail is not welcome here.\r\n"
      "220 Powered by Postfix\r\n");
  EXPECT_EQ(info.hostname, "mail.example.com");
  EXPECT_EQ(info.software, "postfix");
}

TEST(ParseBanner, MultiLineHostnameComesFromTheFirstLine) {
  const BannerInfo info = banner(
      "220-first.example.com ESMTP\r\n"
      "220 second.example.com ready\r\n");
  EXPECT_EQ(info.hostname, "first.example.com");
}

TEST(ParseBanner, HostnameIsLowerCasedWithoutTrailingDot) {
  EXPECT_EQ(banner("220 MX.Example.COM ESMTP\r\n").hostname, "mx.example.com");
  EXPECT_EQ(banner("220 mx.example.com. ESMTP\r\n").hostname, "mx.example.com");
  EXPECT_EQ(banner("220 MX.EXAMPLE.COM.\r\n").hostname, "mx.example.com");
}

TEST(ParseBanner, HostnameAloneOnTheLine) {
  EXPECT_EQ(banner("220 mx.example.com\r\n").hostname, "mx.example.com");
  EXPECT_EQ(banner("220 mx.example.com\tESMTP\r\n").hostname, "mx.example.com");
}

TEST(ParseBanner, LabelsMayStartWithADigit) {
  EXPECT_EQ(banner("220 1and1.example.com ESMTP\r\n").hostname, "1and1.example.com");
  EXPECT_EQ(banner("220 mx-01.3com.example ESMTP\r\n").hostname, "mx-01.3com.example");
}

TEST(ParseBanner, InvalidHostnames) {
  for (const char* raw : {
           "220 <script>alert(1)</script> ESMTP\r\n",
           "220 ___ ESMTP\r\n",
           "220 mx_1.example.com ESMTP\r\n",
           "220 -mx.example.com ESMTP\r\n",
           "220 mx-.example.com ESMTP\r\n",
           "220 mx..example.com ESMTP\r\n",
           "220 .example.com ESMTP\r\n",
           "220 . ESMTP\r\n",
           "220 mx.example.com: ESMTP\r\n",
           "220 caf\xc3\xa9.example ESMTP\r\n",
           "220 192.0.2.1 ESMTP\r\n",  // a bare address is neither a name nor a literal
           "220 \r\n",
           "220\r\n",
           "220      \r\n",
       }) {
    EXPECT_EQ(banner(raw).hostname, "invalid") << raw;
  }
}

TEST(ParseBanner, OverLongHostnames) {
  const std::string label63(63, 'a');
  const std::string label64(64, 'a');
  EXPECT_EQ(banner("220 " + label63 + ".example ESMTP\r\n").hostname, label63 + ".example");
  EXPECT_EQ(banner("220 " + label64 + ".example ESMTP\r\n").hostname, "invalid");

  std::string name300;
  while (name300.size() < 300) name300 += "abcdefghi.";
  name300 += "com";
  EXPECT_EQ(banner("220 " + name300 + " ESMTP\r\n").hostname, "invalid");
}

TEST(ParseBanner, AddressLiterals) {
  EXPECT_EQ(banner("220 [192.0.2.1] ESMTP\r\n").hostname, "[192.0.2.1]");
  EXPECT_EQ(banner("220 [IPv6:2001:db8::1] ESMTP\r\n").hostname, "[IPv6:2001:db8::1]");
  // One address, one spelling: the tag as RFC 5321 writes it, the address in canonical form.
  EXPECT_EQ(banner("220 [ipv6:2001:DB8:0:0:0:0:0:1] ESMTP\r\n").hostname, "[IPv6:2001:db8::1]");
  EXPECT_EQ(banner("220 [IPv6:::ffff:192.0.2.1]\r\n").hostname, "[IPv6:::ffff:192.0.2.1]");
}

TEST(ParseBanner, InvalidAddressLiterals) {
  for (const char* raw : {
           "220 [192.0.2.256] ESMTP\r\n",
           "220 [192.0.2] ESMTP\r\n",
           "220 [2001:db8::1] ESMTP\r\n",  // IPv6 needs its tag
           "220 [IPv6:192.0.2.1] ESMTP\r\n",
           "220 [IPv6:2001:db8::g] ESMTP\r\n",
           "220 [192.0.2.1 ESMTP\r\n",
           "220 [] ESMTP\r\n",
           "220 [IPv6:] ESMTP\r\n",
           "220 [x-tag:whatever] ESMTP\r\n",
           "220 [IPv6:2001:0db8:0000:0000:0000:0000:0000:0001:0001:0001:0001] ESMTP\r\n",
       }) {
    EXPECT_EQ(banner(raw).hostname, "invalid") << raw;
  }
}

TEST(ParseBanner, EmptyReply) {
  const BannerInfo info = parse_banner(Reply{});
  EXPECT_EQ(info.hostname, "invalid");
  EXPECT_EQ(info.software, "unknown");
}

TEST(ParseBanner, InvalidHostnameSkipsProviderGuess) {
  // A Google-looking name that is not a valid domain is not evidence of anything.
  EXPECT_EQ(banner("220 mx_google.com ESMTP\r\n").software, "unknown");
  EXPECT_EQ(banner("220 notgoogle.com ESMTP\r\n").software, "unknown");
  EXPECT_EQ(banner("220 google.com.evil.example ESMTP\r\n").software, "unknown");
}

TEST(IsValidDomain, Accepts) {
  for (const char* name :
       {"example.com", "mx.test.local", "localhost", "a", "1and1.com", "xn--caf-dma.example",
        "a-b.c-d.example", "example.com.", "EXAMPLE.COM"}) {
    EXPECT_TRUE(is_valid_domain(name)) << name;
  }
}

TEST(IsValidDomain, Rejects) {
  for (const char* name :
       {"", ".", "..", "a..b", ".a", "-a.com", "a-.com", "a_b.com", "a b.com", "a.com..",
        "192.0.2.1", "123", "a.123", "caf\xc3\xa9.com", "a.com/", "[192.0.2.1]"}) {
    EXPECT_FALSE(is_valid_domain(name)) << name;
  }
}

TEST(IsValidDomain, Lengths) {
  // 253 bytes in all is the most; a trailing dot does not count.
  std::string name;
  while (name.size() < 253 - 4) name += "abc.";
  name.resize(253, 'x');
  ASSERT_EQ(name.size(), 253u);
  EXPECT_TRUE(is_valid_domain(name));
  EXPECT_TRUE(is_valid_domain(name + "."));
  EXPECT_FALSE(is_valid_domain(name + "x"));
  EXPECT_FALSE(is_valid_domain(name + "x."));

  EXPECT_TRUE(is_valid_domain(std::string(63, 'a') + ".com"));
  EXPECT_FALSE(is_valid_domain(std::string(64, 'a') + ".com"));
  EXPECT_FALSE(is_valid_domain("com." + std::string(64, 'a')));
}

}  // namespace
}  // namespace smtp
