#include "exporter/probe_runner.h"

#include <algorithm>
#include <exception>
#include <string>
#include <variant>
#include <vector>

#include "exporter/log.h"
#include "exporter/wall_clock.h"
#include "probes/resolve.h"

namespace smtp {
namespace {

using Clock = Schedule::Clock;

/// Probes due within the same 4 ms tick start together: at hundreds of probes a second and more the
/// schedule loop then wakes once a tick for all that are due rather than once for each
/// (every wake-up re-arms the reactor's timer: two system calls), and a start is at most this late.
constexpr std::chrono::milliseconds kWakeupTick{4};

/// When the loop wakes for a start due at `at`: the end of that start's tick, or now if it is due.
Clock::time_point wakeup_at(Clock::time_point at, Clock::time_point now) {
  if (at <= now) return at;
  const auto ticks = (at.time_since_epoch() + kWakeupTick - Clock::duration(1)) / kWakeupTick;
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(ticks * kWakeupTick));
}

/// What a schedule job runs.
using Job = std::variant<std::monostate, std::shared_ptr<Endpoint>, std::shared_ptr<LookupGroup>>;

}  // namespace

/// Everything the coroutines touch. They hold it by shared_ptr, so that frames destroyed late
/// (when the io_context goes, after the runner) still find it; `stopped` tells them not to
/// touch the schedule any more.
struct ProbeRunner::Core {
  Core(asio::any_io_executor ex, ExporterMetrics& exporter_metrics, ProbeRunnerOptions opts)
      : executor(std::move(ex)),
        metrics(exporter_metrics),
        options(std::move(opts)),
        schedule(options.max_concurrency),
        wakeup(executor) {}

  void register_job(Schedule::JobId id, Job job) {
    if (jobs.size() <= id) jobs.resize(id + 1);
    jobs[id] = std::move(job);
  }

  void remove_job(Schedule::JobId id) {
    schedule.remove(id);
    jobs[id] = std::monostate{};  // the endpoint's memory goes now, not when the id is reused
  }

  /// Puts what the target set changed into the schedule, and wakes the loop: new jobs may be
  /// due before the timer's current expiry.
  void schedule_changes(const TargetSetChanges& changes, Clock::time_point now) {
    for (const auto& endpoint : changes.removed) remove_job(endpoint->job);
    for (const auto& group : changes.groups_removed) remove_job(group->job);
    for (const auto& endpoint : changes.added) {
      endpoint->job = schedule.add(endpoint->key, endpoint->config->interval, now);
      register_job(endpoint->job, endpoint);
    }
    for (const auto& endpoint : changes.rescheduled) {
      const Schedule::Duration interval = endpoint->config->interval;
      schedule.replan(endpoint->job, interval,
                      now + Schedule::spread_offset(endpoint->key, interval));
    }
    for (const auto& group : changes.groups_added) {
      group->job = schedule.add_at(group->config->mx_refresh, now);
      register_job(group->job, group);
    }
    // A group whose refresh is running now is looked up again when it ends (its answer will be
    // stale): one refresh of a group at a time.
    for (const auto& group : changes.groups_kept) {
      schedule.replan(group->job, group->config->mx_refresh, now);
    }
    if (changes.endpoints_over_limit > 0) {
      metrics.count_endpoints_over_limit(changes.endpoints_over_limit);
    }
    wakeup.cancel();
  }

  void job_finished(Schedule::JobId job) {
    if (stopped) return;
    const Clock::time_point now = Clock::now();
    schedule.finished(job, now);
    metrics.set_probes_in_flight(schedule.running());
    // The loop looks again only if this made something due before its timer: a slot freed for a
    // job that waits for one. A job's own next run is an interval away, after the timer; waking
    // the loop for every probe that ends would cost a pass and a timer re-arm each.
    const std::optional<Clock::time_point> next = schedule.next_wakeup();
    if (next && wakeup_at(*next, now) < wakeup.expiry()) wakeup.cancel();
  }

  void apply_lookup(LookupGroup& group, std::uint64_t generation, LookupOutcome outcome) {
    const FailureReason failure = outcome.failure;
    const std::string detail = outcome.detail;
    std::optional<TargetSetChanges> changes =
        targets.apply_lookup(group, generation, std::move(outcome), unix_now());
    if (!changes) {
      log::write(log::Level::kDebug, "dropped a lookup that a reload made stale",
                 {{"target", group.config->name}});
      return;
    }
    if (failure != FailureReason::kNone) {
      log::write(log::Level::kWarn, "probe failed",
                 {{"target", group.config->name},
                  {"reason", reason_name(failure)},
                  {"phase", phase_name(Phase::kResolve)},
                  {"err", detail}});
    }
    if (changes->endpoints_over_limit > 0) {
      log::write(log::Level::kWarn, "more endpoints than max_endpoints: the rest are not probed",
                 {{"target", group.config->name},
                  {"max_endpoints", group.config->max_endpoints},
                  {"left_out", changes->endpoints_over_limit}});
    }
    schedule_changes(*changes, Clock::now());
    if (!changes->endpoints_changed()) return;
    std::string listed;
    for (const EndpointId& id : group.endpoints) {
      if (!listed.empty()) listed += ',';
      listed += id.mx_host.empty() ? id.address
                                   : id.mx_host + (id.address.empty() ? "" : "/" + id.address);
    }
    log::write(log::Level::kInfo, "endpoints changed",
               {{"target", group.config->name}, {"endpoints", listed}});
  }

