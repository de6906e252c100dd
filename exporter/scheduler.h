#pragma once
/// When each target runs. Pure planning, no I/O: the daemon asks what may start now and tells
/// when a probe has finished, so the rules (spreading, no overlap, the concurrency cap, catching
/// up after a stall) are tested with a fake clock.
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

namespace smtp {

class Schedule {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Duration = Clock::duration;
  using JobId = std::uint32_t;

  /// A probe allowed to start now, and when it was planned to start.
  struct Start {
    JobId job;
    TimePoint planned;
  };

  explicit Schedule(std::size_t max_concurrency);

  /// Adds a job run every `interval`. Its first run is at `now` plus an offset within the
  /// interval taken from a hash of `name`, so that many jobs added at once spread evenly and a
  /// job keeps its place across restarts relative to the others.
  JobId add(std::string_view name, Duration interval, TimePoint now);

  /// Adds a job whose first run is at `first_run` (e.g. now, for work that must not wait).
  JobId add_at(Duration interval, TimePoint first_run);

  /// Forgets a job. If it is running, finished() must still be called for it.
  void remove(JobId job);

  /// Gives a job a new interval and plans its next run at `at`. A running job is not started a
  /// second time: its next run is planned at `at` (or at once, if that has passed) when it
  /// finishes.
  void replan(JobId job, Duration interval, TimePoint at);

  /// The jobs due at `now` that may start within the concurrency cap, oldest plan first. Each
  /// counts as running until finished() is called for it.
  std::vector<Start> take_due(TimePoint now);

  /// A running job ended at `now`: frees its slot and plans its next run at the first multiple
  /// of its interval after its last plan that is still ahead of `now` (a job never overlaps
  /// itself, and runs missed during a stall are skipped rather than bunched).
  void finished(JobId job, TimePoint now);

  /// When take_due() will next have something to return: in the past if due jobs wait for a
  /// slot that is free now; nothing if no job is planned or every slot is taken (then the next
  /// finished() is the moment to ask again).
  std::optional<TimePoint> next_wakeup() const;

  std::size_t running() const { return running_; }
  std::size_t jobs() const { return live_jobs_; }
  std::size_t max_concurrency() const { return max_concurrency_; }

  /// The offset of a job's first run within its interval (FNV-1a of the name).
  static Duration spread_offset(std::string_view name, Duration interval);

 private:
  struct Job {
    Duration interval{};
    TimePoint planned{};
    std::uint32_t generation = 0;  // bumped on remove and replan, so stale entries are skipped
    std::optional<TimePoint> replanned;  // replan() while running: the next run, at finish
    bool live = false;
    bool running = false;
  };
  struct Planned {
    TimePoint at;
    JobId job;
    std::uint32_t generation;
    bool operator>(const Planned& other) const { return at > other.at; }
  };

  bool is_current(const Planned& entry) const;

  std::size_t max_concurrency_;
  std::size_t running_ = 0;
  std::size_t live_jobs_ = 0;
  std::vector<Job> jobs_;
  std::vector<JobId> free_ids_;
  std::priority_queue<Planned, std::vector<Planned>, std::greater<>> planned_;
  std::deque<Planned> waiting_;  // due, but every slot was taken
};

}  // namespace smtp
