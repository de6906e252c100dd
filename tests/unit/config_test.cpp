#include "exporter/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace smtp {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

const std::string kHelo = "probe.example.net";
const std::string kDataDir = SMTP_TEST_DATA_DIR "/config";

Config parse(std::string_view yaml) { return parse_config(yaml, "test.yml", kHelo); }

// The ConfigError's message, or a failure if the text parses.
std::string error_of(std::string_view yaml) {
  try {
    parse(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "parsed without error:\n" << yaml;
  return "";
}

// ---- valid configs ----

TEST(ConfigValid, ContractExampleEveryValue) {
  const Config config = load_config_file(kDataDir + "/valid/contract.yml", kHelo);
  ASSERT_EQ(config.targets.size(), 2u);

  const TargetConfig& mx1 = config.targets[0];
  EXPECT_EQ(mx1.name, "mx1");
  EXPECT_EQ(mx1.host, "mx1.example.com");
  EXPECT_EQ(mx1.port, 25);
  EXPECT_EQ(mx1.mx_domain, "");
  EXPECT_EQ(mx1.interval, 15s);
  EXPECT_EQ(mx1.timeout, 10s);
  EXPECT_EQ(mx1.helo_name, "monitor.example.org");
  EXPECT_EQ(mx1.tls, TlsMode::kStartTls);
  EXPECT_EQ(mx1.expect_hostname, "mx1.example.com");
  EXPECT_EQ(mx1.labels, (std::map<std::string, std::string>{{"team", "mail"}}));
  const std::string dir = SMTP_TEST_DATA_DIR "/config/valid/";
  EXPECT_EQ(mx1.tls_config.ca_file, dir + "mail-ca.pem");
  EXPECT_EQ(mx1.tls_config.server_name, "mx1.example.com");
  EXPECT_FALSE(mx1.tls_config.insecure_skip_verify);
  EXPECT_EQ(mx1.tls_config.cert_file, dir + "client.pem");
  EXPECT_EQ(mx1.tls_config.key_file, dir + "client.key");
  EXPECT_NE(mx1.tls_context, nullptr);  // built at load time: the files are readable
  EXPECT_EQ(mx1.tls_config.min_version, "TLS12");

  const TargetConfig& example = config.targets[1];
  EXPECT_EQ(example.name, "example-com");
  EXPECT_EQ(example.host, "");
  EXPECT_EQ(example.mx_domain, "example.com");
  EXPECT_EQ(example.port, 25);
  EXPECT_EQ(example.mx_refresh, 5min);
  EXPECT_EQ(example.interval, 30s);
  EXPECT_EQ(example.timeout, 10s);
  EXPECT_EQ(example.helo_name, "monitor.example.org");
  EXPECT_EQ(example.tls, TlsMode::kNone);
  EXPECT_FALSE(example.expect_hostname.has_value());
  EXPECT_TRUE(example.labels.empty());
  EXPECT_EQ(example.tls_config.ca_file, "");
  EXPECT_EQ(example.tls_config.min_version, "");

  EXPECT_EQ(config.dns.servers, std::vector<std::string>{"127.0.0.1:5353"});
}

TEST(ConfigValid, BuiltInDefaultsApplyWithoutDefaultsSection) {
  const Config config = parse(R"(
targets:
  - name: a
    address: mx1.example.com:25
)");
  ASSERT_EQ(config.targets.size(), 1u);
  const TargetConfig& t = config.targets[0];
  EXPECT_EQ(t.host, "mx1.example.com");
  EXPECT_EQ(t.port, 25);
  EXPECT_EQ(t.interval, 30s);
  EXPECT_EQ(t.timeout, 10s);
  EXPECT_EQ(t.helo_name, kHelo);  // the default_helo_name argument
  EXPECT_EQ(t.tls, TlsMode::kNone);
  EXPECT_EQ(t.ip_protocol, IpProtocol::kAny);
  EXPECT_FALSE(t.all_addresses);
  EXPECT_EQ(t.mx_refresh, 5min);
  EXPECT_FALSE(t.expect_hostname.has_value());
  EXPECT_TRUE(config.dns.servers.empty());
}

TEST(ConfigValid, DefaultsInheritAndTargetsOverride) {
  const Config config = parse(R"(
defaults:
  interval: 1m
  timeout: 20s
  helo_name: monitor.example.org
  tls: implicit
  tls_config:
    ca_file: )" SMTP_TEST_DATA_DIR R"(/config/valid/mail-ca.pem
    min_version: TLS13
targets:
  - name: inherits
    address: 192.0.2.1:465
  - name: overrides
    address: 192.0.2.2:25
    interval: 2m
    timeout: 90s
    helo_name: "[192.0.2.200]"
    tls: none
    tls_config:
      insecure_skip_verify: true
  - name: only-interval
    address: 192.0.2.3:465
    interval: 45s
)");
  ASSERT_EQ(config.targets.size(), 3u);
  const TargetConfig& a = config.targets[0];
  EXPECT_EQ(a.interval, 1min);
  EXPECT_EQ(a.timeout, 20s);
  EXPECT_EQ(a.helo_name, "monitor.example.org");
  EXPECT_EQ(a.tls, TlsMode::kImplicit);
  EXPECT_EQ(a.tls_config.ca_file, SMTP_TEST_DATA_DIR "/config/valid/mail-ca.pem");
  EXPECT_EQ(a.tls_config.min_version, "TLS13");
  EXPECT_FALSE(a.tls_config.insecure_skip_verify);

  const TargetConfig& b = config.targets[1];
  EXPECT_EQ(b.interval, 2min);
  EXPECT_EQ(b.timeout, 90s);
  EXPECT_EQ(b.helo_name, "[192.0.2.200]");
  EXPECT_EQ(b.tls, TlsMode::kNone);
  // A target's tls_config replaces the defaults' as a whole, like any other key.
  EXPECT_EQ(b.tls_config.ca_file, "");
  EXPECT_EQ(b.tls_config.min_version, "");
  EXPECT_TRUE(b.tls_config.insecure_skip_verify);

  const TargetConfig& c = config.targets[2];
  EXPECT_EQ(c.interval, 45s);
  EXPECT_EQ(c.timeout, 20s);
}

TEST(ConfigValid, EmbeddedDefaultParses) {
  const Config config = parse_config(embedded_default_config(), "(built-in)", kHelo);
  ASSERT_EQ(config.targets.size(), 1u);
  const TargetConfig& t = config.targets[0];
  EXPECT_EQ(t.name, "localhost");
  EXPECT_EQ(t.host, "localhost");
  EXPECT_EQ(t.port, 25);
  EXPECT_EQ(t.interval, 30s);
  EXPECT_EQ(t.timeout, 10s);
  EXPECT_EQ(t.helo_name, kHelo);
  EXPECT_EQ(t.tls, TlsMode::kNone);
}

TEST(ConfigValid, NothingToProbeIsAllowed) {
  EXPECT_TRUE(parse("").targets.empty());
  EXPECT_TRUE(parse("# only a comment\n").targets.empty());
  EXPECT_TRUE(parse("targets: []\n").targets.empty());
  EXPECT_TRUE(parse("targets:\n").targets.empty());
  EXPECT_TRUE(parse("defaults:\n  interval: 1m\n").targets.empty());
}

TEST(ConfigValid, AddressForms) {
  const Config config = parse(R"(
targets:
  - {name: name-port, address: "mx1.example.com:2525"}
  - {name: v4-port, address: "192.0.2.1:587"}
  - {name: v6-port, address: "[2001:db8::1]:465"}
  - {name: trailing-dot, address: "mx1.example.com.:25"}
  - {name: top-port, address: "mx1.example.com:65535"}
)");
  ASSERT_EQ(config.targets.size(), 5u);
  const auto host_port = [&](std::size_t i) {
    return config.targets[i].host + " " + std::to_string(config.targets[i].port);
  };
  EXPECT_EQ(host_port(0), "mx1.example.com 2525");
  EXPECT_EQ(host_port(1), "192.0.2.1 587");
  EXPECT_EQ(host_port(2), "2001:db8::1 465");  // the brackets are address syntax, not the host
  EXPECT_EQ(host_port(3), "mx1.example.com. 25");
  EXPECT_EQ(host_port(4), "mx1.example.com 65535");
}

TEST(ConfigErrors, AddressWithoutPortNamesTheFix) {
  // 25, 465 and 587 are all SMTP: guessing one would probe the wrong service without a word.
  EXPECT_EQ(error_of("targets:\n  - {name: a, address: mx1.example.com}\n"),
            "test.yml:2: targets[0].address: invalid address \"mx1.example.com\": missing port: "
            "write \"mx1.example.com:25\" for SMTP (465 for implicit TLS, 587 for submission)");
  EXPECT_EQ(error_of("targets:\n  - {name: a, address: 192.0.2.1}\n"),
            "test.yml:2: targets[0].address: invalid address \"192.0.2.1\": missing port: write "
            "\"192.0.2.1:25\" for SMTP (465 for implicit TLS, 587 for submission)");
  EXPECT_EQ(error_of("targets:\n  - {name: a, address: \"[::1]\"}\n"),
            "test.yml:2: targets[0].address: invalid address \"[::1]\": missing port: write "
            "\"[::1]:25\" for SMTP (465 for implicit TLS, 587 for submission)");
}

TEST(ConfigValid, LookupSettingsInheritFromDefaults) {
  const Config config = parse(R"(
defaults:
  mx_refresh: 1m
  max_endpoints: 4
targets:
  - {name: domain, mx: example.com}
  - {name: own, mx: example.org, max_endpoints: 8, mx_refresh: 2m}
  - {name: plain, address: "mx1.example.com:25"}
)");
  ASSERT_EQ(config.targets.size(), 3u);
  EXPECT_EQ(config.targets[0].mx_refresh, 1min);
  EXPECT_EQ(config.targets[0].max_endpoints, 4u);
  EXPECT_EQ(config.targets[1].mx_refresh, 2min);
  EXPECT_EQ(config.targets[1].max_endpoints, 8u);
  // From defaults, the keys are no error on a target that does no lookups.
  EXPECT_FALSE(config.targets[2].looked_up());
  EXPECT_TRUE(config.targets[0].looked_up());
}

TEST(ConfigValid, MetricsSwitchesInheritAsAWholeBlock) {
  const Config config = parse(R"(
defaults:
  metrics: {greeting_histogram: false, phases: false}
targets:
  - {name: inherits, address: "mx1.example.com:25"}
  - {name: own, address: "mx2.example.com:25", metrics: {ehlo_extensions: false}}
  - {name: everything, address: "mx3.example.com:25", metrics: {}}
modules:
  quiet:
    metrics: {phases: false}
)");
  ASSERT_EQ(config.targets.size(), 3u);
  EXPECT_EQ(config.targets[0].metrics, (MetricsSelection{false, false, true}));
  // A target's block replaces the defaults' one: what it does not name is shown.
  EXPECT_EQ(config.targets[1].metrics, (MetricsSelection{true, true, false}));
  EXPECT_EQ(config.targets[2].metrics, MetricsSelection{});
  ASSERT_TRUE(config.probe.modules.contains("quiet"));
  EXPECT_EQ(config.probe.modules.find("quiet")->second.metrics,
            (MetricsSelection{true, false, true}));
  ASSERT_TRUE(config.probe.modules.contains("smtp"));  // made of the defaults
  EXPECT_EQ(config.probe.modules.find("smtp")->second.metrics,
            (MetricsSelection{false, false, true}));
  EXPECT_EQ(parse("targets: [{name: a, address: \"mx.example.com:25\"}]").targets[0].metrics,
            MetricsSelection{});
}

TEST(ConfigValid, MxTargets) {
  const Config config = parse(R"(
targets:
  - name: a
    mx: example.com
  - name: b
    mx: example.org
    port: 587
    mx_refresh: 1h
)");
  ASSERT_EQ(config.targets.size(), 2u);
  EXPECT_EQ(config.targets[0].mx_domain, "example.com");
  EXPECT_EQ(config.targets[0].port, 25);
  EXPECT_EQ(config.targets[0].mx_refresh, 5min);
  EXPECT_EQ(config.targets[1].port, 587);
  EXPECT_EQ(config.targets[1].mx_refresh, 1h);
}

TEST(ConfigValid, DnsServers) {
  const Config config = parse(R"(
dns:
  servers: ["127.0.0.1", "127.0.0.1:5353", "[::1]", "[2001:db8::53]:5353"]
)");
  EXPECT_EQ(config.dns.servers, (std::vector<std::string>{"127.0.0.1:53", "127.0.0.1:5353",
                                                          "[::1]:53", "[2001:db8::53]:5353"}));
  EXPECT_TRUE(parse("dns: {}\n").dns.servers.empty());
  EXPECT_TRUE(parse("dns:\n  servers: []\n").dns.servers.empty());
}

TEST(ConfigValid, LabelsAndExpectHostname) {
  const Config config = parse(R"yaml(
targets:
  - name: "mx1 (Zürich)"
    address: mx1.example.com:25
    expect_hostname: MX1.Example.COM.
    labels:
      team: mail
      _tier: "1"
      site: Zürich
      empty: ""
)yaml");
  ASSERT_EQ(config.targets.size(), 1u);
  const TargetConfig& t = config.targets[0];
  EXPECT_EQ(t.name, "mx1 (Zürich)");
  // Normalised as the banner parser normalises the greeting's hostname, so they compare.
  EXPECT_EQ(t.expect_hostname, "mx1.example.com");
  EXPECT_EQ(t.labels, (std::map<std::string, std::string>{
                          {"team", "mail"}, {"_tier", "1"}, {"site", "Zürich"}, {"empty", ""}}));
}

TEST(ConfigValid, NameAtTheLengthLimit) {
  const std::string name(128, 'n');
  const Config config =
      parse("targets:\n  - name: " + name + "\n    address: mx1.example.com:25\n");
  ASSERT_EQ(config.targets.size(), 1u);
  EXPECT_EQ(config.targets[0].name, name);
}

TEST(ConfigValid, TimeoutJustBelowInterval) {
  const Config config = parse(R"(
targets:
  - {name: a, address: "mx1.example.com:25", interval: 1s, timeout: 999ms}
)");
  ASSERT_EQ(config.targets.size(), 1u);
  EXPECT_EQ(config.targets[0].timeout, 999ms);
}

TEST(ConfigValid, AddressFamilies) {
  const Config config = parse(R"(
defaults:
  ip_protocol: ip6
  all_addresses: true
targets:
  - {name: inherits, address: "mx1.example.com:25"}
  - {name: v4, address: "mx1.example.com:25", ip_protocol: ip4, all_addresses: false}
  - {name: any, mx: example.com, ip_protocol: any}
  - {name: v6-literal, address: "[2001:db8::25]:25"}
  - {name: v4-literal, address: "192.0.2.25:25", ip_protocol: ip4}
  - {name: v4-literal-any, address: "192.0.2.25:25", ip_protocol: any}
)");
  ASSERT_EQ(config.targets.size(), 6u);
  EXPECT_EQ(config.targets[0].ip_protocol, IpProtocol::kIp6);
  EXPECT_TRUE(config.targets[0].all_addresses);
  EXPECT_EQ(config.targets[1].ip_protocol, IpProtocol::kIp4);
  EXPECT_FALSE(config.targets[1].all_addresses);
  EXPECT_EQ(config.targets[2].ip_protocol, IpProtocol::kAny);
  EXPECT_TRUE(config.targets[2].all_addresses);
  EXPECT_EQ(config.targets[3].ip_protocol, IpProtocol::kIp6);
  EXPECT_EQ(config.targets[4].ip_protocol, IpProtocol::kIp4);
  EXPECT_EQ(config.targets[5].ip_protocol, IpProtocol::kAny);
  EXPECT_EQ(config.targets[1].probe_target().ip_protocol, IpProtocol::kIp4);
  EXPECT_EQ(config.targets[3].probe_target().ip_protocol, IpProtocol::kIp6);
}

TEST(ConfigValid, ProbeTarget) {
  const Config config = parse(R"(
targets:
  - name: a
    address: "[2001:db8::1]:465"
    helo_name: monitor.example.org
    tls: implicit
    timeout: 7s
)");
  ASSERT_EQ(config.targets.size(), 1u);
  const ProbeTarget target = config.targets[0].probe_target();
  EXPECT_EQ(target.host, "2001:db8::1");
  EXPECT_EQ(target.port, 465);
  EXPECT_EQ(target.helo_name, "monitor.example.org");
  EXPECT_EQ(target.tls, TlsMode::kImplicit);
  EXPECT_EQ(target.timeout, 7s);
}

TEST(ConfigValid, ModulesTakeTheDefaultsAndTheirOwnProbeSettings) {
  const Config config = parse(R"(
defaults:
  timeout: 4s
  helo_name: monitor.example.org
modules:
  submission:
    tls: starttls
    tls_config: {ca_file: )" SMTP_TEST_DATA_DIR
                              R"(/config/valid/mail-ca.pem, server_name: mx.example.org}
    ip_protocol: ip6
    timeout: 8s
  plain: {}
)");
  const auto& modules = config.probe.modules;
  ASSERT_EQ(modules.size(), 3u);  // and the built-in smtp
  const TargetConfig& submission = modules.at("submission");
  EXPECT_EQ(submission.name, "submission");
  EXPECT_EQ(submission.tls, TlsMode::kStartTls);
  EXPECT_NE(submission.tls_context, nullptr);
  EXPECT_EQ(submission.tls_config.server_name, "mx.example.org");
  EXPECT_EQ(submission.ip_protocol, IpProtocol::kIp6);
  EXPECT_EQ(submission.timeout, 8s);
  EXPECT_EQ(submission.helo_name, "monitor.example.org");
  const TargetConfig& plain = modules.at("plain");
  EXPECT_EQ(plain.tls, TlsMode::kNone);
  EXPECT_EQ(plain.timeout, 4s);
  EXPECT_EQ(modules.at("smtp").timeout, 4s);
}

TEST(ConfigValid, TheDefaultModuleIsBuiltInUnlessConfigured) {
  for (const char* yaml : {"", "targets: []\n", "defaults: {tls: implicit}\n"}) {
    const Config config = parse(yaml);
    ASSERT_TRUE(config.probe.modules.contains("smtp")) << yaml;
    EXPECT_EQ(config.probe.modules.at("smtp").helo_name, kHelo);
  }
  EXPECT_EQ(parse("defaults: {tls: implicit}\n").probe.modules.at("smtp").tls, TlsMode::kImplicit);
  const Config own = parse("modules:\n  smtp: {tls: starttls}\n");
  EXPECT_EQ(own.probe.modules.at("smtp").tls, TlsMode::kStartTls);
}

TEST(ConfigValid, AllowedTargets) {
  const Config config = parse(R"(
probe:
  max_concurrent: 8
  allowed_targets:
    - name: mail
      hosts: ["*.Example.org", "mx1.example.com."]
      networks: [192.0.2.0/24, "2001:db8::/32"]
    - networks: [198.51.100.25]
      ports: [25, "2525-2599"]
)");
  EXPECT_EQ(config.probe.max_concurrent, 8u);
  const auto& rules = config.probe.allowed_targets.rules();
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].name, "mail");
  EXPECT_EQ(rules[0].hosts, (std::vector<std::string>{"*.example.org", "mx1.example.com"}));
  ASSERT_EQ(rules[0].networks.size(), 2u);
  EXPECT_EQ(rules[0].networks[1].text(), "2001:db8::/32");
  ASSERT_EQ(rules[0].ports.size(), 3u);  // 25, 465, 587 when none are listed
  EXPECT_TRUE(rules[0].admits_port(465));
  EXPECT_EQ(rules[1].name, "allowed_targets[1]");
  EXPECT_TRUE(rules[1].admits_port(2599));
  EXPECT_FALSE(rules[1].admits_port(587));
  EXPECT_TRUE(config.probe.allowed_targets.admit_target("198.51.100.25", 2525).admitted);
}

