/* What the C benchmark programs (paced_client, reference_client, smtp_responder) all need:
 * a monotonic clock, the whole open-file limit, and an IPv4 server address from the command
 * line. Header-only: each program is one file. */
#ifndef SMTP_BENCH_COMMON_H
#define SMTP_BENCH_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Raises the soft open-file limit to the hard one (one descriptor per connection) and returns
 * the soft limit now in force. */
static inline rlim_t bench_take_all_descriptors(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

/* `host` (an IPv4 literal) and `port` into `out`; 0, or -1 with a message naming `program`. */
static inline int bench_ipv4_server(const char* program, const char* host, int port,
                                    struct sockaddr_in* out) {
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, host, &out->sin_addr) != 1) {
    fprintf(stderr, "%s: --host takes an IPv4 literal\n", program);
    return -1;
  }
  return 0;
}

#endif
