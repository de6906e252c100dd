#include "exporter/config_parser.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <tuple>
#include <vector>

#include "exporter/config_values.h"
#include "exporter/config_yaml.h"
#include "exporter/duration.h"
#include "probes/address.h"
#include "probes/banner.h"
#include "probes/text.h"

namespace smtp {
namespace {

using config_yaml::Entries;
using config_yaml::Entry;
using config_yaml::find;
using config_yaml::join_path;
using config_yaml::line_of;
using config_yaml::node_kind;
using config_yaml::Where;
using std::chrono::milliseconds;

constexpr std::size_t kMaxTargetNameBytes = 128;
constexpr milliseconds kMinInterval{1000};
constexpr std::size_t kMaxEndpointsLimit = 1024;

// Labels the exporter sets itself; a static label of the same name would collide with them.
constexpr std::array<std::string_view, 15> kReservedLabels{
    "target", "mx",        "address",  "phase", "result",   "hostname", "software", "version",
    "cipher", "extension", "revision", "le",    "quantile", "instance", "job"};

// Where a setting's value came from, for messages about values the user did not write where
// the problem shows.
enum class Origin { kBuiltIn, kDefaults, kHere };

template <typename T>
struct Sourced {
  T value{};
  Origin origin = Origin::kBuiltIn;
  Where where;  // when written (kDefaults or kHere)
};

// The settings `defaults` and a target share: a target starts as a copy of the defaults, and the
// same field table applies its own keys on top.
struct Settings {
  Sourced<milliseconds> interval{milliseconds(std::chrono::seconds(30)), Origin::kBuiltIn, {}};
  Sourced<milliseconds> timeout{milliseconds(std::chrono::seconds(10)), Origin::kBuiltIn, {}};
  std::string helo_name;
  TlsMode tls = TlsMode::kNone;
  IpProtocol ip_protocol = IpProtocol::kAny;
  bool all_addresses = false;
  TlsConfig tls_config;
  std::optional<Where> tls_config_where;
  milliseconds mx_refresh{std::chrono::minutes(5)};
  std::size_t max_endpoints = 32;
  MetricsSelection metrics;
};

std::string origin_text(Origin origin) {
  return origin == Origin::kDefaults ? "set in defaults" : "the built-in default";
}

class Parser;

// A key of the shared settings and how it is read.
struct SettingField {
  std::string_view key;
  void (*read)(const Parser& parser, const Entry& entry, Settings& settings);
};

// The settings a /probe module takes: the probe's, not the schedule's or the lookups'.
constexpr std::array<std::string_view, 6> kModuleKeys = {"timeout",    "helo_name",   "tls",
                                                         "tls_config", "ip_protocol", "metrics"};

// The keys of a `metrics` block and the family switch each sets.
struct MetricsField {
  std::string_view key;
  bool MetricsSelection::*shown;
};
constexpr std::array<MetricsField, 3> kMetricsFields = {{
    {"greeting_histogram", &MetricsSelection::greeting_histogram},
    {"phases", &MetricsSelection::phases},
    {"ehlo_extensions", &MetricsSelection::ehlo_extensions},
}};
constexpr std::size_t kMaxProbeConcurrency = 4096;

// Keys only a target has.
constexpr std::array<std::string_view, 6> kTargetOnlyKeys = {"name", "address",         "mx",
                                                             "port", "expect_hostname", "labels"};

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(const Where& where, const std::string& problem) const {
    fail_config(source_, where.line, where.path, problem);
  }

