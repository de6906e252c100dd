// Sharding a shared config between replicas: every target has exactly one owner, the owners are
// balanced, and growing the replica count moves few targets.
#include "exporter/shard.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace smtp {
namespace {

std::vector<std::string> names(std::size_t count) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) out.push_back("mx" + std::to_string(i) + ".example.net");
  return out;
}

TEST(ShardTest, EveryTargetHasExactlyOneOwner) {
  Config config;
  for (const std::string& name : names(300)) {
    TargetConfig target;
    target.name = name;
    config.targets.push_back(target);
  }
  std::size_t total = 0;
  std::vector<std::size_t> sizes;
  for (std::size_t index = 0; index < 3; ++index) {
    Config shard = config;
    keep_shard(shard, {index, 3});
    for (const TargetConfig& target : shard.targets) {
      EXPECT_EQ(shard_of(target.name, 3), index);
    }
    total += shard.targets.size();
    sizes.push_back(shard.targets.size());
  }
  EXPECT_EQ(total, 300u);  // each exactly once: the owner is a function of the name
  for (std::size_t size : sizes) {
    EXPECT_GT(size, 70u);  // balanced (100 each on average)
    EXPECT_LT(size, 130u);
  }
}

TEST(ShardTest, OneShardKeepsEverything) {
  Config config;
  config.targets.resize(5);
  keep_shard(config, {0, 1});
  EXPECT_EQ(config.targets.size(), 5u);
}

TEST(ShardTest, GrowingFromThreeToFourMovesOnlyWhatTheNewShardTakes) {
  std::size_t moved = 0;
  std::size_t to_new = 0;
  for (const std::string& name : names(3000)) {
    const std::size_t before = shard_of(name, 3);
    const std::size_t after = shard_of(name, 4);
    if (before != after) {
      ++moved;
      if (after == 3) ++to_new;
    }
  }
  EXPECT_EQ(moved, to_new);  // nothing moves between the old shards
  EXPECT_GT(moved, 3000u / 4 - 150);
  EXPECT_LT(moved, 3000u / 4 + 150);
}

TEST(ShardTest, TheOwnerIsStable) {
  // The same on every machine and build: FNV-1a and a fixed mix, no std::hash.
  EXPECT_EQ(shard_of("mx1.example.net", 3), shard_of("mx1.example.net", 3));
  std::vector<std::size_t> owners;
  for (const std::string& name : names(8)) owners.push_back(shard_of(name, 3));
  EXPECT_EQ(owners, (std::vector<std::size_t>{2, 1, 0, 1, 2, 2, 1, 0}));
}

TEST(ShardTest, HostnameOrdinal) {
  EXPECT_EQ(hostname_ordinal("smtp-exporter-2"), 2u);
  EXPECT_EQ(hostname_ordinal("smtp-exporter-0.smtp-exporter.monitoring.svc"), 0u);
  EXPECT_EQ(hostname_ordinal("smtp-exporter-12"), 12u);
  EXPECT_EQ(hostname_ordinal("smtp-exporter"), std::nullopt);
  EXPECT_EQ(hostname_ordinal("smtp-exporter-"), std::nullopt);
  EXPECT_EQ(hostname_ordinal("smtp-exporter-2a"), std::nullopt);
  EXPECT_EQ(hostname_ordinal("web1"), std::nullopt);
}

}  // namespace
}  // namespace smtp
