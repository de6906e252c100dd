#pragma once
/// The daemon's threads and their standing with the kernel's scheduler. The probe thread
/// measures time: a probe that starts late, or sees its connect complete late, reports a
/// schedule lag or a greeting latency that is the exporter's, not the server's. The threads that
/// render scrapes, load configs and check passwords therefore yield to it when the CPUs are busy,
/// and every thread carries a name that `top -H`, `ps -L` and /proc/PID/task/*/comm show.
#include <string_view>

namespace smtp {

enum class ThreadRole {
  kHttp,           // accepts and answers HTTP; cheap per request, so it keeps the default priority
  kRender,         // renders /metrics pages and the status page: seconds of CPU at 100,000 targets
  kConfig,         // reads and parses configuration files
  kPasswordCheck,  // checks basic-auth passwords against bcrypt hashes: ~0.1-0.3 s of CPU each
};

/// How much nicer than the process the background threads (all but kHttp's) run. At 10 the kernel
/// gives a busy probe thread about ten times their share of a contended CPU. Measured on 2 cores
/// with 50,000 targets: during a 94 MB plain-text render, probes started up to 86-284 ms late at
/// the same niceness (four runs), and up to 62-101 ms late, a third as often, at 10, with the
/// same scrape time.
inline constexpr int kBackgroundNiceness = 10;

/// "http", "render", "config" or "bcrypt": the name the calling thread takes.
std::string_view thread_role_name(ThreadRole role);

/// Names the calling thread after `role` and, for every role but kHttp, raises its
/// niceness by kBackgroundNiceness (Linux keeps niceness per thread; raising it needs no
/// privilege). The caller must not be the main thread: its name is the process's, which
/// `pgrep smtp_exporter` and the like look for. Failures are ignored: a thread that keeps the
/// default name or priority still works.
void take_thread_role(ThreadRole role);

}  // namespace smtp
