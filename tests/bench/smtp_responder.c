/* A fast SMTP responder for benchmarks: one thread, epoll, 127.0.0.1 only.
 *
 * Every connection gets the greeting at once; EHLO/HELO get a 3-line 250, QUIT gets 221 and the
 * connection is closed (by the server first, so TIME_WAIT stays on the server's side and the
 * client's ephemeral ports are freed at once). Anything else gets 502. The point is to spend as
 * little CPU per connection as possible, so the client's CPU is what a benchmark sees.
 *
 * Usage: smtp_responder [--port P] [--port-file FILE] [--lifetime SECONDS] [--delay-ms MS]
 *                       [--stats-file FILE]
 *   --port 0 (the default) binds an ephemeral port; --port-file receives the port number
 *   (written to FILE.tmp and renamed, so a reader never sees half of it). The responder exits
 *   by itself after --lifetime seconds (default 3600), or on SIGTERM/SIGINT.
 *   --delay-ms: the greeting is sent this long after the connection was accepted (a timerfd, so
 *   to the microsecond), to check what a client reports as greeting latency.
 *   --stats-file: rewritten about once a second with "accepted=A quits=Q" (connections accepted,
 *   QUITs answered since start), so a benchmark can count dialogues without asking the client.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

enum { kLineMax = 512, kMaxEvents = 256 };

static const char kGreeting[] = "220 bench.test.local ESMTP\r\n";
static const char kEhloReply[] =
    "250-bench.test.local\r\n"
    "250-PIPELINING\r\n"
    "250 8BITMIME\r\n";
static const char kQuitReply[] = "221 Bye\r\n";
static const char kOkReply[] = "250 OK\r\n";
static const char kUnknownReply[] = "502 Command not implemented\r\n";
static const char kTooLongReply[] = "500 Line too long\r\n";

/* Per-connection state, indexed by fd: the partial line waiting for its end, and which
 * connection on this fd it is (a delayed greeting must not go to a later one). */
struct Conn {
  unsigned generation;
  unsigned short len;
  char line[kLineMax];
};

/* Greetings waiting for --delay-ms, in the order they are due (one delay for all: FIFO). */
struct Pending {
  int fd;
  unsigned generation;
  struct timespec due;
};

static unsigned long quits = 0;

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static int send_all(int fd, const char* data, size_t len) {
  /* Replies are tiny and the client waits for each one, so one send normally takes it all;
   * a short send means the client is not reading: give up on it. */
  ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
  return n == (ssize_t)len ? 0 : -1;
}

static int starts_with_verb(const char* line, size_t len, const char* verb) {
  size_t vlen = strlen(verb);
  if (len < vlen) return 0;
  if (strncasecmp(line, verb, vlen) != 0) return 0;
  return len == vlen || line[vlen] == ' ';
}

/* Answers one command line (without its line ending). Returns 1 when the connection should
 * close (after QUIT), -1 on a send error, 0 otherwise. */
static int answer(int fd, const char* line, size_t len) {
  if (starts_with_verb(line, len, "EHLO")) return send_all(fd, kEhloReply, sizeof kEhloReply - 1);
  if (starts_with_verb(line, len, "HELO")) return send_all(fd, kOkReply, sizeof kOkReply - 1);
  if (starts_with_verb(line, len, "QUIT")) {
    if (send_all(fd, kQuitReply, sizeof kQuitReply - 1) != 0) return -1;
    ++quits;
    return 1;
  }
  if (starts_with_verb(line, len, "NOOP") || starts_with_verb(line, len, "RSET"))
    return send_all(fd, kOkReply, sizeof kOkReply - 1);
  return send_all(fd, kUnknownReply, sizeof kUnknownReply - 1);
}

/* Reads what the client sent and answers each complete line. Returns nonzero to close. */
static int serve_readable(int fd, struct Conn* conn) {
  char buf[kLineMax * 2];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n == 0) return 1;
  if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : 1;
  for (ssize_t i = 0; i < n; ++i) {
    char c = buf[i];
    if (c == '\n') {
      size_t len = conn->len;
      if (len > 0 && conn->line[len - 1] == '\r') --len;
      conn->len = 0;
      int rc = answer(fd, conn->line, len);
      if (rc != 0) return 1;
      continue;
    }
    if (conn->len >= kLineMax) {
      send_all(fd, kTooLongReply, sizeof kTooLongReply - 1);
      return 1;
    }
    conn->line[conn->len++] = c;
  }
  return 0;
}

/* Writes "accepted=A quits=Q" to FILE.tmp and renames it over FILE. */
static void write_stats(const char* path, unsigned long accepted) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (f == NULL) return;
  fprintf(f, "accepted=%lu quits=%lu\n", accepted, quits);
  if (fclose(f) == 0) rename(tmp, path);
}

static void add_ms(struct timespec* t, long ms) {
  t->tv_sec += ms / 1000;
  t->tv_nsec += (ms % 1000) * 1000000L;
  if (t->tv_nsec >= 1000000000L) {
    t->tv_nsec -= 1000000000L;
    ++t->tv_sec;
  }
}

