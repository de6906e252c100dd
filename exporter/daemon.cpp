#include "exporter/daemon.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include "exporter/config.h"
#include "exporter/config_reloader.h"
#include "exporter/config_watcher.h"
#include "exporter/http_server.h"
#include "exporter/log.h"
#include "exporter/metrics.h"
#include "exporter/probe_endpoint.h"
#include "exporter/probe_runner.h"

namespace smtp {
namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

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

/// Runs on the render thread. Parameters by value: the coroutine frame owns them.
asio::awaitable<HttpResponse> render_metrics(std::shared_ptr<const SeriesSnapshot> snapshot,
                                             bool gzip, const ExporterMetrics* metrics) {
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = metrics->render();
  render_target_series(snapshot->series, response.body);
  render_mx_series(snapshot->mx, response.body);
  if (gzip) {
    response.body = gzip_compress(response.body);
    response.gzipped = true;
  }
  co_return response;
}

/// The serve face's wiring: signals, HTTP routes, reloads. The work is done by the ProbeRunner
/// (probing), the ConfigReloader (loading) and the HTTP server.
class Daemon {
 public:
  Daemon(const DaemonOptions& options, Config config)
      : options_(options),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        runner_(io_.get_executor(), metrics_,
                {.max_concurrency = probe_concurrency_limit(options.max_concurrency)}),
        reloader_(
            io_.get_executor(), config_pool_.get_executor(),
            [file = options.config_file, shard = options.shard] {
              return load_config_or_default(file, shard);
            },
            [this](Config loaded) { apply(std::move(loaded), "config reloaded"); },
            [this](const ConfigReloader::Outcome& outcome) { report_reload(outcome); }),
        probe_endpoint_(metrics_, {.timeout_offset = options.probe_timeout_offset,
                                   .resolver = [this] { return runner_.resolver(); }}),
        http_(io_.get_executor(), parse_listen_address(options.listen_address)) {
    apply(std::move(config), "config loaded");
    metrics_.set_config_reload(true, unix_now());
    metrics_.set_shard(options.shard.index, options.shard.count);
    if (options.config_file && options.auto_reload_interval.count() > 0) {
      watcher_.emplace(io_.get_executor(), config_pool_.get_executor(), *options.config_file,
                       options.auto_reload_interval, [this] { reload_in_background(); });
    }
  }

  int run() {
    route();
    http_.start();
    log::write(log::Level::kInfo, "listening",
               {{"address", format_endpoint(http_.local_endpoint())}});
    wait_for_signal();
    if (watcher_) watcher_->start();
    runner_.start();
    io_.run();
    render_pool_.join();
    config_pool_.join();
    return 0;
  }

 private:
  /// Makes `config` the running one and says when its first probes are due: a new user who
  /// scrapes at once sees no target until then.
  void apply(Config config, std::string_view what) {
    ProbeEndpointConfig probe = std::move(config.probe);
    const ApplySummary summary = runner_.apply(std::move(config));
    probe_endpoint_.apply(std::move(probe));
    log::write(log::Level::kInfo, what,
               {{"targets", summary.targets},
                {"new_endpoints", summary.endpoints_added},
                {"lookups_now", summary.lookups_due},
                {"first_probe_in_seconds", seconds(summary.first_probe_in)},
                {"all_new_probed_within_seconds", seconds(summary.last_probe_in)},
                {"max_concurrency", runner_.schedule().max_concurrency()}});
    if (summary.targets == 0) {
      log::write(log::Level::kWarn, "the config has no targets: nothing is probed");
    }
  }

  void report_reload(const ConfigReloader::Outcome& outcome) {
    metrics_.set_config_reload(outcome.ok, unix_now());
    if (!outcome.ok) {
      log::write(log::Level::kError, "config reload failed, keeping the running config",
                 {{"err", outcome.error}});
    }
  }

  // --- signals and HTTP --------------------------------------------------------------------

  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        reload_in_background();
        wait_for_signal();
        return;
      }
      log::write(log::Level::kInfo, "shutting down", {{"signal", signal}});
      stop();
    });
  }

  void reload_in_background() {
    asio::co_spawn(io_, reloader_.reload(), [](std::exception_ptr, ConfigReloader::Outcome) {
      // Reported once per load by report_reload().
    });
  }

  /// Stops accepting, abandons the probes in flight and lets io_.run() return.
  void stop() {
    if (watcher_) watcher_->stop();
    runner_.stop();
    http_.stop();
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    io_.stop();
  }

  void route() {
    http_.handle("/metrics", [this](const HttpRequest& request) { return serve_metrics(request); });
    http_.handle("/probe",
                 [this](const HttpRequest& request) { return probe_endpoint_.serve(request); });
    http_.handle("/-/healthy", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      co_return plain_response(200, "Healthy\n");
    });
    http_.handle("/-/ready", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      co_return plain_response(200, "Ready\n");
    });
    http_.handle("/-/reload", [this](const HttpRequest& request) { return serve_reload(request); });
    http_.handle("/", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      HttpResponse response = plain_response(200, std::string(kLandingPage));
      response.content_type = "text/html; charset=utf-8";
      co_return response;
    });
  }

  asio::awaitable<HttpResponse> serve_reload(const HttpRequest& request) {
    if (request.method != "POST") {
      HttpResponse response = plain_response(405, "This endpoint requires a POST request.\n");
      response.headers["Allow"] = "POST";
      co_return response;
    }
    const ConfigReloader::Outcome outcome = co_await reloader_.reload();
    if (outcome.ok) co_return plain_response(200, "Config reloaded\n");
    co_return plain_response(500, "failed to reload config: " + outcome.error + "\n");
  }

  /// Snapshots the series on the probe thread (a copy, ~0.5 KB a target), then renders and
  /// compresses on the render thread so that a scrape never stalls the probes.
  asio::awaitable<HttpResponse> serve_metrics(const HttpRequest& request) {
    auto snapshot = std::make_shared<const SeriesSnapshot>(runner_.snapshot());
    // A named coroutine, not a lambda: GCC 12 destroys a capturing lambda coroutine created
    // inside a co_await expression twice.
    asio::awaitable<HttpResponse> rendering =
        render_metrics(std::move(snapshot), request.accepts_gzip, &metrics_);
    HttpResponse response =
        co_await asio::co_spawn(render_pool_, std::move(rendering), asio::use_awaitable);
    co_return response;
  }

  DaemonOptions options_;
  asio::io_context io_{1};
  asio::thread_pool render_pool_{1};
  asio::thread_pool config_pool_{1};  // config loads: a parse never runs on the probe thread
  asio::signal_set signals_;
  ExporterMetrics metrics_;
  ProbeRunner runner_;
  ConfigReloader reloader_;
  std::optional<ConfigWatcher> watcher_;
  ProbeEndpoint probe_endpoint_;
  HttpServer http_;
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

Config load_config_or_default(const std::optional<std::string>& config_file, const Shard& shard) {
  Config config = config_file ? load_config_file(*config_file, machine_hostname())
                              : parse_config(embedded_default_config(), "<embedded default>",
                                             machine_hostname());
  keep_shard(config, shard);
  return config;
}

int run_daemon(const DaemonOptions& options) {
  Config config;
  try {
    config = load_config_or_default(options.config_file, options.shard);
  } catch (const ConfigError& e) {
    log::write(log::Level::kError, "cannot load config", {{"err", e.what()}});
    return kExitBadConfig;
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
