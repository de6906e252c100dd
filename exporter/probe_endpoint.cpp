#include "exporter/probe_endpoint.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <utility>

#include "exporter/config_values.h"
#include "exporter/duration.h"
#include "exporter/log.h"
#include "exporter/probe_report.h"
#include "exporter/wall_clock.h"
#include "probes/banner.h"
#include "probes/resolve.h"
#include "probes/text.h"

namespace smtp {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kScrapeTimeoutHeader = "x-prometheus-scrape-timeout-seconds";
constexpr std::array<std::string_view, 4> kParameters = {"target", "module", "debug", "hostname"};
// A debug answer shows the dialogue; a normal one does not keep it.
constexpr std::size_t kDebugTranscriptBytes = 16 * 1024;

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

/// Counts a request as probing from construction to destruction, whatever ends it.
class InFlight {
 public:
  explicit InFlight(std::shared_ptr<std::size_t> count) : count_(std::move(count)) { ++*count_; }
  ~InFlight() { --*count_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::shared_ptr<std::size_t> count_;
};

/// A lookup that gave no address the module may use, as the probe itself would report it.
ProbeResult lookup_failure(const std::string& host, IpProtocol protocol,
                           const ResolveResult& resolved, Clock::duration took) {
  ProbeResult result;
  result.failure =
      resolved.timed_out ? FailureReason::kResolveTimeout : FailureReason::kResolveError;
  result.failed_phase = Phase::kResolve;
  if (resolved.timed_out) {
    result.error_detail = "resolving " + host + ": no answer in time";
  } else if (!resolved.endpoints.empty()) {
    result.error_detail = "resolving " + host + ": no " +
                          (protocol == IpProtocol::kIp4 ? "IPv4" : "IPv6") + " address";
  } else {
    result.error_detail = "resolving " + host + ": " + resolved.error.message();
  }
  result.transcript.push_back({took, TranscriptLine::Direction::kNote, result.error_detail});
  return result;
}

/// blackbox_exporter's debug answer, in its order: what happened, the metrics, the settings.
std::string debug_text(const ProbeRequest& request, const ProbeTarget& target,
                       const ProbeResult& result, const std::string& answer,
                       const std::string& admitted_by) {
  const TargetConfig& module = *request.module;
  std::string out = "Logs for the probe:\n";
  out += render_probe_text(target, result, unix_now());
  out += "\n\nMetrics that would have been returned:\n";
  out += answer;
  out += "\n\nModule configuration:\n";
  out += "module: " + request.module_name + "\n";
  out += "timeout: " +
         format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(module.timeout)) +
         " (this probe's deadline: " + std::to_string(seconds(request.timeout)) + "s)\n";
  out += "helo_name: " + module.helo_name + "\n";
  out += "tls: " + std::string(tls_mode_name(module.tls)) + "\n";
  out += "ip_protocol: " + std::string(ip_protocol_name(module.ip_protocol)) + "\n";
  if (module.tls != TlsMode::kNone) {
    out += "tls server name: " +
           (target.tls_server_name.empty() ? target.host : target.tls_server_name) + "\n";
    out += "tls ca_file: " +
           (module.tls_config.ca_file.empty() ? "(the system's)" : module.tls_config.ca_file) +
           "\n";
    out += std::string("tls insecure_skip_verify: ") +
           (module.tls_config.insecure_skip_verify ? "true" : "false") + "\n";
  }
  out += "allowed: " + admitted_by + "\n";
  return out;
}

}  // namespace

std::optional<std::chrono::nanoseconds> probe_deadline(const std::string* scrape_timeout,
                                                       std::chrono::nanoseconds module_timeout,
                                                       std::chrono::milliseconds offset) {
  if (scrape_timeout == nullptr) return module_timeout;
  const std::string_view text = *scrape_timeout;
  double scrape = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), scrape);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
      !std::isfinite(scrape) || scrape <= 0) {
    return std::nullopt;
  }
  // A scrape timeout at or below the offset would leave nothing: keep half of it instead.
  const double budget = std::max(scrape - seconds(offset), scrape / 2);
  if (budget >= seconds(module_timeout)) return module_timeout;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(budget * 1e9)));
}

