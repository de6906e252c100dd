/* The floor for the probe's CPU: the cheapest client that does the probe's dialogue (greeting 220,
 * EHLO -> 250, QUIT -> 221) at a given rate, timing what the probe times (connect, greeting
 * latency), so the exporter at N targets every I seconds can be compared with it at N/I probes a
 * second.
 *
 * Usage: paced_client --port P [--host 127.0.0.1] --rate R --seconds S [--timeout T]
 *   Starts R dialogues a second, evenly spaced, for S seconds (R*S in all), as many at a time as
 *   the open-file limit allows. One thread, one epoll set, edge-triggered: per dialogue socket,
 *   connect, one epoll_ctl, one recv per reply, one send per command, close, and the epoll_wait
 *   calls the events need (pacing shares them: the wait's timeout is the next start, in whole
 *   milliseconds). Every dialogue is bounded by --timeout seconds (default 5).
 * Prints one line:
 *   paced_client probes=N ok=X failed=Y wall_s=W user_s=U sys_s=S us_per_probe=C
 *     [failed_connect=F failed_timeout=T failed_dialogue=D]
 *     greeting_ms_min=A greeting_ms_median=B greeting_ms_p99=D greeting_ms_max=E
 * (us_per_probe: user+sys CPU per dialogue) and exits 0 when every dialogue succeeded.
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
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

enum { kBufMax = 4096, kMaxEvents = 256 };

static const char kEhlo[] = "EHLO bench.client.local\r\n";
static const char kQuit[] = "QUIT\r\n";

enum State { kIdle, kConnecting, kGreeting, kEhloReply, kQuitReply };

struct Slot {
  int fd;
  enum State state;
  double deadline;
  double connected_at;
  float greeting; /* ms, from connect to the greeting's end */
  size_t len;
  char buf[kBufMax];
};

static struct sockaddr_in server;
static double timeout_s = 5;
static struct Slot* slots;
static int* free_slots; /* a stack of idle slot indexes */
static int free_count;
static int used; /* slots [0, used) have been used: the rest were never touched */
static int active;
static long ok, failed;
/* Why dialogues failed: no socket or connect refused/failed, no answer in time, the server
 * closed or answered wrongly. */
static long failed_connect, failed_timeout, failed_dialogue;
static float* greeting_ms; /* one per successful dialogue */

enum Outcome { kOk, kFailed, kTimedOut };

static void finish(int index, enum Outcome outcome) {
  struct Slot* slot = &slots[index];
  if (outcome == kTimedOut)
    ++failed_timeout;
  else if (outcome == kFailed && slot->state == kConnecting)
    ++failed_connect;
  else if (outcome == kFailed)
    ++failed_dialogue;
  close(slot->fd); /* also leaves the epoll set */
  slot->state = kIdle;
  free_slots[free_count++] = index;
  --active;
  if (outcome == kOk)
    greeting_ms[ok++] = slot->greeting;
  else
    ++failed;
}

/* Starts one dialogue; a dialogue that fails at once counts as failed. */
static void start(int ep, double now) {
  if (free_count == 0) {
    ++failed; /* out of descriptors: the rate is more than this machine holds */
    ++failed_connect;
    return;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ++failed;
    ++failed_connect;
    return;
  }
  int index = free_slots[--free_count];
  if (index >= used) used = index + 1;
  struct Slot* slot = &slots[index];
  slot->fd = fd;
  slot->len = 0;
  slot->deadline = now + timeout_s;
  slot->state = kConnecting;
  ++active;
  if (connect(fd, (struct sockaddr*)&server, sizeof server) != 0 && errno != EINPROGRESS) {
    finish(index, kFailed);
    return;
  }
  /* Registered once for both directions, edge-triggered: no epoll_ctl after this one. */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (unsigned)index};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) finish(index, kFailed);
}

/* The reply's status: 1 complete (consumed), 0 needs more bytes, -1 not the expected reply. A
 * reply ends at the first line whose fourth byte is a space (RFC 5321 4.2.1). */
static int take_reply(struct Slot* slot, const char* expected) {
  size_t start = 0;
  for (;;) {
    char* nl = memchr(slot->buf + start, '\n', slot->len - start);
    if (nl == NULL) break;
    size_t line_len = (size_t)(nl - (slot->buf + start)) + 1;
    const char* line = slot->buf + start;
    start += line_len;
    if (line_len < 5 || memcmp(line, expected, 3) != 0) return -1;
    if (line[3] == ' ' || line[3] == '\r') {
      slot->len -= start;
      memmove(slot->buf, slot->buf + start, slot->len);
      return 1;
    }
    if (line[3] != '-') return -1;
  }
  return slot->len == sizeof slot->buf ? -1 : 0;
}

