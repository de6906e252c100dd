#pragma once
/// What the status page renders, taken off the probe thread's target set: one row per endpoint
/// (and per target whose DNS lookup failed), and one endpoint's detail for its own page.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/endpoint_status.h"
#include "exporter/target_set.h"

namespace smtp {

/// One endpoint as the status page lists it.
struct StatusRow {
  std::string key;       // the endpoint's key: what its own page is asked for by
  std::string target;    // the configured target's name
  std::string endpoint;  // "host:port", or the MX host and address it stands for
  bool probed = false;   // not probed yet: neither up nor failing
  bool up = false;
  std::optional<double> greeting_seconds;  // the last probe's
  std::vector<float> latencies;            // EndpointStatus::latencies
  std::string banner_hostname;             // the last banner seen
  std::string banner_software;
  std::optional<double> cert_expiry;  // Unix seconds, once a TLS handshake completed
  double last_probe_unix_seconds = 0;
  FailureReason failure = FailureReason::kNone;
  std::string problem;  // the hint table's words for the failure
  std::string hint;     // its first hint
};

struct StatusSnapshot {
  std::vector<StatusRow> rows;  // in key order
};

/// One endpoint's own page: its row, every hint, and its last dialogues.
struct StatusDetail {
  StatusRow row;
  std::string error_detail;
  std::vector<std::string> hints;
  std::vector<StoredTranscript> transcripts;  // oldest first
};

/// What one row is made from, as it was when taken: its key and references to what it shows.
struct StatusSource {
  std::string key;
  std::string endpoint_mx_host;  // EndpointId's: what the endpoint stands for
  std::string endpoint_address;
  std::shared_ptr<const TargetConfig> config;
  std::shared_ptr<const ProbeTarget> probe;  // null: the row of a failed lookup
  std::shared_ptr<const TargetSeries> series;
  std::shared_ptr<const EndpointStatus> status;
};
using StatusSources = std::vector<StatusSource>;

/// What every row is made from, in key order; a target whose lookup fails gets a row of its own.
/// On the probe thread: a key and four references per row, where the rows themselves (strings,
/// latencies, hints) took 280 ms at 100,000 endpoints.
StatusSources take_status_sources(const TargetSet& targets);

/// The rows made from `sources` (on the render thread).
StatusSnapshot make_status_snapshot(const StatusSources& sources);

/// The detail of the endpoint (or failed lookup) known by `key`; none if there is none.
std::optional<StatusDetail> take_status_detail(const TargetSet& targets, std::string_view key);

}  // namespace smtp
