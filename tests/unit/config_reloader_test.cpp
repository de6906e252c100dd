// Reloads: parsed on the worker, applied on the probe thread, storms coalesced.
#include "exporter/config_reloader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace smtp {
namespace {

using namespace std::chrono_literals;

/// A gate the worker's load waits at, so a test can pile up reloads while one is running.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void wait_for_waiter() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return waiting_ > 0; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int waiting_ = 0;
  bool open_ = false;
};

asio::awaitable<void> reload_into(ConfigReloader& reloader,
                                  std::vector<ConfigReloader::Outcome>& outcomes) {
  outcomes.push_back(co_await reloader.reload());
}

class ConfigReloaderTest : public ::testing::Test {
 protected:
  asio::io_context io_;
  asio::thread_pool worker_{1};
};

TEST_F(ConfigReloaderTest, ParsesOffTheProbeThreadAndAppliesOnIt) {
  std::thread::id load_thread;
  std::thread::id apply_thread;
  int reports = 0;
  ConfigReloader reloader(
      io_.get_executor(), worker_.get_executor(),
      [&] {
        load_thread = std::this_thread::get_id();
        return Config{};
      },
      [&](Config) { apply_thread = std::this_thread::get_id(); },
      [&](const ConfigReloader::Outcome& outcome) {
        ++reports;
        EXPECT_TRUE(outcome.ok);
      });
  std::vector<ConfigReloader::Outcome> outcomes;
  asio::co_spawn(io_, reload_into(reloader, outcomes), asio::detached);
  io_.run_for(10s);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].ok);
  EXPECT_EQ(reports, 1);
  EXPECT_EQ(apply_thread, std::this_thread::get_id());  // the thread that runs io_
  EXPECT_NE(load_thread, std::this_thread::get_id());
  EXPECT_NE(load_thread, std::thread::id());
}

TEST_F(ConfigReloaderTest, AStormOfReloadsCostsOneLoadAtATime) {
  // Four clients looping POST /-/reload once pushed the schedule lag from 0.1 ms to 1.1 s.
  Gate gate;
  std::atomic<int> loads = 0;
  std::atomic<int> concurrent = 0;
  std::atomic<int> most_concurrent = 0;
  int applies = 0;
  ConfigReloader reloader(
      io_.get_executor(), worker_.get_executor(),
      [&] {
        const int now = ++concurrent;
        most_concurrent = std::max(most_concurrent.load(), now);
        if (++loads == 1) gate.wait();
        --concurrent;
        return Config{};
      },
      [&](Config) { ++applies; }, [](const ConfigReloader::Outcome&) {});
  std::vector<ConfigReloader::Outcome> outcomes;
  asio::co_spawn(io_, reload_into(reloader, outcomes), asio::detached);
  io_.poll();
  gate.wait_for_waiter();  // the first load is running on the worker
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(io_, reload_into(reloader, outcomes), asio::detached);
  }
  io_.poll();
  gate.open();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (outcomes.size() < 6 && std::chrono::steady_clock::now() < deadline) io_.run_for(10ms);
  ASSERT_EQ(outcomes.size(), 6u);
  for (const auto& outcome : outcomes) EXPECT_TRUE(outcome.ok);
  EXPECT_EQ(loads, 2);  // the running one, and one for all five that came during it
  EXPECT_EQ(applies, 2);
  EXPECT_EQ(most_concurrent, 1);
}

TEST_F(ConfigReloaderTest, ABadConfigIsReportedAndNotApplied) {
  int applies = 0;
  std::string reported;
  ConfigReloader reloader(
      io_.get_executor(), worker_.get_executor(),
      []() -> Config { throw ConfigError("smtp.yml:3: targets[0].address: missing port"); },
      [&](Config) { ++applies; },
      [&](const ConfigReloader::Outcome& outcome) { reported = outcome.error; });
  std::vector<ConfigReloader::Outcome> outcomes;
  asio::co_spawn(io_, reload_into(reloader, outcomes), asio::detached);
  io_.run_for(10s);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].ok);
  EXPECT_EQ(outcomes[0].error, "smtp.yml:3: targets[0].address: missing port");
  EXPECT_EQ(reported, outcomes[0].error);
  EXPECT_EQ(applies, 0);
}

TEST_F(ConfigReloaderTest, AnApplyThatThrowsKeepsTheOldConfigAndSaysWhy) {
  ConfigReloader reloader(
      io_.get_executor(), worker_.get_executor(), [] { return Config{}; },
      [](Config) { throw std::runtime_error("DNS server 127.0.0.1:1: cannot start"); },
      [](const ConfigReloader::Outcome&) {});
  std::vector<ConfigReloader::Outcome> outcomes;
  asio::co_spawn(io_, reload_into(reloader, outcomes), asio::detached);
  io_.run_for(10s);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].ok);
  EXPECT_EQ(outcomes[0].error, "DNS server 127.0.0.1:1: cannot start");
}

}  // namespace
}  // namespace smtp
