#pragma once
/// The YAML config (README.md, Configuration) parsed once into plain structs, with defaults
/// applied.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/allow_list.h"
#include "probes/smtp_probe.h"
#include "probes/tls.h"

namespace smtp {

/// A config that cannot be used. what() names the file, the line and the key, e.g.
/// `smtp.yml:7: targets[1].timeout: must be shorter than interval (30s)`.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The `tls_config` block: the probe's TLS settings.
using TlsConfig = TlsSettings;

/// The `metrics` block: the optional series families a target leaves out of /metrics (each
/// costs lines per target in every scrape). Everything is shown unless switched off.
struct MetricsSelection {
  bool greeting_histogram = true;  // smtp_greeting_duration_seconds (14 lines)
  bool phases = true;              // smtp_phase_seconds{phase} (one line per phase that ran)
  bool ehlo_extensions = true;     // smtp_ehlo_extension_info{extension} (up to 16 lines)
  bool operator==(const MetricsSelection&) const = default;
};

/// One configured target with every default applied.
struct TargetConfig {
  std::string name;
  std::string host;  // from `address` (IPv6 without brackets); empty for MX targets
  std::uint16_t port = 25;
  std::string mx_domain;  // from `mx`; empty for address targets
  std::chrono::milliseconds mx_refresh{std::chrono::minutes(5)};
  std::chrono::milliseconds interval{std::chrono::seconds(30)};
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  std::string helo_name;
  TlsMode tls = TlsMode::kNone;
  /// `ip_protocol`: ip4 | ip6 | any (any: both families, raced; see ProbeTarget::ip_protocol).
  IpProtocol ip_protocol = IpProtocol::kAny;
  /// `all_addresses`: probe every address of the host as an endpoint of its own, instead of
  /// one probe that connects to whichever address answers first.
  bool all_addresses = false;
  /// The most endpoints an MX or all_addresses target expands to; the most preferred are kept.
  std::size_t max_endpoints = 32;
  TlsConfig tls_config;
  /// Built from tls_config at load time for TLS targets (so an unreadable file is a config
  /// error); shared by every target with the same settings.
  std::shared_ptr<asio::ssl::context> tls_context;
  std::optional<std::string> expect_hostname;
  std::map<std::string, std::string> labels;  // static labels, validated names
  MetricsSelection metrics;

  /// The probe's view of this target.
  ProbeTarget probe_target() const;
  /// Its endpoints come from DNS lookups (MX, or every address), not from the config alone.
  bool looked_up() const { return !mx_domain.empty() || all_addresses; }
};

struct DnsConfig {
  std::vector<std::string> servers;  // "ip:port"; empty: the system's resolver
};

/// The module a /probe request without `module=` uses; a config that defines no module of this
/// name gets one made of `defaults`.
inline constexpr std::string_view kDefaultModule = "smtp";

/// What /probe needs: the `modules` and the `probe` section.
struct ProbeEndpointConfig {
  /// A module is a target without an address: its probe settings (timeout, helo_name, tls,
  /// tls_config and its context, ip_protocol) are set, and `name` is the module's name.
  std::map<std::string, TargetConfig, std::less<>> modules;
  /// `probe.allowed_targets`: empty admits nothing.
  AllowList allowed_targets;
  /// `probe.max_concurrent`: /probe requests probing at once; more are answered 503.
  std::size_t max_concurrent = 32;
};

struct Config {
  std::vector<TargetConfig> targets;
  DnsConfig dns;
  ProbeEndpointConfig probe;
};

/// Parses YAML text; `source` is the file name used in error messages.
/// `default_helo_name` is used where neither the target nor `defaults` set `helo_name`.
/// Throws ConfigError.
Config parse_config(std::string_view yaml, std::string_view source,
                    const std::string& default_helo_name);

/// Reads and parses a file. Throws ConfigError (also for a file that cannot be read).
Config load_config_file(const std::string& path, const std::string& default_helo_name);

/// The text of a config file, read without blocking (a FIFO is refused, not waited on). Throws
/// ConfigError for anything but a readable regular file of at most 64 MiB.
std::string read_config_text(const std::string& path);

/// The config used when no --config.file is given: probes localhost:25 every 30s.
std::string_view embedded_default_config();

/// Splits "host:port", "[v6]:port", "IP:port" or a bare host (port 25) into `host` (IPv6
/// without brackets) and `port`, checking that the host is an IP literal or a valid domain.
/// On failure returns false and says why in `error`.
bool parse_address(std::string_view text, std::string& host, std::uint16_t& port,
                   std::string& error);

/// "none", "starttls", "implicit" -> TlsMode; false for anything else.
bool parse_tls_mode(std::string_view text, TlsMode& mode);

/// The machine's host name, the default HELO name.
std::string machine_hostname();

}  // namespace smtp