  Config parse_document(const YAML::Node& root, const std::string& default_helo_name) {
    Config config;
    defaults_.helo_name = default_helo_name;
    // An empty file: an exporter with nothing to probe, like an empty `targets` list.
    if (root && !root.IsNull()) {
      const Where top{line_of(root), ""};
      if (!root.IsMap()) fail(top, "expected a map at the top level, got " + node_kind(root));
      const Entries entries =
          entries_of(root, top, {"defaults", "targets", "dns", "modules", "probe"});
      if (const Entry* e = find(entries, "defaults")) parse_defaults(*e);
      if (const Entry* e = find(entries, "targets")) parse_targets(*e, config.targets);
      if (const Entry* e = find(entries, "dns")) parse_dns(*e, config.dns);
      if (const Entry* e = find(entries, "modules")) parse_modules(*e, config.probe.modules);
      if (const Entry* e = find(entries, "probe")) parse_probe(*e, config.probe);
    }
    if (!config.probe.modules.contains(kDefaultModule)) {
      config.probe.modules.emplace(kDefaultModule,
                                   module_config(std::string(kDefaultModule), defaults_, {}));
    }
    return config;
  }

  // --- values (used by the field table) ---------------------------------------------------

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
      fail(entry.where, "invalid duration " + quote(text) +
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

  std::string host_name(const Entry& entry, std::string_view what) const {
    std::string text = scalar(entry, "a host name");
    if (!is_helo_name(text)) {
      fail(entry.where, "invalid " + std::string(what) + " " + quote(text) +
                            " (expected a domain name or an address literal such as "
                            "[192.0.2.1])");
    }
    return text;
  }

  TlsMode tls_mode(const Entry& entry) const {
    const std::string text = scalar(entry, "one of none, starttls, implicit");
    const auto mode = parse_tls_mode(text);
    if (!mode) fail(entry.where, "must be one of none, starttls, implicit, not " + quote(text));
    return *mode;
  }

  IpProtocol ip_protocol(const Entry& entry) const {
    const std::string text = scalar(entry, "one of ip4, ip6, any");
    const auto protocol = parse_ip_protocol(text);
    if (!protocol) fail(entry.where, "must be one of ip4, ip6, any, not " + quote(text));
    return *protocol;
  }

  bool boolean(const Entry& entry) const {
    const std::string text = scalar(entry, "true or false");
    bool value = false;
    if (!YAML::convert<bool>::decode(entry.value, value)) {
      fail(entry.where, "expected true or false, not " + quote(text));
    }
    return value;
  }

  std::size_t count(const Entry& entry, std::size_t highest) const {
    const std::string text = scalar(entry, "a number");
    const bool digits =
        !text.empty() && text.size() <= 9 &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    const std::size_t value = digits ? std::stoul(text) : 0;
    if (value < 1 || value > highest) {
      fail(entry.where,
           "must be a number from 1 to " + std::to_string(highest) + ", not " + quote(text));
    }
    return value;
  }

  std::string non_empty(const Entry& entry, std::string_view what) const {
    std::string text = scalar(entry, what);
    if (text.empty()) fail(entry.where, "must not be empty");
    return text;
  }

  /// A file named in the config: relative paths are relative to the config file's directory,
  /// as in Prometheus, so a config and its certificates can move together. The file must be a
  /// readable regular file now: the message names the path as resolved and the OS's reason.
  std::string file_path(const Entry& entry) const {
    const std::string name = non_empty(entry, "a file name");
    std::filesystem::path path(name);
    if (path.is_relative()) {
      const std::size_t slash = source_.rfind('/');
      if (slash != std::string_view::npos) path = std::string(source_.substr(0, slash + 1)) + name;
    }
    std::error_code ec;
    const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
    const std::string shown = ec ? path.string() : absolute.lexically_normal().string();
    const auto cannot_read = [&](const std::string& why) {
      fail(entry.where, "cannot read " + quote(shown) + ": " + why);
    };
    // Looked at before it is opened: opening a FIFO blocks, and opening some devices acts.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) cannot_read(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) cannot_read("not a regular file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) cannot_read(std::strerror(errno));
    ::close(fd);
    return path.string();
  }

  // A block replaces the defaults' as a whole (like tls_config): what it does not name is shown.
  MetricsSelection metrics_selection(const Entry& entry) const {
    MetricsSelection selection;
    const YAML::Node& map = map_or_null(entry);
    if (map.IsNull()) return selection;
    std::array<std::string_view, kMetricsFields.size()> keys;
    for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = kMetricsFields[i].key;
    for (const Entry& e : entries_of(map, entry.where, keys)) {
      for (const MetricsField& field : kMetricsFields) {
        if (field.key == e.key) selection.*field.shown = boolean(e);
      }
    }
    return selection;
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
          fail(e.where, "invalid server name " + quote(config.server_name));
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
          fail(e.where, "must be one of TLS10, TLS11, TLS12, TLS13, not " + quote(text));
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

 private:
  // --- structure ---------------------------------------------------------------------------

  Entries entries_of(const YAML::Node& map, const Where& where,
                     std::span<const std::string_view> allowed) const {
    return config_yaml::entries_of(source_, map, where, allowed);
  }
  Entries entries_of(const YAML::Node& map, const Where& where,
                     std::initializer_list<std::string_view> allowed) const {
    return entries_of(map, where,
                      std::span<const std::string_view>(allowed.begin(), allowed.size()));
  }

  const YAML::Node& map_or_null(const Entry& entry) const {
    if (!entry.value.IsMap() && !entry.value.IsNull()) {
      fail(entry.where, "expected a map, got " + node_kind(entry.value));
    }
    return entry.value;
  }

  static std::span<const SettingField> setting_fields();
  static const std::vector<std::string_view>& setting_keys();
  static const std::vector<std::string_view>& target_keys();

  void read_settings(const Entries& entries, Settings& settings) const {
    for (const Entry& e : entries) {
      for (const SettingField& field : setting_fields()) {
        if (field.key == e.key) field.read(*this, e, settings);
      }
    }
  }

  // The message points at a value written at this level: the timeout if it was, else the
  // interval; and says where the other value came from when it was not written here.
  void check_timeout_below_interval(const Settings& settings) const {
    const auto& interval = settings.interval;
    const auto& timeout = settings.timeout;
    if (timeout.value < interval.value) return;
    if (timeout.origin == Origin::kHere) {
      std::string problem = "must be shorter than interval (" + format_duration(interval.value);
      if (interval.origin != Origin::kHere) problem += ", " + origin_text(interval.origin);
      fail(timeout.where, problem + ")");
    }
    if (interval.origin == Origin::kHere) {
      std::string problem = "must be longer than timeout (" + format_duration(timeout.value);
      if (timeout.origin != Origin::kHere) {
        problem += ", " + origin_text(timeout.origin) + ": set a shorter timeout";
      }
      fail(interval.where, problem + ")");
    }
    // Neither written at this level: checked where they were.
  }

  void parse_defaults(const Entry& entry) {
    const YAML::Node& map = map_or_null(entry);
    if (map.IsNull()) return;
    const Entries entries = entries_of(map, entry.where, setting_keys());
    read_settings(entries, defaults_);
    check_timeout_below_interval(defaults_);
    // Targets inherit these: to them, they come from `defaults`.
    if (defaults_.interval.origin == Origin::kHere) defaults_.interval.origin = Origin::kDefaults;
    if (defaults_.timeout.origin == Origin::kHere) defaults_.timeout.origin = Origin::kDefaults;
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
        fail(name_where, "duplicate target name " + quote(targets.back().name) +
                             ", first defined at line " + std::to_string(first->second));
      }
    }
  }

