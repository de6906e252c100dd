#include "exporter/http_parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace smtp {
namespace {

using testing::HasSubstr;

TEST(ParseListenAddressTest, AcceptsTheUsualForms) {
  const auto v4 = parse_listen_address("127.0.0.1:9101");
  EXPECT_EQ(v4.endpoint.address(), asio::ip::make_address("127.0.0.1"));
  EXPECT_EQ(v4.endpoint.port(), 9101);
  EXPECT_FALSE(v4.both_families);

  const auto v6 = parse_listen_address("[::1]:9102");
  EXPECT_EQ(v6.endpoint.address(), asio::ip::make_address("::1"));
  EXPECT_EQ(v6.endpoint.port(), 9102);
  EXPECT_FALSE(v6.both_families);

  EXPECT_EQ(parse_listen_address("localhost:80").endpoint.address(),
            asio::ip::make_address("127.0.0.1"));
  EXPECT_EQ(parse_listen_address("LocalHost:80").endpoint.address(),
            asio::ip::make_address("127.0.0.1"));
  EXPECT_EQ(parse_listen_address("0.0.0.0:0").endpoint.port(), 0);
  EXPECT_EQ(parse_listen_address("[::]:65535").endpoint.address(), asio::ip::make_address("::"));
  EXPECT_EQ(parse_listen_address("[::]:65535").endpoint.port(), 65535);
}

TEST(ParseListenAddressTest, AnEmptyHostMeansBothFamilies) {
  const auto any = parse_listen_address(":19225");
  EXPECT_TRUE(any.both_families);
  EXPECT_EQ(any.endpoint.address(), asio::ip::make_address("::"));
  EXPECT_EQ(any.endpoint.port(), 19225);
  // The explicit wildcards keep their meanings: 0.0.0.0 is IPv4 alone; [::] is one IPv6 socket
  // that takes IPv4 too, with no IPv4 fallback (it was asked for by name).
  const auto v4_any = parse_listen_address("0.0.0.0:19225");
  EXPECT_FALSE(v4_any.both_families);
  EXPECT_EQ(v4_any.endpoint.address(), asio::ip::make_address("0.0.0.0"));
  EXPECT_FALSE(parse_listen_address("[::]:19225").both_families);
}

TEST(ParseListenAddressTest, RejectsInvalidAddressesWithAClearMessage) {
  for (const char* text :
       {"", "9101", "example.com:80", "::1:80", "[::1]", "[::1]80", "[::1:80",
        "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x", "127.0.0.1: 80",
        "[127.0.0.1]:80", "[]:80", "1.2.3:80", "localhost:http", ":", ":x"}) {
    try {
      parse_listen_address(text);
      ADD_FAILURE() << "accepted \"" << text << "\"";
    } catch (const std::invalid_argument& error) {
      EXPECT_THAT(error.what(), HasSubstr("invalid listen address \"" + std::string(text) + "\""));
    }
  }
  try {
    parse_listen_address("example.com:80");
  } catch (const std::invalid_argument& error) {
    EXPECT_THAT(error.what(), HasSubstr("not resolved"));
  }
}

TEST(ParseQueryTest, DecodesFormStyleAndTheLastValueWins) {
  const auto query =
      parse_query("target=127.0.0.1%3A25&module=smtp%5fbanner&x=a+b&x=last&empty=&flag&&bad=%zz%4");
  const std::map<std::string, std::string> expected = {
      {"bad", "%zz%4"},           {"empty", ""}, {"flag", ""}, {"module", "smtp_banner"},
      {"target", "127.0.0.1:25"}, {"x", "last"}};
  EXPECT_EQ(query, expected);
  EXPECT_TRUE(parse_query("").empty());
}

TEST(ParseAcceptsGzipTest, FollowsRfc9110Weights) {
  const std::pair<const char*, bool> cases[] = {
      {"gzip", true},
      {"GZip", true},
      {"deflate, br", false},
      {"br;q=1.0, gzip;q=0.5", true},
      {"gzip;q=0", false},
      {"gzip; q=0.000", false},
      {"*", true},
      {"*;q=0", false},
      {"gzip;q=0, *", false},
      {"identity", false},
      {"x-gzip", true},
      {"", false},
      {"gzipper", false},
      {"gzip;q=abc", false},
  };
  for (const auto& [header, expected] : cases) {
    EXPECT_EQ(parse_accepts_gzip(header), expected) << header;
  }
}

}  // namespace
}  // namespace smtp