TEST(ConfigValid, WithoutAllowedTargetsNothingIsAdmitted) {
  const Config config = parse("targets: []\n");
  EXPECT_TRUE(config.probe.allowed_targets.empty());
  EXPECT_EQ(config.probe.max_concurrent, 32u);
}

// ---- errors that need no file ----

TEST(ConfigErrors, UnreadableFile) {
  const std::string missing = kDataDir + "/no-such-file.yml";
  try {
    load_config_file(missing, kHelo);
    FAIL() << "loaded a missing file";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), missing + ": cannot read: No such file or directory");
  }
  try {
    load_config_file(kDataDir, kHelo);
    FAIL() << "loaded a directory";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), kDataDir + ": cannot read: not a regular file");
  }
}

TEST(ConfigErrors, FifoIsRefusedWithoutBlocking) {
  // Opening a FIFO for reading blocks until a writer comes: a reload once froze on one.
  const std::string fifo = ::testing::TempDir() + "/config_test_fifo.yml";
  std::filesystem::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    load_config_file(fifo, kHelo);
    ADD_FAILURE() << "loaded a FIFO";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), fifo + ": cannot read: not a regular file");
  }
  std::filesystem::remove(fifo);
}

TEST(ConfigErrors, AddressFamilyContradictions) {
  // Set on the target: the message points at ip_protocol.
  EXPECT_EQ(error_of("targets:\n  - {name: a, address: \"192.0.2.1:25\", ip_protocol: ip6}\n"),
            "test.yml:2: targets[0].ip_protocol: is ip6, but address \"192.0.2.1:25\" is an IPv4 "
            "address");
  // Inherited: at the address, which is what this target wrote.
  EXPECT_EQ(
      error_of("defaults: {ip_protocol: ip4}\ntargets:\n  - {name: a, address: \"[::1]:25\"}\n"),
      "test.yml:3: targets[0].address: \"[::1]:25\" is an IPv6 address, but ip_protocol is ip4 "
      "(from defaults)");
}

