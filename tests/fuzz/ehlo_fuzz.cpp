// parse_ehlo on replies made from arbitrary bytes: bounded, normalised, self-consistent.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "probes/ehlo.h"
#include "probes/reply.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool upper_alnum_or(std::string_view text, std::string_view extra) {
  return std::all_of(text.begin(), text.end(), [extra](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || extra.find(c) != extra.npos;
  });
}

void check_ehlo(const smtp::Reply& reply) {
  const smtp::EhloCapabilities caps = smtp::parse_ehlo(reply);
  // The first line is the server's greeting to us, never an extension.
  FUZZ_CHECK(caps.keywords.size() <= (reply.lines.empty() ? 0 : reply.lines.size() - 1));
  std::set<std::string> seen;
  for (const std::string& keyword : caps.keywords) {
    FUZZ_CHECK(!keyword.empty() && keyword.size() <= 64);
    FUZZ_CHECK(keyword.front() != '-');
    FUZZ_CHECK(upper_alnum_or(keyword, "-"));
    FUZZ_CHECK(seen.insert(keyword).second);  // each once
    FUZZ_CHECK(caps.has(keyword));
  }
  FUZZ_CHECK(caps.auth_mechanisms.size() <= 32);
  std::set<std::string> mechanisms;
  for (const std::string& mechanism : caps.auth_mechanisms) {
    FUZZ_CHECK(!mechanism.empty() && mechanism.size() <= 20);
    FUZZ_CHECK(upper_alnum_or(mechanism, "-_"));
    FUZZ_CHECK(mechanisms.insert(mechanism).second);
  }
  if (!caps.auth_mechanisms.empty()) FUZZ_CHECK(caps.has("AUTH"));
  FUZZ_CHECK(caps.starttls == caps.has("STARTTLS"));
  if (caps.size_limit) {
    FUZZ_CHECK(*caps.size_limit > 0);
    FUZZ_CHECK(caps.has("SIZE"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const smtp::ParseResult parsed = smtp::parse_reply(input);
  if (parsed.status == smtp::ParseStatus::kComplete) check_ehlo(parsed.reply);

  // Lines of any bytes, beyond what the reply parser lets through.
  smtp::Reply raw;
  raw.code = 250;
  std::size_t start = 0;
  while (start <= input.size() && raw.lines.size() < smtp::kMaxReplyLines) {
    std::size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    raw.lines.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }
  check_ehlo(raw);
  return 0;
}
