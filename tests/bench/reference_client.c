/* The reference SMTP client for the probe's CPU benchmark: the simplest correct client doing the
 * probe's dialogue (greeting 220, EHLO -> 250, QUIT -> 221), so the probe's CPU per dialogue can
 * be compared against it.
 *
 * Usage: reference_client --port P [--host 127.0.0.1] [-n N] [-k K] [--epoll] [--timeout S]
 *   K == 1 (and no --epoll): N dialogues one after another on blocking sockets.
 *   K > 1 or --epoll: K dialogues at a time on non-blocking sockets and one epoll set.
 * Every wait is bounded by --timeout seconds (default 5) per dialogue. Prints one line:
 *   reference_client probes=N ok=X failed=Y wall_s=W user_s=U sys_s=S
 * and exits 0 when every dialogue succeeded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

enum { kBufMax = 4096 };

static const char kEhlo[] = "EHLO bench.client.local\r\n";
static const char kQuit[] = "QUIT\r\n";

static struct sockaddr_in server;
static int timeout_s = 5;

/* What one connection has read so far and not yet consumed as lines. */
struct Reader {
  size_t len;
  char buf[kBufMax];
};

enum ReplyStatus { kNeedMore, kDone, kBad };

/* Consumes the complete lines in `r`. A reply ends at the first line whose fourth byte is a
 * space (RFC 5321 4.2.1); `expected` is its 3-digit code. Bytes after the reply stay. */
static enum ReplyStatus take_reply(struct Reader* r, const char* expected) {
  size_t start = 0;
  for (;;) {
    char* nl = memchr(r->buf + start, '\n', r->len - start);
    if (nl == NULL) break;
    size_t line_len = (size_t)(nl - (r->buf + start)) + 1;
    const char* line = r->buf + start;
    start += line_len;
    if (line_len < 5 || memcmp(line, expected, 3) != 0) return kBad;
    if (line[3] == ' ' || line[3] == '\r') {
      memmove(r->buf, r->buf + start, r->len - start);
      r->len -= start;
      return kDone;
    }
    if (line[3] != '-') return kBad;
  }
  memmove(r->buf, r->buf + start, r->len - start);
  r->len -= start;
  if (r->len == sizeof r->buf) return kBad; /* a line longer than the buffer */
  return kNeedMore;
}

/* --- blocking: one dialogue after another -------------------------------------------------- */

static int read_reply_blocking(int fd, struct Reader* r, const char* expected) {
  for (;;) {
    enum ReplyStatus st = take_reply(r, expected);
    if (st != kNeedMore) return st == kDone ? 0 : -1;
    ssize_t n = recv(fd, r->buf + r->len, sizeof r->buf - r->len, 0);
    if (n <= 0) return -1; /* closed, error, or SO_RCVTIMEO expired */
    r->len += (size_t)n;
  }
}

static int send_blocking(int fd, const char* data, size_t len) {
  ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
  return n == (ssize_t)len ? 0 : -1;
}

static int dialogue_blocking(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = timeout_s, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* also bounds connect() */
  struct Reader r;
  r.len = 0;
  int rc = -1;
  if (connect(fd, (struct sockaddr*)&server, sizeof server) == 0 &&
      read_reply_blocking(fd, &r, "220") == 0 && send_blocking(fd, kEhlo, sizeof kEhlo - 1) == 0 &&
      read_reply_blocking(fd, &r, "250") == 0 && send_blocking(fd, kQuit, sizeof kQuit - 1) == 0 &&
      read_reply_blocking(fd, &r, "221") == 0) {
    rc = 0;
  }
  close(fd);
  return rc;
}

/* --- epoll: K dialogues at a time ---------------------------------------------------------- */

enum State { kIdle, kConnecting, kGreeting, kEhloReply, kQuitReply };

struct Slot {
  int fd;
  enum State state;
  double deadline;
  struct Reader r;
};

/* Starts a dialogue in `slot`; returns -1 when it failed at once. */
static int start_slot(int ep, struct Slot* slot, int index, double now) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  slot->fd = fd;
  slot->r.len = 0;
  slot->deadline = now + timeout_s;
  struct epoll_event ev = {.data.u32 = (unsigned)index};
  if (connect(fd, (struct sockaddr*)&server, sizeof server) == 0) {
    slot->state = kGreeting;
    ev.events = EPOLLIN;
  } else if (errno == EINPROGRESS) {
    slot->state = kConnecting;
    ev.events = EPOLLOUT;
  } else {
    close(fd);
    return -1;
  }
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    close(fd);
    return -1;
  }
  return 0;
}

