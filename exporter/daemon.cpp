#include "exporter/daemon.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <variant>
#include <vector>

#include "exporter/config.h"
#include "exporter/fd_budget.h"
#include "exporter/http_server.h"
#include "exporter/log.h"
#include "exporter/metrics.h"
#include "exporter/metrics_endpoint.h"
#include "exporter/scheduler.h"
#include "probes/resolve.h"
#include "probes/smtp_probe.h"

namespace smtp {
namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

HttpResponse plain_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

constexpr std::string_view kLandingPage = R"(<!DOCTYPE html>
<html><head><title>SMTP Exporter</title></head>
<body><h1>SMTP Exporter</h1>
<ul>
<li><a href="/metrics">Metrics</a></li>
<li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a></li>
</ul>
<p>POST /-/reload (or SIGHUP) reloads the configuration.</p>
</body></html>
)";

/// Where one endpoint of a target points: with `mx`, one MX host; with `all_addresses`, one
/// address (of the target's host, or of an MX host). Both empty: the target's own address.
struct EndpointId {
  std::string mx_host;
  std::string address;
  auto operator<=>(const EndpointId&) const = default;
};

/// One probed endpoint of a configured target.
struct Target {
  std::string key;  // unique: the name, plus the endpoint's MX host and address if any
  // Replaced (not mutated) at reload: a probe in flight keeps the version it started with.
  std::shared_ptr<const TargetConfig> config;
  std::shared_ptr<const ProbeTarget> probe;
  EndpointId endpoint;
  TargetSeries series;
  Schedule::JobId job = 0;
  bool removed = false;
};

/// A target whose endpoints come from DNS (`mx`, or `all_addresses`): looked up again every
/// mx_refresh and at every reload.
struct LookupGroup {
  std::shared_ptr<const TargetConfig> config;
  Schedule::JobId refresh_job = 0;
  bool removed = false;
  std::vector<EndpointId> endpoints;  // from the last good lookup, sorted
  MxSeries mx_series;                 // MX targets only
  // Shown only while the lookup fails or finds a null MX: then there is nothing else to show.
  TargetSeries lookup_series;
};

using Job = std::variant<std::shared_ptr<Target>, std::shared_ptr<LookupGroup>>;

std::string endpoint_key(const std::string& name, const EndpointId& endpoint) {
  if (endpoint.mx_host.empty() && endpoint.address.empty()) return name;
  return name + '\n' + endpoint.mx_host + '\n' + endpoint.address;
}

bool family_wanted(const asio::ip::address& address, IpProtocol protocol) {
  return protocol == IpProtocol::kAny || (protocol == IpProtocol::kIp4) == address.is_v4();
}

class Daemon {
 public:
  Daemon(const DaemonOptions& options, Config config)
      : options_(options),
        fd_budget_(raise_fd_limit_and_plan(options.max_concurrency)),
        schedule_(fd_budget_.probe_slots),
        wakeup_(io_),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        http_(io_.get_executor(), parse_listen_address(options.listen_address),
              {.max_connections = fd_budget_.http_connections, .observer = &metrics_}),
        metrics_endpoint_(io_.get_executor(), render_pool_.get_executor(), metrics_,
                          [this] { return snapshot(); }) {
    apply(std::move(config));
    metrics_.set_config_reload(true, unix_now());
  }

  int run() {
    route();
    http_.start();
    log::write(log::Level::kInfo, "listening",
               {{"address", format_endpoint(http_.local_endpoint())}});
    log::write(log::Level::kInfo, "probing",
               {{"targets", std::to_string(configured_targets_)},
                {"max_concurrency", std::to_string(schedule_.max_concurrency())}});
    log::write(log::Level::kInfo, "open-file budget",
               {{"limit", std::to_string(fd_budget_.limit)},
                {"probe_slots", std::to_string(fd_budget_.probe_slots)},
                {"http_connections", std::to_string(fd_budget_.http_connections)},
                {"reserve", std::to_string(fd_budget_.reserve)}});
    metrics_.set_http_connections_max(fd_budget_.http_connections);
    wait_for_signal();
    asio::co_spawn(io_, schedule_loop(), asio::detached);
    io_.run();
    render_pool_.join();
    return 0;
  }

 private:
  // --- config ------------------------------------------------------------------------------