static int send_line(int fd, const char* line, size_t len) {
  return send(fd, line, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Advances a dialogue on an event. */
static void advance(int index, unsigned events, double now) {
  struct Slot* slot = &slots[index];
  if (slot->state == kIdle) return; /* finished earlier in this batch */
  if (slot->state == kConnecting) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      finish(index, kFailed);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    slot->connected_at = now;
    slot->state = kGreeting;
    if (!(events & EPOLLIN)) return;
  }
  /* Lockstep dialogue: the server sends nothing past a reply until the next command, so a
   * complete reply needs no read to EAGAIN; a partial one reads on until the socket is empty. */
  for (;;) {
    ssize_t n = recv(slot->fd, slot->buf + slot->len, sizeof slot->buf - slot->len, 0);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      finish(index, kFailed);
      return;
    }
    slot->len += (size_t)n;
    const char* expected = slot->state == kGreeting    ? "220"
                           : slot->state == kEhloReply ? "250"
                                                       : "221";
    int status = take_reply(slot, expected);
    if (status < 0) {
      finish(index, kFailed);
      return;
    }
    if (status == 0) continue;
    if (slot->state == kGreeting) {
      slot->greeting = (float)((now - slot->connected_at) * 1e3);
      if (send_line(slot->fd, kEhlo, sizeof kEhlo - 1) != 0) {
        finish(index, kFailed);
        return;
      }
      slot->state = kEhloReply;
    } else if (slot->state == kEhloReply) {
      if (send_line(slot->fd, kQuit, sizeof kQuit - 1) != 0) {
        finish(index, kFailed);
        return;
      }
      slot->state = kQuitReply;
    } else {
      finish(index, kOk);
    }
    return;
  }
}

static int compare_float(const void* a, const void* b) {
  float x = *(const float*)a, y = *(const float*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 0;
  double rate = 0, seconds = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
      rate = atof(argv[++i]);
    } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = atof(argv[++i]);
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      timeout_s = atof(argv[++i]);
    } else {
      port = 0;
      break;
    }
  }
  long n = (long)(rate * seconds);
  if (port <= 0 || rate <= 0 || seconds <= 0 || n < 1 || timeout_s <= 0) {
    fprintf(stderr, "usage: %s --port P [--host 127.0.0.1] --rate R --seconds S [--timeout T]\n",
            argv[0]);
    return 2;
  }
  if (bench_ipv4_server("paced_client", host, port, &server) != 0) return 2;
  const rlim_t descriptors = bench_take_all_descriptors();
  int capacity = descriptors > 65536 ? 65536 : (int)descriptors - 16;
  slots = calloc((size_t)capacity, sizeof *slots);
  free_slots = calloc((size_t)capacity, sizeof *free_slots);
  greeting_ms = calloc((size_t)n, sizeof *greeting_ms);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (slots == NULL || free_slots == NULL || greeting_ms == NULL || ep < 0) {
    perror("setup");
    return 1;
  }
  for (int i = capacity - 1; i >= 0; --i) free_slots[free_count++] = i;

  struct epoll_event events[kMaxEvents];
  const double began = bench_now_s();
  const double spacing = 1.0 / rate;
  long started = 0;
  double now = began;
  double last_sweep = began;
  while (started < n || active > 0) {
    /* Start every dialogue that is due (catching up after a late wake-up). */
    while (started < n && began + (double)started * spacing <= now) {
      start(ep, now);
      ++started;
    }
    int wait_ms = 100;
    if (started < n) {
      double next = began + (double)started * spacing - now;
      wait_ms = next <= 0 ? 0 : (int)(next * 1e3) + 1; /* rounded up: never early */
    }
    int m = epoll_wait(ep, events, kMaxEvents, wait_ms);
    if (m < 0 && errno != EINTR) {
      perror("epoll_wait");
      return 1;
    }
    now = bench_now_s();
    for (int e = 0; e < m; ++e) advance((int)events[e].data.u32, events[e].events, now);
    if (now - last_sweep >= 0.1) { /* deadlines, ten times a second */
      last_sweep = now;
      for (int i = 0; i < used && active > 0; ++i) {
        if (slots[i].state != kIdle && slots[i].deadline < now) finish(i, kTimedOut);
      }
    }
  }
  const double wall = bench_now_s() - began;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru); /* before the sort below: only the dialogues are counted */
  const double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
  const double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  printf(
      "paced_client probes=%ld ok=%ld failed=%ld wall_s=%.3f user_s=%.3f sys_s=%.3f "
      "us_per_probe=%.1f",
      n, ok, failed, wall, user, sys, (user + sys) * 1e6 / (double)n);
  if (failed > 0) {
    printf(" failed_connect=%ld failed_timeout=%ld failed_dialogue=%ld", failed_connect,
           failed_timeout, failed_dialogue);
  }
  if (ok > 0) {
    qsort(greeting_ms, (size_t)ok, sizeof *greeting_ms, compare_float);
    printf(
        " greeting_ms_min=%.3f greeting_ms_median=%.3f greeting_ms_p99=%.3f "
        "greeting_ms_max=%.3f",
        greeting_ms[0], greeting_ms[ok / 2], greeting_ms[(long)((double)(ok - 1) * 0.99)],
        greeting_ms[ok - 1]);
  }
  printf("\n");
  return failed == 0 ? 0 : 1;
}
