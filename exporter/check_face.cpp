#include "exporter/check_face.h"

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <iostream>
#include <stdexcept>

#include "exporter/build_info.h"
#include "exporter/check_report.h"
#include "exporter/config.h"
#include "exporter/config_values.h"
#include "exporter/probe_face.h"
#include "exporter/wall_clock.h"
#include "probes/banner.h"
#include "probes/tls.h"

namespace smtp {
namespace {

/// -p's value when it is not given.
constexpr int kDefaultPort = -1;
/// A check that waits longer is no longer a check (Nagios gives up after 60 s by default), and
/// the bound keeps the conversion to nanoseconds defined.
constexpr double kMaxTimeoutSeconds = 3600;

/// A bad argument: what to print, and exit code 3.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::optional<NagiosRange> range_option(std::string_view flag, const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::string error;
  std::optional<NagiosRange> range = parse_nagios_range(text, error);
  if (!range) {
    throw UsageError(std::string(flag) + " " + text + ": not a Nagios range (" + error +
                     "); examples: 10, 10:, ~:10, @10:20");
  }
  return range;
}

/// One of -D's numbers, `text`, from the option's value `option`.
int parse_days(std::string_view text, std::string_view option) {
  int days = -1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, days);
  if (text.empty() || ec != std::errc() || ptr != end || days < 0) {
    throw UsageError("-D " + std::string(option) +
                     ": expected whole days, as warn or warn,crit (e.g. 30,14)");
  }
  return days;
}

CheckThresholds thresholds_from(const CheckFaceOptions& options) {
  CheckThresholds t;
  t.warning = range_option("-w", options.warning);
  t.critical = range_option("-c", options.critical);
  t.greeting_warning = range_option("-W", options.greeting_warning);
  t.greeting_critical = range_option("-C", options.greeting_critical);
  if (!options.certificate_days.empty()) {
    const std::string_view days = options.certificate_days;
    const std::size_t comma = days.find(',');
    t.cert_warning_days = parse_days(days.substr(0, comma), days);
    if (comma != std::string_view::npos) {
      t.cert_critical_days = parse_days(days.substr(comma + 1), days);
    }
  }
  t.expect = options.expect;
  t.ignore_quit = options.ignore_quit;
  t.verbose = options.verbose > 0;
  return t;
}

ProbeTarget target_from(const CheckFaceOptions& options) {
  ProbeTarget target;
  target.host = options.host;
  if (target.host.size() > 2 && target.host.front() == '[' && target.host.back() == ']') {
    target.host = target.host.substr(1, target.host.size() - 2);  // [IPv6], as in URLs
  }
  boost::system::error_code ec;
  asio::ip::make_address(target.host, ec);
  if (ec && !is_valid_domain(target.host)) {
    throw UsageError("-H " + options.host + ": not a host name or IP address");
  }
  if (options.ipv4 && options.ipv6) throw UsageError("-4 and -6 exclude each other");
  target.ip_protocol =
      options.ipv4 ? IpProtocol::kIp4 : (options.ipv6 ? IpProtocol::kIp6 : IpProtocol::kAny);
  if (options.starttls && options.implicit_tls) {
    throw UsageError("-S (STARTTLS) and -s (implicit TLS) exclude each other");
  }
  // -D alone means STARTTLS, as it does for check_smtp.
  const bool starttls = options.starttls || !options.certificate_days.empty();
  target.tls = options.implicit_tls ? TlsMode::kImplicit
               : starttls           ? TlsMode::kStartTls
                                    : TlsMode::kNone;
  if (options.port != kDefaultPort && (options.port < 1 || options.port > 65535)) {
    throw UsageError("-p " + std::to_string(options.port) + ": not a port (1-65535)");
  }
  target.port = static_cast<std::uint16_t>(options.port != kDefaultPort       ? options.port
                                           : target.tls == TlsMode::kImplicit ? 465
                                                                              : 25);
  if (!(options.timeout > 0 && options.timeout <= kMaxTimeoutSeconds)) {  // NaN fails too
    throw UsageError("-t: the timeout must be a number of seconds above 0, at most " +
                     std::to_string(static_cast<int>(kMaxTimeoutSeconds)));
  }
  target.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(options.timeout));
  target.helo_name = options.fqdn.empty() ? machine_hostname() : options.fqdn;
  if (!is_helo_name(target.helo_name)) {
    throw UsageError("-F " + options.fqdn + ": not a domain name or address literal");
  }
  if (target.tls != TlsMode::kNone) {
    TlsSettings settings;
    settings.ca_file = options.ca_file;
    try {
      target.tls_context = make_tls_context(settings);
    } catch (const std::runtime_error& e) {
      throw UsageError(e.what());
    }
    if (!options.server_name.empty() && !is_valid_domain(options.server_name)) {
      asio::ip::make_address(options.server_name, ec);
      if (ec)
        throw UsageError("--server-name " + options.server_name +
                         ": not a host name or IP address");
    }
    target.tls_server_name = options.server_name;
    target.tls_insecure_skip_verify = options.insecure_skip_verify;
  }
  return target;
}

