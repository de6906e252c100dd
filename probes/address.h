#pragma once
/// How an address and port are written in logs, on the terminal and in config messages.
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
  return format_host_port(endpoint.address().to_string(), endpoint.port());
}

}  // namespace smtp