  /// Makes `config` the running one. Targets that stay (by name) keep their series and, if
  /// their interval is unchanged, their place in the schedule; targets that left lose every
  /// series at once. MX targets are looked up again at once.
  void apply(Config config) {
    if (!resolver_ || config.dns.servers != dns_servers_) {
      // Probes in flight keep the old resolver alive through their own reference.
      resolver_ = std::make_shared<Resolver>(io_.get_executor(), config.dns.servers);
      dns_servers_ = config.dns.servers;
    }
    std::map<std::string, std::shared_ptr<Target>> old_targets;
    for (auto& target : targets_) old_targets.emplace(target->key, std::move(target));
    std::map<std::string, std::shared_ptr<LookupGroup>> old_groups;
    for (auto& group : groups_) old_groups.emplace(group->config->name, std::move(group));
    targets_.clear();
    groups_.clear();

    auto now = Schedule::Clock::now();
    for (TargetConfig& target_config : config.targets) {
      auto shared_config = std::make_shared<const TargetConfig>(std::move(target_config));
      if (shared_config->mx_domain.empty() && !shared_config->all_addresses) {
        targets_.push_back(keep_or_add_target(old_targets, shared_config, {}, now));
        continue;
      }
      std::shared_ptr<LookupGroup> group;
      if (auto it = old_groups.find(shared_config->name); it != old_groups.end()) {
        group = std::move(it->second);
        old_groups.erase(it);
        schedule_.remove(group->refresh_job);
        // Its endpoints stay until the new lookup says otherwise.
        for (const EndpointId& endpoint : group->endpoints) {
          targets_.push_back(keep_or_add_target(old_targets, shared_config, endpoint, now));
        }
      } else {
        group = std::make_shared<LookupGroup>();
      }
      group->config = shared_config;
      group->mx_series.labels = render_target_labels(*shared_config);
      group->lookup_series.labels = group->mx_series.labels;
      group->refresh_job = schedule_.add_at(shared_config->mx_refresh, now);
      register_job(group->refresh_job, group);
      groups_.push_back(std::move(group));
    }
    for (auto& [key, target] : old_targets) remove_target(*target);
    for (auto& [name, group] : old_groups) {
      group->removed = true;
      schedule_.remove(group->refresh_job);
    }
    configured_targets_ = config.targets.size();
    targets_changed();
  }

  /// The endpoint with its series if it was there before, else a new one.
  std::shared_ptr<Target> keep_or_add_target(std::map<std::string, std::shared_ptr<Target>>& old,
                                             const std::shared_ptr<const TargetConfig>& config,
                                             const EndpointId& endpoint, Schedule::TimePoint now) {
    std::string key = endpoint_key(config->name, endpoint);
    std::shared_ptr<Target> target;
    if (auto it = old.find(key); it != old.end()) {
      target = std::move(it->second);
      old.erase(it);
      if (target->config->interval != config->interval) {
        schedule_.remove(target->job);
        target->job = schedule_.add(key, config->interval, now);
      }
    } else {
      target = std::make_shared<Target>();
      target->key = std::move(key);
      target->endpoint = endpoint;
      target->job = schedule_.add(target->key, config->interval, now);
    }
    ProbeTarget probe = config->probe_target();
    if (!endpoint.mx_host.empty()) probe.host = endpoint.mx_host;
    if (!endpoint.address.empty()) {
      // The certificate still has to be the host's, not the address's.
      if (probe.tls_server_name.empty()) probe.tls_server_name = probe.host;
      probe.host = endpoint.address;
    }
    target->probe = std::make_shared<const ProbeTarget>(std::move(probe));
    target->config = config;
    target->series.labels = render_target_labels(*config, endpoint.mx_host, endpoint.address);
    register_job(target->job, target);
    return target;
  }

  void remove_target(Target& target) {
    target.removed = true;
    schedule_.remove(target.job);
  }

  void register_job(Schedule::JobId id, Job job) {
    if (jobs_.size() <= id) jobs_.resize(id + 1);
    jobs_[id] = std::move(job);
  }

  /// After endpoints came or went: /metrics lists them by key, and new jobs may be due before
  /// the timer's current expiry.
  void targets_changed() {
    std::sort(targets_.begin(), targets_.end(),
              [](const auto& a, const auto& b) { return a->key < b->key; });
    std::sort(groups_.begin(), groups_.end(),
              [](const auto& a, const auto& b) { return a->config->name < b->config->name; });
    metrics_.set_targets(configured_targets_);
    wakeup_.cancel();
  }