int print(const CheckReport& report) {
  std::cout << report.output << std::flush;
  return static_cast<int>(report.state);
}

}  // namespace

void add_check_face_options(CLI::App& command, CheckFaceOptions& options) {
  // The plugin guidelines ask every plugin for --version; check_smtp spells it -V.
  command.set_version_flag("-V,--version", version_line("smtp_exporter check"));
  command.add_option("-H,--hostname", options.host, "Host name or IP address")->required();
  command.add_option("-p,--port", options.port, "Port (default: 25, or 465 with -s)");
  command.add_flag("-4,--use-ipv4", options.ipv4, "Use IPv4 only");
  command.add_flag("-6,--use-ipv6", options.ipv6, "Use IPv6 only");
  command.add_option("-e,--expect", options.expect,
                     "Text the greeting must contain (else WARNING)");
  command.add_option("-F,--fqdn", options.fqdn, "Name sent in EHLO (default: this host's name)");
  command.add_flag("-S,--starttls", options.starttls, "Use STARTTLS");
  command.add_flag("-s,--ssl,--tls", options.implicit_tls,
                   "Use implicit TLS (TLS from the first byte); the default port becomes 465");
  command.add_flag("--sni", options.sni, "Accepted for check_smtp: SNI is always sent for names");
  command.add_option(
      "-D,--certificate", options.certificate_days,
      "warn[,crit]: at most so many days left on the certificate is WARNING (CRITICAL)");
  command.add_option("-w,--warning", options.warning,
                     "Seconds of the whole session: WARNING range (Nagios range syntax)");
  command.add_option("-c,--critical", options.critical,
                     "Seconds of the whole session: CRITICAL range");
  command.add_option("-W,--greeting-warning", options.greeting_warning,
                     "Seconds from connect to the greeting: WARNING range");
  command.add_option("-C,--greeting-critical", options.greeting_critical,
                     "Seconds from connect to the greeting: CRITICAL range");
  command.add_option("-t,--timeout", options.timeout, "Seconds for the whole check (default: 10)");
  command.add_flag("-v,--verbose", options.verbose, "Add the dialogue and hints as long output");
  command.add_flag("-q,--ignore-quit-failure", options.ignore_quit,
                   "A QUIT not answered with 221 is OK (as check_smtp)");
  command.add_option("--ca-file", options.ca_file,
                     "CA certificates to verify with (default: the system's store)");
  command.add_option("--server-name", options.server_name,
                     "Name sent as SNI and verified (default: the host)");
  command.add_flag("--insecure-skip-verify", options.insecure_skip_verify,
                   "A certificate that does not verify is OK (its facts are still reported)");

  // check_smtp options this plugin does not have: refused by name, never silently ignored.
  const auto refuse = [&command, &options](const std::string& names, const std::string& why) {
    command
        .add_option_function<std::string>(
            names,
            [&options, names, why](const std::string&) {
              options.unsupported.push_back("check_smtp's " + names + " is not supported: " + why);
            },
            "Not supported (check_smtp's)")
        ->group("");  // hidden from --help
  };
  const std::string only_greets = "this plugin greets, says EHLO and QUIT, and sends no mail";
  refuse("--command", "-C is the greeting's CRITICAL range here; " + only_greets);
  refuse("-R,--response", only_greets);
  refuse("-f,--from", only_greets);
  refuse("-A,--authtype", "SMTP AUTH is not checked");
  refuse("-U,--authuser", "SMTP AUTH is not checked");
  refuse("-P,--authpass", "SMTP AUTH is not checked");
  command
      .add_flag_callback(
          "-L,--lmtp",
          [&options] { options.unsupported.push_back("check_smtp's -L (LMTP) is not supported"); },
          "Not supported (check_smtp's)")
      ->group("");
}

int run_check_face(const CheckFaceOptions& options) {
  try {
    if (!options.unsupported.empty()) throw UsageError(options.unsupported.front());
    const CheckThresholds thresholds = thresholds_from(options);
    const ProbeTarget target = target_from(options);
    const ProbeResult result = probe_once(target);
    return print(evaluate_check(target, result, thresholds, unix_now()));
  } catch (const UsageError& e) {
    return print(usage_error_report(e.what()));
  } catch (const std::exception& e) {
    return print(usage_error_report(std::string("internal error: ") + e.what()));
  }
}

int check_face_parse_error(const CLI::App& command, const CLI::ParseError& error) {
  if (dynamic_cast<const CLI::CallForVersion*>(&error) != nullptr) {
    std::cout << error.what() << "\n";
    return 0;
  }
  if (error.get_exit_code() == 0) {  // --help
    std::cout << command.help();
    return 0;
  }
  return print(usage_error_report(error.what()));
}

}  // namespace smtp
