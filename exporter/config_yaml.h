#pragma once
/// The YAML walk both config files share (the probe config and `--web.config.file`): where a
/// value sits, a map's entries in file order with unknown and repeated keys refused, and
/// messages that name file, line and key path.
#include <yaml-cpp/yaml.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace smtp::config_yaml {

/// Where a value sits in the file: what an error message names.
struct Where {
  int line = 0;  // 1-based; 0 if unknown
  std::string path;
};

/// One key and its value, with where the value (or, for an empty value, the key) sits.
struct Entry {
  std::string key;
  YAML::Node value;
  Where where;
};
using Entries = std::vector<Entry>;

const Entry* find(const Entries& entries, std::string_view key);

/// The node's 1-based line, 0 for a node yaml-cpp gives no mark.
int line_of(const YAML::Node& node);
int line_of(const YAML::Mark& mark);

/// `parent.key`, the key quoted unless it is a plain word.
std::string join_path(const std::string& parent, std::string_view key);

/// "a map", "a list", "a string" or "nothing": for "expected X, got Y".
std::string node_kind(const YAML::Node& node);

/// The map's entries in file order. Throws ConfigError (naming `source`) for a key that is not
/// a string, a key outside `allowed` (unless `allowed` is empty) and a repeated key.
Entries entries_of(std::string_view source, const YAML::Node& map, const Where& where,
                   std::span<const std::string_view> allowed);

}  // namespace smtp::config_yaml
