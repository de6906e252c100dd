#pragma once
/// Checks and conversions of single config values: addresses, names, labels, enums. Pure
/// functions shared by the config parser, the `probe` and `check` faces and the HTTP listener.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "probes/smtp_probe.h"

namespace smtp {

/// `text` in double quotes for a message: quotes and backslashes escaped, control bytes as \xNN,
/// cut after 64 bytes.
std::string quote(std::string_view text);

/// `text` with every control byte as \xNN, so that a message stays one printable line.
std::string escape_controls(std::string_view text);

bool is_ipv4(std::string_view text);
bool is_ipv6(std::string_view text);
/// An RFC 5321 §4.1.3 address literal, as EHLO may carry instead of a domain: `[192.0.2.1]`,
/// `[IPv6:2001:db8::1]`.
bool is_address_literal(std::string_view text);

/// A name fit for EHLO: a domain name, or an address literal. Anything else could smuggle a
/// second command into the dialogue.
bool is_helo_name(std::string_view name);

/// Well-formed UTF-8; with `allow_controls` false also free of control characters (C0, DEL,
/// C1), so that the text is safe in a label value people read and in a log line.
bool is_utf8(std::string_view text, bool allow_controls);

/// A Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*.
bool is_label_name(std::string_view name);

/// A host and a port split out of `host:port`, `[v6]:port` or `IP:port`.
struct HostPort {
  std::string host;  // IPv6 without brackets
  std::uint16_t port = 0;
  bool is_ipv6 = false;
};

/// What parse_host_port accepts besides `host:port`.
struct HostPortRules {
  /// The port when the text has none; 0: a port is required.
  std::uint16_t default_port = 0;
  /// Host names are refused: only IP literals (DNS servers, listen addresses).
  bool ip_only = false;
  /// `:port` alone is accepted, with an empty host (a listen address on every interface).
  bool empty_host = false;
};

/// Parses `host:port`, `[v6]:port` or `IP:port`. IPv6 needs brackets: without them
/// `2001:db8::25` could mean port 25 or not. Returns what is wrong, or nothing with `out` filled.
std::optional<std::string> parse_host_port(std::string_view text, const HostPortRules& rules,
                                           HostPort& out);

/// "1".."65535". Returns what is wrong, or nothing with `out` filled.
std::optional<std::string> parse_port(std::string_view text, std::uint16_t& out);

std::optional<TlsMode> parse_tls_mode(std::string_view text);
std::optional<IpProtocol> parse_ip_protocol(std::string_view text);
std::string_view ip_protocol_name(IpProtocol protocol);

}  // namespace smtp
