#include "exporter/shard.h"

#include <algorithm>
#include <cstdint>

namespace smtp {
namespace {

// FNV-1a over the name, then the shard number, then a final mix (splitmix64's) so that weights
// for neighbouring shard numbers are independent.
std::uint64_t weight(std::string_view name, std::size_t shard) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : name) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  hash ^= shard + 0x9e3779b97f4a7c15ull;
  hash ^= hash >> 30;
  hash *= 0xbf58476d1ce4e5b9ull;
  hash ^= hash >> 27;
  hash *= 0x94d049bb133111ebull;
  hash ^= hash >> 31;
  return hash;
}

}  // namespace

std::size_t shard_of(std::string_view name, std::size_t count) {
  std::size_t best = 0;
  std::uint64_t best_weight = 0;
  for (std::size_t shard = 0; shard < count; ++shard) {
    const std::uint64_t w = weight(name, shard);
    if (shard == 0 || w > best_weight) {
      best = shard;
      best_weight = w;
    }
  }
  return best;
}

void keep_shard(Config& config, const Shard& shard) {
  if (shard.count <= 1) return;
  std::erase_if(config.targets, [&shard](const TargetConfig& target) {
    return shard_of(target.name, shard.count) != shard.index;
  });
}

std::optional<std::size_t> hostname_ordinal(std::string_view hostname) {
  // A fully qualified name: the pod's own label is the first one.
  hostname = hostname.substr(0, hostname.find('.'));
  const std::size_t dash = hostname.rfind('-');
  if (dash == std::string_view::npos || dash + 1 == hostname.size()) return std::nullopt;
  const std::string_view digits = hostname.substr(dash + 1);
  if (digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::size_t value = 0;
  for (const char c : digits) value = value * 10 + static_cast<std::size_t>(c - '0');
  return value;
}

}  // namespace smtp
