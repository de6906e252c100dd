#include "exporter/config.h"

#include "exporter/utf8.h"

#include <tuple>

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <initializer_list>
#include <sstream>

#include "exporter/duration.h"
#include "probes/banner.h"
#include "probes/text.h"

namespace smtp {
namespace {

using std::chrono::milliseconds;

// A config bigger than this is a mistake (a log file passed by accident), not a config.
constexpr std::size_t kMaxConfigBytes = 64 * 1024 * 1024;
constexpr std::size_t kMaxTargetNameBytes = 128;
constexpr milliseconds kMinInterval{1000};

// Labels the exporter sets itself; a static label of the same name would collide with them.
constexpr std::array<std::string_view, 15> kReservedLabels{
    "target", "mx",        "address",  "phase", "result",   "hostname", "software", "version",
    "cipher", "extension", "revision", "le",    "quantile", "instance", "job"};

// Where a value sits in the file: what an error message names.
struct Where {
  int line = 0;  // 1-based; 0 if unknown
  std::string path;
};

// A value and, if it was written in the file, where.
template <typename T>
struct Sourced {
  T value{};
  std::optional<Where> where;
};

std::string quoted(std::string_view text) {
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

// yaml-cpp's messages are fixed texts, but "unknown escape character: " ends with the raw byte
// that followed the backslash: a message must stay one printable line.
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

// A key as it appears in a key path: plain if it is a plain word, quoted otherwise.
std::string path_key(std::string_view key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return plain ? std::string(key) : quoted(key);
}

std::string join_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? path_key(key) : parent + "." + path_key(key);
}

std::string node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a string";
    default:
      return "nothing";
  }
}

// inet_pton reads up to a NUL; a YAML "\0" must not smuggle bytes past it.
bool is_ipv4(const std::string& text) {
  if (text.find('\0') != std::string::npos) return false;
  in_addr addr{};
  return inet_pton(AF_INET, text.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& text) {
  if (text.find('\0') != std::string::npos) return false;
  in6_addr addr{};
  return inet_pton(AF_INET6, text.c_str(), &addr) == 1;
}

// RFC 5321 §4.1.3 address literals, as EHLO may carry instead of a domain.
bool is_address_literal(std::string_view text) {
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return false;
  const std::string inner(text.substr(1, text.size() - 2));
  constexpr std::string_view kV6Prefix = "IPv6:";
  if (inner.size() > kV6Prefix.size() && iequals(inner.substr(0, kV6Prefix.size()), kV6Prefix)) {
    return is_ipv6(inner.substr(kV6Prefix.size()));
  }
  return is_ipv4(inner);
}

// Well-formed UTF-8; with `allow_controls` false, also free of control characters (C0, DEL,
// C1), so that the text is safe as a label value that people read and in a log line.
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

// A host and port split out of `address` or a DNS server entry.
struct HostPort {
  std::string host;  // IPv6 without brackets
  std::uint16_t port = 0;
  bool is_ipv6 = false;
};

// Returns an error text, or nothing with `out` filled.
std::optional<std::string> parse_port(std::string_view text, std::uint16_t& out) {
  if (text.empty()) return "missing port";
  if (text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "invalid port " + quoted(text) + " (expected a number from 1 to 65535)";
  }
  const int value = std::stoi(std::string(text));
  if (value < 1 || value > 65535) {
    return "invalid port " + quoted(text) + " (expected a number from 1 to 65535)";
  }
  out = static_cast<std::uint16_t>(value);
  return std::nullopt;
}

// `host:port`, `[v6]:port`, `IP:port`, or a bare host (then `default_port`). IPv6 needs brackets:
// without them `2001:db8::25` could mean port 25 or not. With `ip_only`, names are refused.
std::optional<std::string> parse_host_port(std::string_view text, std::uint16_t default_port,
                                           bool ip_only, HostPort& out) {
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
             std::to_string(default_port) + "\"";
    }
    host = text.substr(0, colon);
    if (colon != std::string_view::npos) port_text = text.substr(colon + 1);
  }
  if (host.empty()) return "missing host";

  const std::string host_string(host);
  if (bracketed) {
    if (!is_ipv6(host_string)) return "not an IPv6 address in brackets: " + quoted(host);
    out.is_ipv6 = true;
  } else if (is_ipv4(host_string)) {
    // An IPv4 literal: nothing more to check.
  } else if (ip_only) {
    return "not an IP address: " + quoted(host);
  } else if (!is_valid_domain(host)) {
    return "invalid host name " + quoted(host);
  }
  out.host = host_string;
  out.port = default_port;
  if (port_text) return parse_port(*port_text, out.port);
  return std::nullopt;
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

