// smtp::parse_config on arbitrary text: it returns a config that keeps the promises below, or
// throws ConfigError naming the file. Anything else (another exception, a crash, a hang that
// libFuzzer's -timeout catches, unbounded memory) is a finding.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <set>
#include <string>
#include <string_view>

#include "exporter/config.h"
#include "probes/banner.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr std::string_view kSource = "fuzz.yml";
const std::string kHeloName = "probe.example.org";

void check_config(const smtp::Config& config) {
  std::set<std::string> names;
  for (const smtp::TargetConfig& t : config.targets) {
    FUZZ_CHECK(!t.name.empty() && t.name.size() <= 128);
    FUZZ_CHECK(names.insert(t.name).second);
    FUZZ_CHECK(t.host.empty() != t.mx_domain.empty());  // address or mx, never both
    if (!t.mx_domain.empty()) FUZZ_CHECK(smtp::is_valid_domain(t.mx_domain));
    FUZZ_CHECK(t.port != 0);
    FUZZ_CHECK(t.interval >= std::chrono::seconds(1));
    FUZZ_CHECK(t.timeout > std::chrono::milliseconds(0));
    FUZZ_CHECK(t.timeout < t.interval);
    FUZZ_CHECK(!t.helo_name.empty());
    FUZZ_CHECK(smtp::is_valid_domain(t.helo_name) || t.helo_name.front() == '[');
    FUZZ_CHECK((t.tls == smtp::TlsMode::kNone) == (t.tls_context == nullptr));
    if (t.expect_hostname) {
      // Compared with parse_banner's hostname, which is never upper-case nor ends in a dot.
      const std::string& e = *t.expect_hostname;
      FUZZ_CHECK(e.empty() || e.back() != '.');
      FUZZ_CHECK(std::none_of(e.begin(), e.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
    }
    for (const auto& [label, value] : t.labels) {
      FUZZ_CHECK(!label.empty() && !label.starts_with("__"));
      FUZZ_CHECK(label != "target" && label != "mx");
    }
    const smtp::ProbeTarget probe = t.probe_target();
    FUZZ_CHECK(probe.host == t.host && probe.port == t.port);
  }
  for (const std::string& server : config.dns.servers) FUZZ_CHECK(!server.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check_config(smtp::parse_config(text, kSource, kHeloName));
  } catch (const smtp::ConfigError& e) {
    const std::string_view message = e.what();
    // "fuzz.yml:7: targets[0].timeout: ..." or, without a line, "fuzz.yml: ...".
    FUZZ_CHECK(message.starts_with(std::string(kSource) + ":"));
    // One line, whatever the file holds: it goes to a log line and a terminal. quoted() escapes
    // the values it shows; yaml-cpp's own messages are fixed texts.
    FUZZ_CHECK(std::none_of(message.begin(), message.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    }));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parse_config threw something other than ConfigError: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "parse_config threw something that is not a std::exception\n");
    std::abort();
  }
  return 0;
}
