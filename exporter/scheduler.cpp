#include "exporter/scheduler.h"

#include <algorithm>

namespace smtp {

Schedule::Schedule(std::size_t max_concurrency)
    : max_concurrency_(std::max<std::size_t>(1, max_concurrency)) {}

Schedule::Duration Schedule::spread_offset(std::string_view name, Duration interval) {
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a: stable across builds and machines
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  auto ticks = static_cast<std::uint64_t>(std::max<Duration::rep>(1, interval.count()));
  return Duration(static_cast<Duration::rep>(hash % ticks));
}

Schedule::JobId Schedule::add(std::string_view name, Duration interval, TimePoint now) {
  return add_at(interval, now + spread_offset(name, interval));
}

Schedule::JobId Schedule::add_at(Duration interval, TimePoint first_run) {
  JobId id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<JobId>(jobs_.size());
    jobs_.emplace_back();
  }
  Job& job = jobs_[id];
  job.interval = interval;
  job.planned = first_run;
  job.live = true;
  job.running = false;
  job.replanned.reset();
  ++live_jobs_;
  planned_.push({job.planned, id, job.generation});
  return id;
}

void Schedule::remove(JobId id) {
  Job& job = jobs_.at(id);
  if (!job.live) return;
  job.live = false;
  ++job.generation;
  --live_jobs_;
  // A running job's id is recycled only when it has finished, so finished() finds it.
  if (!job.running) free_ids_.push_back(id);
}

void Schedule::replan(JobId id, Duration interval, TimePoint at) {
  Job& job = jobs_.at(id);
  if (!job.live) return;
  job.interval = interval;
  if (job.running) {
    job.replanned = at;
    return;
  }
  ++job.generation;
  job.planned = at;
  planned_.push({at, id, job.generation});
}

bool Schedule::is_current(const Planned& entry) const {
  const Job& job = jobs_[entry.job];
  return job.live && job.generation == entry.generation;
}

std::vector<Schedule::Start> Schedule::take_due(TimePoint now) {
  while (!planned_.empty() && planned_.top().at <= now) {
    if (is_current(planned_.top())) waiting_.push_back(planned_.top());
    planned_.pop();
  }
  std::vector<Start> starts;
  while (!waiting_.empty() && running_ < max_concurrency_) {
    Planned entry = waiting_.front();
    waiting_.pop_front();
    if (!is_current(entry)) continue;
    jobs_[entry.job].running = true;
    ++running_;
    starts.push_back({entry.job, entry.at});
  }
  return starts;
}

void Schedule::finished(JobId id, TimePoint now) {
  Job& job = jobs_.at(id);
  if (!job.running) return;
  job.running = false;
  --running_;
  if (!job.live) {
    free_ids_.push_back(id);
    return;
  }
  if (job.replanned) {
    job.planned = std::max(*job.replanned, now);
    job.replanned.reset();
    planned_.push({job.planned, id, job.generation});
    return;
  }
  TimePoint next = job.planned + job.interval;
  if (next <= now) {
    // Late (a stall, or a full concurrency cap): skip the missed runs, keep the phase.
    auto missed = (now - job.planned) / job.interval;
    next = job.planned + (missed + 1) * job.interval;
  }
  job.planned = next;
  planned_.push({next, id, job.generation});
}

std::optional<Schedule::TimePoint> Schedule::next_wakeup() const {
  if (running_ >= max_concurrency_) return std::nullopt;
  std::optional<TimePoint> wakeup;
  if (!waiting_.empty()) wakeup = waiting_.front().at;
  if (!planned_.empty() && (!wakeup || planned_.top().at < *wakeup)) wakeup = planned_.top().at;
  return wakeup;
}

}  // namespace smtp
