/* The hostile clients of tests/abuse/http_abuse.sh: thousands of connections to an HTTP server,
 * held from one thread (epoll), with a count of what happened to them.
 *
 * Usage: http_abuse_client --port P [--host ADDRESS] [--duration S] [--idle N] [--slowloris N]
 *          [--slow-readers N] [--path PATH] [--gzip] [--ramp S] [--hold S] [--drip-ms MS]
 *          [--rss-pid PID]
 *   --host ADDRESS    an IPv4 or IPv6 literal (default 127.0.0.1)
 *   --idle N          N connections that send nothing; each is reopened as soon as the server
 *                     closes it
 *   --slowloris N     N connections that send a request line, then one more header line every
 *                     --drip-ms (default 1000) and never end the header; reopened when closed
 *   --slow-readers N  N connections that send "GET PATH" (default /metrics; --gzip asks for
 *                     gzip) and never read a byte, with a 4 KiB receive buffer; each is closed
 *                     and reopened after --hold seconds (default 0: held to the end)
 *   --ramp S          open the connections evenly over S seconds (default 0: all at once)
 *   --rss-pid PID     sample that process's resident memory (VmRSS) every 20 ms
 * Runs --duration seconds (default 10), closes every connection, and prints one line:
 *   opened=N closed_by_server=N connect_failed=N open_at_end=N peak_rss_kib=N
 * (closed_by_server: idle and slowloris connections only; a reader that never reads cannot see
 * the server's close). Exit status 2 for bad arguments, 1 if no connection could be opened.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum Kind { kIdle, kSlowloris, kSlowReader };
enum State { kClosed, kConnecting, kOpen };

struct Conn {
  int fd;
  enum Kind kind;
  enum State state;
  double open_at; /* kClosed: when to open it */
  double opened;  /* kOpen: when it connected */
  double next_drip;
};

static struct sockaddr_storage g_address;
static socklen_t g_address_len;
static int g_epoll;
static char g_request[256];
static long g_drip_ms = 1000;
static double g_hold;
static long g_opened, g_closed_by_server, g_connect_failed;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(long pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = atol(line + 6);
      break;
    }
  }
  fclose(f);
  return kib;
}

static void close_conn(struct Conn* c, double reopen_at) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->state = kClosed;
  c->open_at = reopen_at;
}

static void start_connect(struct Conn* c, double now) {
  c->fd = socket(g_address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    g_connect_failed++;
    close_conn(c, now + 0.1);
    return;
  }
  if (c->kind == kSlowReader) {
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  int rc = connect(c->fd, (struct sockaddr*)&g_address, g_address_len);
  if (rc < 0 && errno != EINPROGRESS) {
    g_connect_failed++;
    close_conn(c, now + 0.1);
    return;
  }
  c->state = kConnecting;
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  epoll_ctl(g_epoll, EPOLL_CTL_ADD, c->fd, &ev);
}

static int send_text(struct Conn* c, const char* text) {
  size_t len = strlen(text);
  return send(c->fd, text, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static void connected(struct Conn* c, double now) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    g_connect_failed++;
    close_conn(c, now + 0.1);
    return;
  }
  g_opened++;
  c->state = kOpen;
  c->opened = now;
  int failed = 0;
  if (c->kind == kSlowloris) {
    failed = send_text(c, "GET / HTTP/1.1\r\nHost: x\r\n");
    c->next_drip = now + g_drip_ms / 1000.0;
  } else if (c->kind == kSlowReader) {
    failed = send_text(c, g_request);
  }
  if (failed) {
    g_closed_by_server++;
    close_conn(c, now);
    return;
  }
  /* A reader that never reads must not wake us for the bytes it leaves unread. */
  struct epoll_event ev = {.events = c->kind == kSlowReader ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP,
                           .data.ptr = c};
  epoll_ctl(g_epoll, EPOLL_CTL_MOD, c->fd, &ev);
}

static void readable(struct Conn* c, double now) {
  char scratch[4096];
  for (;;) {
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n > 0) continue; /* an error page: read and dropped */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    g_closed_by_server++;
    close_conn(c, now);
    return;
  }
}

