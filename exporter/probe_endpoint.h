#pragma once
/// `/probe?target=HOST:PORT&module=NAME[&debug=true][&hostname=NAME]`: one probe that Prometheus
/// drives (blackbox_exporter's multi-target pattern), of a target probe.allowed_targets admits.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "exporter/config.h"
#include "exporter/http_server.h"
#include "exporter/metrics.h"

namespace smtp {

class Resolver;

/// A /probe request whose parameters are good; the allow-list has not seen it yet.
struct ProbeRequest {
  /// A name (lower-case, without a trailing dot) or an IP literal (an IPv4-mapped IPv6 address
  /// as IPv4).
  std::string host;
  std::uint16_t port = 25;
  bool literal = false;
  std::string module_name;
  const TargetConfig* module = nullptr;  // in the config the request was checked against
  bool debug = false;
  std::string hostname;  // `hostname=`: the TLS name sent and verified (empty: the module's)
  std::chrono::nanoseconds timeout{};  // the whole probe's deadline, lookup included
};

/// An answer without a probe: the HTTP status and the message.
struct ProbeRefusal {
  int status = 400;
  std::string message;
};

/// Checks a request's parameters (`query`) and headers against `config`: the request, or a 400
/// that says what is wrong. Never throws for anything a client sends.
std::variant<ProbeRequest, ProbeRefusal> parse_probe_request(
    const std::map<std::string, std::string>& query,
    const std::map<std::string, std::string>& headers, const ProbeEndpointConfig& config,
    std::chrono::milliseconds timeout_offset);

/// The probe's deadline: the scrape timeout Prometheus sends (`scrape_timeout`, the
/// X-Prometheus-Scrape-Timeout-Seconds header, in seconds) minus `offset` but never less than
/// half of it, and never more than the module's timeout; the module's timeout when there is no
/// header. Nothing when the header is not a positive number.
std::optional<std::chrono::nanoseconds> probe_deadline(const std::string* scrape_timeout,
                                                       std::chrono::nanoseconds module_timeout,
                                                       std::chrono::milliseconds offset);

/// A 200 answer's body: the smtp_* series of the one probe, without a `target` label, then
/// blackbox_exporter's names (`ip_protocol`: 4, 6, or 0 when no address was reached).
std::string render_probe_answer(const ProbeResult& result, const TargetConfig& module,
                                int ip_protocol, double now_unix_seconds);

/// Serves /probe on the probe thread: checks, looks the name up with the running config's
/// resolver, vets the addresses, probes them, answers.
class ProbeEndpoint {
 public:
  struct Options {
    std::chrono::milliseconds timeout_offset{500};  // --probe.timeout-offset
    /// The running config's resolver, asked at each request (a reload replaces it).
    std::function<std::shared_ptr<Resolver>()> resolver;
  };

  ProbeEndpoint(ExporterMetrics& metrics, Options options);

  /// Makes `config` the one new requests use; requests in flight keep theirs.
  void apply(ProbeEndpointConfig config);

  /// The /probe handler. Runs on the executor of the resolver; the request is copied into the
  /// coroutine's frame.
  asio::awaitable<HttpResponse> serve(HttpRequest request);

 private:
  HttpResponse refuse(const ProbeRefusal& refusal, const HttpRequest& request) const;

  ExporterMetrics& metrics_;
  Options options_;
  std::shared_ptr<const ProbeEndpointConfig> config_;
  /// Requests probing now. Shared with their coroutine frames, which may be destroyed after
  /// this object at shutdown.
  std::shared_ptr<std::size_t> in_flight_ = std::make_shared<std::size_t>(0);
};

}  // namespace smtp
