#pragma once
/// Sharding: several replicas share one config, and each probes only the targets it owns.
#include <cstddef>
#include <optional>
#include <string_view>

#include "exporter/config.h"

namespace smtp {

/// This replica's part of the targets.
struct Shard {
  std::size_t index = 0;
  std::size_t count = 1;
};

/// Which of `count` shards owns the target named `name`: rendezvous (highest random weight)
/// hashing, stable across machines and builds. When `count` grows from N to N+1, only the
/// targets the new shard wins move (about 1/(N+1) of them); the others stay where they were.
std::size_t shard_of(std::string_view name, std::size_t count);

/// Drops the targets `shard` does not own.
void keep_shard(Config& config, const Shard& shard);

/// The ordinal a StatefulSet gives its pods' host names: "smtp-exporter-2" -> 2. Nothing if the
/// name does not end in "-" and digits.
std::optional<std::size_t> hostname_ordinal(std::string_view hostname);

}  // namespace smtp
