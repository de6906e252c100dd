#pragma once
/// How an address and port are written in logs, on the terminal and in config messages.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "probes/asio.h"

namespace smtp {

/// "host:port", or "[v6]:port" for an IPv6 address (given without brackets).
inline std::string format_host_port(std::string_view host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  std::string out;
  out.reserve(host.size() + 8);
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

/// "ip:port", or "[v6]:port".
inline std::string format_endpoint(const tcp::endpoint& endpoint) {
  if (!endpoint.address().is_v4()) {
    return format_host_port(endpoint.address().to_string(), endpoint.port());
  }
  // Every probe names its peer: IPv4 by hand, as inet_ntop goes through sprintf, which cost more
  // than a probe's whole reply parsing.
  const auto bytes = endpoint.address().to_v4().to_bytes();
  std::string out;
  out.reserve(sizeof "255.255.255.255:65535" - 1);
  char digits[8];  // appended from a buffer of its own: GCC -O3 cannot bound pointer arithmetic
  const auto append = [&out, &digits](unsigned number) {
    out.append(digits, std::to_chars(digits, digits + sizeof digits, number).ptr);
  };
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) out += '.';
    append(bytes[i]);
  }
  out += ':';
  append(endpoint.port());
  return out;
}

}  // namespace smtp
