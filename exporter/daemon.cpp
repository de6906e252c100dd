#include "exporter/daemon.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "exporter/config.h"
#include "exporter/config_reloader.h"
#include "exporter/config_watcher.h"
#include "exporter/fd_budget.h"
#include "exporter/http_server.h"
#include "exporter/log.h"
#include "exporter/metrics.h"
#include "exporter/metrics_endpoint.h"
#include "exporter/probe_endpoint.h"
#include "exporter/probe_runner.h"
#include "exporter/status_endpoint.h"
#include "exporter/status_snapshot.h"
#include "exporter/thread_role.h"
#include "exporter/wall_clock.h"
#include "exporter/web_access.h"

namespace smtp {
namespace {

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

/// Runs an io_context on a thread of its own until destroyed, however the scope that holds it
/// ends (stop(), or an exception out of the probe thread's loop). The loop is then stopped, not
/// drained: handlers waiting for the probe thread would never hear from it.
class HttpThread {
 public:
  explicit HttpThread(asio::io_context& io)
      : io_(io), thread_([&io] {
          take_thread_role(ThreadRole::kHttp);
          io.run();
        }) {}
  ~HttpThread() {
    // Posted, so that what was dispatched before (the server's shutdown) runs first.
    asio::post(io_, [&io = io_] { io.stop(); });
    thread_.join();
  }
  HttpThread(const HttpThread&) = delete;
  HttpThread& operator=(const HttpThread&) = delete;