std::string lower_without_trailing_dot(std::string_view text) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  return ascii_lowered(text);
}

struct Defaults {
  Sourced<milliseconds> interval{milliseconds(std::chrono::seconds(30)), std::nullopt};
  Sourced<milliseconds> timeout{milliseconds(std::chrono::seconds(10)), std::nullopt};
  std::string helo_name;
  TlsMode tls = TlsMode::kNone;
  IpProtocol ip_protocol = IpProtocol::kAny;
  bool all_addresses = false;
  TlsConfig tls_config;
};

// Walks the YAML tree once; the first problem found is thrown as a ConfigError.
class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(int line, const std::string& path, const std::string& problem) const {
    std::string message(source_);
    if (line > 0) message += ":" + std::to_string(line);
    message += ": ";
    if (!path.empty()) message += path + ": ";
    message += problem;
    throw ConfigError(message);
  }

  [[noreturn]] void fail(const Where& where, const std::string& problem) const {
    fail(where.line, where.path, problem);
  }

  Config parse_document(const YAML::Node& root, const std::string& default_helo_name) {
    Config config;
    defaults_.helo_name = default_helo_name;
    // An empty file: an exporter with nothing to probe, like an empty `targets` list.
    if (!root || root.IsNull()) return config;
    const Where top{line_of(root), ""};
    if (!root.IsMap()) fail(top, "expected a map at the top level, got " + node_kind(root));

    const Entries entries = entries_of(root, top, {"defaults", "targets", "dns"});
    if (const Entry* e = find(entries, "defaults")) parse_defaults(*e);
    if (const Entry* e = find(entries, "targets")) parse_targets(*e, config.targets);
    if (const Entry* e = find(entries, "dns")) parse_dns(*e, config.dns);
    return config;
  }

 private:
  // One key and its value, with where the value (or, for an empty value, the key) sits.
  struct Entry {
    std::string key;
    YAML::Node value;
    Where where;
  };
  using Entries = std::vector<Entry>;

  static int line_of(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? 0 : mark.line + 1;
  }

  static const Entry* find(const Entries& entries, std::string_view key) {
    for (const Entry& entry : entries) {
      if (entry.key == key) return &entry;
    }
    return nullptr;
  }

  // The map's entries in file order; refuses keys outside `allowed` (unless empty) and repeats.
  Entries entries_of(const YAML::Node& map, const Where& where,
                     std::initializer_list<std::string_view> allowed) const {
    Entries entries;
    // Copies, not references: the iterator's pair is a temporary proxy.
    for (const auto& pair : map) {
      const YAML::Node key = pair.first;
      const YAML::Node value = pair.second;
      const int key_line = line_of(key);
      if (!key.IsScalar()) {
        fail(key_line, where.path, "a key must be a string, not " + node_kind(key));
      }
      const std::string& name = key.Scalar();
      const std::string path = join_path(where.path, name);
      if (allowed.size() > 0 && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string expected;
        for (std::string_view candidate : allowed) {
          if (!expected.empty()) expected += ", ";
          expected += candidate;
        }
        fail(key_line, path, "unknown key (expected one of: " + expected + ")");
      }
      if (const Entry* earlier = find(entries, name)) {
        fail(key_line, path,
             "duplicate key, first set at line " + std::to_string(earlier->where.line));
      }
      // A scalar is blamed where it is written. An empty value's mark points past the key, and a
      // block map or list starts on the line after it: for those the key's line reads better.
      const int value_line = value.IsScalar() ? line_of(value) : key_line;
      entries.push_back(Entry{name, value, Where{value_line ? value_line : key_line, path}});
    }
    return entries;
  }

  std::string scalar(const Entry& entry, std::string_view what) const {
    if (!entry.value.IsScalar()) {
      fail(entry.where, "expected " + std::string(what) + ", got " + node_kind(entry.value));
    }
    return entry.value.Scalar();
  }

  milliseconds duration(const Entry& entry) const {
    const std::string text = scalar(entry, "a duration such as 30s");
    const auto parsed = parse_duration(text);
    if (!parsed) {
      fail(entry.where, "invalid duration " + quoted(text) +
                            " (expected a number and a unit, e.g. 500ms, 10s, 1m30s)");
    }
    return *parsed;
  }

  milliseconds interval(const Entry& entry) const {
    const milliseconds value = duration(entry);
    if (value < kMinInterval) fail(entry.where, "must be at least 1s");
    return value;
  }

  milliseconds timeout(const Entry& entry) const {
    const milliseconds value = duration(entry);
    if (value <= milliseconds(0)) fail(entry.where, "must be greater than 0");
    return value;
  }

  std::string helo_name(const Entry& entry) const {
    std::string text = scalar(entry, "a host name");
    if (!is_valid_domain(text) && !is_address_literal(text)) {
      fail(entry.where, "invalid HELO name " + quoted(text) +
                            " (expected a domain name or an address literal such as "
                            "[192.0.2.1])");
    }
    return text;
  }

  TlsMode tls_mode(const Entry& entry) const {
    const std::string text = scalar(entry, "one of none, starttls, implicit");
    const auto mode = parse_tls_mode(text);
    if (!mode) fail(entry.where, "must be one of none, starttls, implicit, not " + quoted(text));
    return *mode;
  }

  IpProtocol ip_protocol(const Entry& entry) const {
    const std::string text = scalar(entry, "one of ip4, ip6, any");
    const auto protocol = parse_ip_protocol(text);
    if (!protocol) fail(entry.where, "must be one of ip4, ip6, any, not " + quoted(text));
    return *protocol;
  }

  bool boolean(const Entry& entry) const {
    const std::string text = scalar(entry, "true or false");
    bool value = false;
    if (!YAML::convert<bool>::decode(entry.value, value)) {
      fail(entry.where, "expected true or false, not " + quoted(text));
    }
    return value;
  }

  std::string non_empty(const Entry& entry, std::string_view what) const {
    std::string text = scalar(entry, what);
    if (text.empty()) fail(entry.where, "must not be empty");
    return text;
  }

  /// A file named in the config: relative paths are relative to the config file's directory,
  /// as in Prometheus, so a config and its certificates can move together.
  std::string file_path(const Entry& entry) const {
    std::string name = non_empty(entry, "a file name");
    std::size_t slash = source_.rfind('/');
    if (name.front() == '/' || slash == std::string_view::npos) return name;
    return std::string(source_.substr(0, slash + 1)) + name;
  }

  const YAML::Node& map_or_null(const Entry& entry) const {
    if (!entry.value.IsMap() && !entry.value.IsNull()) {
      fail(entry.where, "expected a map, got " + node_kind(entry.value));
    }
    return entry.value;
  }

  // The message points at a value the user wrote at the level being checked: the timeout if it
  // was written there, else the interval.
  void check_timeout_below_interval(const Sourced<milliseconds>& interval,
                                    const Sourced<milliseconds>& timeout) const {
    if (timeout.value < interval.value) return;
    if (timeout.where) {
      fail(*timeout.where,
           "must be shorter than interval (" + format_duration(interval.value) + ")");
    }
    if (interval.where) {
      fail(*interval.where, "must be longer than timeout (" + format_duration(timeout.value) + ")");
    }
    // Neither written anywhere: the built-in defaults, which are consistent.
  }

  void parse_defaults(const Entry& entry) {
    const YAML::Node& map = map_or_null(entry);
    if (map.IsNull()) return;
    const Entries entries = entries_of(
        map, entry.where,
        {"interval", "timeout", "helo_name", "tls", "ip_protocol", "all_addresses", "tls_config"});
    for (const Entry& e : entries) {
      if (e.key == "interval") {
        defaults_.interval = {interval(e), e.where};
      } else if (e.key == "timeout") {
        defaults_.timeout = {timeout(e), e.where};
      } else if (e.key == "helo_name") {
        defaults_.helo_name = helo_name(e);
      } else if (e.key == "tls") {
        defaults_.tls = tls_mode(e);
      } else if (e.key == "ip_protocol") {
        defaults_.ip_protocol = ip_protocol(e);
      } else if (e.key == "all_addresses") {
        defaults_.all_addresses = boolean(e);
      } else if (e.key == "tls_config") {
        defaults_.tls_config = tls_config(e);
      }
    }
    check_timeout_below_interval(defaults_.interval, defaults_.timeout);
  }

  TlsConfig tls_config(const Entry& entry) const {
    TlsConfig config;
    const YAML::Node& map = map_or_null(entry);
    if (map.IsNull()) return config;
    const Entries entries = entries_of(
        map, entry.where,
        {"ca_file", "server_name", "insecure_skip_verify", "cert_file", "key_file", "min_version"});
    for (const Entry& e : entries) {
      if (e.key == "ca_file") {
        config.ca_file = file_path(e);
      } else if (e.key == "server_name") {
        config.server_name = non_empty(e, "a host name");
        if (!is_valid_domain(config.server_name) && !is_ipv4(config.server_name) &&
            !is_ipv6(config.server_name)) {
          fail(e.where, "invalid server name " + quoted(config.server_name));
        }
      } else if (e.key == "insecure_skip_verify") {
        config.insecure_skip_verify = boolean(e);
      } else if (e.key == "cert_file") {
        config.cert_file = file_path(e);
      } else if (e.key == "key_file") {
        config.key_file = file_path(e);
      } else if (e.key == "min_version") {
        const std::string text = scalar(e, "one of TLS10, TLS11, TLS12, TLS13");
        if (text != "TLS10" && text != "TLS11" && text != "TLS12" && text != "TLS13") {
          fail(e.where, "must be one of TLS10, TLS11, TLS12, TLS13, not " + quoted(text));
        }
        config.min_version = text;
      }
    }
    const Entry* cert = find(entries, "cert_file");
    const Entry* key = find(entries, "key_file");
    if (cert && !key) fail(cert->where, "needs key_file as well");
    if (key && !cert) fail(key->where, "needs cert_file as well");
    return config;
  }

  void parse_targets(const Entry& entry, std::vector<TargetConfig>& targets) {
    if (entry.value.IsNull()) return;
    if (!entry.value.IsSequence()) {
      fail(entry.where, "expected a list of targets, got " + node_kind(entry.value));
    }
    std::map<std::string, int> name_lines;
    std::size_t index = 0;
    for (auto it = entry.value.begin(); it != entry.value.end(); ++it, ++index) {
      const Where where{line_of(*it) ? line_of(*it) : entry.where.line,
                        entry.where.path + "[" + std::to_string(index) + "]"};
      Where name_where;
      targets.push_back(parse_target(*it, where, name_where));
      const auto [first, inserted] = name_lines.emplace(targets.back().name, name_where.line);
      if (!inserted) {
        fail(name_where, "duplicate target name " + quoted(targets.back().name) +
                             ", first defined at line " + std::to_string(first->second));
      }
    }
  }

  TargetConfig parse_target(const YAML::Node& node, const Where& where, Where& name_where) {
    if (!node.IsMap()) fail(where, "expected a map describing a target, got " + node_kind(node));
    const Entries entries = entries_of(
        node, where,
        {"name", "address", "mx", "port", "mx_refresh", "interval", "timeout", "helo_name", "tls",
         "ip_protocol", "all_addresses", "expect_hostname", "labels", "tls_config"});

    TargetConfig target;
    target.helo_name = defaults_.helo_name;
    target.tls = defaults_.tls;
    target.ip_protocol = defaults_.ip_protocol;
    target.all_addresses = defaults_.all_addresses;
    target.tls_config = defaults_.tls_config;
    Sourced<milliseconds> target_interval = defaults_.interval;
    Sourced<milliseconds> target_timeout = defaults_.timeout;
    bool interval_here = false;
    bool timeout_here = false;
    std::optional<IpProtocol> literal_family;  // the family of an IP literal `address`

    for (const Entry& e : entries) {
      if (e.key == "name") {
        target.name = scalar(e, "a name");
        if (target.name.empty()) fail(e.where, "must not be empty");
        if (target.name.size() > kMaxTargetNameBytes) {
          fail(e.where, "longer than " + std::to_string(kMaxTargetNameBytes) + " bytes");
        }
        if (!is_utf8(target.name, false)) {
          fail(e.where, "must be printable UTF-8 without control characters");
        }
        name_where = e.where;
      } else if (e.key == "address") {
        const std::string text = scalar(e, "host:port");
        HostPort parsed;
        if (auto problem = parse_host_port(text, 25, false, parsed)) {
          fail(e.where, "invalid address " + quoted(text) + ": " + *problem);
        }
        target.host = parsed.host;
        target.port = parsed.port;
        if (parsed.is_ipv6) {
          literal_family = IpProtocol::kIp6;
        } else if (is_ipv4(parsed.host)) {
          literal_family = IpProtocol::kIp4;
        }
      } else if (e.key == "mx") {
        target.mx_domain = scalar(e, "a domain name");
        if (!is_valid_domain(target.mx_domain)) {
          fail(e.where, "invalid domain name " + quoted(target.mx_domain));
        }
      } else if (e.key == "port") {
        const std::string text = scalar(e, "a port number");
        if (auto problem = parse_port(text, target.port)) fail(e.where, *problem);
      } else if (e.key == "mx_refresh") {
        target.mx_refresh = interval(e);
      } else if (e.key == "interval") {
        target_interval = {interval(e), e.where};
        interval_here = true;
      } else if (e.key == "timeout") {
        target_timeout = {timeout(e), e.where};
        timeout_here = true;
      } else if (e.key == "helo_name") {
        target.helo_name = helo_name(e);
      } else if (e.key == "tls") {
        target.tls = tls_mode(e);
      } else if (e.key == "ip_protocol") {
        target.ip_protocol = ip_protocol(e);
      } else if (e.key == "all_addresses") {
        target.all_addresses = boolean(e);
      } else if (e.key == "expect_hostname") {
        const std::string text = scalar(e, "a host name");
        if (!is_valid_domain(text) && !is_address_literal(text)) {
          fail(e.where, "invalid host name " + quoted(text));
        }
        // Compared with the greeting's hostname, which the banner parser normalises this way.
        target.expect_hostname = lower_without_trailing_dot(text);
      } else if (e.key == "labels") {
        target.labels = labels(e);
      } else if (e.key == "tls_config") {
        // Replaces the defaults' tls_config as a whole, like every other key.
        target.tls_config = tls_config(e);
      }
    }

    const Entry* name = find(entries, "name");
    if (!name) fail(where, "missing required key \"name\"");
    const Entry* address = find(entries, "address");
    const Entry* mx = find(entries, "mx");
    if (address && mx) {
      const Entry* later = address->where.line > mx->where.line ? address : mx;
      fail(later->where, "only one of \"address\" and \"mx\" may be set");
    }
    if (!address && !mx) fail(where, "one of \"address\" or \"mx\" is required");
    if (address) {
      if (const Entry* port = find(entries, "port")) {
        fail(port->where, "only allowed with \"mx\" (with \"address\", write host:port)");
      }
      const Entry* refresh = find(entries, "mx_refresh");
      if (refresh && !target.all_addresses) {
        // With all_addresses it is how often the host's addresses are looked up again.
        fail(refresh->where, "only allowed with \"mx\" or \"all_addresses: true\"");
      }
    }

    if (literal_family && target.ip_protocol != IpProtocol::kAny &&
        target.ip_protocol != *literal_family) {
      // Such a target could never be probed. The message points at ip_protocol if this target
      // sets it, else at the address (the protocol came from `defaults`).
      const std::string family = *literal_family == IpProtocol::kIp6 ? "an IPv6" : "an IPv4";
      const std::string text = address->value.Scalar();
      const std::string protocol(ip_protocol_name(target.ip_protocol));
      if (const Entry* protocol_entry = find(entries, "ip_protocol")) {
        fail(protocol_entry->where,
             "is " + protocol + ", but address " + quoted(text) + " is " + family + " address");
      }
      fail(address->where, quoted(text) + " is " + family + " address, but ip_protocol is " +
                               protocol + " (from defaults)");
    }

    // `defaults` were checked on their own, so only a value written on this target can make the
    // pair wrong: the message points at it.
    if (interval_here || timeout_here) {
      Sourced<milliseconds> i = target_interval;
      Sourced<milliseconds> t = target_timeout;
      if (!interval_here) i.where.reset();
      if (!timeout_here) t.where.reset();
      check_timeout_below_interval(i, t);
    }
    target.interval = target_interval.value;
    target.timeout = target_timeout.value;
    if (target.tls != TlsMode::kNone) {
      const Entry* tls_entry = find(entries, "tls_config");
      target.tls_context = tls_context(target.tls_config, tls_entry ? tls_entry->where : where);
    }
    return target;
  }

  /// One context per distinct settings: loading a CA store takes milliseconds, and thousands of
  /// targets usually share a handful of settings.
  std::shared_ptr<asio::ssl::context> tls_context(const TlsConfig& settings, const Where& where) {
    auto key = std::make_tuple(settings.ca_file, settings.cert_file, settings.key_file,
                               settings.min_version);
    auto& context = tls_contexts_[key];
    if (!context) {
      try {
        context = make_tls_context(settings);
      } catch (const std::runtime_error& e) {
        fail(where, e.what());
      }
    }
    return context;
  }

  std::map<std::string, std::string> labels(const Entry& entry) const {
    std::map<std::string, std::string> result;
    const YAML::Node& map = map_or_null(entry);
    if (map.IsNull()) return result;
    const Entries entries = entries_of(map, entry.where, {});
    for (const Entry& e : entries) {
      if (!is_label_name(e.key)) {
        fail(e.where, "invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)");
      }
      if (e.key.starts_with("__")) {
        fail(e.where, "label names starting with \"__\" are reserved by Prometheus");
      }
      if (std::find(kReservedLabels.begin(), kReservedLabels.end(), e.key) !=
          kReservedLabels.end()) {
        fail(e.where, "label name is reserved: the exporter sets it itself");
      }
      std::string value = scalar(e, "a string label value");
      if (!is_utf8(value, true)) fail(e.where, "label value must be valid UTF-8");
      result.emplace(e.key, std::move(value));
    }
    return result;
  }

  void parse_dns(const Entry& entry, DnsConfig& dns) {
    const YAML::Node& map = map_or_null(entry);
    if (map.IsNull()) return;
    const Entries entries = entries_of(map, entry.where, {"servers"});
    const Entry* servers = find(entries, "servers");
    if (!servers || servers->value.IsNull()) return;
    if (!servers->value.IsSequence()) {
      fail(servers->where, "expected a list of \"ip:port\", got " + node_kind(servers->value));
    }
    std::size_t index = 0;
    for (auto it = servers->value.begin(); it != servers->value.end(); ++it, ++index) {
      const Where where{line_of(*it) ? line_of(*it) : servers->where.line,
                        servers->where.path + "[" + std::to_string(index) + "]"};
      const Entry item{"", *it, where};
      const std::string text = scalar(item, "\"ip:port\"");
      HostPort parsed;
      if (auto problem = parse_host_port(text, 53, true, parsed)) {
        fail(where, "invalid DNS server " + quoted(text) + ": " + *problem);
      }
      dns.servers.push_back((parsed.is_ipv6 ? "[" + parsed.host + "]" : parsed.host) + ":" +
                            std::to_string(parsed.port));
    }
  }

  std::string_view source_;
  std::map<std::tuple<std::string, std::string, std::string, std::string>,
           std::shared_ptr<asio::ssl::context>>
      tls_contexts_;
  Defaults defaults_;
};