/* Advances a dialogue on readiness. Returns 1 when it succeeded, -1 when it failed (either way
 * the socket is closed and the slot idle), 0 while it goes on. */
static int advance_slot(int ep, struct Slot* slot, int index) {
  if (slot->state == kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(slot->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)index};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, slot->fd, &ev) != 0) goto fail;
    slot->state = kGreeting;
    return 0;
  }
  ssize_t n = recv(slot->fd, slot->r.buf + slot->r.len, sizeof slot->r.buf - slot->r.len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (n <= 0) goto fail;
  slot->r.len += (size_t)n;
  for (;;) {
    const char* expected = slot->state == kGreeting    ? "220"
                           : slot->state == kEhloReply ? "250"
                                                       : "221";
    enum ReplyStatus st = take_reply(&slot->r, expected);
    if (st == kNeedMore) return 0;
    if (st == kBad) goto fail;
    if (slot->state == kGreeting) {
      if (send_blocking(slot->fd, kEhlo, sizeof kEhlo - 1) != 0) goto fail;
      slot->state = kEhloReply;
    } else if (slot->state == kEhloReply) {
      if (send_blocking(slot->fd, kQuit, sizeof kQuit - 1) != 0) goto fail;
      slot->state = kQuitReply;
    } else {
      close(slot->fd);
      slot->state = kIdle;
      return 1;
    }
  }
fail:
  close(slot->fd);
  slot->state = kIdle;
  return -1;
}

/* Starts the next dialogue in the idle slot `i`, if any are left; a dialogue that fails at once
 * counts as failed and the next one is tried. */
static void refill(int ep, struct Slot* slots, int i, long n, double now, long* started,
                   int* active, long* failed) {
  while (*started < n) {
    ++*started;
    if (start_slot(ep, &slots[i], i, now) == 0) {
      ++*active;
      return;
    }
    ++*failed;
  }
}

static void run_epoll(long n, int k, long* ok, long* failed) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct Slot* slots = calloc((size_t)k, sizeof *slots);
  struct epoll_event* events = calloc((size_t)k, sizeof *events);
  if (ep < 0 || slots == NULL || events == NULL) {
    perror("setup");
    exit(1);
  }
  long started = 0;
  int active = 0;
  double now = bench_now_s();
  for (int i = 0; i < k; ++i) refill(ep, slots, i, n, now, &started, &active, failed);
  while (active > 0) {
    int m = epoll_wait(ep, events, k, 100);
    if (m < 0 && errno != EINTR) {
      perror("epoll_wait");
      exit(1);
    }
    now = bench_now_s();
    for (int e = 0; e < m; ++e) {
      int i = (int)events[e].data.u32;
      int rc = advance_slot(ep, &slots[i], i);
      if (rc == 0) continue;
      if (rc > 0)
        ++*ok;
      else
        ++*failed;
      --active;
      refill(ep, slots, i, n, now, &started, &active, failed);
    }
    for (int i = 0; i < k; ++i) {
      if (slots[i].state != kIdle && slots[i].deadline < now) {
        close(slots[i].fd);
        slots[i].state = kIdle;
        ++*failed;
        --active;
        refill(ep, slots, i, n, now, &started, &active, failed);
      }
    }
  }
  free(events);
  free(slots);
  close(ep);
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 0;
  long n = 1000;
  int k = 1;
  int use_epoll = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      host = argv[++i];
    } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
      n = atol(argv[++i]);
    } else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc) {
      k = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--epoll") == 0) {
      use_epoll = 1;
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      timeout_s = atoi(argv[++i]);
    } else {
      port = 0;
      break;
    }
  }
  if (port <= 0 || n < 0 || k < 1 || timeout_s < 1) {
    fprintf(stderr, "usage: %s --port P [--host 127.0.0.1] [-n N] [-k K] [--epoll] [--timeout S]\n",
            argv[0]);
    return 2;
  }
  if (bench_ipv4_server("reference_client", host, port, &server) != 0) return 2;
  bench_take_all_descriptors();

  double began = bench_now_s();
  long ok = 0, failed = 0;
  if (k == 1 && !use_epoll) {
    for (long i = 0; i < n; ++i) {
      if (dialogue_blocking() == 0)
        ++ok;
      else
        ++failed;
    }
  } else {
    run_epoll(n, k, &ok, &failed);
  }
  double wall = bench_now_s() - began;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("reference_client probes=%ld ok=%ld failed=%ld wall_s=%.3f user_s=%.3f sys_s=%.3f\n", n,
         ok, failed, wall, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6);
  return failed == 0 ? 0 : 1;
}
