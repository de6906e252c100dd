#include "exporter/probe_face.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <optional>

#include "exporter/config.h"
#include "exporter/config_values.h"
#include "exporter/duration.h"
#include "exporter/probe_report.h"
#include "exporter/wall_clock.h"
#include "probes/banner.h"
#include "probes/smtp_probe.h"
#include "probes/tls.h"

namespace smtp {

ProbeResult probe_once(const ProbeTarget& target) {
  asio::io_context io(1);
  ProbeResult result;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { result = co_await run_probe(target); }, asio::detached);
  io.run();
  return result;
}

void add_probe_face_options(CLI::App& command, ProbeFaceOptions& options) {
  command.add_option("address", options.address, "HOST[:PORT] or [IPv6]:PORT (port 25 if none)")
      ->required();
  command.add_option("--tls", options.tls, "none, starttls or implicit")->capture_default_str();
  command.add_option("--helo", options.helo_name, "Name sent in EHLO (default: this host's name)");
  command.add_option("--timeout", options.timeout, "The whole probe's deadline")
      ->capture_default_str();
  command.add_option("--ca-file", options.ca_file,
                     "CA certificates to verify with (default: the "
                     "system's store)");
  command.add_option("--server-name", options.server_name,
                     "Name sent as SNI and verified (default: the host)");
  command.add_flag("--insecure-skip-verify", options.insecure_skip_verify,
                   "Succeed even if the certificate does not verify (its facts are still shown)");
  command.add_flag("--json", options.json, "Print the result as JSON");
}

int run_probe_face(const ProbeFaceOptions& options) {
  ProbeTarget target;
  std::string error;
  if (!parse_address(options.address, target.host, target.port, error)) {
    std::cerr << "smtp_exporter probe: " << options.address << ": " << error << "\n";
    return 2;
  }
  if (!parse_tls_mode(options.tls, target.tls)) {
    std::cerr << "smtp_exporter probe: --tls must be none, starttls or implicit\n";
    return 2;
  }
  std::optional<std::chrono::milliseconds> timeout = parse_duration(options.timeout);
  if (!timeout || timeout->count() <= 0) {
    std::cerr << "smtp_exporter probe: --timeout: not a duration: " << options.timeout << "\n";
    return 2;
  }
  target.timeout = *timeout;
  if (target.tls != TlsMode::kNone) {
    TlsSettings settings;
    settings.ca_file = options.ca_file;
    try {
      target.tls_context = make_tls_context(settings);
    } catch (const std::runtime_error& e) {
      std::cerr << "smtp_exporter probe: " << e.what() << "\n";
      return 2;
    }
    target.tls_server_name = options.server_name;
    target.tls_insecure_skip_verify = options.insecure_skip_verify;
  }
  target.helo_name = options.helo_name.empty() ? machine_hostname() : options.helo_name;
  if (!is_helo_name(target.helo_name)) {
    std::cerr << "smtp_exporter probe: --helo " << options.helo_name
              << ": not a domain name or address literal\n";
    return 2;
  }

  const ProbeResult result = probe_once(target);
  const double now = unix_now();
  std::cout << (options.json ? render_probe_json(target, result, now)
                             : render_probe_text(target, result, now));
  return result.success() ? 0 : 1;
}

}  // namespace smtp
