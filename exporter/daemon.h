#pragma once
/// The serve face: config -> scheduler -> probes -> metrics, and the HTTP endpoints.
#include <cstddef>
#include <optional>
#include <string>

#include "exporter/config.h"
#include "exporter/shard.h"

namespace smtp {

/// Exit codes of the serve face (and `probe`), as Prometheus exporters use them: 1 is left to
/// the `probe` face's "the probe failed".
inline constexpr int kExitBadArguments = 2;
inline constexpr int kExitBadConfig = 2;

struct DaemonOptions {
  std::optional<std::string> config_file;  // none: the embedded default config
  std::string listen_address = ":19225";
  std::size_t max_concurrency = 0;  // 0: derived from the open-file limit
  Shard shard;                      // the part of the targets this replica probes
  /// How often the config file is checked for changes (0: never; SIGHUP and /-/reload only).
  std::chrono::milliseconds auto_reload_interval{0};
  /// Taken from Prometheus's scrape timeout to get a /probe's deadline (--probe.timeout-offset).
  std::chrono::milliseconds probe_timeout_offset{500};
  /// --web.config.file: TLS, basic auth and headers for the HTTP endpoints (none: plain, open).
  std::optional<std::string> web_config_file;
};

/// Loads `config_file`, or the embedded default config if there is none, and keeps the targets
/// `shard` owns. Throws ConfigError.
Config load_config_or_default(const std::optional<std::string>& config_file,
                              const Shard& shard = {});

/// Runs until SIGTERM or SIGINT; returns the process exit code. A config or web config that does
/// not load at start is reported on stderr and gives kExitBadConfig.
int run_daemon(const DaemonOptions& options);

}  // namespace smtp
