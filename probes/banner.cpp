#include "probes/banner.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>

#include "probes/text.h"

namespace smtp {
namespace {

constexpr std::string_view kInvalid = "invalid";
constexpr std::size_t kMaxDomainBytes = 253;  // RFC 1035 §2.3.4, without the trailing dot
constexpr std::size_t kMaxLabelBytes = 63;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_space(char c) { return c == ' ' || c == '\t'; }

// `host` is `domain` or a subdomain of it. `host` is already lower-cased.
bool in_domain(std::string_view host, std::string_view domain) {
  if (host.size() == domain.size()) return host == domain;
  return host.size() > domain.size() && host.ends_with(domain) &&
         host[host.size() - domain.size() - 1] == '.';
}

// "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3), rewritten in canonical form so one
// address has one spelling as a label value. Other address-literal tags are not accepted.
std::string normalise_address_literal(std::string_view word) {
  if (word.size() < 3 || word.back() != ']') return std::string(kInvalid);
  std::string_view inner = word.substr(1, word.size() - 2);
  constexpr std::string_view kV6Tag = "IPv6:";
  const bool v6 = inner.size() > kV6Tag.size() && iequals(inner.substr(0, kV6Tag.size()), kV6Tag);
  if (v6) inner.remove_prefix(kV6Tag.size());

  std::array<char, INET6_ADDRSTRLEN> text{};
  if (inner.size() >= text.size()) return std::string(kInvalid);
  inner.copy(text.data(), inner.size());  // inet_pton wants a NUL-terminated string
  std::array<unsigned char, sizeof(in6_addr)> address{};
  const int family = v6 ? AF_INET6 : AF_INET;
  if (inet_pton(family, text.data(), address.data()) != 1) return std::string(kInvalid);
  std::array<char, INET6_ADDRSTRLEN> canonical{};
  if (inet_ntop(family, address.data(), canonical.data(), canonical.size()) == nullptr) {
    return std::string(kInvalid);
  }
  std::string result = v6 ? "[IPv6:" : "[";
  result += canonical.data();
  result += ']';
  return result;
}

std::string normalise_hostname(std::string_view word) {
  if (word.empty()) return std::string(kInvalid);
  if (word.front() == '[') return normalise_address_literal(word);
  if (!is_valid_domain(word)) return std::string(kInvalid);
  if (word.back() == '.') word.remove_suffix(1);
  return ascii_lowered(word);
}

// What the words of a greeting say. Words are runs of letters and digits, compared
// lower-cased; anything longer than the longest word we look for cannot match.
enum Sign : std::uint32_t {
  kPostfix = 1u << 0,
  kExim = 1u << 1,
  kSendmail = 1u << 2,
  kOpenSmtpd = 1u << 3,
  kMicrosoft = 1u << 4,
  kQmail = 1u << 5,
  kCourier = 1u << 6,
  kHaraka = 1u << 7,
  kGsmtp = 1u << 8,
  kSimpleEmailService = 1u << 9,
};

struct WordSign {
  std::string_view word;
  std::uint32_t sign;
};

constexpr std::array<WordSign, 11> kWordSigns = {{
    {"postfix", kPostfix},
    {"exim", kExim},
    {"sendmail", kSendmail},
    {"opensmtpd", kOpenSmtpd},
    {"qmail", kQmail},
    {"netqmail", kQmail},
    {"notqmail", kQmail},
    {"courier", kCourier},
    {"haraka", kHaraka},
    {"gsmtp", kGsmtp},  // Google's "220 mx.google.com ESMTP <id> - gsmtp"
    {"simpleemailservice", kSimpleEmailService},
}};
constexpr std::size_t kLongestWord = 18;  // "simpleemailservice"

class WordScanner {
 public:
  void scan(std::string_view text) {
    for (char c : text) {
      if (is_alnum(c)) {
        if (length_ < word_.size()) word_[length_] = ascii_lower(c);
        ++length_;
      } else {
        end_word();
      }
    }
    end_word();
  }
  std::uint32_t signs() const { return signs_; }