  TargetConfig parse_target(const YAML::Node& node, const Where& where, Where& name_where) {
    if (!node.IsMap()) fail(where, "expected a map describing a target, got " + node_kind(node));
    const Entries entries = entries_of(node, where, target_keys());
    Settings settings = defaults_;
    read_settings(entries, settings);

    TargetConfig target;
    std::optional<IpProtocol> literal_family;  // the family of an IP literal `address`
    for (const Entry& e : entries) {
      if (e.key == "name") {
        target.name = target_name(e);
        name_where = e.where;
      } else if (e.key == "address") {
        const std::string text = scalar(e, "host:port");
        HostPort parsed;
        if (auto problem = parse_host_port(text, {}, parsed)) {
          fail(e.where, "invalid address " + quote(text) + ": " + *problem);
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
          fail(e.where, "invalid domain name " + quote(target.mx_domain));
        }
      } else if (e.key == "port") {
        const std::string text = scalar(e, "a port number");
        if (auto problem = parse_port(text, target.port)) fail(e.where, *problem);
      } else if (e.key == "expect_hostname") {
        // Compared with the greeting's hostname, which the banner parser normalises this way.
        std::string text = host_name(e, "host name");
        if (text.back() == '.') text.pop_back();
        target.expect_hostname = ascii_lowered(text);
      } else if (e.key == "labels") {
        target.labels = labels(e);
      }
    }
    check_target_keys(entries, where, settings);
    check_timeout_below_interval(settings);
    check_literal_family(entries, settings.ip_protocol, literal_family);

    target.interval = settings.interval.value;
    target.timeout = settings.timeout.value;
    target.helo_name = settings.helo_name;
    target.tls = settings.tls;
    target.ip_protocol = settings.ip_protocol;
    target.all_addresses = settings.all_addresses;
    target.tls_config = settings.tls_config;
    target.mx_refresh = settings.mx_refresh;
    target.max_endpoints = settings.max_endpoints;
    target.metrics = settings.metrics;
    if (target.tls != TlsMode::kNone) {
      target.tls_context =
          tls_context(settings.tls_config, settings.tls_config_where.value_or(where));
    }
    return target;
  }

