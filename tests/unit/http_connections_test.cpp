#include "exporter/http_connections.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace smtp {
namespace {

using testing::ElementsAre;
using testing::IsEmpty;

TEST(ConnectionTableTest, EvictsTheConnectionWaitingLongestFirst) {
  ConnectionTable table(1 << 20);
  const auto a = table.add();
  const auto b = table.add();
  const auto c = table.add();
  EXPECT_EQ(table.size(), 3u);
  auto first = table.evict_idlest();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, a);
  EXPECT_EQ(first->why, HttpEviction::kIdle);
  EXPECT_FALSE(table.contains(a));
  EXPECT_EQ(table.evict_idlest()->id, b);
  EXPECT_EQ(table.evict_idlest()->id, c);
  EXPECT_FALSE(table.evict_idlest());
  EXPECT_EQ(table.size(), 0u);
}

TEST(ConnectionTableTest, AConnectionThatWasServedWaitsAtTheEndOfTheLine) {
  ConnectionTable table(1 << 20);
  const auto a = table.add();
  const auto b = table.add();
  table.handle_request(a);
  table.start_write(a, nullptr, 0);
  table.end_write(a);
  table.wait_for_request(a);  // keep-alive: a waits again, after b
  EXPECT_EQ(table.evict_idlest()->id, b);
  EXPECT_EQ(table.evict_idlest()->id, a);
}

TEST(ConnectionTableTest, ConnectionsBusyWithARequestAreNeverEvicted) {
  ConnectionTable table(1 << 20);
  const auto handling = table.add();
  const auto writing = table.add();
  const auto waiting = table.add();
  table.handle_request(handling);
  table.handle_request(writing);
  static const std::string body = "page";
  table.start_write(writing, body.data(), body.size());
  EXPECT_EQ(table.evict_idlest()->id, waiting);
  EXPECT_FALSE(table.evict_idlest());
  EXPECT_EQ(table.size(), 2u);
}

TEST(ConnectionTableTest, ABegunRequestIsEvictedAsIncomplete) {
  ConnectionTable table(1 << 20);
  const auto slow = table.add();
  const auto idle = table.add();
  table.request_begun(slow);  // its place in line stays: it is still the oldest
  const auto first = table.evict_idlest();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, slow);
  EXPECT_EQ(first->why, HttpEviction::kIncompleteRequest);
  EXPECT_EQ(table.evict_idlest()->why, HttpEviction::kIdle);
  (void)idle;
}

TEST(ConnectionTableTest, RemoveIsIdempotentAndForgetsEveryStage) {
  ConnectionTable table(1 << 20);
  const auto a = table.add();
  const auto b = table.add();
  static const std::string body(100, 'x');
  table.handle_request(b);
  table.start_write(b, body.data(), body.size());
  EXPECT_EQ(table.pinned_bytes(), 100u);
  table.remove(b);
  table.remove(b);
  EXPECT_EQ(table.pinned_bytes(), 0u);
  table.remove(a);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.evict_idlest());
  // Calls for a connection already gone change nothing.
  table.wait_for_request(a);
  table.end_write(b);
  EXPECT_EQ(table.size(), 0u);
}

TEST(ConnectionTableTest, ASharedBodyIsPinnedOnceAndFreedWithItsLastWriter) {
  ConnectionTable table(1000);
  static const std::string page(600, 'p');
  const auto a = table.add();
  const auto b = table.add();
  const auto c = table.add();
  for (const auto id : {a, b, c}) {
    table.handle_request(id);
    EXPECT_THAT(table.start_write(id, page.data(), page.size()), IsEmpty());
  }
  EXPECT_EQ(table.pinned_bytes(), 600u);
  table.end_write(a);
  table.end_write(b);
  EXPECT_EQ(table.pinned_bytes(), 600u);
  table.end_write(c);
  EXPECT_EQ(table.pinned_bytes(), 0u);
}

TEST(ConnectionTableTest, OverTheBoundTheEarliestWritersAreClosedUntilItFits) {
  ConnectionTable table(1000);
  static const std::string old_page(600, 'o');
  static const std::string new_page(600, 'n');
  static const std::string small(10, 's');
  const auto old1 = table.add();
  const auto old2 = table.add();
  const auto small_writer = table.add();
  const auto fresh = table.add();
  for (const auto id : {old1, old2, small_writer, fresh}) table.handle_request(id);
  table.start_write(old1, old_page.data(), old_page.size());
  table.start_write(old2, old_page.data(), old_page.size());
  table.start_write(small_writer, small.data(), small.size());
  EXPECT_EQ(table.pinned_bytes(), 610u);
  // 1210 > 1000: both writers of the old page go (closing one alone frees nothing); the small
  // one, written after them, stays.
  EXPECT_THAT(table.start_write(fresh, new_page.data(), new_page.size()), ElementsAre(old1, old2));
  EXPECT_EQ(table.pinned_bytes(), 610u);
  EXPECT_FALSE(table.contains(old1));
  EXPECT_FALSE(table.contains(old2));
  EXPECT_TRUE(table.contains(small_writer));
  EXPECT_TRUE(table.contains(fresh));
  // Their coroutines unwind later and remove them again: nothing changes.
  table.end_write(old1);
  table.remove(old2);
  EXPECT_EQ(table.pinned_bytes(), 610u);
}

TEST(ConnectionTableTest, AWriterIsNeverClosedForItsOwnBody) {
  ConnectionTable table(100);
  static const std::string huge(500, 'h');
  static const std::string other(50, 'o');
  const auto a = table.add();
  const auto b = table.add();
  table.handle_request(a);
  table.handle_request(b);
  table.start_write(a, other.data(), other.size());
  // Larger than the bound alone: every other writer goes, the new one is still written.
  EXPECT_THAT(table.start_write(b, huge.data(), huge.size()), ElementsAre(a));
  EXPECT_TRUE(table.contains(b));
  EXPECT_EQ(table.pinned_bytes(), 500u);
}

}  // namespace
}  // namespace smtp
