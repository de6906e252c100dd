// smtp_exporter: flags, and which face to show (serve, probe, check).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "exporter/build_info.h"
#include "exporter/check_face.h"
#include "exporter/config.h"
#include "exporter/daemon.h"
#include "exporter/duration.h"
#include "exporter/log.h"
#include "exporter/probe_face.h"
#include "exporter/web_config.h"

int main(int argc, char** argv) {
  CLI::App app(
      "smtp_exporter: probes SMTP servers (banner, EHLO, QUIT) and exports the results "
      "to Prometheus.",
      "smtp_exporter");
  app.set_version_flag("--version", smtp::version_line("smtp_exporter"));

  smtp::DaemonOptions serve;
  std::string config_file;
  bool config_check = false;
  std::string log_level = "info";
  std::string log_format = "logfmt";
  app.add_option("--config.file", config_file,
                 "Config file (YAML). Without it, an embedded config probes localhost:25.");
  app.add_flag("--config.check", config_check,
               "Validate the config file and exit (0 valid, 2 not).");
  app.add_option("--web.listen-address", serve.listen_address,
                 "Address for /metrics and the other HTTP endpoints.")
      ->capture_default_str();
  std::string web_config_file;
  app.add_option("--web.config.file", web_config_file,
                 "TLS, client certificates, basic auth and response headers for the HTTP "
                 "endpoints, in Prometheus exporter-toolkit's format.");
  app.add_option("--probe.max-concurrency", serve.max_concurrency,
                 "Most probes in flight at once (0: as many as the open-file limit allows, "
                 "at most 4096).")
      ->capture_default_str()
      // CLI11 would read "-1" into the unsigned count as a huge number.
      ->check(CLI::Validator(
          [](const std::string& text) {
            return text.find('-') == std::string::npos ? std::string()
                                                       : std::string("must not be negative");
          },
          "NONNEGATIVE"));
  std::string auto_reload = "0s";
  app.add_option("--config.auto-reload-interval", auto_reload,
                 "Check the config file this often and reload it when its content changed "
                 "(follows symlinks, as Kubernetes ConfigMaps swap them). 0s: never.")
      ->capture_default_str();
  std::string probe_timeout_offset = "500ms";
  app.add_option("--probe.timeout-offset", probe_timeout_offset,
                 "Taken from Prometheus's scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) "
                 "to get a /probe's deadline, as blackbox_exporter's --timeout-offset: a "
                 "duration, or seconds (0.5).")
      ->capture_default_str();
  std::optional<std::size_t> shard_index;
  app.add_option("--shard.count", serve.shard.count,
                 "Replicas sharing this config: each probes only the targets it owns "
                 "(rendezvous hashing of the target names).")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  app.add_option("--shard.index", shard_index,
                 "This replica's shard, 0 to --shard.count - 1 (default: the ordinal at the end "
                 "of the host name, as a StatefulSet's pod smtp-exporter-2 has 2).");
  app.add_option("--log.level", log_level, "debug, info, warn or error.")->capture_default_str();
  app.add_option("--log.format", log_format, "logfmt or json.")->capture_default_str();

  smtp::ProbeFaceOptions probe;
  CLI::App* probe_face = app.add_subcommand(
      "probe", "Probe one server now and print every phase, the dialogue and the verdict.");
  smtp::add_probe_face_options(*probe_face, probe);

  smtp::CheckFaceOptions check;
  CLI::App* check_face = app.add_subcommand(
      "check", "A Nagios/Icinga plugin with check_smtp's options: one probe, one status line.");
  smtp::add_check_face_options(*check_face, check);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (check_face->parsed()) return smtp::check_face_parse_error(*check_face, e);
    const int code = app.exit(e);
    return code == 0 ? 0 : smtp::kExitBadArguments;
  }

  smtp::log::Level level;
  smtp::log::Format format;
  if (!smtp::log::parse_level(log_level, level)) {
    std::cerr << "smtp_exporter: --log.level must be debug, info, warn or error\n";
    return smtp::kExitBadArguments;
  }
  if (!smtp::log::parse_format(log_format, format)) {
    std::cerr << "smtp_exporter: --log.format must be logfmt or json\n";
    return smtp::kExitBadArguments;
  }
  smtp::log::configure(level, format);

  if (probe_face->parsed()) return smtp::run_probe_face(probe);
  if (check_face->parsed()) return smtp::run_check_face(check);

  if (!config_file.empty()) serve.config_file = config_file;
  if (!web_config_file.empty()) serve.web_config_file = web_config_file;
  const std::optional<std::chrono::milliseconds> interval = smtp::parse_duration(auto_reload);
  if (!interval && auto_reload != "0") {
    std::cerr << "smtp_exporter: --config.auto-reload-interval: invalid duration \"" << auto_reload
              << "\" (expected e.g. 30s, 1m)\n";
    return smtp::kExitBadArguments;
  }
  serve.auto_reload_interval = interval.value_or(std::chrono::milliseconds(0));
  const std::optional<std::chrono::milliseconds> offset =
      smtp::parse_duration_or_seconds(probe_timeout_offset);
  if (!offset) {
    std::cerr << "smtp_exporter: --probe.timeout-offset: invalid duration \""
              << probe_timeout_offset << "\" (expected e.g. 500ms, 1s or 0.5)\n";
    return smtp::kExitBadArguments;
  }
  serve.probe_timeout_offset = *offset;
  if (serve.shard.count > 1) {
    if (!shard_index) shard_index = smtp::hostname_ordinal(smtp::machine_hostname());
    if (!shard_index || *shard_index >= serve.shard.count) {
      std::cerr << "smtp_exporter: --shard.index must be from 0 to " << serve.shard.count - 1
                << (shard_index ? ""
                                : " (the host name \"" + smtp::machine_hostname() +
                                      "\" ends in no ordinal such as -2)")
                << "\n";
      return smtp::kExitBadArguments;
    }
    serve.shard.index = *shard_index;
  }
  if (config_check) {
    try {
      smtp::Config config = smtp::load_config_or_default(serve.config_file, serve.shard);
      std::cout << (serve.config_file ? *serve.config_file : std::string("<embedded default>"))
                << ": OK, " << config.targets.size() << " target(s)\n";
      if (serve.web_config_file) {
        smtp::load_web_config_file(*serve.web_config_file);
        std::cout << *serve.web_config_file << ": OK\n";
      }
      return 0;
    } catch (const smtp::ConfigError& e) {
      std::cerr << e.what() << "\n";
      return smtp::kExitBadConfig;
    }
  }
  smtp::log::write(smtp::log::Level::kInfo, "starting smtp_exporter",
                   {{"version", std::string(smtp::kExporterVersion)},
                    {"revision", std::string(smtp::kExporterRevision)}});
  return smtp::run_daemon(serve);
}