 private:
  void end_word() {
    if (length_ == 0) return;
    const std::string_view word =
        length_ <= word_.size() ? std::string_view(word_.data(), length_) : std::string_view();
    length_ = 0;
    for (const WordSign& ws : kWordSigns) {
      if (word == ws.word) signs_ |= ws.sign;
    }
    // Exchange and IIS: "Microsoft ESMTP MAIL Service", Exchange 5.5: "Microsoft Exchange
    // Internet Mail Service", and "Microsoft.Exchange" from later versions' components.
    if (previous_was_microsoft_ && (word == "esmtp" || word == "exchange")) signs_ |= kMicrosoft;
    previous_was_microsoft_ = word == "microsoft";
  }

  std::array<char, kLongestWord> word_{};
  std::size_t length_ = 0;
  bool previous_was_microsoft_ = false;
  std::uint32_t signs_ = 0;
};

std::string_view recognise_software(const Reply& greeting, std::string_view hostname) {
  WordScanner scanner;
  for (std::size_t i = 0; i < greeting.lines.size(); ++i) {
    std::string_view text = greeting.lines[i];
    if (i == 0) {
      // The server's own name is not a claim about its software ("postfix.example.com").
      const std::size_t start = text.find_first_not_of(" \t");
      const std::size_t end = text.find_first_of(" \t", start);
      text = end == std::string_view::npos ? std::string_view() : text.substr(end);
    }
    scanner.scan(text);
  }
  const std::uint32_t signs = scanner.signs();

  // What the software says of itself comes first; the order settles banners naming two.
  if (signs & kOpenSmtpd) return "opensmtpd";
  if (signs & kPostfix) return "postfix";
  if (signs & kExim) return "exim";
  if (signs & kSendmail) return "sendmail";
  if (signs & kMicrosoft) return "microsoft";
  if (signs & kHaraka) return "haraka";
  if (signs & kCourier) return "courier";
  if (signs & kQmail) return "qmail";
  if (signs & kSimpleEmailService) return "amazon_ses";
  if (signs & kGsmtp) return "google";

  // Big providers whose banners name no software: known by their host names.
  if (hostname != kInvalid) {
    if (in_domain(hostname, "google.com") || in_domain(hostname, "gmail.com") ||
        in_domain(hostname, "googlemail.com")) {
      return "google";
    }
    if (in_domain(hostname, "outlook.com") || in_domain(hostname, "exchangelabs.com") ||
        in_domain(hostname, "office365.com") || in_domain(hostname, "hotmail.com")) {
      return "microsoft";
    }
    if (in_domain(hostname, "yahoo.com") || in_domain(hostname, "yahoodns.net")) return "yahoo";
  }
  return "unknown";
}

}  // namespace

bool is_valid_domain(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxDomainBytes) return false;

  std::size_t label_start = 0;
  bool label_all_digits = true;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      const std::size_t length = i - label_start;
      if (length == 0 || length > kMaxLabelBytes) return false;
      if (name[label_start] == '-' || name[i - 1] == '-') return false;
      // An all-numeric top label would make "192.0.2.1" a host name (RFC 3696 §2).
      if (i == name.size() && label_all_digits) return false;
      label_start = i + 1;
      label_all_digits = true;
      continue;
    }
    const char c = name[i];
    if (!is_alnum(c) && c != '-') return false;
    if (!is_digit(c)) label_all_digits = false;
  }
  return true;
}

BannerInfo parse_banner(const Reply& greeting) {
  BannerInfo info;
  std::string_view first = greeting.lines.empty() ? std::string_view() : greeting.lines.front();
  const std::size_t start = first.find_first_not_of(" \t");
  std::string_view word;
  if (start != std::string_view::npos) {
    first.remove_prefix(start);
    std::size_t end = 0;
    while (end < first.size() && !is_space(first[end])) ++end;
    word = first.substr(0, end);
  }
  info.hostname = normalise_hostname(word);
  info.software = std::string(recognise_software(greeting, info.hostname));
  return info;
}

}  // namespace smtp
