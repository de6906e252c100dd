#include "exporter/daemon.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "exporter/config.h"
#include "exporter/http_server.h"
#include "exporter/log.h"
#include "exporter/metrics.h"
#include "exporter/scheduler.h"
#include "probes/smtp_probe.h"

namespace smtp {
namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Descriptors kept back from probes: the listener, HTTP clients, logs, config reads.
constexpr std::size_t kReservedFds = 256;
/// With no limit asked for, never more than this many probes at once.
constexpr std::size_t kDefaultMaxConcurrency = 4096;

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

/// One configured target while it is in the config.
struct Target {
  // Replaced (not mutated) at reload: a probe in flight keeps the version it started with.
  std::shared_ptr<const TargetConfig> config;
  std::shared_ptr<const ProbeTarget> probe;
  TargetSeries series;
  Schedule::JobId job = 0;
  bool removed = false;
};

class Daemon {
 public:
  Daemon(const DaemonOptions& options, Config config)
      : options_(options),
        schedule_(probe_concurrency_limit(options.max_concurrency)),
        wakeup_(io_),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        http_(io_.get_executor(), parse_listen_address(options.listen_address)) {
    apply(std::move(config));
    metrics_.set_config_reload(true, unix_now());
  }

  int run() {
    route();
    http_.start();
    log::write(log::Level::kInfo, "listening",
               {{"address", format_endpoint(http_.local_endpoint())}});
    log::write(log::Level::kInfo, "probing",
               {{"targets", std::to_string(targets_.size())},
                {"max_concurrency", std::to_string(schedule_.max_concurrency())}});
    wait_for_signal();
    asio::co_spawn(io_, schedule_loop(), asio::detached);
    io_.run();
    render_pool_.join();
    return 0;
  }

 private:
  static std::string format_endpoint(const tcp::endpoint& endpoint) {
    std::string address = endpoint.address().to_string();
    if (endpoint.address().is_v6()) address = "[" + address + "]";
    return address + ":" + std::to_string(endpoint.port());
  }

  // --- config ------------------------------------------------------------------------------

  /// Makes `config` the running one. Targets that stay (by name) keep their series and, if
  /// their interval is unchanged, their place in the schedule; targets that left lose every
  /// series at once.
  void apply(Config config) {
    std::map<std::string, std::shared_ptr<Target>, std::less<>> old;
    for (auto& target : targets_) old.emplace(target->config->name, std::move(target));
    targets_.clear();
    auto now = Schedule::Clock::now();
    for (TargetConfig& target_config : config.targets) {
      std::shared_ptr<Target> target;
      if (auto it = old.find(target_config.name); it != old.end()) {
        target = std::move(it->second);
        old.erase(it);
        if (target->config->interval != target_config.interval) {
          schedule_.remove(target->job);
          target->job = schedule_.add(target_config.name, target_config.interval, now);
        }
      } else {
        target = std::make_shared<Target>();
        target->job = schedule_.add(target_config.name, target_config.interval, now);
      }
      target->series.labels = render_target_labels(target_config);
      target->probe = std::make_shared<const ProbeTarget>(target_config.probe_target());
      target->config = std::make_shared<const TargetConfig>(std::move(target_config));
      if (by_job_.size() <= target->job) by_job_.resize(target->job + 1);
      by_job_[target->job] = target;
      targets_.push_back(std::move(target));
    }
    for (auto& [name, target] : old) {
      target->removed = true;
      schedule_.remove(target->job);
    }
    // The page and /metrics list targets by name.
    std::sort(targets_.begin(), targets_.end(),
              [](const auto& a, const auto& b) { return a->config->name < b->config->name; });
    metrics_.set_targets(targets_.size());
    wakeup_.cancel();  // new jobs may be due before the timer's current expiry
  }

