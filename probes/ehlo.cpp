#include "probes/ehlo.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "probes/text.h"

namespace smtp {
namespace {

// Bounds on what one reply can make us keep. A reply already has at most kMaxReplyLines lines;
// these keep a hostile server's junk out of the result.
constexpr std::size_t kMaxKeywordBytes = 64;
constexpr std::size_t kMaxMechanismBytes = 20;  // RFC 4422 §3.1: SASL names are 1-20 characters
constexpr std::size_t kMaxMechanisms = 32;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string upper(std::string_view s) {
  std::string result(s);
  for (char& c : result) c = ascii_upper(c);
  return result;
}

// RFC 5321 §4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
bool valid_keyword(std::string_view s) {
  if (s.empty() || s.size() > kMaxKeywordBytes || !is_alnum(s.front())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

// RFC 4422 §3.1: upper-case letters, digits, "-" and "_"; we also take lower case and upper-case
// it, since some servers send "auth login plain".
bool valid_mechanism(std::string_view s) {
  if (s.empty() || s.size() > kMaxMechanismBytes) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alnum(c) || c == '-' || c == '_'; });
}

// Splits off the next space-separated word of `rest`.
std::string_view next_word(std::string_view& rest) {
  std::size_t start = 0;
  while (start < rest.size() && is_space(rest[start])) ++start;
  std::size_t end = start;
  while (end < rest.size() && !is_space(rest[end])) ++end;
  const std::string_view word = rest.substr(start, end - start);
  rest.remove_prefix(end);
  return word;
}

void add_mechanisms(std::string_view params, EhloCapabilities& caps) {
  while (caps.auth_mechanisms.size() < kMaxMechanisms) {
    const std::string_view word = next_word(params);
    if (word.empty()) break;
    if (!valid_mechanism(word)) continue;
    std::string mechanism = upper(word);
    if (std::find(caps.auth_mechanisms.begin(), caps.auth_mechanisms.end(), mechanism) ==
        caps.auth_mechanisms.end()) {
      caps.auth_mechanisms.push_back(std::move(mechanism));
    }
  }
}

}  // namespace

bool EhloCapabilities::has(std::string_view keyword) const {
  return std::any_of(keywords.begin(), keywords.end(),
                     [keyword](const std::string& k) { return iequals(k, keyword); });
}

EhloCapabilities parse_ehlo(const Reply& reply) {
  EhloCapabilities caps;
  bool size_seen = false;
  for (std::size_t i = 1; i < reply.lines.size(); ++i) {
    const std::string_view line = reply.lines[i];
    std::string_view rest = line;
    std::string_view word = next_word(rest);
    // The pre-RFC 2554 form "AUTH=LOGIN PLAIN", still sent by old servers next to "AUTH".
    if (const std::size_t eq = word.find('='); eq != std::string_view::npos) {
      if (!iequals(word.substr(0, eq), "AUTH")) continue;  // no other keyword takes '='
      rest = line.substr(static_cast<std::size_t>(word.data() - line.data()) + eq + 1);
      word = word.substr(0, eq);
    }
    if (!valid_keyword(word)) continue;  // junk: skip the line, keep the rest

    std::string keyword = upper(word);
    if (keyword == "AUTH") {
      add_mechanisms(rest, caps);
    } else if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "SIZE" && !size_seen) {
      size_seen = true;
      const std::string_view number = next_word(rest);
      std::uint64_t value = 0;
      const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
      // RFC 1870: "SIZE 0" (or no number) means the server announces no fixed limit.
      if (ec == std::errc() && end == number.data() + number.size() && value > 0) {
        caps.size_limit = value;
      }
    }
    if (!caps.has(keyword)) caps.keywords.push_back(std::move(keyword));
  }
  return caps;
}

}  // namespace smtp