  std::string target_name(const Entry& e) const {
    std::string name = scalar(e, "a name");
    if (name.empty()) fail(e.where, "must not be empty");
    if (name.size() > kMaxTargetNameBytes) {
      fail(e.where, "longer than " + std::to_string(kMaxTargetNameBytes) + " bytes");
    }
    if (!is_utf8(name, false)) fail(e.where, "must be printable UTF-8 without control characters");
    return name;
  }

  // The rules that tie a target's keys to each other.
  void check_target_keys(const Entries& entries, const Where& where,
                         const Settings& settings) const {
    if (!find(entries, "name")) fail(where, "missing required key \"name\"");
    const Entry* address = find(entries, "address");
    const Entry* mx = find(entries, "mx");
    if (address && mx) {
      const Entry* later = address->where.line > mx->where.line ? address : mx;
      fail(later->where, "only one of \"address\" and \"mx\" may be set");
    }
    if (!address && !mx) fail(where, "one of \"address\" or \"mx\" is required");
    if (!address) return;
    if (const Entry* port = find(entries, "port")) {
      fail(port->where, "only allowed with \"mx\" (with \"address\", write host:port)");
    }
    if (settings.all_addresses) return;
    // Without lookups, these would silently do nothing.
    for (std::string_view key : {"mx_refresh", "max_endpoints"}) {
      if (const Entry* e = find(entries, key)) {
        fail(e->where, "only allowed with \"mx\" or \"all_addresses: true\"");
      }
    }
  }

  // A target whose IP literal is of a family ip_protocol excludes could never be probed. The
  // message points at ip_protocol if this target sets it, else at the address.
  void check_literal_family(const Entries& entries, IpProtocol protocol,
                            std::optional<IpProtocol> literal_family) const {
    if (!literal_family || protocol == IpProtocol::kAny || protocol == *literal_family) return;
    const Entry* address = find(entries, "address");
    const std::string family = *literal_family == IpProtocol::kIp6 ? "an IPv6" : "an IPv4";
    const std::string text = address->value.Scalar();
    const std::string name(ip_protocol_name(protocol));
    if (const Entry* protocol_entry = find(entries, "ip_protocol")) {
      fail(protocol_entry->where,
           "is " + name + ", but address " + quote(text) + " is " + family + " address");
    }
    fail(address->where, quote(text) + " is " + family + " address, but ip_protocol is " + name +
                             " (from defaults)");
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
        fail(where, escape_controls(e.what()));
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
      if (auto problem = parse_host_port(text, {.default_port = 53, .ip_only = true}, parsed)) {
        fail(where, "invalid DNS server " + quote(text) + ": " + *problem);
      }
      dns.servers.push_back(format_host_port(parsed.host, parsed.port));
    }
  }

