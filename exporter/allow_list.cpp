#include "exporter/allow_list.h"

#include <algorithm>
#include <charconv>

#include "exporter/config_values.h"
#include "probes/banner.h"
#include "probes/text.h"

namespace smtp {
namespace {

// A connection to 0.0.0.0 or :: reaches this very host on Linux: whatever the rules say, that is
// never what a network rule meant.
constexpr std::string_view kUnspecified =
    "the unspecified address (a connection to it reaches the exporter's own host): never probed";

std::string_view strip_trailing_dot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

std::vector<std::string_view> split_labels(std::string_view name) {
  std::vector<std::string_view> labels;
  while (true) {
    const std::size_t dot = name.find('.');
    labels.push_back(name.substr(0, dot));
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return labels;
}

// `*` matches any run of characters (a label holds no dot). Labels are at most 63 bytes, so the
// backtracking stays small.
bool label_matches(std::string_view pattern, std::string_view label) {
  std::size_t p = 0;
  std::size_t l = 0;
  std::size_t star = std::string_view::npos;
  std::size_t star_l = 0;
  while (l < label.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_l = l;
    } else if (p < pattern.size() && pattern[p] == label[l]) {
      ++p;
      ++l;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      l = ++star_l;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string ports_text(const AllowRule& rule) {
  std::string out;
  for (const PortRange& range : rule.ports) {
    if (!out.empty()) out += ", ";
    out += std::to_string(range.first);
    if (range.last != range.first) out += "-" + std::to_string(range.last);
  }
  return out;
}

std::string rule_text(const AllowRule& rule) { return "rule " + quote(rule.name); }

std::string not_this_port(const AllowRule& rule, std::string_view what, std::uint16_t port) {
  return rule_text(rule) + " admits " + std::string(what) + " but not port " +
         std::to_string(port) + " (its ports: " + ports_text(rule) + ")";
}

std::uint32_t v4_mask(unsigned prefix) {
  return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
}

bool parse_number(std::string_view text, unsigned& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc{} && end == text.data() + text.size();
}

}  // namespace

bool IpNetwork::contains(const asio::ip::address& raw) const {
  const asio::ip::address address = unmapped(raw);
  if (address.is_v4() != base.is_v4()) return false;
  if (address.is_v4()) {
    return (address.to_v4().to_uint() & v4_mask(prefix)) == base.to_v4().to_uint();
  }
  const auto a = address.to_v6().to_bytes();
  const auto b = base.to_v6().to_bytes();
  const unsigned whole = prefix / 8;
  if (!std::equal(a.begin(), a.begin() + whole, b.begin())) return false;
  if (prefix % 8 == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - prefix % 8));
  return (a[whole] & mask) == b[whole];
}

std::string IpNetwork::text() const { return base.to_string() + "/" + std::to_string(prefix); }

bool AllowRule::admits_port(std::uint16_t port) const {
  return std::any_of(ports.begin(), ports.end(), [port](const PortRange& range) {
    return port >= range.first && port <= range.last;
  });
}

std::optional<std::string> parse_host_pattern(std::string_view text, std::string& out) {
  const std::string lowered = ascii_lowered(strip_trailing_dot(text));
  if (lowered.empty()) return "must not be empty";
  if (lowered == "**") {
    out = lowered;
    return std::nullopt;
  }
  const std::string_view rest =
      lowered.starts_with("**.") ? std::string_view(lowered).substr(3) : std::string_view(lowered);
  if (rest.find("**") != std::string_view::npos) {
    return "invalid host pattern " + quote(text) + ": \"**\" only as the whole first label";
  }
  // Wildcards aside, a pattern must read as a host name.
  std::string as_name(rest);
  std::replace(as_name.begin(), as_name.end(), '*', 'x');
  if (!is_valid_domain(as_name)) {
    return "invalid host pattern " + quote(text) +
           " (expected a host name, with \"*\" inside a label or \"**\" as the first label)";
  }
  out = lowered;
  return std::nullopt;
}

std::optional<std::string> parse_network(std::string_view text, IpNetwork& out) {
  const std::size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  const bool v4 = is_ipv4(address_text);
  if (!v4 && !is_ipv6(address_text)) {
    return "invalid network " + quote(text) +
           " (expected an address or a CIDR network such as 192.0.2.0/24 or 2001:db8::/32)";
  }
  boost::system::error_code ec;
  const asio::ip::address base = asio::ip::make_address(std::string(address_text), ec);
  if (ec) return "invalid network " + quote(text);
  if (base.is_v6() && base.to_v6().is_v4_mapped()) {
    return "invalid network " + quote(text) + ": write IPv4-mapped addresses as IPv4 networks";
  }
  const unsigned max_prefix = v4 ? 32 : 128;
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos &&
      (!parse_number(text.substr(slash + 1), prefix) || prefix > max_prefix)) {
    return "invalid network " + quote(text) + ": the prefix length must be a number from 0 to " +
           std::to_string(max_prefix);
  }
  // The base with its host bits cleared must be the base itself.
  IpNetwork cleared{base, prefix};
  if (v4) {
    cleared.base = asio::ip::address_v4(base.to_v4().to_uint() & v4_mask(prefix));
  } else {
    auto bytes = base.to_v6().to_bytes();
    for (unsigned bit = prefix; bit < 128; ++bit) {
      bytes[bit / 8] = static_cast<unsigned char>(bytes[bit / 8] & ~(0x80u >> (bit % 8)));
    }
    cleared.base = asio::ip::address_v6(bytes);
  }
  if (cleared.base != base) {
    return "invalid network " + quote(text) +
           ": bits are set past the prefix length (did you mean " + cleared.text() + "?)";
  }
  out = cleared;
  return std::nullopt;
}

std::optional<std::string> parse_port_range(std::string_view text, PortRange& out) {
  const std::size_t dash = text.find('-');
  unsigned first = 0;
  unsigned last = 0;
  const bool ok = parse_number(text.substr(0, dash), first) &&
                  (dash == std::string_view::npos ? (last = first, true)
                                                  : parse_number(text.substr(dash + 1), last));
  if (!ok || first < 1 || last > 65535 || first > last) {
    return "invalid port " + quote(text) +
           " (expected a port from 1 to 65535, or a range such as 2525-2599)";
  }
  out = {static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)};
  return std::nullopt;
}

bool host_pattern_matches(std::string_view pattern, std::string_view name) {
  if (name.empty()) return false;
  if (pattern == "**") return true;
  const bool deep = pattern.starts_with("**.");
  const std::vector<std::string_view> wanted = split_labels(deep ? pattern.substr(3) : pattern);
  const std::vector<std::string_view> labels = split_labels(name);
  if (deep ? labels.size() <= wanted.size() : labels.size() != wanted.size()) return false;
  const std::size_t skip = labels.size() - wanted.size();  // the labels `**` stands for
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    if (!label_matches(wanted[i], labels[skip + i])) return false;
  }
  return true;
}