  void log_failure(const Endpoint& endpoint, const ProbeResult& result) {
    if (!log::enabled(log::Level::kWarn)) return;
    const std::string where = format_host_port(endpoint.probe->host, endpoint.probe->port);
    if (result.failure == FailureReason::kExporterOverloaded) {
      // It hits every probe alike while it lasts: one line a minute, not one per probe.
      overload_log.write(
          "exporter_overloaded", log::Level::kWarn,
          "probes cannot get a socket: the exporter's open-file limit is spent "
          "(not the mail servers' fault)",
          {{"target", endpoint.config->name}, {"endpoint", where}, {"err", result.error_detail}});
      return;
    }
    const std::string_view phase = result.failed_phase ? phase_name(*result.failed_phase) : "";
    log::write(log::Level::kWarn, "probe failed",
               {{"target", endpoint.config->name},
                log::Field::unless_empty("mx", endpoint.id.mx_host),
                {"endpoint", where},
                log::Field::unless_empty("peer", result.peer),
                {"reason", reason_name(result.failure)},
                {"phase", phase},
                {"err", result.error_detail}});
    if (!log::enabled(log::Level::kDebug)) return;
    for (const TranscriptLine& line : result.transcript) {
      log::write(log::Level::kDebug, "dialogue",
                 {{"target", endpoint.config->name},
                  {"endpoint", where},
                  {"ms", std::chrono::duration<double, std::milli>(line.at).count()},
                  {"dir", transcript_source(line.direction)},
                  {"line", line.text}});
    }
  }

  asio::any_io_executor executor;
  ExporterMetrics& metrics;
  ProbeRunnerOptions options;
  Schedule schedule;
  TargetSet targets;
  std::vector<Job> jobs;  // indexed by Schedule::JobId
  // Replaced at every apply; probes and lookups in flight keep theirs through their own copy.
  std::shared_ptr<Resolver> resolver;
  asio::steady_timer wakeup;
  log::RateLimiter overload_log;
  bool started = false;
  bool stopped = false;
};

namespace {

using Core = std::shared_ptr<ProbeRunner::Core>;

/// Gives the job's schedule slot back when the coroutine ends, whether it returned, threw, or
/// was destroyed unfinished: a target is never left unscheduled.
class SlotGuard {
 public:
  SlotGuard(Core core, Schedule::JobId job) : core_(std::move(core)), job_(job) {}
  ~SlotGuard() { core_->job_finished(job_); }
  SlotGuard(const SlotGuard&) = delete;
  SlotGuard& operator=(const SlotGuard&) = delete;