  // --- /probe: `modules` and `probe` ---------------------------------------------------

  // Each module starts as a copy of the defaults, as a target does, and takes the probe
  // settings (not the schedule's) from the same field table.
  void parse_modules(const Entry& entry, std::map<std::string, TargetConfig, std::less<>>& out) {
    const YAML::Node& map = map_or_null(entry);
    if (map.IsNull()) return;
    for (const Entry& e : entries_of(map, entry.where, {})) {
      if (e.key.empty() || e.key.size() > kMaxTargetNameBytes || !is_utf8(e.key, false)) {
        fail(e.where, "a module name must be 1 to " + std::to_string(kMaxTargetNameBytes) +
                          " bytes of printable UTF-8");
      }
      Settings settings = defaults_;
      const YAML::Node& module = map_or_null(e);
      if (!module.IsNull()) read_settings(entries_of(module, e.where, kModuleKeys), settings);
      out.emplace(e.key, module_config(e.key, settings, e.where));
    }
  }

  TargetConfig module_config(std::string name, const Settings& settings, const Where& where) {
    TargetConfig module;
    module.name = std::move(name);
    module.timeout = settings.timeout.value;
    module.helo_name = settings.helo_name;
    module.tls = settings.tls;
    module.ip_protocol = settings.ip_protocol;
    module.tls_config = settings.tls_config;
    module.metrics = settings.metrics;
    if (module.tls != TlsMode::kNone) {
      module.tls_context =
          tls_context(settings.tls_config, settings.tls_config_where.value_or(where));
    }
    return module;
  }

  void parse_probe(const Entry& entry, ProbeEndpointConfig& probe) const {
    const YAML::Node& map = map_or_null(entry);
    if (map.IsNull()) return;
    const Entries entries = entries_of(map, entry.where, {"allowed_targets", "max_concurrent"});
    if (const Entry* e = find(entries, "max_concurrent")) {
      probe.max_concurrent = count(*e, kMaxProbeConcurrency);
    }
    if (const Entry* e = find(entries, "allowed_targets")) {
      probe.allowed_targets = AllowList(allow_rules(*e));
    }
  }

  // The items of a list, each with its own place (`path[i]`) for messages.
  std::vector<Entry> items(const Entry& entry, std::string_view what) const {
    std::vector<Entry> out;
    if (entry.value.IsNull()) return out;
    if (!entry.value.IsSequence()) {
      fail(entry.where,
           "expected a list of " + std::string(what) + ", got " + node_kind(entry.value));
    }
    for (auto it = entry.value.begin(); it != entry.value.end(); ++it) {
      const int line = line_of(*it) ? line_of(*it) : entry.where.line;
      out.push_back(
          Entry{"", *it, Where{line, entry.where.path + "[" + std::to_string(out.size()) + "]"}});
    }
    return out;
  }

  std::vector<AllowRule> allow_rules(const Entry& entry) const {
    std::vector<AllowRule> rules;
    std::map<std::string, int> name_lines;
    for (const Entry& item : items(entry, "rules")) {
      if (!item.value.IsMap()) {
        fail(item.where, "expected a map describing a rule, got " + node_kind(item.value));
      }
      const Entries entries =
          entries_of(item.value, item.where, {"name", "hosts", "networks", "ports"});
      AllowRule rule;
      rule.name = "allowed_targets[" + std::to_string(rules.size()) + "]";
      for (const Entry& e : entries) {
        if (e.key == "name") {
          rule.name = target_name(e);
          const auto [first, inserted] = name_lines.emplace(rule.name, e.where.line);
          if (!inserted) {
            fail(e.where, "duplicate rule name " + quote(rule.name) + ", first defined at line " +
                              std::to_string(first->second));
          }
        } else if (e.key == "hosts") {
          for (const Entry& host : items(e, "host patterns")) {
            std::string& pattern = rule.hosts.emplace_back();
            if (auto problem = parse_host_pattern(scalar(host, "a host pattern"), pattern)) {
              fail(host.where, *problem);
            }
          }
        } else if (e.key == "networks") {
          for (const Entry& network : items(e, "networks")) {
            if (auto problem = parse_network(scalar(network, "a network such as 192.0.2.0/24"),
                                             rule.networks.emplace_back())) {
              fail(network.where, *problem);
            }
          }
        } else if (e.key == "ports") {
          for (const Entry& port : items(e, "ports")) {
            if (auto problem = parse_port_range(scalar(port, "a port or a range"),
                                                rule.ports.emplace_back())) {
              fail(port.where, *problem);
            }
          }
          if (rule.ports.empty()) {
            fail(e.where, "must list at least one port (leave it out for 25, 465 and 587)");
          }
        }
      }
      if (rule.hosts.empty() && rule.networks.empty()) {
        fail(item.where, "a rule needs \"hosts\", \"networks\" or both");
      }
      if (!find(entries, "ports")) {
        for (const std::uint16_t port : kDefaultAllowedPorts) rule.ports.push_back({port, port});
      }
      rules.push_back(std::move(rule));
    }
    return rules;
  }

