// How addresses are written: the IPv4 fast path against the general one.
#include "probes/address.h"

#include <gtest/gtest.h>

namespace smtp {
namespace {

TEST(FormatEndpoint, Ipv4AtItsExtremesAndIpv6InBrackets) {
  const auto at = [](const char* address, std::uint16_t port) {
    return format_endpoint(tcp::endpoint(asio::ip::make_address(address), port));
  };
  EXPECT_EQ(at("0.0.0.0", 0), "0.0.0.0:0");
  EXPECT_EQ(at("127.0.0.1", 25), "127.0.0.1:25");
  EXPECT_EQ(at("255.255.255.255", 65535), "255.255.255.255:65535");
  EXPECT_EQ(at("10.200.3.40", 587), "10.200.3.40:587");
  EXPECT_EQ(at("2001:db8::1", 25), "[2001:db8::1]:25");
  EXPECT_EQ(at("::ffff:192.0.2.1", 465), "[::ffff:192.0.2.1]:465");
}

TEST(FormatHostPort, BracketsOnlyIpv6) {
  EXPECT_EQ(format_host_port("mail.example.org", 25), "mail.example.org:25");
  EXPECT_EQ(format_host_port("::1", 587), "[::1]:587");
}

}  // namespace
}  // namespace smtp