 private:
  Core core_;
  Schedule::JobId job_;
};

// Parameters by value: the coroutine frame owns them (GCC 12 coroutine rules).
asio::awaitable<void> probe_endpoint(Core core, std::shared_ptr<Endpoint> endpoint,
                                     Schedule::JobId job) {
  SlotGuard slot(core, job);
  std::shared_ptr<const ProbeTarget> probe = endpoint->probe;
  std::shared_ptr<const TargetConfig> config = endpoint->config;
  std::shared_ptr<Resolver> resolver = core->resolver;
  ProbeOptions options;
  options.resolver = resolver.get();
  // The status page keeps the last few dialogues; the debug log prints whole ones.
  options.transcript_limit_bytes = log::enabled(log::Level::kDebug) ? 4096 : kTranscriptProbeBytes;
  asio::awaitable<ProbeResult> probing = core->options.probe(*probe, options);
  ProbeResult result = co_await std::move(probing);
  if (endpoint->removed || core->stopped) co_return;
  const double now = unix_now();
  record_probe(endpoint->series.edit(), result, *config, now);
  if (!result.success()) core->log_failure(*endpoint, result);
  record_status(endpoint->status.edit(), *probe, std::move(result), now);
}

asio::awaitable<void> refresh_group(Core core, std::shared_ptr<LookupGroup> group,
                                    Schedule::JobId job) {
  SlotGuard slot(core, job);
  const std::uint64_t generation = group->generation;
  std::shared_ptr<const TargetConfig> config = group->config;
  std::shared_ptr<Resolver> resolver = core->resolver;
  const Clock::time_point started = Clock::now();
  const Clock::time_point deadline = started + config->timeout;
  LookupOutcome outcome;
  std::vector<std::string> hosts;  // whose addresses are wanted (all_addresses)
  if (!config->mx_domain.empty()) {
    MxResult found = co_await resolver->resolve_mx(config->mx_domain, deadline);
    outcome = mx_lookup_outcome(*config, found);
    if (config->all_addresses) {
      for (const auto& [host, preference] : outcome.mx_hosts) hosts.push_back(host);
    }
  } else {
    hosts.push_back(config->host);
  }
  for (const std::string& host : hosts) {
    if (outcome.failure != FailureReason::kNone) break;
    ResolveResult resolved = co_await resolver->resolve_host(host, config->port, deadline);
    const std::string mx_host = config->mx_domain.empty() ? std::string() : host;
    add_address_endpoints(outcome, *config, mx_host, host, resolved);
  }
  outcome.took = Clock::now() - started;
  if (core->stopped) co_return;
  core->apply_lookup(*group, generation, std::move(outcome));
}

/// A detached coroutine's exception would vanish with it: say which target it hit.
auto log_exception(std::string what, std::string key) {
  return [what = std::move(what), key = std::move(key)](std::exception_ptr error) {
    if (!error) return;
    std::string message = "unknown exception";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    log::write(log::Level::kError, "internal error: the run ended early, its slot is freed",
               {{"what", what}, {"target", key}, {"err", message}});
  };
}

asio::awaitable<void> schedule_loop(Core core) {
  while (!core->stopped) {
    const Clock::time_point now = Clock::now();
    for (const Schedule::Start& start : core->schedule.take_due(now)) {
      core->metrics.observe_schedule_lag(now - start.planned);
      const Job& job = core->jobs[start.job];
      if (const auto* endpoint = std::get_if<std::shared_ptr<Endpoint>>(&job)) {
        asio::co_spawn(core->executor, probe_endpoint(core, *endpoint, start.job),
                       log_exception("probe", (*endpoint)->key));
      } else if (const auto* group = std::get_if<std::shared_ptr<LookupGroup>>(&job)) {
        asio::co_spawn(core->executor, refresh_group(core, *group, start.job),
                       log_exception("lookup", (*group)->config->name));
      } else {
        core->schedule.finished(start.job, now);  // cannot happen: a removed job is not due
      }
    }
    core->metrics.set_probes_in_flight(core->schedule.running());
    const std::optional<Clock::time_point> next = core->schedule.next_wakeup();
    core->wakeup.expires_at(next ? wakeup_at(*next, now) : Clock::time_point::max());
    boost::system::error_code ec;
    co_await core->wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

ProbeRunner::ProbeRunner(asio::any_io_executor executor, ExporterMetrics& metrics,
                         ProbeRunnerOptions options)
    : core_(std::make_shared<Core>(std::move(executor), metrics, std::move(options))) {}

ProbeRunner::~ProbeRunner() { stop(); }

ApplySummary ProbeRunner::apply(Config config) {
  // First, as it may throw: then nothing has changed.
  auto resolver = std::make_shared<Resolver>(core_->executor, config.dns.servers);
  core_->resolver = std::move(resolver);
  const Clock::time_point now = Clock::now();
  const TargetSetChanges changes = core_->targets.apply_config(std::move(config.targets));
  core_->schedule_changes(changes, now);
  core_->metrics.set_targets(core_->targets.configured_targets());

  ApplySummary summary;
  summary.targets = core_->targets.configured_targets();
  summary.endpoints_added = changes.added.size();
  summary.lookups_due = changes.groups_added.size() + changes.groups_kept.size();
  bool first = true;
  for (const auto& endpoint : changes.added) {
    const auto in = Schedule::spread_offset(endpoint->key, endpoint->config->interval);
    summary.first_probe_in =
        first ? in : std::min<std::chrono::nanoseconds>(summary.first_probe_in, in);
    summary.last_probe_in = std::max<std::chrono::nanoseconds>(summary.last_probe_in, in);
    first = false;
  }
  return summary;
}

void ProbeRunner::start() {
  if (core_->started) return;
  core_->started = true;
  asio::co_spawn(core_->executor, schedule_loop(core_), log_exception("schedule", ""));
}

void ProbeRunner::stop() {
  core_->stopped = true;
  core_->wakeup.cancel();
}

SeriesSnapshot ProbeRunner::snapshot() const {
  SeriesSnapshot snapshot;
  const TargetSet& targets = core_->targets;
  snapshot.series.reserve(targets.endpoints().size() + targets.groups().size());
  for (const auto& [key, endpoint] : targets.endpoints()) {
    snapshot.series.push_back(endpoint->series.share());
  }
  for (const auto& [name, group] : targets.groups()) {
    if (group->lookup_series->probed) snapshot.series.push_back(group->lookup_series.share());
    snapshot.mx.push_back(group->mx_series);
  }
  return snapshot;
}

std::shared_ptr<Resolver> ProbeRunner::resolver() const { return core_->resolver; }
const TargetSet& ProbeRunner::targets() const { return core_->targets; }
const Schedule& ProbeRunner::schedule() const { return core_->schedule; }

}  // namespace smtp