static int due(const struct timespec* at, const struct timespec* now) {
  return at->tv_sec < now->tv_sec || (at->tv_sec == now->tv_sec && at->tv_nsec <= now->tv_nsec);
}

int main(int argc, char** argv) {
  int port = 0;
  const char* port_file = NULL;
  const char* stats_file = NULL;
  long lifetime = 3600;
  long delay_ms = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
      port_file = argv[++i];
    } else if (strcmp(argv[i], "--lifetime") == 0 && i + 1 < argc) {
      lifetime = atol(argv[++i]);
    } else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc) {
      delay_ms = atol(argv[++i]);
    } else if (strcmp(argv[i], "--stats-file") == 0 && i + 1 < argc) {
      stats_file = argv[++i];
    } else {
      delay_ms = -1;
      break;
    }
  }
  if (delay_ms < 0) {
    fprintf(stderr,
            "usage: %s [--port P] [--port-file FILE] [--lifetime SECONDS] [--delay-ms MS] "
            "[--stats-file FILE]\n",
            argv[0]);
    return 2;
  }

  /* One fd per connection: take the whole hard limit. */
  const rlim_t descriptors = bench_take_all_descriptors();
  size_t max_fds = descriptors > 1048576 ? 1048576 : (size_t)descriptors;
  struct Conn* conns = calloc(max_fds, sizeof *conns);
  /* A ring of at most one pending greeting per fd. */
  struct Pending* pending = calloc(max_fds, sizeof *pending);
  size_t pending_head = 0, pending_count = 0;
  if (conns == NULL || pending == NULL) {
    perror("calloc");
    return 1;
  }

  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) {
    perror("socket");
    return 1;
  }
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* Accepted sockets inherit TCP_NODELAY on Linux: no Nagle wait on any reply. */
  setsockopt(listener, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0) {
    perror("bind");
    return 1;
  }
  if (listen(listener, 4096) != 0) {
    perror("listen");
    return 1;
  }
  socklen_t addr_len = sizeof addr;
  getsockname(listener, (struct sockaddr*)&addr, &addr_len);
  int bound_port = ntohs(addr.sin_port);
  if (port_file != NULL) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE* f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", bound_port) < 0 || fclose(f) != 0 ||
        rename(tmp, port_file) != 0) {
      perror("port file");
      return 1;
    }
  } else {
    printf("%d\n", bound_port);
    fflush(stdout);
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  int timer = -1;
  if (delay_ms > 0) {
    timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event tev = {.events = EPOLLIN, .data.fd = timer};
    if (timer < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev) != 0) {
      perror("timerfd");
      return 1;
    }
  }

  struct timespec started;
  clock_gettime(CLOCK_MONOTONIC, &started);
  time_t stats_written = 0;
  unsigned long accepted = 0;
  struct epoll_event events[kMaxEvents];
  while (!stop_requested) {
    int n = epoll_wait(ep, events, kMaxEvents, 1000);
    if (n < 0 && errno != EINTR) {
      perror("epoll_wait");
      break;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        for (;;) {
          int c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break; /* EAGAIN, or out of fds: try again on the next event */
          ++accepted;
          if ((size_t)c >= max_fds) {
            close(c);
            continue;
          }
          conns[c].len = 0;
          ++conns[c].generation;
          if (delay_ms > 0) {
            struct Pending* p = &pending[(pending_head + pending_count++) % max_fds];
            p->fd = c;
            p->generation = conns[c].generation;
            p->due = now;
            add_ms(&p->due, delay_ms);
            if (pending_count == 1) {
              struct itimerspec at = {.it_value = p->due};
              timerfd_settime(timer, TFD_TIMER_ABSTIME, &at, NULL);
            }
          } else if (send_all(c, kGreeting, sizeof kGreeting - 1) != 0) {
            close(c);
            continue;
          }
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) close(c);
        }
        continue;
      }
      if (fd == timer) {
        unsigned long long expirations;
        if (read(timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        while (pending_count > 0 && due(&pending[pending_head].due, &now)) {
          struct Pending* p = &pending[pending_head];
          pending_head = (pending_head + 1) % max_fds;
          --pending_count;
          /* The client may have left (and its fd been reused) while the greeting waited. */
          if (conns[p->fd].generation == p->generation) {
            send_all(p->fd, kGreeting, sizeof kGreeting - 1);
          }
        }
        if (pending_count > 0) {
          struct itimerspec at = {.it_value = pending[pending_head].due};
          timerfd_settime(timer, TFD_TIMER_ABSTIME, &at, NULL);
        }
        continue;
      }
      if (serve_readable(fd, &conns[fd]) != 0) {
        ++conns[fd].generation;
        close(fd); /* close also leaves the epoll set */
      }
    }
    if (stats_file != NULL && now.tv_sec != stats_written) {
      stats_written = now.tv_sec;
      write_stats(stats_file, accepted);
    }
    if (now.tv_sec - started.tv_sec >= lifetime) break;
  }
  fprintf(stderr, "smtp_responder: %lu connections accepted\n", accepted);
  return 0;
}
