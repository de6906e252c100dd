#pragma once
/// The serve face: config -> scheduler -> probes -> metrics, and the HTTP endpoints.
#include <cstddef>
#include <optional>
#include <string>

#include "exporter/config.h"

namespace smtp {

struct DaemonOptions {
  std::optional<std::string> config_file;  // none: the embedded default config
  std::string listen_address = ":19225";
  std::size_t max_concurrency = 0;  // 0: derived from the open-file limit
};

/// Loads `config_file`, or the embedded default config if there is none. Throws ConfigError.
Config load_config_or_default(const std::optional<std::string>& config_file);

/// Runs until SIGTERM or SIGINT; returns the process exit code. A config that does not load at
/// start is reported on stderr and gives exit code 1.
int run_daemon(const DaemonOptions& options);

}  // namespace smtp
