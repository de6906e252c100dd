#include "exporter/http_parse.h"

#include <charconv>
#include <optional>
#include <stdexcept>

#include "probes/text.h"

namespace smtp {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Form-style decoding: '+' is a space, %XX a byte; a malformed escape stays as it was, since
// rejecting the whole request over it would help nobody.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> result;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq));
    std::string value =
        eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
    result.insert_or_assign(std::move(key), std::move(value));
  }
  return result;
}

// RFC 9110 §12.5.3: a coding is acceptable unless its weight is 0; "*" stands for every
// coding not named; an explicit "gzip" (or its alias "x-gzip") wins over "*".
bool parse_accepts_gzip(std::string_view header) {
  std::optional<bool> gzip;
  std::optional<bool> any;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view element = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    const auto semi = element.find(';');
    const std::string_view coding = trim_ows(element.substr(0, semi));
    double weight = 1.0;
    bool valid = true;
    std::string_view params =
        semi == std::string_view::npos ? std::string_view{} : element.substr(semi + 1);
    while (!params.empty()) {
      const auto next = params.find(';');
      const std::string_view param = trim_ows(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
      if (param.size() >= 2 && ascii_lower(param[0]) == 'q' && param[1] == '=') {
        const std::string_view number = trim_ows(param.substr(2));
        const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), weight,
                                               std::chars_format::fixed);
        if (ec != std::errc{} || ptr != number.data() + number.size()) valid = false;
      }
    }
    if (!valid) continue;
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      gzip = weight > 0;
    } else if (coding == "*") {
      any = weight > 0;
    }
  }
  return gzip.value_or(any.value_or(false));
}

ListenAddress parse_listen_address(std::string_view text) {
  const auto fail = [text](std::string_view why) {
    return std::invalid_argument("invalid listen address \"" + std::string(text) +
                                 "\": " + std::string(why));
  };
  std::string_view host;
  std::string_view port_text;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) throw fail("missing ']' after the IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      throw fail("expected \"[address]:port\"");
    }
    port_text = text.substr(close + 2);
    bracketed = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw fail("expected \"host:port\"");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      throw fail("an IPv6 address needs brackets, as in \"[::1]:9101\"");
    }
  }

  unsigned port = 0;
  const auto [ptr, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
      port > 65535) {
    throw fail("the port must be a number from 0 to 65535");
  }
  const auto port_number = static_cast<unsigned short>(port);

  if (host.empty()) {
    if (bracketed) throw fail("empty IPv6 address");
    return ListenAddress(tcp::endpoint(asio::ip::address_v6::any(), port_number), true);
  }
  asio::ip::address address;
  if (!bracketed && iequals(host, "localhost")) {
    address = asio::ip::address_v4::loopback();
  } else {
    boost::system::error_code parse_error;
    if (bracketed) {
      address = asio::ip::make_address_v6(std::string(host), parse_error);
    } else {
      address = asio::ip::make_address_v4(std::string(host), parse_error);
    }
    if (parse_error) {
      throw fail(bracketed ? "not an IPv6 address"
                           : "not an IP address (host names other than localhost are not "
                             "resolved)");
    }
  }
  return ListenAddress(tcp::endpoint(address, port_number));
}

}  // namespace smtp