asio::ip::address unmapped(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

Admission AllowList::admit_target(std::string_view host, std::uint16_t port) const {
  Admission verdict;
  if (rules_.empty()) {
    verdict.reason = "no target may be probed: probe.allowed_targets is not set in the config";
    return verdict;
  }
  boost::system::error_code ec;
  const asio::ip::address literal = asio::ip::make_address(std::string(host), ec);
  if (!ec) {
    const asio::ip::address address = unmapped(literal);
    if (address.is_unspecified()) {
      verdict.reason = address.to_string() + " is " + std::string(kUnspecified);
      return verdict;
    }
    const AllowRule* closest = nullptr;     // holds the address, but not the port
    const AllowRule* names_only = nullptr;  // holds the address, but lists hosts
    for (const AllowRule& rule : rules_) {
      const bool inside = std::any_of(rule.networks.begin(), rule.networks.end(),
                                      [&](const IpNetwork& n) { return n.contains(address); });
      if (!inside) continue;
      if (!rule.hosts.empty()) {
        // Its networks say where its names may point; an address matches no host pattern.
        if (!names_only) names_only = &rule;
      } else if (rule.admits_port(port)) {
        verdict.admitted = true;
        verdict.reason = rule_text(rule) + " admits " + address.to_string();
        return verdict;
      } else if (!closest) {
        closest = &rule;
      }
    }
    const std::string no_rule = "no rule of probe.allowed_targets admits " + address.to_string();
    if (closest) {
      verdict.reason = not_this_port(*closest, address.to_string(), port);
    } else if (names_only) {
      verdict.reason = no_rule + " (" + rule_text(*names_only) +
                       " lists hosts: its networks admit only what those names resolve to)";
    } else {
      verdict.reason = no_rule + " (it is in none of their networks)";
    }
    return verdict;
  }

  const std::string name = ascii_lowered(strip_trailing_dot(host));
  const AllowRule* closest = nullptr;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const AllowRule& rule = rules_[i];
    const bool matches = std::any_of(rule.hosts.begin(), rule.hosts.end(),
                                     [&](const auto& p) { return host_pattern_matches(p, name); });
    if (!matches) continue;
    if (rule.admits_port(port)) {
      verdict.rules.push_back(i);
    } else if (!closest) {
      closest = &rule;
    }
  }
  if (!verdict.rules.empty()) {
    verdict.admitted = true;
    verdict.reason = rule_text(rules_[verdict.rules.front()]) + " admits the host " + quote(name);
  } else if (closest) {
    verdict.reason = not_this_port(*closest, "the host " + quote(name), port);
  } else {
    verdict.reason = "no rule of probe.allowed_targets admits the host " + quote(name) +
                     " (it matches none of their hosts)";
  }
  return verdict;
}

Admission AllowList::admit_addresses(const Admission& by_name, std::string_view host,
                                     const std::vector<asio::ip::address>& addresses) const {
  Admission verdict;
  const std::string name = quote(ascii_lowered(strip_trailing_dot(host)));
  for (const asio::ip::address& raw : addresses) {
    const asio::ip::address address = unmapped(raw);
    if (address.is_unspecified()) {
      verdict.reason =
          name + " resolves to " + address.to_string() + ", " + std::string(kUnspecified);
      return verdict;
    }
  }
  std::string refusals;
  for (const std::size_t index : by_name.rules) {
    const AllowRule& rule = rules_.at(index);
    if (rule.networks.empty()) {
      verdict.admitted = true;
      verdict.reason = rule_text(rule) + " admits the host " + name + " at any address";
      return verdict;
    }
    const auto outside = std::find_if(addresses.begin(), addresses.end(), [&](const auto& a) {
      return std::none_of(rule.networks.begin(), rule.networks.end(),
                          [&](const IpNetwork& n) { return n.contains(a); });
    });
    if (outside == addresses.end()) {
      verdict.admitted = true;
      verdict.reason = rule_text(rule) + " admits the host " + name + " and its addresses";
      return verdict;
    }
    if (!refusals.empty()) refusals += "; ";
    refusals += rule_text(rule) + " admits the host " + name + ", but it resolves to " +
                unmapped(*outside).to_string() + ", which is in none of the rule's networks";
  }
  verdict.reason = refusals.empty() ? "no rule admits the host " + name : refusals;
  return verdict;
}

}  // namespace smtp