  std::string_view source_;
  std::map<std::tuple<std::string, std::string, std::string, std::string>,
           std::shared_ptr<asio::ssl::context>>
      tls_contexts_;
  Settings defaults_;
};

// The one table of the settings `defaults` and targets share.
std::span<const SettingField> Parser::setting_fields() {
  static constexpr SettingField kFields[] = {
      {"interval",
       [](const Parser& p, const Entry& e, Settings& s) {
         s.interval = {p.interval(e), Origin::kHere, e.where};
       }},
      {"timeout",
       [](const Parser& p, const Entry& e, Settings& s) {
         s.timeout = {p.timeout(e), Origin::kHere, e.where};
       }},
      {"helo_name", [](const Parser& p, const Entry& e,
                       Settings& s) { s.helo_name = p.host_name(e, "HELO name"); }},
      {"tls", [](const Parser& p, const Entry& e, Settings& s) { s.tls = p.tls_mode(e); }},
      {"ip_protocol",
       [](const Parser& p, const Entry& e, Settings& s) { s.ip_protocol = p.ip_protocol(e); }},
      {"all_addresses",
       [](const Parser& p, const Entry& e, Settings& s) { s.all_addresses = p.boolean(e); }},
      {"mx_refresh",
       [](const Parser& p, const Entry& e, Settings& s) { s.mx_refresh = p.interval(e); }},
      {"max_endpoints", [](const Parser& p, const Entry& e,
                           Settings& s) { s.max_endpoints = p.count(e, kMaxEndpointsLimit); }},
      {"metrics",
       [](const Parser& p, const Entry& e, Settings& s) { s.metrics = p.metrics_selection(e); }},
      // Replaces the defaults' tls_config as a whole, like every other key.
      {"tls_config",
       [](const Parser& p, const Entry& e, Settings& s) {
         s.tls_config = p.tls_config(e);
         s.tls_config_where = e.where;
       }},
  };
  return kFields;
}

const std::vector<std::string_view>& Parser::setting_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> out;
    for (const SettingField& field : setting_fields()) out.push_back(field.key);
    return out;
  }();
  return keys;
}

const std::vector<std::string_view>& Parser::target_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> out(kTargetOnlyKeys.begin(), kTargetOnlyKeys.end());
    for (const SettingField& field : setting_fields()) out.push_back(field.key);
    return out;
  }();
  return keys;
}

}  // namespace

void fail_config(std::string_view source, int line, const std::string& path,
                 const std::string& problem) {
  std::string message(source);
  if (line > 0) message += ":" + std::to_string(line);
  message += ": ";
  if (!path.empty()) message += path + ": ";
  message += problem;
  throw ConfigError(message);
}

Config parse_config_document(const YAML::Node& root, std::string_view source,
                             const std::string& default_helo_name) {
  Parser parser(source);
  return parser.parse_document(root, default_helo_name);
}

}  // namespace smtp
