#include "exporter/allow_list.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace smtp {
namespace {

using testing::HasSubstr;

IpNetwork network(const std::string& text) {
  IpNetwork out;
  const auto problem = parse_network(text, out);
  EXPECT_FALSE(problem) << text << ": " << problem.value_or("");
  return out;
}

std::string pattern(const std::string& text) {
  std::string out;
  const auto problem = parse_host_pattern(text, out);
  EXPECT_FALSE(problem) << text << ": " << problem.value_or("");
  return out;
}

AllowRule rule(std::string name, std::vector<std::string> hosts, std::vector<std::string> networks,
               std::vector<PortRange> ports = {}) {
  AllowRule out;
  out.name = std::move(name);
  for (const auto& h : hosts) out.hosts.push_back(pattern(h));
  for (const auto& n : networks) out.networks.push_back(network(n));
  if (ports.empty()) {
    for (const std::uint16_t port : kDefaultAllowedPorts) out.ports.push_back({port, port});
  } else {
    out.ports = std::move(ports);
  }
  return out;
}

std::vector<asio::ip::address> addresses(std::vector<std::string> texts) {
  std::vector<asio::ip::address> out;
  for (const auto& text : texts) out.push_back(asio::ip::make_address(text));
  return out;
}

// --- patterns -----------------------------------------------------------------------------

TEST(HostPattern, ExactNamesMatchWholeNamesOnly) {
  EXPECT_TRUE(host_pattern_matches("mx1.example.org", "mx1.example.org"));
  EXPECT_FALSE(host_pattern_matches("mx1.example.org", "mx1.example.org.evil.com"));
  EXPECT_FALSE(host_pattern_matches("mx1.example.org", "xmx1.example.org"));
  EXPECT_FALSE(host_pattern_matches("mx1.example.org", "a.mx1.example.org"));
  EXPECT_FALSE(host_pattern_matches("mx1.example.org", ""));
}

TEST(HostPattern, StarStaysInsideOneLabel) {
  EXPECT_TRUE(host_pattern_matches("*.example.org", "mx1.example.org"));
  EXPECT_FALSE(host_pattern_matches("*.example.org", "a.mx1.example.org"));
  EXPECT_FALSE(host_pattern_matches("*.example.org", "example.org"));
  EXPECT_FALSE(host_pattern_matches("*.example.org", "mx1.example.org.evil.com"));
  EXPECT_TRUE(host_pattern_matches("mx*.example.org", "mx.example.org"));
  EXPECT_TRUE(host_pattern_matches("mx*.example.org", "mx12.example.org"));
  EXPECT_FALSE(host_pattern_matches("mx*.example.org", "smtp.example.org"));
  EXPECT_TRUE(host_pattern_matches("mx*-*.example.org", "mx1-fra.example.org"));
  EXPECT_FALSE(host_pattern_matches("mx*-*.example.org", "mx1.example.org"));
  EXPECT_TRUE(host_pattern_matches("mail.*.example.org", "mail.eu.example.org"));
  EXPECT_FALSE(host_pattern_matches("mail.*.example.org", "mail.example.org"));
}

TEST(HostPattern, DoubleStarIsOneOrMoreLeadingLabels) {
  EXPECT_TRUE(host_pattern_matches("**.example.org", "mx1.example.org"));
  EXPECT_TRUE(host_pattern_matches("**.example.org", "a.b.c.example.org"));
  EXPECT_FALSE(host_pattern_matches("**.example.org", "example.org"));
  EXPECT_FALSE(host_pattern_matches("**.example.org", "example.org.evil.com"));
  EXPECT_FALSE(host_pattern_matches("**.example.org", "badexample.org"));
  EXPECT_TRUE(host_pattern_matches("**", "anything.at.all"));
  EXPECT_TRUE(host_pattern_matches("**", "localhost"));
}

TEST(HostPattern, ParsingLowerCasesDropsTheDotAndRefusesNonsense) {
  EXPECT_EQ(pattern("MX1.Example.ORG."), "mx1.example.org");
  EXPECT_EQ(pattern("**.Example.org"), "**.example.org");
  EXPECT_EQ(pattern("**"), "**");
  std::string out;
  EXPECT_THAT(parse_host_pattern("", out).value_or(""), HasSubstr("must not be empty"));
  EXPECT_THAT(parse_host_pattern("a.**.example.org", out).value_or(""),
              HasSubstr("\"**\" only as the whole first label"));
  EXPECT_THAT(parse_host_pattern("mx**.example.org", out).value_or(""),
              HasSubstr("\"**\" only as the whole first label"));
  EXPECT_THAT(parse_host_pattern("mx..example.org", out).value_or(""),
              HasSubstr("invalid host pattern"));
  EXPECT_THAT(parse_host_pattern("mx example.org", out).value_or(""),
              HasSubstr("invalid host pattern"));
  EXPECT_THAT(parse_host_pattern("192.0.2.1", out).value_or(""), HasSubstr("invalid host pattern"));
  EXPECT_THAT(parse_host_pattern("mx1.example.org:25", out).value_or(""),
              HasSubstr("invalid host pattern"));
}

// --- networks and ports ---------------------------------------------------------------------

TEST(Network, Ipv4BoundariesAreExact) {
  const IpNetwork net = network("192.0.2.0/24");
  EXPECT_TRUE(net.contains(asio::ip::make_address("192.0.2.0")));
  EXPECT_TRUE(net.contains(asio::ip::make_address("192.0.2.255")));
  EXPECT_FALSE(net.contains(asio::ip::make_address("192.0.3.0")));
  EXPECT_FALSE(net.contains(asio::ip::make_address("192.0.1.255")));
  EXPECT_TRUE(network("0.0.0.0/0").contains(asio::ip::make_address("203.0.113.9")));
  EXPECT_TRUE(network("10.1.2.3").contains(asio::ip::make_address("10.1.2.3")));
  EXPECT_FALSE(network("10.1.2.3").contains(asio::ip::make_address("10.1.2.4")));
  EXPECT_TRUE(network("10.0.0.0/9").contains(asio::ip::make_address("10.127.255.255")));
  EXPECT_FALSE(network("10.0.0.0/9").contains(asio::ip::make_address("10.128.0.0")));
}

TEST(Network, Ipv6BoundariesAreExact) {
  const IpNetwork net = network("2001:db8::/33");
  EXPECT_TRUE(net.contains(asio::ip::make_address("2001:db8::1")));
  EXPECT_TRUE(net.contains(asio::ip::make_address("2001:db8:7fff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(net.contains(asio::ip::make_address("2001:db8:8000::")));
  EXPECT_TRUE(network("::1").contains(asio::ip::make_address("::1")));
  EXPECT_FALSE(network("::1").contains(asio::ip::make_address("::2")));
  EXPECT_TRUE(network("::/0").contains(asio::ip::make_address("2001:db8::25")));
}

TEST(Network, FamiliesNeverMixAndMappedAddressesAreIpv4) {
  // ::/0 holds every IPv6 address, but ::ffff:127.0.0.1 is 127.0.0.1 on the wire.
  EXPECT_FALSE(network("::/0").contains(asio::ip::make_address("::ffff:127.0.0.1")));
  EXPECT_TRUE(network("127.0.0.0/8").contains(asio::ip::make_address("::ffff:127.0.0.1")));
  EXPECT_FALSE(network("0.0.0.0/0").contains(asio::ip::make_address("2001:db8::1")));
  EXPECT_EQ(unmapped(asio::ip::make_address("::ffff:192.0.2.1")).to_string(), "192.0.2.1");
  EXPECT_EQ(unmapped(asio::ip::make_address("2001:db8::1")).to_string(), "2001:db8::1");
}

TEST(Network, ParsingRefusesTyposAndMappedNetworks) {
  IpNetwork out;
  EXPECT_THAT(parse_network("192.0.2.1/24", out).value_or(""),
              HasSubstr("bits are set past the prefix length (did you mean 192.0.2.0/24?)"));
  EXPECT_THAT(parse_network("2001:db8::1/32", out).value_or(""),
              HasSubstr("did you mean 2001:db8::/32?"));
  EXPECT_THAT(parse_network("10.0.0.0/33", out).value_or(""), HasSubstr("from 0 to 32"));
  EXPECT_THAT(parse_network("::/129", out).value_or(""), HasSubstr("from 0 to 128"));
  EXPECT_THAT(parse_network("10.0.0.0/", out).value_or(""), HasSubstr("prefix length"));
  EXPECT_THAT(parse_network("10.0.0.0/-1", out).value_or(""), HasSubstr("prefix length"));
  EXPECT_THAT(parse_network("10.0.0/8", out).value_or(""), HasSubstr("invalid network"));
  EXPECT_THAT(parse_network("mx.example.org", out).value_or(""), HasSubstr("invalid network"));
  EXPECT_THAT(parse_network("fe80::1%eth0", out).value_or(""), HasSubstr("invalid network"));
  EXPECT_THAT(parse_network("::ffff:10.0.0.0/104", out).value_or(""),
              HasSubstr("write IPv4-mapped addresses as IPv4 networks"));
  EXPECT_EQ(network("10.0.0.0/8").text(), "10.0.0.0/8");
  EXPECT_EQ(network("2001:db8::").text(), "2001:db8::/128");
}

TEST(Ports, SinglePortsAndRanges) {
  PortRange range;
  ASSERT_FALSE(parse_port_range("25", range));
  EXPECT_EQ(range.first, 25);
  EXPECT_EQ(range.last, 25);
  ASSERT_FALSE(parse_port_range("2525-2599", range));
  EXPECT_EQ(range.first, 2525);
  EXPECT_EQ(range.last, 2599);
  for (const char* bad : {"0", "65536", "", "-", "25-", "-25", "30-20", "2x", " 25", "1-70000"}) {
    EXPECT_THAT(parse_port_range(bad, range).value_or(""), HasSubstr("invalid port")) << bad;
  }
  const AllowRule r = rule("r", {}, {"10.0.0.0/8"}, {{25, 25}, {2000, 2999}});
  EXPECT_TRUE(r.admits_port(25));
  EXPECT_TRUE(r.admits_port(2000));
  EXPECT_TRUE(r.admits_port(2999));
  EXPECT_FALSE(r.admits_port(3000));
  EXPECT_FALSE(r.admits_port(26));
}

// --- verdicts -------------------------------------------------------------------------------

TEST(AllowList, WithoutRulesNothingIsAdmitted) {
  const AllowList list;
  for (const char* host : {"127.0.0.1", "::1", "localhost", "mx.example.org"}) {
    const Admission verdict = list.admit_target(host, 25);
    EXPECT_FALSE(verdict.admitted) << host;
    EXPECT_THAT(verdict.reason, HasSubstr("probe.allowed_targets is not set")) << host;
  }
}

TEST(AllowList, AddressesNeedANetworkAndAPort) {
  const AllowList list({rule("mail", {}, {"192.0.2.0/24", "2001:db8::/32"})});
  EXPECT_TRUE(list.admit_target("192.0.2.25", 25).admitted);
  EXPECT_TRUE(list.admit_target("192.0.2.25", 465).admitted);
  EXPECT_TRUE(list.admit_target("2001:db8::25", 587).admitted);
  EXPECT_THAT(list.admit_target("192.0.2.25", 25).reason, HasSubstr("rule \"mail\" admits"));

  const Admission outside = list.admit_target("198.51.100.1", 25);
  EXPECT_FALSE(outside.admitted);
  EXPECT_EQ(outside.reason,
            "no rule of probe.allowed_targets admits 198.51.100.1 (it is in none of their "
            "networks)");
  const Admission port = list.admit_target("192.0.2.25", 8080);
  EXPECT_FALSE(port.admitted);
  EXPECT_EQ(port.reason,
            "rule \"mail\" admits 192.0.2.25 but not port 8080 (its ports: 25, 465, 587)");
}

TEST(AllowList, HostPatternsNeverAdmitAnAddress) {
  const AllowList list({rule("names", {"**"}, {})});
  EXPECT_FALSE(list.admit_target("192.0.2.1", 25).admitted);
  EXPECT_FALSE(list.admit_target("::1", 25).admitted);
  EXPECT_TRUE(list.admit_target("anything.example", 25).admitted);
}

TEST(AllowList, ARuleWithHostsAndNetworksAdmitsNamesOnly) {
  // Both keys must hold: its networks are where its names may point, not addresses to probe.
  const AllowList list({rule("mail", {"*.example.org"}, {"192.0.2.0/24"})});
  const Admission verdict = list.admit_target("192.0.2.25", 25);
  EXPECT_FALSE(verdict.admitted);
  EXPECT_EQ(verdict.reason,
            "no rule of probe.allowed_targets admits 192.0.2.25 (rule \"mail\" lists hosts: its "
            "networks admit only what those names resolve to)");
  EXPECT_TRUE(list.admit_target("mx1.example.org", 25).admitted);
}

TEST(AllowList, LoopbackAndMetadataAreTheRulesDecision) {
  // Not special-cased: denied unless a rule names them, admitted when one does.
  const AllowList mail({rule("mail", {}, {"192.0.2.0/24"})});
  EXPECT_FALSE(mail.admit_target("127.0.0.1", 25).admitted);
  EXPECT_FALSE(mail.admit_target("::1", 25).admitted);
  EXPECT_FALSE(mail.admit_target("169.254.169.254", 25).admitted);
  const AllowList local({rule("local", {}, {"127.0.0.0/8", "::1", "169.254.169.254"})});
  EXPECT_TRUE(local.admit_target("127.0.0.1", 25).admitted);
  EXPECT_TRUE(local.admit_target("::1", 25).admitted);
  EXPECT_TRUE(local.admit_target("169.254.169.254", 25).admitted);
}

TEST(AllowList, MappedAddressesCannotSlipThroughAnIpv6Rule) {
  const AllowList list({rule("v6", {}, {"::/0"})});
  const Admission verdict = list.admit_target("::ffff:127.0.0.1", 25);
  EXPECT_FALSE(verdict.admitted);
  EXPECT_THAT(verdict.reason, HasSubstr("127.0.0.1"));
  EXPECT_TRUE(list.admit_target("2001:db8::1", 25).admitted);
}

TEST(AllowList, TheUnspecifiedAddressIsNeverProbed) {
  // A connection to 0.0.0.0 or :: reaches the exporter's own host.
  const AllowList list({rule("all", {"**"}, {"0.0.0.0/0", "::/0"})});
  for (const char* host : {"0.0.0.0", "::", "::ffff:0.0.0.0"}) {
    const Admission verdict = list.admit_target(host, 25);
    EXPECT_FALSE(verdict.admitted) << host;
    EXPECT_THAT(verdict.reason, HasSubstr("the unspecified address")) << host;
  }
  const Admission by_name = list.admit_target("zero.example", 25);
  ASSERT_TRUE(by_name.admitted);
  const Admission resolved =
      list.admit_addresses(by_name, "zero.example", addresses({"192.0.2.1", "0.0.0.0"}));
  EXPECT_FALSE(resolved.admitted);
  EXPECT_THAT(resolved.reason, HasSubstr("resolves to 0.0.0.0, the unspecified address"));
}

TEST(AllowList, NamesNeedAHostPatternBeforeAnyLookup) {
  const AllowList list({rule("nets", {}, {"0.0.0.0/0"}), rule("mail", {"*.example.org"}, {})});
  const Admission admitted = list.admit_target("MX1.Example.Org.", 25);
  EXPECT_TRUE(admitted.admitted);
  EXPECT_THAT(admitted.rules, testing::ElementsAre(1u));  // "nets" names no hosts
  const Admission denied = list.admit_target("mx1.evil.com", 25);
  EXPECT_FALSE(denied.admitted);
  EXPECT_TRUE(denied.rules.empty());
  EXPECT_EQ(denied.reason,
            "no rule of probe.allowed_targets admits the host \"mx1.evil.com\" (it matches none "
            "of their hosts)");
  const Admission port = list.admit_target("mx1.example.org", 2525);
  EXPECT_FALSE(port.admitted);
  EXPECT_EQ(port.reason,
            "rule \"mail\" admits the host \"mx1.example.org\" but not port 2525 (its ports: 25, "
            "465, 587)");
}

TEST(AllowList, EveryResolvedAddressMustLieInTheRulesNetworks) {
  const AllowList list({rule("mail", {"*.example.org"}, {"192.0.2.0/24", "2001:db8::/32"})});
  const Admission by_name = list.admit_target("mx1.example.org", 25);
  ASSERT_TRUE(by_name.admitted);
  EXPECT_TRUE(
      list.admit_addresses(by_name, "mx1.example.org", addresses({"192.0.2.25", "2001:db8::25"}))
          .admitted);
  // DNS pointing a name into the exporter's own network, or at a cloud metadata service.
  for (const char* inside : {"10.0.0.5", "127.0.0.1", "169.254.169.254", "::ffff:127.0.0.1"}) {
    const Admission verdict =
        list.admit_addresses(by_name, "mx1.example.org", addresses({"192.0.2.25", inside}));
    EXPECT_FALSE(verdict.admitted) << inside;
    EXPECT_EQ(verdict.reason,
              "rule \"mail\" admits the host \"mx1.example.org\", but it resolves "
              "to " +
                  unmapped(asio::ip::make_address(inside)).to_string() +
                  ", which is in none of the rule's networks");
  }
}

TEST(AllowList, ARuleWithoutNetworksAdmitsWhateverTheNameResolvesTo) {
  const AllowList list({rule("trusted", {"mx1.example.org"}, {})});
  const Admission by_name = list.admit_target("mx1.example.org", 25);
  ASSERT_TRUE(by_name.admitted);
  const Admission verdict =
      list.admit_addresses(by_name, "mx1.example.org", addresses({"127.0.0.1", "10.0.0.1"}));
  EXPECT_TRUE(verdict.admitted);
  EXPECT_THAT(verdict.reason, HasSubstr("at any address"));
}

TEST(AllowList, AnotherRuleMayAdmitWhatTheFirstRefuses) {
  const AllowList list({rule("dmz", {"**.example.org"}, {"192.0.2.0/24"}),
                        rule("internal", {"mx*.example.org"}, {"10.0.0.0/8"})});
  const Admission by_name = list.admit_target("mx1.example.org", 25);
  EXPECT_THAT(by_name.rules, testing::ElementsAre(0u, 1u));
  const Admission internal =
      list.admit_addresses(by_name, "mx1.example.org", addresses({"10.1.1.1"}));
  EXPECT_TRUE(internal.admitted);
  EXPECT_THAT(internal.reason, HasSubstr("rule \"internal\""));
  // One rule must admit every address: one address per rule is not enough.
  const Admission split =
      list.admit_addresses(by_name, "mx1.example.org", addresses({"10.1.1.1", "192.0.2.1"}));
  EXPECT_FALSE(split.admitted);
  EXPECT_EQ(split.reason,
            "rule \"dmz\" admits the host \"mx1.example.org\", but it resolves to 10.1.1.1, which "
            "is in none of the rule's networks; rule \"internal\" admits the host "
            "\"mx1.example.org\", but it resolves to 192.0.2.1, which is in none of the rule's "
            "networks");
  // smtp.example.org matches only "dmz".
  const Admission dmz_only = list.admit_target("smtp.example.org", 25);
  EXPECT_FALSE(
      list.admit_addresses(dmz_only, "smtp.example.org", addresses({"10.1.1.1"})).admitted);
}

TEST(AllowList, PortsAreCheckedPerRule) {
  const AllowList list(
      {rule("smtp", {"mx.example.org"}, {}), rule("lab", {"mx.example.org"}, {}, {{2525, 2525}})});
  const Admission lab = list.admit_target("mx.example.org", 2525);
  EXPECT_TRUE(lab.admitted);
  EXPECT_THAT(lab.rules, testing::ElementsAre(1u));
  EXPECT_FALSE(list.admit_target("mx.example.org", 2526).admitted);
}

}  // namespace
}  // namespace smtp
