#pragma once
/// The HTTP server's pure parsers: the listen address, query strings, Accept-Encoding.
#include <map>
#include <string>
#include <string_view>

#include "probes/asio.h"

namespace smtp {

/// Where the HTTP server listens.
struct ListenAddress {
  ListenAddress() = default;
  /// One address (implicit: a test or a caller that already has an endpoint).
  ListenAddress(tcp::endpoint at) : endpoint(at) {}  // NOLINT(google-explicit-constructor)
  ListenAddress(tcp::endpoint at, bool both) : endpoint(at), both_families(both) {}

  tcp::endpoint endpoint;
  /// ":port": every address of both families. `endpoint` is then [::]:port, and the server
  /// falls back to 0.0.0.0:port where the machine has no IPv6.
  bool both_families = false;
};

/// Parses "host:port", "[v6]:port" or ":port" (all interfaces, IPv6 and IPv4, as Go exporters
/// do; "0.0.0.0:port" is IPv4 only, "[::]:port" takes both families too) for
/// --web.listen-address. Names other than "localhost" are not resolved. Throws
/// std::invalid_argument.
ListenAddress parse_listen_address(std::string_view text);

/// A query string ("a=1&b=x+y") decoded form-style; the last value of a key wins.
std::map<std::string, std::string> parse_query(std::string_view query);

/// `s` without the spaces and tabs around it (RFC 9110 "OWS").
std::string_view trim_ows(std::string_view s);

/// Whether an Accept-Encoding value (several headers joined with ',') admits gzip.
bool parse_accepts_gzip(std::string_view header);

}  // namespace smtp