TEST(ConfigErrors, SourceNameIsUsedInMessages) {
  EXPECT_EQ(error_of("targets: 1\n"),
            "test.yml:1: targets: expected a list of targets, got a string");
}

TEST(ConfigErrors, TargetIndexIsZeroBased) {
  EXPECT_EQ(error_of(R"(targets:
  - {name: a, address: "mx1.example.com:25"}
  - {name: b, address: "mx1.example.com:25", tls: bogus}
)"),
            "test.yml:3: targets[1].tls: must be one of none, starttls, implicit, not \"bogus\"");
}

TEST(ConfigErrors, ValuesInMessagesAreEscapedAndCut) {
  const std::string message =
      error_of("defaults:\n  tls: \"a\\x01\\\"" + std::string(100, 'x') + "\"\n");
  EXPECT_EQ(message,
            "test.yml:2: defaults.tls: must be one of none, starttls, implicit, not "
            "\"a\\x01\\\"" +
                std::string(61, 'x') + "...\"");
}

// Found by tests/fuzz/config_fuzz: yaml-cpp's "unknown escape character: " message ends with the
// raw byte after the backslash (or its end-of-input marker 0x04), which went out unescaped to
// --config.check's stderr and /-/reload's answer.
TEST(ConfigErrors, YamlMessagesAreEscaped) {
  EXPECT_EQ(error_of("targets:\n  - name: \"a\\\x1b\"\n"),
            "test.yml:2: unknown escape character: \\x1b");
  EXPECT_EQ(error_of("name: \"\\"), "test.yml:1: unknown escape character: \\x04");
}

