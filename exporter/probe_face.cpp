#include "exporter/probe_face.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdarg>
#include <cstdio>
#include <iostream>
#include <optional>

#include "exporter/config.h"
#include "exporter/duration.h"
#include "probes/smtp_probe.h"
#include "probes/tls.h"

namespace smtp {
namespace {

double milliseconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

/// printf into `out`: the report's columns are printf's.
[[gnu::format(printf, 2, 3)]] void appendf(std::string& out, const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  const int needed = std::vsnprintf(nullptr, 0, format, args);
  va_end(args);
  if (needed > 0) {
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(needed) + 1);
    std::vsnprintf(out.data() + at, static_cast<std::size_t>(needed) + 1, format, again);
    out.resize(at + static_cast<std::size_t>(needed));
  }
  va_end(again);
}

std::string_view direction_marker(TranscriptLine::Direction direction) {
  switch (direction) {
    case TranscriptLine::Direction::kSent:
      return "C:";
    case TranscriptLine::Direction::kReceived:
      return "S:";
    case TranscriptLine::Direction::kNote:
      return "--";
  }
  return "??";
}

}  // namespace

std::string format_probe_report(const ProbeTarget& target, const ProbeResult& result) {
  std::string out;
  appendf(out, "probe %s port %u\n", target.host.c_str(), static_cast<unsigned>(target.port));
  if (!result.peer.empty()) appendf(out, "peer  %s\n", result.peer.c_str());
  appendf(out, "\ndialogue:\n");
  for (const TranscriptLine& line : result.transcript) {
    appendf(out, "  %9.3f ms  %s %s\n", milliseconds(line.at),
            direction_marker(line.direction).data(), line.text.c_str());
  }
  if (result.transcript_truncated) appendf(out, "  ... (transcript truncated)\n");
  appendf(out, "\nphases:\n");
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    if (result.phase_durations[i]) {
      appendf(out, "  %-14s %9.3f ms\n", phase_name(static_cast<Phase>(i)).data(),
              milliseconds(*result.phase_durations[i]));
    }
  }
  appendf(out, "  %-14s %9.3f ms\n", "total", milliseconds(result.total));
  if (result.greeting_latency) {
    appendf(out, "\ngreeting latency %.3f ms\n", milliseconds(*result.greeting_latency));
  }
  if (result.banner) {
    appendf(out, "banner hostname  %s\nsoftware         %s\n", result.banner->hostname.c_str(),
            result.banner->software.c_str());
  }
  appendf(out, "greeting code    %d\nquit code        %d\n", result.greeting_code,
          result.quit_code);
  if (result.starttls_advertised) {
    appendf(out, "STARTTLS offered %s\n", *result.starttls_advertised ? "yes" : "no");
  }
  if (result.tls) {
    appendf(
        out, "TLS              %s %s\ncertificate      %s, expires %.0f (Unix time)\n",
        result.tls->version.c_str(), result.tls->cipher.c_str(),
        result.tls->verified ? "verified" : ("not verified: " + result.tls->verify_error).c_str(),
        result.tls->earliest_not_after);
  }
  if (result.success()) {
    appendf(out, "\nverdict: success\n");
  } else {
    appendf(out, "\nverdict: %s%s%s\n", reason_name(result.failure).data(),
            result.error_detail.empty() ? "" : " - ", result.error_detail.c_str());
  }
  return out;
}

namespace {

void print_json(const ProbeTarget& target, const ProbeResult& result) {
  nlohmann::json out;
  out["target"] = {{"host", target.host}, {"port", target.port}};
  out["peer"] = result.peer;
  out["success"] = result.success();
  out["result"] = reason_name(result.failure);
  if (result.failed_phase) out["failed_phase"] = phase_name(*result.failed_phase);
  if (!result.error_detail.empty()) out["error"] = result.error_detail;
  nlohmann::json phases = nlohmann::json::object();
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    if (result.phase_durations[i]) {
      phases[std::string(phase_name(static_cast<Phase>(i)))] =
          milliseconds(*result.phase_durations[i]) / 1000.0;
    }
  }
  out["phase_seconds"] = phases;
  out["duration_seconds"] = milliseconds(result.total) / 1000.0;
  if (result.greeting_latency) {
    out["greeting_seconds"] = milliseconds(*result.greeting_latency) / 1000.0;
  }
  out["greeting_code"] = result.greeting_code;
  out["quit_code"] = result.quit_code;
  if (result.starttls_advertised) out["starttls_advertised"] = *result.starttls_advertised;
  if (result.banner) {
    out["banner"] = {{"hostname", result.banner->hostname}, {"software", result.banner->software}};
  }
  if (result.tls) {
    out["tls"] = {{"version", result.tls->version},
                  {"cipher", result.tls->cipher},
                  {"verified", result.tls->verified},
                  {"verify_error", result.tls->verify_error},
                  {"cert_expiry_timestamp_seconds", result.tls->earliest_not_after}};
  }
  nlohmann::json transcript = nlohmann::json::array();
  for (const TranscriptLine& line : result.transcript) {
    transcript.push_back({{"ms", milliseconds(line.at)},
                          {"dir", direction_marker(line.direction)},
                          {"text", line.text}});
  }
  out["transcript"] = transcript;
  std::cout << out.dump(2) << "\n";
}

}  // namespace

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

  asio::io_context io(1);
  ProbeResult result;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { result = co_await run_probe(target); }, asio::detached);
  io.run();
  if (options.json) {
    print_json(target, result);
  } else {
    std::fputs(format_probe_report(target, result).c_str(), stdout);
  }
  return result.success() ? 0 : 1;
}

}  // namespace smtp