// Records where each document starts and ignores the rest.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;

  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Where the first documents of `text` start; at most 3, which is enough to refuse a second one.
// yaml-cpp 0.7's LoadAll() loops forever (allocating) on a stray "," at the top level, and Load()
// returns an empty document for it, silently (jbeder/yaml-cpp#1040, fixed after 0.7). Walking
// the documents ourselves with a bound shows it: the same start twice means the parser is stuck.
std::vector<YAML::Mark> document_starts(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts handler;
  while (handler.starts.size() < 3 && parser.HandleNextDocument(handler)) {
  }
  return std::move(handler.starts);
}

}  // namespace

ProbeTarget TargetConfig::probe_target() const {
  ProbeTarget target;
  target.host = host;
  target.port = port;
  target.helo_name = helo_name;
  target.tls = tls;
  target.ip_protocol = ip_protocol;
  target.tls_context = tls_context;
  target.tls_server_name = tls_config.server_name;
  target.tls_insecure_skip_verify = tls_config.insecure_skip_verify;
  target.timeout = timeout;
  return target;
}

bool parse_address(std::string_view text, std::string& host, std::uint16_t& port,
                   std::string& error) {
  HostPort parsed;
  if (auto problem = parse_host_port(text, 25, false, parsed)) {
    error = *problem;
    return false;
  }
  host = parsed.host;
  port = parsed.port;
  return true;
}