std::variant<ProbeRequest, ProbeRefusal> parse_probe_request(
    const std::map<std::string, std::string>& query,
    const std::map<std::string, std::string>& headers, const ProbeEndpointConfig& config,
    std::chrono::milliseconds timeout_offset) {
  const auto bad = [](std::string message) { return ProbeRefusal{400, std::move(message)}; };
  for (const auto& [key, value] : query) {
    if (std::find(kParameters.begin(), kParameters.end(), key) == kParameters.end()) {
      return bad("unknown parameter " + quote(key) + " (expected target, module, debug, hostname)");
    }
  }
  ProbeRequest request;
  const auto target = query.find("target");
  if (target == query.end() || target->second.empty()) {
    return bad("missing parameter \"target\" (target=HOST:PORT)");
  }
  HostPort parsed;
  if (auto problem = parse_host_port(target->second, {.default_port = 25}, parsed)) {
    return bad("invalid target " + quote(target->second) + ": " + *problem);
  }
  request.port = parsed.port;
  boost::system::error_code ec;
  const asio::ip::address literal = asio::ip::make_address(parsed.host, ec);
  request.literal = !ec;
  if (request.literal) {
    request.host = unmapped(literal).to_string();
  } else {
    request.host = ascii_lowered(parsed.host);
    if (request.host.back() == '.') request.host.pop_back();
  }

  const auto module = query.find("module");
  request.module_name = module == query.end() ? std::string(kDefaultModule) : module->second;
  const auto found = config.modules.find(request.module_name);
  if (found == config.modules.end()) {
    std::string names;
    for (const auto& [name, settings] : config.modules) {
      names += (names.empty() ? "" : ", ") + quote(name);
    }
    return bad("unknown module " + quote(request.module_name) + " (configured: " + names + ")");
  }
  request.module = &found->second;

  if (const auto debug = query.find("debug"); debug != query.end()) {
    if (debug->second != "true" && debug->second != "false") {
      return bad("debug must be true or false, not " + quote(debug->second));
    }
    request.debug = debug->second == "true";
  }
  if (const auto hostname = query.find("hostname"); hostname != query.end()) {
    const std::string& name = hostname->second;
    if (!is_valid_domain(name) && !is_ipv4(name) && !is_ipv6(name)) {
      return bad("invalid hostname " + quote(name) + " (expected a host name for TLS)");
    }
    request.hostname = name;
  }

  const auto header = headers.find(std::string(kScrapeTimeoutHeader));
  const auto deadline = probe_deadline(header == headers.end() ? nullptr : &header->second,
                                       request.module->timeout, timeout_offset);
  if (!deadline) {
    return bad("invalid X-Prometheus-Scrape-Timeout-Seconds " + quote(header->second) +
               " (expected a positive number of seconds)");
  }
  request.timeout = *deadline;
  return request;
}

std::string render_probe_answer(const ProbeResult& result, const TargetConfig& module,
                                int ip_protocol, double now_unix_seconds) {
  auto series = std::make_shared<TargetSeries>();  // no labels: Prometheus adds the scrape's own
  record_probe(*series, result, module, now_unix_seconds);
  std::string out;
  render_target_series({series}, out);
  render_blackbox_series(result, ip_protocol, out);
  return out;
}

ProbeEndpoint::ProbeEndpoint(ExporterMetrics& metrics, Options options)
    : metrics_(metrics),
      options_(std::move(options)),
      config_(std::make_shared<const ProbeEndpointConfig>()) {}

void ProbeEndpoint::apply(ProbeEndpointConfig config) {
  config_ = std::make_shared<const ProbeEndpointConfig>(std::move(config));
}

HttpResponse ProbeEndpoint::refuse(const ProbeRefusal& refusal, const HttpRequest& request) const {
  metrics_.count_probe_request(refusal.status);
  const auto target = request.query.find("target");
  // A refused target is what a security team looks for; a malformed request is only noise.
  const log::Level level = refusal.status == 403   ? log::Level::kInfo
                           : refusal.status == 503 ? log::Level::kWarn
                                                   : log::Level::kDebug;
  log::write(level, "probe request refused",
             {{"status", refusal.status},
              {"target", target == request.query.end() ? std::string() : target->second},
              {"err", refusal.message}});
  HttpResponse response;
  response.status = refusal.status;
  response.body = refusal.message + "\n";
  return response;
}