TEST(ConfigErrors, NulCannotHideInAnAddress) {
  EXPECT_EQ(error_of("targets:\n  - {name: a, address: \"192.0.2.1\\0x:25\"}\n"),
            "test.yml:2: targets[0].address: invalid address \"192.0.2.1\\x00x:25\": invalid host "
            "name \"192.0.2.1\\x00x\"");
  EXPECT_EQ(error_of("dns:\n  servers: [\"127.0.0.1\\0\"]\n"),
            "test.yml:2: dns.servers[0]: invalid DNS server \"127.0.0.1\\x00\": not an IP address: "
            "\"127.0.0.1\\x00\"");
}

TEST(MachineHostname, IsAUsableHeloName) {
  const std::string name = machine_hostname();
  EXPECT_FALSE(name.empty());
  // Whatever it is, the config loader must accept it as a HELO name.
  EXPECT_NO_THROW(parse_config("defaults:\n  helo_name: \"" + name + "\"\n", "t.yml", kHelo));
}

// ---- one test per file pair in tests/data/config/invalid ----

std::vector<std::string> invalid_cases() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kDataDir + "/invalid")) {
    if (entry.path().extension() == ".yml") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class InvalidConfig : public testing::TestWithParam<std::string> {};

TEST_P(InvalidConfig, FailsWithTheExpectedMessage) {
  const std::string dir = kDataDir + "/invalid/";
  const std::string expected_path = dir + GetParam() + ".expected";
  ASSERT_TRUE(std::filesystem::exists(expected_path)) << "missing " << expected_path;
  std::string expected = read_file(expected_path);
  while (!expected.empty() && (expected.back() == '\n' || expected.back() == '\r')) {
    expected.pop_back();
  }

  try {
    load_config_file(dir + GetParam() + ".yml", kHelo);
    FAIL() << GetParam() << ".yml loaded without error";
  } catch (const ConfigError& e) {
    std::string message = e.what();
    // The expected text names the file without the checkout's directory, and other files in
    // it (a missing ca_file, with its path resolved) as DIR/name.
    ASSERT_EQ(message.rfind(dir, 0), 0u) << message;
    message.erase(0, dir.size());
    for (auto at = message.find(dir); at != std::string::npos; at = message.find(dir, at)) {
      message.replace(at, dir.size(), "DIR/");
    }
    EXPECT_EQ(message, expected);
  }
}

TEST(InvalidConfigData, EveryExpectedFileHasItsConfig) {
  for (const auto& entry : std::filesystem::directory_iterator(kDataDir + "/invalid")) {
    if (entry.path().extension() != ".expected") continue;
    auto config = entry.path();
    config.replace_extension(".yml");
    EXPECT_TRUE(std::filesystem::exists(config)) << "no config for " << entry.path();
  }
  EXPECT_GE(invalid_cases().size(), 20u);
}

INSTANTIATE_TEST_SUITE_P(Files, InvalidConfig, testing::ValuesIn(invalid_cases()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace smtp
