// The probe's side of the CPU benchmark: N probes with run_probe (default ProbeOptions) against
// a local responder, K at a time on one io_context and one thread, so its CPU per probe can be
// compared with reference_client doing the same dialogue.
//
// Usage: probe_bench --port P [--host 127.0.0.1] [-n N] [-k K] [--timeout S]
//                    [--transcript-limit BYTES]
// --transcript-limit overrides ProbeOptions::transcript_limit_bytes (default: the default, as
// the exporter uses it; 0 shows what keeping the transcript costs).
// Prints one line:
//   probe_bench probes=N ok=X failed=Y wall_s=W user_s=U sys_s=S [first_failure=REASON]
// and exits 0 when every probe succeeded.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "probes/asio.h"
#include "probes/smtp_probe.h"

namespace {

struct Bench {
  smtp::ProbeTarget target;
  smtp::ProbeOptions options;  // the defaults unless --transcript-limit is given
  long n = 0;
  long started = 0;
  long ok = 0;
  long failed = 0;
  std::string first_failure;
};

// One of K workers: takes the next probe until N have been started.
smtp::asio::awaitable<void> worker(Bench& bench) {
  smtp::ProbeOptions options = bench.options;
  while (bench.started < bench.n) {
    ++bench.started;
    // GCC 12: await a named awaitable, never a temporary built inside the co_await expression.
    smtp::asio::awaitable<smtp::ProbeResult> probe = smtp::run_probe(bench.target, options);
    smtp::ProbeResult result = co_await std::move(probe);
    if (result.success()) {
      ++bench.ok;
    } else {
      ++bench.failed;
      if (bench.first_failure.empty()) {
        bench.first_failure =
            std::string(smtp::reason_name(result.failure)) + ": " + result.error_detail;
      }
    }
  }
}

double seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  Bench bench;
  bench.target.host = "127.0.0.1";
  bench.target.port = 0;
  bench.target.helo_name = "bench.client.local";
  bench.n = 1000;
  int k = 1;
  int timeout_s = 5;
  bool usage = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--port" && has_value) {
      bench.target.port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
    } else if (arg == "--host" && has_value) {
      bench.target.host = argv[++i];
    } else if (arg == "-n" && has_value) {
      bench.n = std::atol(argv[++i]);
    } else if (arg == "-k" && has_value) {
      k = std::atoi(argv[++i]);
    } else if (arg == "--transcript-limit" && has_value) {
      bench.options.transcript_limit_bytes = static_cast<std::size_t>(std::atol(argv[++i]));
    } else if (arg == "--timeout" && has_value) {
      timeout_s = std::atoi(argv[++i]);
    } else {
      usage = true;
    }
  }
  if (usage || bench.target.port == 0 || bench.n < 0 || k < 1 || timeout_s < 1) {
    std::fprintf(stderr,
                 "usage: %s --port P [--host 127.0.0.1] [-n N] [-k K] [--timeout S] "
                 "[--transcript-limit BYTES]\n",
                 argv[0]);
    return 2;
  }
  bench.target.timeout = std::chrono::seconds(timeout_s);

  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  auto began = std::chrono::steady_clock::now();
  smtp::asio::io_context io(1);
  for (int i = 0; i < k; ++i) {
    smtp::asio::co_spawn(io, worker(bench), smtp::asio::detached);
  }
  io.run();
  std::chrono::duration<double> wall = std::chrono::steady_clock::now() - began;

  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("probe_bench probes=%ld ok=%ld failed=%ld wall_s=%.3f user_s=%.3f sys_s=%.3f",
              bench.n, bench.ok, bench.failed, wall.count(), seconds(ru.ru_utime),
              seconds(ru.ru_stime));
  if (!bench.first_failure.empty())
    std::printf(" first_failure=\"%s\"", bench.first_failure.c_str());
  std::printf("\n");
  return bench.failed == 0 ? 0 : 1;
}