  /// Loads the config again; a bad one is logged and leaves the running config alone.
  bool reload(std::string& error) {
    try {
      apply(load_config_or_default(options_.config_file));
      metrics_.set_config_reload(true, unix_now());
      log::write(log::Level::kInfo, "config reloaded",
                 {{"targets", std::to_string(targets_.size())}});
      return true;
    } catch (const ConfigError& e) {
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
        std::shared_ptr<Target> target = by_job_[start.job];
        metrics_.observe_schedule_lag(now - start.planned);
        asio::co_spawn(io_, probe_target(std::move(target), start.job), asio::detached);
      }
      metrics_.set_probes_in_flight(schedule_.running());
      auto next = schedule_.next_wakeup();
      wakeup_.expires_at(next ? *next : Schedule::TimePoint::max());
      boost::system::error_code ec;
      co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> probe_target(std::shared_ptr<Target> target, Schedule::JobId job) {
    std::shared_ptr<const ProbeTarget> probe = target->probe;
    std::shared_ptr<const TargetConfig> config = target->config;
    ProbeResult result = co_await run_probe(*probe);
    if (!target->removed) {
      record_probe(target->series, result, *config, unix_now());
      if (!result.success()) log_failure(*config, result);
    }
    schedule_.finished(job, Schedule::Clock::now());
    metrics_.set_probes_in_flight(schedule_.running());
    wakeup_.cancel();  // a slot is free and the job has a new plan: look again
  }

  static void log_failure(const TargetConfig& config, const ProbeResult& result) {
    if (!log::enabled(log::Level::kWarn)) return;
    log::write(log::Level::kWarn, "probe failed",
               {{"target", config.name},
                {"reason", reason_name(result.failure)},
                {"phase", result.failed_phase ? phase_name(*result.failed_phase) : ""},
                {"err", result.error_detail}});
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
    http_.handle("/metrics", [this](const HttpRequest& request) { return serve_metrics(request); });
    http_.handle("/-/healthy", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      co_return plain_response(200, "Healthy\n");
    });
    http_.handle("/-/ready", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      co_return plain_response(200, "Ready\n");
    });
    http_.handle("/-/reload", [this](const HttpRequest& request) -> asio::awaitable<HttpResponse> {
      if (request.method != "POST" && request.method != "PUT") {
        HttpResponse response = plain_response(405, "This endpoint requires a POST request.\n");
        response.headers["Allow"] = "POST";
        co_return response;
      }
      std::string error;
      if (reload(error)) co_return plain_response(200, "Config reloaded\n");
      co_return plain_response(500, "failed to reload config: " + error + "\n");
    });
    http_.handle("/", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      HttpResponse response = plain_response(200, std::string(kLandingPage));
      response.content_type = "text/html; charset=utf-8";
      co_return response;
    });
  }

  /// Snapshots the series on the probe thread (a copy, ~0.5 KB a target), then renders and
  /// compresses on the render thread so that a scrape never stalls the probes.
  asio::awaitable<HttpResponse> serve_metrics(const HttpRequest& request) {
    auto snapshot = std::make_shared<std::vector<TargetSeries>>();
    snapshot->reserve(targets_.size());
    for (const auto& target : targets_) snapshot->push_back(target->series);
    bool gzip = request.accepts_gzip;
    ExporterMetrics& metrics = metrics_;
    co_return co_await asio::co_spawn(
        render_pool_,
        [snapshot, gzip, &metrics]() -> asio::awaitable<HttpResponse> {
          HttpResponse response;
          response.content_type = "text/plain; version=0.0.4; charset=utf-8";
          response.body = metrics.render();
          render_target_series(*snapshot, response.body);
          if (gzip) {
            response.body = gzip_compress(response.body);
            response.gzipped = true;
          }
          co_return response;
        },
        asio::use_awaitable);
  }

  DaemonOptions options_;
  asio::io_context io_{1};
  asio::thread_pool render_pool_{1};
  Schedule schedule_;
  ExporterMetrics metrics_;
  std::vector<std::shared_ptr<Target>> targets_;  // sorted by name
  std::vector<std::shared_ptr<Target>> by_job_;   // indexed by Schedule::JobId
  asio::steady_timer wakeup_;
  asio::signal_set signals_;
  HttpServer http_;
  bool stopping_ = false;
};

}  // namespace

std::size_t probe_concurrency_limit(std::size_t requested) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  std::size_t fds = limit.rlim_cur == RLIM_INFINITY ? SIZE_MAX : limit.rlim_cur;
  std::size_t fd_cap =
      fds > 2 * kReservedFds ? fds - kReservedFds : std::max<std::size_t>(1, fds / 2);
  std::size_t wanted = requested == 0 ? kDefaultMaxConcurrency : requested;
  return std::min(wanted, fd_cap);
}

Config load_config_or_default(const std::optional<std::string>& config_file) {
  if (config_file) return load_config_file(*config_file, machine_hostname());
  return parse_config(embedded_default_config(), "<embedded default>", machine_hostname());
}

int run_daemon(const DaemonOptions& options) {
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
  } catch (const boost::system::system_error& e) {
    log::write(log::Level::kError, "cannot start",
               {{"address", options.listen_address}, {"err", e.what()}});
    return 1;
  } catch (const std::invalid_argument& e) {
    log::write(log::Level::kError, "bad --web.listen-address",
               {{"address", options.listen_address}, {"err", e.what()}});
    return 1;
  }
}

}  // namespace smtp
