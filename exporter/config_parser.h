#pragma once
/// The YAML tree -> Config walk behind parse_config(). Internal to exporter/config.cpp.
#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>

#include "exporter/config.h"

namespace smtp {

/// Walks a loaded YAML document once, applying defaults; the first problem found is thrown as
/// a ConfigError naming `source`, the line and the key path.
Config parse_config_document(const YAML::Node& root, std::string_view source,
                             const std::string& default_helo_name);

/// Throws the ConfigError `source:line: path: problem` (line 0 and an empty path are left out).
[[noreturn]] void fail_config(std::string_view source, int line, const std::string& path,
                              const std::string& problem);

}  // namespace smtp
