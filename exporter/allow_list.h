#pragma once
/// `probe.allowed_targets`: which HOST:PORT a /probe request may make the exporter connect to.
///
/// Pure: rules in, a verdict and its reason out. The verdict comes in two steps, so that nothing
/// leaves the exporter for a target no rule could admit: admit_target() before any lookup (for
/// an IP literal it is the whole verdict), then, for a name, admit_addresses() on what the name
/// resolved to. The caller connects only to the addresses admitted, never looks the name up
/// again (DNS rebinding).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "probes/asio.h"

namespace smtp {

/// An IP network in CIDR notation. An IPv4 network holds IPv4 addresses only, an IPv6 network
/// IPv6 addresses only (an IPv4-mapped address is matched as the IPv4 address it stands for).
struct IpNetwork {
  asio::ip::address base;  // the host bits are 0
  unsigned prefix = 0;     // 0..32 or 0..128

  bool contains(const asio::ip::address& address) const;
  std::string text() const;  // "192.0.2.0/24"
};

/// Ports from `first` to `last`, both included.
struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
};

/// The ports a rule admits when it lists none: SMTP, implicit TLS and submission.
inline constexpr std::uint16_t kDefaultAllowedPorts[] = {25, 465, 587};

/// One rule. Every key it has must hold: a target is admitted by it when its port is one of
/// `ports`, and
/// - a name matches one of `hosts`, and, when the rule lists networks, every address the name
///   resolves to lies in one of them (a rule without networks admits whatever it resolves to);
/// - an IP literal lies in one of `networks` of a rule without `hosts` (an address matches no
///   host pattern).
/// A rule without `hosts` admits no name at all, so no name is looked up for it.
struct AllowRule {
  std::string name;                // for messages: the rule's `name`, or "allowed_targets[N]"
  std::vector<std::string> hosts;  // patterns, as parse_host_pattern() leaves them
  std::vector<IpNetwork> networks;
  std::vector<PortRange> ports;

  bool admits_port(std::uint16_t port) const;
};

/// Parsers for the config. Each returns what is wrong, or nothing with `out` filled.
/// A host pattern: a name (`mx1.example.org`), `*` inside one label for any characters but a dot
/// (`*.example.org`, `mx*.example.org`), or `**` as the whole first label for one or more labels
/// (`**.example.org`; `**` alone matches every name). Kept lower-case, without a trailing dot.
std::optional<std::string> parse_host_pattern(std::string_view text, std::string& out);
/// `192.0.2.0/24`, `2001:db8::/32`, or one address (`/32` or `/128`). Bits set past the prefix
/// are refused (`192.0.2.1/24` is more likely a typo than a network).
std::optional<std::string> parse_network(std::string_view text, IpNetwork& out);
/// `25` or `2525-2599`.
std::optional<std::string> parse_port_range(std::string_view text, PortRange& out);

/// Whether `name` (lower-case, no trailing dot) matches `pattern` (see parse_host_pattern).
bool host_pattern_matches(std::string_view pattern, std::string_view name);

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) as the IPv4 address it reaches; any other
/// address unchanged. Rules and connections see this form, so an IPv6 rule cannot let an
/// IPv4 address in by its mapped spelling.
asio::ip::address unmapped(const asio::ip::address& address);

/// A verdict, and what the rules said.
struct Admission {
  bool admitted = false;
  /// Why not (the 403's body and the log line): names the rule that came closest, or says that
  /// no rule admits the target. When admitted: the rule that did.
  std::string reason;
  /// Admitted by admit_target() for a name: the rules whose hosts and ports admit it, which
  /// admit_addresses() then checks the addresses against.
  std::vector<std::size_t> rules;
};

class AllowList {
 public:
  AllowList() = default;
  explicit AllowList(std::vector<AllowRule> rules) : rules_(std::move(rules)) {}

  bool empty() const { return rules_.empty(); }
  const std::vector<AllowRule>& rules() const { return rules_; }

  /// Before any lookup. `host` is an IP literal (IPv6 without brackets) or a name (any case,
  /// a trailing dot allowed).
  Admission admit_target(std::string_view host, std::uint16_t port) const;

  /// After the lookup of a name that admit_target() admitted as `by_name`: admitted when one of
  /// its rules admits every address (unmapped) in `addresses`, which must not be empty.
  Admission admit_addresses(const Admission& by_name, std::string_view host,
                            const std::vector<asio::ip::address>& addresses) const;

 private:
  std::vector<AllowRule> rules_;
};

}  // namespace smtp