 private:
  asio::io_context& io_;
  std::thread thread_;
};

/// The serve face's wiring: signals, HTTP routes, reloads. The work is done by the ProbeRunner
/// (probing), the ConfigReloader (loading) and the HTTP server.
class Daemon {
 public:
  Daemon(const DaemonOptions& options, Config config, std::unique_ptr<WebAccess> access)
      : options_(options),
        access_(std::move(access)),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        fd_budget_(raise_fd_limit_and_plan(options.max_concurrency)),
        runner_(io_.get_executor(), metrics_, {.max_concurrency = fd_budget_.probe_slots}),
        reloader_(
            io_.get_executor(), config_pool_.get_executor(),
            [file = options.config_file, shard = options.shard] {
              return load_config_or_default(file, shard);
            },
            [this](Config loaded) { apply(std::move(loaded), "config reloaded"); },
            [this](const ConfigReloader::Outcome& outcome) { report_reload(outcome); }),
        probe_endpoint_(metrics_, {.timeout_offset = options.probe_timeout_offset,
                                   .resolver = [this] { return runner_.resolver(); }}),
        http_(http_io_.get_executor(), parse_listen_address(options.listen_address),
              {.max_connections = fd_budget_.http_connections,
               .observer = &metrics_,
               .access = access_.get()}),
        metrics_endpoint_(io_.get_executor(), render_pool_.get_executor(), metrics_,
                          [this] { return runner_.snapshot(); }),
        status_endpoint_(
            render_pool_.get_executor(), [this] { return take_status_sources(runner_.targets()); },
            [this](std::string_view key) { return take_status_detail(runner_.targets(), key); }) {
    // Each pool has one thread, and this is the first work it gets.
    asio::post(render_pool_, [] { take_thread_role(ThreadRole::kRender); });
    asio::post(config_pool_, [] { take_thread_role(ThreadRole::kConfig); });
    log::write(log::Level::kInfo, "open-file budget",
               {{"limit", fd_budget_.limit},
                {"probe_slots", fd_budget_.probe_slots},
                {"http_connections", fd_budget_.http_connections},
                {"reserve", fd_budget_.reserve}});
    metrics_.set_http_connections_max(fd_budget_.http_connections);
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
    {
      const HttpThread http_thread(http_io_);
      wait_for_signal();
      if (watcher_) watcher_->start();
      runner_.start();
      io_.run();
    }
    render_pool_.join();
    config_pool_.join();
    if (access_) access_->join();
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
    metrics_endpoint_.invalidate();  // a scrape after the reload sees it
    status_endpoint_.invalidate();   // and so does the status page
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

  /// The server runs on a thread of its own, and every handler that reads the probe thread's
  /// state (the series, the endpoints, the running config) hops there and back. So the bytes of
  /// a page, its TLS and slow readers cost the probe thread nothing, and a probe thread that is
  /// saturated (100,000 targets on a small core) still lets a 190 MB page out at the speed of
  /// the reader, where it had waited a whole turn of the probe thread's queue for every 256 KiB.
  void route() {
    using beast::http::verb;  // GET brings HEAD; any other method is 405 with Allow
    http_.handle("/metrics", {verb::get}, on_probe_thread([this](const HttpRequest& request) {
                   return metrics_endpoint_.serve(request);
                 }));
    http_.handle("/probe", {verb::get}, on_probe_thread([this](const HttpRequest& request) {
                   return probe_endpoint_.serve(request);
                 }));
    http_.handle("/-/healthy", {verb::get},
                 [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                   co_return text_response(200, "Healthy\n");
                 });
    http_.handle("/-/ready", {verb::get}, [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      co_return text_response(200, "Ready\n");
    });
    http_.handle("/-/reload", {verb::post},
                 on_probe_thread([this](const HttpRequest&) { return serve_reload(); }));
    http_.handle("/", {verb::get}, on_probe_thread([this](const HttpRequest& request) {
                   return status_endpoint_.serve_page(request);
                 }));
    http_.handle("/target", {verb::get}, on_probe_thread([this](const HttpRequest& request) {
                   return status_endpoint_.serve_detail(request);
                 }));
  }

  HttpHandler on_probe_thread(HttpHandler handler) {
    return [this, handler = std::move(handler)](const HttpRequest& request) {
      return answer_on_probe_thread(handler, request);
    };
  }

  /// A named coroutine, not a lambda: GCC 12 destroys a capturing lambda coroutine created
  /// inside a co_await expression twice. `handler` lives in the server's route table; the
  /// request is this frame's own, alive until the handler's answer is back.
  asio::awaitable<HttpResponse> answer_on_probe_thread(const HttpHandler& handler,
                                                       HttpRequest request) {
    co_return co_await asio::co_spawn(io_.get_executor(), handler(request), asio::use_awaitable);
  }

  asio::awaitable<HttpResponse> serve_reload() {
    const ConfigReloader::Outcome outcome = co_await reloader_.reload();
    if (outcome.ok) co_return text_response(200, "Config reloaded\n");
    co_return text_response(500, "failed to reload config: " + outcome.error + "\n");
  }

  DaemonOptions options_;
  std::unique_ptr<WebAccess> access_;  // outlives io_: HTTP coroutines may hold it when io_ goes
  // The HTTP thread's; destroyed after the probe thread's io_, whose unfinished handlers may
  // hold HTTP coroutines (and their sockets) waiting for an answer.
  asio::io_context http_io_{1};
  asio::io_context io_{1};  // the probe thread's
  asio::thread_pool render_pool_{1};
  asio::thread_pool config_pool_{1};  // config loads: a parse never runs on the probe thread
  asio::signal_set signals_;
  ExporterMetrics metrics_;  // the HTTP server's observer: must outlive it
  FdBudget fd_budget_;
  ProbeRunner runner_;
  ConfigReloader reloader_;
  std::optional<ConfigWatcher> watcher_;
  ProbeEndpoint probe_endpoint_;
  HttpServer http_;
  MetricsEndpoint metrics_endpoint_;
  StatusEndpoint status_endpoint_;
};

}  // namespace

Config load_config_or_default(const std::optional<std::string>& config_file, const Shard& shard) {
  Config config = config_file ? load_config_file(*config_file, machine_hostname())
                              : parse_config(embedded_default_config(), "<embedded default>",
                                             machine_hostname());
  keep_shard(config, shard);
  return config;
}

int run_daemon(const DaemonOptions& options) {
  release_large_blocks_promptly();
  Config config;
  try {
    config = load_config_or_default(options.config_file, options.shard);
  } catch (const ConfigError& e) {
    log::write(log::Level::kError, "cannot load config", {{"err", e.what()}});
    return kExitBadConfig;
  }
  std::unique_ptr<WebAccess> access;
  if (options.web_config_file) {
    try {
      access = std::make_unique<WebAccess>(*options.web_config_file);
    } catch (const ConfigError& e) {
      log::write(log::Level::kError, "cannot load web config", {{"err", e.what()}});
      return kExitBadConfig;
    }
  }
  try {
    Daemon daemon(options, std::move(config), std::move(access));
    return daemon.run();
  } catch (const std::exception& e) {
    // A listen address that is malformed or taken, or a resolver that cannot start.
    log::write(log::Level::kError, "cannot start",
               {{"address", options.listen_address}, {"err", e.what()}});
    return 1;
  }
}

}  // namespace smtp
