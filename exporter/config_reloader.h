#pragma once
/// Reloads of the config file, off the probe thread and one at a time.
#include <functional>
#include <memory>
#include <string>

#include "exporter/config.h"
#include "probes/asio.h"

namespace smtp {

/// Parses the config on a worker executor and hands the result to the probe executor, so a
/// reload of 10,000 targets never stalls the probes. Reloads asked for while one runs are
/// coalesced: they all wait for the next load, which starts when the running one ends. So a
/// storm of requests costs one parse at a time, and every request is answered by a load that
/// started after it arrived (it sees the file as it was then, or newer).
class ConfigReloader {
 public:
  struct Outcome {
    bool ok = false;
    std::string error;  // when not ok: the ConfigError's text, or why applying failed
  };
  /// Reads and parses the config; runs on the worker executor. Throws on a bad config.
  using Load = std::function<Config()>;
  /// Makes a parsed config the running one; runs on the probe executor. May throw (then the
  /// running config stays).
  using Apply = std::function<void(Config)>;
  /// Told once per load, on the probe executor: for the log and the reload metrics.
  using Report = std::function<void(const Outcome&)>;

  ConfigReloader(asio::any_io_executor probe_executor, asio::any_io_executor worker_executor,
                 Load load, Apply apply, Report report);

  /// Reloads (or joins the next reload) and returns its outcome. Call on the probe executor.
  asio::awaitable<Outcome> reload();

  struct State;  // shared with the load coroutine, which may outlive a reload() call

 private:
  std::shared_ptr<State> state_;
};

}  // namespace smtp
