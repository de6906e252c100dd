#include "exporter/config_values.h"

#include <arpa/inet.h>

#include <algorithm>

#include "exporter/utf8.h"
#include "probes/banner.h"
#include "probes/text.h"

namespace smtp {
namespace {

// inet_pton reads up to a NUL: a YAML "\0" must not smuggle bytes past it.
bool parses_as(int family, std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return false;
  const std::string copy(text);
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(family, copy.c_str(), address) == 1;
}

}  // namespace

std::string quote(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  std::string out = "\"";
  const std::size_t shown = std::min(text.size(), kMaxShown);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      append_hex_escape(out, c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < text.size()) out += "...";
  out += '"';
  return out;
}

std::string escape_controls(std::string_view text) {
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      append_hex_escape(out, c);
    } else {
      out += ch;
    }
  }
  return out;
}

bool is_ipv4(std::string_view text) { return parses_as(AF_INET, text); }
bool is_ipv6(std::string_view text) { return parses_as(AF_INET6, text); }

bool is_address_literal(std::string_view text) {
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return false;
  const std::string_view inner = text.substr(1, text.size() - 2);
  constexpr std::string_view kV6Prefix = "IPv6:";
  if (inner.size() > kV6Prefix.size() && iequals(inner.substr(0, kV6Prefix.size()), kV6Prefix)) {
    return is_ipv6(inner.substr(kV6Prefix.size()));
  }
  return is_ipv4(inner);
}

bool is_helo_name(std::string_view name) {
  return is_valid_domain(name) || is_address_literal(name);
}

bool is_utf8(std::string_view text, bool allow_controls) {
  std::size_t i = 0;
  while (i < text.size()) {
    char32_t code = 0;
    const std::size_t length = utf8_sequence(text, i, code);
    if (length == 0) return false;
    if (!allow_controls && (code < 0x20 || (code >= 0x7f && code <= 0x9f))) return false;
    i += length;
  }
  return true;
}

bool is_label_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

std::optional<std::string> parse_port(std::string_view text, std::uint16_t& out) {
  if (text.empty()) return "missing port";
  const bool digits =
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  const int value = digits && text.size() <= 5 ? std::stoi(std::string(text)) : 0;
  if (value < 1 || value > 65535) {
    return "invalid port " + quote(text) + " (expected a number from 1 to 65535)";
  }
  out = static_cast<std::uint16_t>(value);
  return std::nullopt;
}

std::optional<std::string> parse_host_port(std::string_view text, const HostPortRules& rules,
                                           HostPort& out) {
  if (text.empty()) return "must not be empty";
  std::string_view host;
  std::optional<std::string_view> port_text;
  bool bracketed = false;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return "missing \"]\" after the IPv6 address";
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return "expected \":port\" after \"]\"";
      port_text = rest.substr(1);
    }
    bracketed = true;
  } else {
    const std::size_t colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
      return "an IPv6 address needs brackets, e.g. \"[2001:db8::1]:" +
             std::to_string(rules.default_port == 0 ? 25 : rules.default_port) + "\"";
    }
    host = text.substr(0, colon);
    if (colon != std::string_view::npos) port_text = text.substr(colon + 1);
  }
  if (host.empty() && !(rules.empty_host && !bracketed && port_text)) return "missing host";

  if (bracketed) {
    if (!is_ipv6(host)) return "not an IPv6 address in brackets: " + quote(host);
    out.is_ipv6 = true;
  } else if (host.empty() || is_ipv4(host)) {
    // Every interface, or an IPv4 literal: nothing more to check.
  } else if (rules.ip_only) {
    return "not an IP address: " + quote(host);
  } else if (!is_valid_domain(host)) {
    return "invalid host name " + quote(host);
  }
  out.host = std::string(host);
  if (!port_text) {
    if (rules.default_port == 0) {
      // The fix, spelled out: the user wrote a host, and only the port is missing.
      return "missing port: write " + quote((bracketed ? "[" + out.host + "]" : out.host) + ":25") +
             " for SMTP (465 for implicit TLS, 587 for submission)";
    }
    out.port = rules.default_port;
    return std::nullopt;
  }
  return parse_port(*port_text, out.port);
}

std::optional<TlsMode> parse_tls_mode(std::string_view text) {
  if (text == "none") return TlsMode::kNone;
  if (text == "starttls") return TlsMode::kStartTls;
  if (text == "implicit") return TlsMode::kImplicit;
  return std::nullopt;
}

std::optional<IpProtocol> parse_ip_protocol(std::string_view text) {
  if (text == "ip4") return IpProtocol::kIp4;
  if (text == "ip6") return IpProtocol::kIp6;
  if (text == "any") return IpProtocol::kAny;
  return std::nullopt;
}

std::string_view ip_protocol_name(IpProtocol protocol) {
  switch (protocol) {
    case IpProtocol::kIp4:
      return "ip4";
    case IpProtocol::kIp6:
      return "ip6";
    case IpProtocol::kAny:
      break;
  }
  return "any";
}

}  // namespace smtp