bool parse_tls_mode(std::string_view text, TlsMode& mode) {
  std::optional<TlsMode> parsed = parse_tls_mode(text);
  if (parsed) mode = *parsed;
  return parsed.has_value();
}

Config parse_config(std::string_view yaml, std::string_view source,
                    const std::string& default_helo_name) {
  Parser parser(source);
  const std::string text(yaml);
  const auto line_of = [](const YAML::Mark& mark) { return mark.is_null() ? 0 : mark.line + 1; };
  YAML::Node root;
  try {
    const std::vector<YAML::Mark> starts = document_starts(text);
    if (starts.size() > 1) {
      if (starts[1].pos == starts[0].pos) {
        // The parser did not move: see document_starts().
        const std::size_t pos = static_cast<std::size_t>(starts[0].pos);
        parser.fail(line_of(starts[0]), "",
                    "unexpected " + quoted(pos < text.size() ? text.substr(pos, 1) : "") +
                        " at the start of a document");
      }
      parser.fail(line_of(starts[1]), "", "more than one YAML document; a config file holds one");
    }
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    parser.fail(line_of(e.mark), "", escape_controls(e.msg));
  }
  try {
    return parser.parse_document(root, default_helo_name);
  } catch (const YAML::Exception& e) {
    // Conversions are checked before they are made; this would be a bug, but still name the file.
    parser.fail(line_of(e.mark), "", escape_controls(e.msg));
  }
}

Config load_config_file(const std::string& path, const std::string& default_helo_name) {
  const auto cannot_read = [&path](int error) {
    return ConfigError(path + ": cannot read: " + std::strerror(error));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw cannot_read(errno);
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw cannot_read(error);
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > kMaxConfigBytes) {
      ::close(fd);
      throw ConfigError(path + ": cannot read: larger than " +
                        std::to_string(kMaxConfigBytes / (1024 * 1024)) + " MiB");
    }
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return parse_config(text, path, default_helo_name);
}

std::string_view embedded_default_config() {
  return R"(# Built in: used when no --config.file is given.
targets:
  - name: localhost
    address: localhost:25
    interval: 30s
    timeout: 10s
)";
}

std::string machine_hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  const std::string result(name);
  if (result.empty() || !is_valid_domain(result)) return "localhost";
  return result;
}

}  // namespace smtp
