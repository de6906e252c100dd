#include "exporter/config_yaml.h"

#include <algorithm>

#include "exporter/config_parser.h"
#include "exporter/config_values.h"

namespace smtp::config_yaml {
namespace {

// A key as it appears in a key path: plain if it is a plain word, quoted otherwise.
std::string path_key(std::string_view key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return plain ? std::string(key) : quote(key);
}

}  // namespace

const Entry* find(const Entries& entries, std::string_view key) {
  for (const Entry& entry : entries) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

int line_of(const YAML::Mark& mark) { return mark.is_null() ? 0 : mark.line + 1; }

int line_of(const YAML::Node& node) { return line_of(node.Mark()); }

std::string join_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? path_key(key) : parent + "." + path_key(key);
}

std::string node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a string";
    default:
      return "nothing";
  }
}

Entries entries_of(std::string_view source, const YAML::Node& map, const Where& where,
                   std::span<const std::string_view> allowed) {
  Entries entries;
  // Copies, not references: the iterator's pair is a temporary proxy.
  for (const auto& pair : map) {
    const YAML::Node key = pair.first;
    const YAML::Node value = pair.second;
    const int key_line = line_of(key);
    if (!key.IsScalar()) {
      fail_config(source, key_line, where.path, "a key must be a string, not " + node_kind(key));
    }
    const std::string& name = key.Scalar();
    const std::string path = join_path(where.path, name);
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string expected;
      for (std::string_view candidate : allowed) {
        if (!expected.empty()) expected += ", ";
        expected += candidate;
      }
      fail_config(source, key_line, path, "unknown key (expected one of: " + expected + ")");
    }
    if (const Entry* earlier = find(entries, name)) {
      fail_config(source, key_line, path,
                  "duplicate key, first set at line " + std::to_string(earlier->where.line));
    }
    // A scalar is blamed where it is written. An empty value's mark points past the key, and a
    // block map or list starts on the line after it: for those the key's line reads better.
    const int value_line = value.IsScalar() ? line_of(value) : key_line;
    entries.push_back(Entry{name, value, Where{value_line ? value_line : key_line, path}});
  }
  return entries;
}

}  // namespace smtp::config_yaml