  /// Loads the config again; a bad one is logged and leaves the running config alone.
  bool reload(std::string& error) {
    try {
      apply(load_config_or_default(options_.config_file));
      metrics_.set_config_reload(true, unix_now());
      log::write(log::Level::kInfo, "config reloaded",
                 {{"targets", std::to_string(configured_targets_)}});
      return true;
    } catch (const std::exception& e) {  // ConfigError, or a DNS server c-ares cannot use
      metrics_.set_config_reload(false, unix_now());
      error = e.what();
      log::write(log::Level::kError, "config reload failed, keeping the running config",
                 {{"err", error}});
      return false;
    }
  }

  // --- scheduling --------------------------------------------------------------------------

  asio::awaitable<void> schedule_loop() {
    while (!stopping_) {
      auto now = Schedule::Clock::now();
      for (const Schedule::Start& start : schedule_.take_due(now)) {
        metrics_.observe_schedule_lag(now - start.planned);
        if (auto* target = std::get_if<std::shared_ptr<Target>>(&jobs_[start.job])) {
          asio::co_spawn(io_, probe_target(*target, start.job), asio::detached);
        } else {
          asio::co_spawn(
              io_,
              refresh_group(std::get<std::shared_ptr<LookupGroup>>(jobs_[start.job]), start.job),
              asio::detached);
        }
      }
      metrics_.set_probes_in_flight(schedule_.running());
      auto next = schedule_.next_wakeup();
      wakeup_.expires_at(next ? *next : Schedule::TimePoint::max());
      boost::system::error_code ec;
      co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  void job_finished(Schedule::JobId job) {
    schedule_.finished(job, Schedule::Clock::now());
    metrics_.set_probes_in_flight(schedule_.running());
    wakeup_.cancel();  // a slot is free and the job has a new plan: look again
  }

  asio::awaitable<void> probe_target(std::shared_ptr<Target> target, Schedule::JobId job) {
    std::shared_ptr<const ProbeTarget> probe = target->probe;
    std::shared_ptr<const TargetConfig> config = target->config;
    std::shared_ptr<Resolver> resolver = resolver_;
    ProbeOptions options;
    options.resolver = resolver.get();
    // The transcript is only read by the debug log: without it a probe allocates a third less.
    options.transcript_limit_bytes = log::enabled(log::Level::kDebug) ? 4096 : 0;
    ProbeResult result = co_await run_probe(*probe, options);
    if (!target->removed) {
      record_probe(target->series, result, *config, unix_now());
      if (!result.success()) log_failure(*config, target->endpoint.mx_host, result);
    }
    job_finished(job);
  }

  /// What a group's lookup found: its endpoints, or why there are none.
  struct LookupOutcome {
    FailureReason failure = FailureReason::kNone;
    std::string detail;
    bool mx_found = false;  // the MX lookup answered (hosts, implicit MX or null MX)
    std::vector<std::pair<std::string, std::uint16_t>> mx_hosts;
    std::vector<EndpointId> endpoints;
  };

  asio::awaitable<void> refresh_group(std::shared_ptr<LookupGroup> group, Schedule::JobId job) {
    std::shared_ptr<const TargetConfig> config = group->config;
    std::shared_ptr<Resolver> resolver = resolver_;
    auto started = Schedule::Clock::now();
    auto deadline = started + config->timeout;
    LookupOutcome outcome;
    std::vector<std::string> hosts;  // whose addresses are wanted (all_addresses)
    if (!config->mx_domain.empty()) {
      MxResult found = co_await resolver->resolve_mx(config->mx_domain, deadline);
      outcome = mx_outcome(*config, found);
      for (const auto& [host, preference] : outcome.mx_hosts) hosts.push_back(host);
    } else {
      hosts.push_back(config->host);
    }
    if (outcome.failure == FailureReason::kNone) {
      for (const std::string& host : hosts) {
        std::string mx_host = config->mx_domain.empty() ? std::string() : host;
        if (!config->all_addresses) {
          outcome.endpoints.push_back({mx_host, {}});
          continue;
        }
        ResolveResult resolved = co_await resolver->resolve_host(host, config->port, deadline);
        std::size_t before = outcome.endpoints.size();
        for (const tcp::endpoint& address : resolved.endpoints) {
          if (family_wanted(address.address(), config->ip_protocol)) {
            outcome.endpoints.push_back({mx_host, address.address().to_string()});
          }
        }
        if (outcome.endpoints.size() > before) continue;
        if (!mx_host.empty()) {
          // One MX host without addresses: probe it by name, so its own probes say why.
          outcome.endpoints.push_back({mx_host, {}});
          continue;
        }
        outcome.failure =
            resolved.timed_out ? FailureReason::kResolveTimeout : FailureReason::kResolveError;
        outcome.detail = "address lookup of " + host + ": " +
                         (resolved.error ? resolved.error.message() : "no address of that family");
      }
    }
    std::sort(outcome.endpoints.begin(), outcome.endpoints.end());
    outcome.endpoints.erase(std::unique(outcome.endpoints.begin(), outcome.endpoints.end()),
                            outcome.endpoints.end());
    if (!group->removed) apply_lookup(*group, outcome, Schedule::Clock::now() - started);
    job_finished(job);
  }

  static LookupOutcome mx_outcome(const TargetConfig& config, const MxResult& found) {
    LookupOutcome outcome;
    if (found.timed_out || found.error) {
      outcome.failure =
          found.timed_out ? FailureReason::kResolveTimeout : FailureReason::kResolveError;
      outcome.detail = "MX lookup of " + config.mx_domain + ": " + found.error.message();
      return outcome;
    }
    outcome.mx_found = true;
    if (found.null_mx) {
      outcome.failure = FailureReason::kNullMx;
      outcome.detail = config.mx_domain + " publishes a null MX (RFC 7505)";
    } else if (found.no_records) {
      outcome.mx_hosts.emplace_back(config.mx_domain, 0);  // RFC 5321 §5.1: the implicit MX
    } else {
      for (const MxRecord& record : found.records) {
        outcome.mx_hosts.emplace_back(record.host, record.preference);
      }
    }
    return outcome;
  }

  /// Applies a group's lookup: endpoints for new hosts or addresses, none for those that left.
  /// A failed lookup keeps the endpoints of the last good one (a DNS hiccup is not an outage
  /// of the mail servers); a null MX leaves none.
  void apply_lookup(LookupGroup& group, LookupOutcome& outcome, std::chrono::nanoseconds took) {
    const TargetConfig& config = *group.config;
    if (outcome.failure != FailureReason::kNone) {
      ProbeResult lookup;
      lookup.phase_durations[static_cast<std::size_t>(Phase::kResolve)] = took;
      lookup.total = took;
      lookup.failure = outcome.failure;
      lookup.failed_phase = Phase::kResolve;
      lookup.error_detail = outcome.detail;
      record_probe(group.lookup_series, lookup, config, unix_now());
      log_failure(config, {}, lookup);
    } else {
      group.lookup_series.probed = false;  // the endpoints speak for the target now
    }
    if (outcome.mx_found) {
      group.mx_series.looked_up = true;
      group.mx_series.hosts = std::move(outcome.mx_hosts);
    }
    bool keep_endpoints = outcome.failure == FailureReason::kResolveError ||
                          outcome.failure == FailureReason::kResolveTimeout;
    if (keep_endpoints || outcome.endpoints == group.endpoints) return;

    std::map<std::string, std::shared_ptr<Target>> old;
    std::vector<std::shared_ptr<Target>> others;
    for (auto& target : targets_) {
      if (target->config->name == config.name) {
        old.emplace(target->key, std::move(target));
      } else {
        others.push_back(std::move(target));
      }
    }
    targets_ = std::move(others);
    auto now = Schedule::Clock::now();
    std::string listed;
    for (const EndpointId& endpoint : outcome.endpoints) {
      targets_.push_back(keep_or_add_target(old, group.config, endpoint, now));
      listed += listed.empty() ? "" : ",";
      listed += endpoint.mx_host.empty()
                    ? endpoint.address
                    : endpoint.mx_host + (endpoint.address.empty() ? "" : "/" + endpoint.address);
    }
    for (auto& [key, target] : old) remove_target(*target);
    log::write(log::Level::kInfo, "endpoints changed",
               {{"target", config.name}, {"endpoints", listed}});
    group.endpoints = std::move(outcome.endpoints);
    targets_changed();
  }

  static void log_failure(const TargetConfig& config, const std::string& mx_host,
                          const ProbeResult& result) {
    if (!log::enabled(log::Level::kWarn)) return;
    std::string_view phase = result.failed_phase ? phase_name(*result.failed_phase) : "";
    if (mx_host.empty()) {
      log::write(log::Level::kWarn, "probe failed",
                 {{"target", config.name},
                  {"reason", reason_name(result.failure)},
                  {"phase", phase},
                  {"err", result.error_detail}});
    } else {
      log::write(log::Level::kWarn, "probe failed",
                 {{"target", config.name},
                  {"mx", mx_host},
                  {"reason", reason_name(result.failure)},
                  {"phase", phase},
                  {"err", result.error_detail}});
    }
    if (!log::enabled(log::Level::kDebug)) return;
    for (const TranscriptLine& line : result.transcript) {
      log::write(
          log::Level::kDebug, "dialogue",
          {{"target", config.name},
           {"ms", std::to_string(std::chrono::duration<double, std::milli>(line.at).count())},
           {"dir", transcript_direction(line.direction)},
           {"line", line.text}});
    }
  }

  static std::string_view transcript_direction(TranscriptLine::Direction direction) {
    switch (direction) {
      case TranscriptLine::Direction::kSent:
        return "sent";
      case TranscriptLine::Direction::kReceived:
        return "received";
      case TranscriptLine::Direction::kNote:
        return "note";
    }
    return "";
  }

  // --- signals and HTTP --------------------------------------------------------------------

  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        std::string error;
        reload(error);
        wait_for_signal();
        return;
      }
      log::write(log::Level::kInfo, "shutting down", {{"signal", std::to_string(signal)}});
      stop();
    });
  }

  /// Stops accepting, abandons the probes in flight and lets io_.run() return.
  void stop() {
    stopping_ = true;
    http_.stop();
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    io_.stop();
  }

  void route() {
    using beast::http::verb;
    http_.handle("/metrics", {verb::get},
                 [this](const HttpRequest& request) { return metrics_endpoint_.serve(request); });
    http_.handle("/-/healthy", {verb::get},
                 [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                   co_return plain_response(200, "Healthy\n");
                 });
    http_.handle("/-/ready", {verb::get}, [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      co_return plain_response(200, "Ready\n");
    });
    http_.handle("/-/reload", {verb::post},
                 [this](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                   std::string error;
                   if (reload(error)) co_return plain_response(200, "Config reloaded\n");
                   co_return plain_response(500, "failed to reload config: " + error + "\n");
                 });
    http_.handle("/", {verb::get}, [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      HttpResponse response = plain_response(200, std::string(kLandingPage));
      response.content_type = "text/html; charset=utf-8";
      co_return response;
    });
  }

  /// The series a scrape renders: a copy (~0.5 KB a target), taken on the probe thread.
  SeriesSnapshot snapshot() const {
    SeriesSnapshot snapshot;
    snapshot.series.reserve(targets_.size() + groups_.size());
    for (const auto& target : targets_) snapshot.series.push_back(target->series);
    for (const auto& group : groups_) {
      if (group->lookup_series.probed) snapshot.series.push_back(group->lookup_series);
      snapshot.mx.push_back(group->mx_series);
    }
    return snapshot;
  }

  DaemonOptions options_;
  asio::io_context io_{1};
  asio::thread_pool render_pool_{1};
  FdBudget fd_budget_;
  Schedule schedule_;
  ExporterMetrics metrics_;
  std::shared_ptr<Resolver> resolver_;
  std::vector<std::string> dns_servers_;
  std::vector<std::shared_ptr<Target>> targets_;      // sorted by key
  std::vector<std::shared_ptr<LookupGroup>> groups_;  // sorted by name
  std::vector<Job> jobs_;                             // indexed by Schedule::JobId
  std::size_t configured_targets_ = 0;
  asio::steady_timer wakeup_;
  asio::signal_set signals_;
  HttpServer http_;
  MetricsEndpoint metrics_endpoint_;
  bool stopping_ = false;
};

}  // namespace

Config load_config_or_default(const std::optional<std::string>& config_file) {
  if (config_file) return load_config_file(*config_file, machine_hostname());
  return parse_config(embedded_default_config(), "<embedded default>", machine_hostname());
}

int run_daemon(const DaemonOptions& options) {
  release_large_blocks_promptly();
  Config config;
  try {
    config = load_config_or_default(options.config_file);
  } catch (const ConfigError& e) {
    log::write(log::Level::kError, "cannot load config", {{"err", e.what()}});
    return 1;
  }
  try {
    Daemon daemon(options, std::move(config));
    return daemon.run();
  } catch (const std::exception& e) {
    // A listen address that is malformed or taken, or a resolver that cannot start.
    log::write(log::Level::kError, "cannot start",
               {{"address", options.listen_address}, {"err", e.what()}});
    return 1;
  }
}

}  // namespace smtp