static long number(const char* text, const char* flag) {
  char* end;
  long value = strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value < 0) {
    fprintf(stderr, "http_abuse_client: %s needs a number, not '%s'\n", flag, text);
    exit(2);
  }
  return value;
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  const char* path = "/metrics";
  long port = -1, duration = 10, idle = 0, slowloris = 0, readers = 0, rss_pid = 0;
  double ramp = 0;
  int gzip = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--gzip") == 0) {
      gzip = 1;
      continue;
    }
    if (v == NULL) {
      fprintf(stderr, "http_abuse_client: %s needs a value (see the comment at the top)\n", a);
      return 2;
    }
    i++;
    if (strcmp(a, "--host") == 0)
      host = v;
    else if (strcmp(a, "--port") == 0)
      port = number(v, a);
    else if (strcmp(a, "--duration") == 0)
      duration = number(v, a);
    else if (strcmp(a, "--idle") == 0)
      idle = number(v, a);
    else if (strcmp(a, "--slowloris") == 0)
      slowloris = number(v, a);
    else if (strcmp(a, "--slow-readers") == 0)
      readers = number(v, a);
    else if (strcmp(a, "--path") == 0)
      path = v;
    else if (strcmp(a, "--ramp") == 0)
      ramp = (double)number(v, a);
    else if (strcmp(a, "--hold") == 0)
      g_hold = (double)number(v, a);
    else if (strcmp(a, "--drip-ms") == 0)
      g_drip_ms = number(v, a);
    else if (strcmp(a, "--rss-pid") == 0)
      rss_pid = number(v, a);
    else {
      fprintf(stderr, "http_abuse_client: unknown option %s\n", a);
      return 2;
    }
  }
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: http_abuse_client --port P [options] (see the source's comment)\n");
    return 2;
  }
  memset(&g_address, 0, sizeof g_address);
  struct sockaddr_in* v4 = (struct sockaddr_in*)&g_address;
  struct sockaddr_in6* v6 = (struct sockaddr_in6*)&g_address;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((unsigned short)port);
    g_address_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((unsigned short)port);
    g_address_len = sizeof *v6;
  } else {
    fprintf(stderr, "http_abuse_client: --host must be an IP literal, not '%s'\n", host);
    return 2;
  }
  snprintf(g_request, sizeof g_request, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path,
           gzip ? "Accept-Encoding: gzip\r\n" : "");

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  long total = idle + slowloris + readers;
  struct Conn* conns = calloc(total > 0 ? (size_t)total : 1, sizeof *conns);
  if (!conns) return 1;
  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  double start = now_s();
  for (long i = 0; i < total; i++) {
    conns[i].fd = -1;
    conns[i].kind = i < idle ? kIdle : i < idle + slowloris ? kSlowloris : kSlowReader;
    conns[i].state = kClosed;
    conns[i].open_at = start + (total > 1 ? ramp * i / (total - 1) : 0);
  }

  long peak_rss = rss_pid ? rss_kib(rss_pid) : -1;
  double next_rss = start;
  struct epoll_event events[256];
  for (;;) {
    double now = now_s();
    if (now - start >= duration) break;
    for (long i = 0; i < total; i++) {
      struct Conn* c = &conns[i];
      if (c->state == kClosed && now >= c->open_at) {
        start_connect(c, now);
      } else if (c->state == kOpen && c->kind == kSlowloris && now >= c->next_drip) {
        c->next_drip = now + g_drip_ms / 1000.0;
        if (send_text(c, "X-Drip: 1\r\n") != 0) {
          g_closed_by_server++;
          close_conn(c, now);
        }
      } else if (c->state == kOpen && c->kind == kSlowReader && g_hold > 0 &&
                 now - c->opened >= g_hold) {
        close_conn(c, now);
      }
    }
    if (rss_pid && now >= next_rss) {
      long kib = rss_kib(rss_pid);
      if (kib > peak_rss) peak_rss = kib;
      next_rss = now + 0.02;
    }
    int n = epoll_wait(g_epoll, events, 256, 10);
    now = now_s();
    for (int i = 0; i < n; i++) {
      struct Conn* c = events[i].data.ptr;
      if (c->state == kConnecting) {
        connected(c, now);
      } else if (c->state == kOpen) {
        if (c->kind == kSlowReader) {
          /* The server hung up on a reader that never read: it reconnects like the others. */
          g_closed_by_server++;
          close_conn(c, now);
        } else {
          readable(c, now);
        }
      }
    }
  }
  long open_at_end = 0;
  for (long i = 0; i < total; i++) {
    if (conns[i].state == kOpen) open_at_end++;
    if (conns[i].fd >= 0) close(conns[i].fd);
  }
  printf("opened=%ld closed_by_server=%ld connect_failed=%ld open_at_end=%ld peak_rss_kib=%ld\n",
         g_opened, g_closed_by_server, g_connect_failed, open_at_end, peak_rss);
  free(conns);
  return g_opened > 0 || total == 0 ? 0 : 1;
}
