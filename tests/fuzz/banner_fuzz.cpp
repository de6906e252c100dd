// parse_banner on greetings made from arbitrary bytes: the hostname and software it returns are
// always safe label values (README.md: "No label value is taken raw from a server").
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "probes/banner.h"
#include "probes/reply.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// Every value parse_banner may give as `software` (banner.cpp's recognise_software).
constexpr std::array<std::string_view, 12> kSoftware = {
    "postfix", "exim",   "sendmail", "opensmtpd", "microsoft",  "qmail",
    "courier", "haraka", "google",   "yahoo",     "amazon_ses", "unknown"};

bool known_software(std::string_view software) {
  return std::find(kSoftware.begin(), kSoftware.end(), software) != kSoftware.end();
}

// `[192.0.2.1]` or `[IPv6:2001:db8::1]`, in the one spelling inet_ntop gives the address.
bool canonical_address_literal(std::string_view text) {
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return false;
  std::string inner(text.substr(1, text.size() - 2));
  int family = AF_INET;
  if (inner.starts_with("IPv6:")) {
    family = AF_INET6;
    inner.erase(0, 5);
  }
  if (inner.find('\0') != std::string::npos) return false;
  std::array<unsigned char, sizeof(in6_addr)> address{};
  if (inet_pton(family, inner.c_str(), address.data()) != 1) return false;
  std::array<char, INET6_ADDRSTRLEN> canonical{};
  if (inet_ntop(family, address.data(), canonical.data(), canonical.size()) == nullptr) {
    return false;
  }
  return inner == canonical.data();
}

bool lower_case(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

void check_banner(const smtp::Reply& greeting) {
  const smtp::BannerInfo info = smtp::parse_banner(greeting);
  const std::string& host = info.hostname;
  FUZZ_CHECK(!host.empty());
  FUZZ_CHECK(host.size() <= 255);
  if (host != "invalid") {
    if (host.front() == '[') {
      FUZZ_CHECK(canonical_address_literal(host));
    } else {
      FUZZ_CHECK(smtp::is_valid_domain(host));
      FUZZ_CHECK(lower_case(host));
      FUZZ_CHECK(host.back() != '.');
    }
    // Normalising is idempotent: the hostname, greeted with, comes back unchanged.
    smtp::Reply again;
    again.code = 220;
    again.lines.push_back(host);
    FUZZ_CHECK(smtp::parse_banner(again).hostname == host);
  }
  FUZZ_CHECK(known_software(info.software));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // As the probe sees it: a reply the parser accepted.
  const smtp::ParseResult parsed = smtp::parse_reply(input);
  if (parsed.status == smtp::ParseStatus::kComplete) check_banner(parsed.reply);

  // Harder than any server can be: lines of any bytes (NUL, CR, control characters) that the
  // reply parser would have refused. parse_banner must still hold its promises.
  smtp::Reply raw;
  raw.code = 220;
  std::size_t start = 0;
  while (start <= input.size() && raw.lines.size() < smtp::kMaxReplyLines) {
    std::size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    raw.lines.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }
  check_banner(raw);
  return 0;
}