asio::awaitable<HttpResponse> ProbeEndpoint::serve(HttpRequest request) {
  const Clock::time_point started = Clock::now();
  if (request.method != "GET") {
    HttpResponse response = refuse({405, "/probe answers GET requests only"}, request);
    response.headers["Allow"] = "GET";
    co_return response;
  }
  std::shared_ptr<const ProbeEndpointConfig> config = config_;
  auto parsed =
      parse_probe_request(request.query, request.headers, *config, options_.timeout_offset);
  if (const auto* refusal = std::get_if<ProbeRefusal>(&parsed)) co_return refuse(*refusal, request);
  const ProbeRequest probe = std::get<ProbeRequest>(std::move(parsed));

  // Before any lookup or connection.
  const Admission by_target = config->allowed_targets.admit_target(probe.host, probe.port);
  if (!by_target.admitted) co_return refuse({403, by_target.reason}, request);
  if (*in_flight_ >= config->max_concurrent) {
    co_return refuse({503, "too many /probe requests at once (probe.max_concurrent is " +
                               std::to_string(config->max_concurrent) + ")"},
                     request);
  }
  InFlight in_flight(in_flight_);

  ProbeTarget target = probe.module->probe_target();
  target.host = probe.host;
  target.port = probe.port;
  if (!probe.hostname.empty()) target.tls_server_name = probe.hostname;
  ProbeOptions options;
  options.transcript_limit_bytes = probe.debug ? kDebugTranscriptBytes : 0;
  const Clock::time_point deadline = started + probe.timeout;

  std::string admitted_by = by_target.reason;
  std::optional<asio::ip::address> first_address;
  std::optional<Clock::duration> lookup_took;
  std::optional<ProbeResult> lookup_failed;
  if (probe.literal) {
    first_address = asio::ip::make_address(probe.host);
  } else {
    std::shared_ptr<Resolver> resolver = options_.resolver();
    ResolveResult resolved = co_await resolver->resolve_host(probe.host, probe.port, deadline);
    lookup_took = Clock::now() - started;
    std::vector<tcp::endpoint> usable;
    std::vector<asio::ip::address> addresses;
    for (const tcp::endpoint& endpoint : resolved.endpoints) {
      const asio::ip::address address = unmapped(endpoint.address());
      if (!ip_family_allowed(address, target.ip_protocol)) continue;
      usable.emplace_back(address, endpoint.port());
      addresses.push_back(address);
    }
    if (usable.empty()) {
      lookup_failed = lookup_failure(probe.host, target.ip_protocol, resolved, *lookup_took);
    } else {
      // Every address the probe may connect to, and only those; the probe then connects to
      // them without a second lookup, which could answer otherwise.
      const Admission by_address =
          config->allowed_targets.admit_addresses(by_target, probe.host, addresses);
      if (!by_address.admitted) co_return refuse({403, by_address.reason}, request);
      admitted_by = by_address.reason;
      target.addresses = connection_order(std::move(usable));
      first_address = target.addresses.front().address();
    }
  }

  ProbeResult result;
  if (lookup_failed) {
    result = std::move(*lookup_failed);
  } else {
    target.timeout = std::max<Clock::duration>(Clock::duration::zero(), deadline - Clock::now());
    asio::awaitable<ProbeResult> probing = run_probe(target, options);
    result = co_await std::move(probing);
  }
  if (lookup_took) {
    result.phase_durations[static_cast<std::size_t>(Phase::kResolve)] = *lookup_took;
    result.total += *lookup_took;
  }
  int ip_protocol = 0;
  if (!result.peer.empty()) {
    ip_protocol = result.peer.front() == '[' ? 6 : 4;
  } else if (first_address) {
    ip_protocol = first_address->is_v6() ? 6 : 4;
  }

  const std::string where = format_host_port(probe.host, probe.port);
  log::write(log::Level::kDebug, "probe request",
             {{"target", where},
              {"module", probe.module_name},
              {"status", 200},
              {"result", reason_name(result.failure)},
              {"duration_seconds", seconds(result.total)}});
  if (!result.success()) {
    log::write(log::Level::kWarn, "probe failed",
               {{"target", where},
                {"module", probe.module_name},
                log::Field::unless_empty("peer", result.peer),
                {"reason", reason_name(result.failure)},
                {"phase", result.failed_phase ? phase_name(*result.failed_phase) : ""},
                {"err", result.error_detail}});
  }
  metrics_.count_probe_request(200);
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  std::string answer = render_probe_answer(result, *probe.module, ip_protocol, unix_now());
  if (probe.debug) {
    response.content_type = "text/plain; charset=utf-8";
    answer = debug_text(probe, target, result, answer, admitted_by);
  }
  response.body = std::move(answer);
  co_return response;
}

}  // namespace smtp
