#!/usr/bin/env bash
# http_abuse.sh: attacks a running exporter over HTTP and prints what it withstood (see
# README.md next to this file). Every attack runs in a private network namespace, against an
# exporter whose targets are a fast SMTP responder on loopback:
#   (e) wrong methods: the status and Allow header of each (first, on a fresh exporter)
#   (a) 500 clients send GET /metrics and never read: the exporter's peak resident memory during
#       the attack and after the clients left; a normal scraper's scrapes meanwhile and after.
#       Full mode: all at once, then arriving over 10 s and reconnecting every 15 s (so that
#       they keep asking for newer pages); short mode: arriving over 1 s
#   (b) 700 idle and 700 slowloris connections, reopened as soon as they are closed: the share of
#       a normal scraper's scrapes that succeed
#   (c) an open-file limit of 256 and 300 idle HTTP connections: the probes by result meanwhile
#       (an exporter short of descriptors must not report connect_error for healthy servers)
#   (d) a reload storm: 4 clients looping POST /-/reload, 10,000 targets: probes per second and
#       the p99 of smtp_exporter_schedule_lag_seconds, without and with the storm (full mode)
#   (f) a FIFO at the config path: whether a reload still answers, and the process with it
#   (g) a status page storm: 4 clients looping GET /, 10,000 targets: probes per second and the
#       schedule lag's p99, without and with the storm (full mode)
#
# Usage: tests/abuse/http_abuse.sh [--short] [--assert] [--only LETTERS] [--build DIR] EXPORTER_BINARY
#   --short    the CI form: the same attacks, a few seconds each, (d) and (g) left out (~40 s)
#   --assert   exit 1 unless the goals hold: (a) peak RSS under 150 MiB and the scrape after the
#              attack succeeds; (b) at least 95 % of scrapes succeed; (c) no connect_error;
#              (e) 405 with the right Allow for every wrong method; and no sanitizer report in
#              any exporter's log. (d), (f) and (g) are reported only; with a sanitizer build (ASan,
#              UBSan), so are the memory and time goals (a) and (b).
#   --only     only these attacks, e.g. --only df
#   --build    the build directory with tests/abuse/http_abuse_client and
#              tests/bench/smtp_responder (default: the binary's directory). This is how an
#              older exporter is measured with the current clients.
# Needs root (a network namespace; exit 77 without it), curl, prlimit and unshare. The full mode
# takes about 5 minutes; each figure is on a line of its own in the summary at the end.
set -euo pipefail

SHORT=0
ASSERT=0
ONLY=
BUILD=
while (($#)); do
  case $1 in
    --short) SHORT=1 ;;
    --only)
      ONLY=${2:?--only needs letters, e.g. df}
      shift
      ;;
    --assert) ASSERT=1 ;;
    --build)
      BUILD=${2:?--build needs a directory}
      shift
      ;;
    -*)
      echo "http_abuse.sh: unknown option $1" >&2
      exit 2
      ;;
    *) break ;;
  esac
  shift
done
BINARY=${1:?usage: http_abuse.sh [--short] [--assert] [--only LETTERS] [--build DIR] EXPORTER_BINARY}
BINARY=$(realpath "$BINARY")
BUILD=$(realpath "${BUILD:-$(dirname "$BINARY")}")
CLIENT=$BUILD/tests/abuse/http_abuse_client
RESPONDER=$BUILD/tests/bench/smtp_responder

if [[ $EUID -ne 0 ]]; then
  echo "SKIP: http_abuse.sh needs root for a private network namespace (unshare --net)" >&2
  exit 77
fi
for tool in curl prlimit unshare ip ss; do
  command -v "$tool" >/dev/null || {
    echo "SKIP: http_abuse.sh needs $tool" >&2
    exit 77
  }
done

# The attacks open tens of thousands of connections a second: in the host's namespace they
# would fill its connection-tracking table, and then SYNs are dropped silently.
if [[ -z ${HTTP_ABUSE_IN_NETNS:-} ]]; then
  export HTTP_ABUSE_IN_NETNS=1
  args=()
  ((SHORT)) && args+=(--short)
  ((ASSERT)) && args+=(--assert)
  [[ -n $ONLY ]] && args+=(--only "$ONLY")
  args+=(--build "$BUILD" "$BINARY")
  # shellcheck disable=SC2016 # $0 and $@ are the inner shell's
  exec unshare --net bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "${args[@]}"
fi

# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
if ((SHORT)); then test_init http_abuse 240; else test_init http_abuse 1800; fi
require_binary "$BINARY"
for helper in "$CLIENT" "$RESPONDER"; do
  [[ -x $helper ]] || fail "$helper is missing: build it (ninja -C BUILD_DIR $(basename "$helper"))"
done

if ((SHORT)); then
  A_AFTER=3 B_SECONDS=6 C_SECONDS=5
else
  A_AFTER=10 B_SECONDS=30 C_SECONDS=30 D_SECONDS=20
fi
# wants LETTER: the attack is one of --only's (all of them without it).
wants() { [[ -z $ONLY || $ONLY == *"$1"* ]]; }
SUMMARY=$WORKDIR/summary.txt
: >"$SUMMARY"
FAILED=()

figure() {
  printf '%s\n' "$*" | tee -a "$SUMMARY" >&2
}

# goal NAME CONDITION_MET: records a goal's outcome for --assert.
goal() {
  if [[ $2 == 1 ]]; then
    figure "    goal $1: met"
  else
    figure "    goal $1: NOT met"
    FAILED+=("$1")
  fi
}

# A sanitizer build (ASan's shadow memory, two to three times the CPU) cannot be held to the
# memory and time goals: there, they are reported as not checked, and what is checked instead
# is that the exporter reported no memory error or undefined behaviour under the attacks.
SANITIZED=0
# Read whole, not piped into grep -q: grep leaving early would make ldd die of SIGPIPE, and under
# pipefail that read as "not sanitized" now and then (a flaky failure of the memory goals).
linked=$(ldd "$BINARY" 2>/dev/null || true)
if grep -qE 'lib(a|ub|t)san' <<<"$linked"; then SANITIZED=1; fi

# timed_goal NAME CONDITION_MET: a goal of memory or time (see SANITIZED).
timed_goal() {
  if ((SANITIZED)); then
    figure "    goal $1: not checked (sanitizer build; the plain build checks it)"
  else
    goal "$@"
  fi
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# make_config FILE TARGETS INTERVAL TIMEOUT: every target is the responder.
make_config() {
  local file=$1 targets=$2 interval=$3 timeout=$4
  {
    printf 'defaults:\n  interval: %s\n  timeout: %s\n  helo_name: abuse.test.local\n' \
      "$interval" "$timeout"
    printf 'targets:\n'
    awk -v n="$targets" -v port="$RESPONDER_PORT" 'BEGIN {
      for (i = 0; i < n; i++) printf "  - name: t%05d\n    address: 127.0.0.1:%d\n", i, port }'
  } >"$file"
}

# one_scrape URL: succeeds if a gzip-accepting scrape, like Prometheus's, returns 200 and the
# whole body within 10 s.
one_scrape() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Accept-Encoding: gzip' "$1") &&
    [[ $code == 200 ]]
}

# scrape_for SECONDS URL OUT: scrapes every 0.25 s for SECONDS; OUT gets "ok N" / "fail N".
scrape_for() {
  local end=$(($(now_us) + $1 * 1000000)) ok=0 failed=0
  while (($(now_us) < end)); do
    if one_scrape "$2"; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
    sleep 0.25
  done
  echo "$ok $failed" >"$3"
}

# probe_totals FILE: "result count" for every result in a scrape, summed over targets.
probe_totals() {
  awk '/^smtp_probes_total\{/ {
    match($0, /result="[^"]*"/); r = substr($0, RSTART + 8, RLENGTH - 9); n[r] += $NF }
    END { for (r in n) print r, n[r] }' "$1" | sort
}

# lag_p99 BEFORE AFTER: the 99th percentile of smtp_exporter_schedule_lag_seconds between two
# scrapes, interpolated in its bucket as histogram_quantile() does.
lag_p99() {
  awk '
    FNR == 1 { file++ }
    /^smtp_exporter_schedule_lag_seconds_bucket/ {
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
      if (file == 1) before[le] = $NF; else { after[le] = $NF; order[++n] = le }
    }
    END {
      total = after[order[n]] - before[order[n]]
      if (total <= 0) { print "n/a"; exit }
      want = 0.99 * total; lower = 0; prev = 0
      for (i = 1; i <= n; i++) {
        c = after[order[i]] - before[order[i]]
        if (c >= want) {
          if (order[i] == "+Inf") { printf ">%s s", lower; exit }
          printf "%.4f s", lower + (order[i] - lower) * (want - prev) / (c - prev); exit
        }
        prev = c; lower = order[i]
      }
    }' "$1" "$2"
}

sum_probes() { awk '/^smtp_probes_total\{/ { n += $NF } END { printf "%d", n }' "$1"; }

wait_all_probed() {
  local file=$WORKDIR/probed.txt targets=$1
  _probed() {
    curl -fsS --max-time 10 -o "$file" "$EXPORTER_URL/metrics" &&
      (($(metric_count "$file" smtp_probe_success) >= targets))
  }
  wait_until 60 "all $targets targets probed once" _probed
}

# stop_exporter PHASE: stops it, and keeps its log as exporter_PHASE.log, checked for sanitizer
# reports (LeakSanitizer's come at exit).
stop_exporter() {
  stop_group "$EXPORTER_PID" exporter
  local kept=$WORKDIR/exporter_$1.log clean=1
  cp "$EXPORTER_LOG" "$kept"
  if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$kept"; then
    figure "    sanitizer report in $kept:"
    figure "$(grep -E -m 5 -A 10 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$kept")"
    clean=0
  fi
  goal "no sanitizer report from the exporter of $1" "$clean"
}

# ---------------------------------------------------------------------------------------------
log "exporter: $BINARY"
spawn responder "$WORKDIR/responder.log" "$RESPONDER" --port-file "$WORKDIR/responder.port" \
  --lifetime 3600
_responder_port() { [[ -s $WORKDIR/responder.port ]]; }
wait_until 10 "the SMTP responder's port file" _responder_port
RESPONDER_PORT=$(cat "$WORKDIR/responder.port")

config=$WORKDIR/targets2000.yml
# Under a sanitizer the exporter needs several times the CPU per probe: a lighter schedule keeps
# it from saturating, so that the attacks still reach the code paths they are meant to reach.
interval=1
((SANITIZED)) && interval=5
make_config "$config" 2000 "${interval}s" 800ms
start_exporter "$BINARY" "$config"
wait_all_probed 2000
curl -fsS -o "$WORKDIR/page.txt" "$EXPORTER_URL/metrics"
curl -fsS -H 'Accept-Encoding: gzip' -o "$WORKDIR/page.gz" "$EXPORTER_URL/metrics"
figure "exporter: $BINARY"
figure "mode: $( ((SHORT)) && echo short || echo full); 2000 targets every ${interval} s, /metrics" \
  "$(($(stat -c %s "$WORKDIR/page.txt") / 1024)) KiB plain, $(($(stat -c %s "$WORKDIR/page.gz") / 1024)) KiB gzip"

# --- (e) -------------------------------------------------------------------------------------
if wants e; then
  log "(e) wrong methods"
  e_ok=1
  while read -r method path allow; do
    if [[ $method == HEAD ]]; then
      out=$(curl -s -o /dev/null --head -w '%{http_code} %header{allow}' --max-time 5 \
        "$EXPORTER_URL$path" || true)
    else
      out=$(curl -s -o /dev/null -X "$method" -w '%{http_code} %header{allow}' --max-time 5 \
        "$EXPORTER_URL$path" || true)
    fi
    figure "(e) $method $path -> ${out:-no answer}"
    [[ $out == "405 $allow" ]] || e_ok=0
  done <<'EOF'
DELETE /metrics GET, HEAD
TRACE / GET, HEAD
FOO /-/healthy GET, HEAD
PUT /-/reload POST
GET /-/reload POST
POST /metrics GET, HEAD
EOF
  for check in "GET /metrics 200" "HEAD /metrics 200" "GET /-/healthy 200" "POST /-/reload 200"; do
    read -r method path want <<<"$check"
    if [[ $method == HEAD ]]; then
      code=$(http_status "$EXPORTER_URL$path" --head)
    else
      code=$(http_status "$EXPORTER_URL$path" -X "$method")
    fi
    figure "(e) $method $path -> $code"
    [[ $code == "$want" ]] || e_ok=0
  done
  goal "(e) every wrong method answers 405 with Allow, the right ones 200" "$e_ok"

  # max_send_queue PORT SECONDS OUT: the most bytes the kernel held queued, summed over the
  # connections of PORT, sampled every 0.5 s for SECONDS (memory that a process's RSS does not show).
  max_send_queue() {
    local end=$(($(now_us) + $2 * 1000000)) max=0 queued
    while (($(now_us) < end)); do
      queued=$(ss -Htn "( sport = :$1 )" | awk '{ s += $3 } END { printf "%d", s }')
      ((queued > max)) && max=$queued
      sleep 0.5
    done
    echo "$max" >"$3"
  }
fi

# --- (a) -------------------------------------------------------------------------------------
if wants a; then
  # slow_readers LABEL RAMP HOLD SECONDS: 500 clients that send GET /metrics and never read,
  # arriving over RAMP seconds, each reconnecting after HOLD seconds (0: never), for SECONDS.
  slow_readers() {
    local label=$1 ramp=$2 hold=$3 seconds=$4 out=$WORKDIR/a_$1
    log "(a) 500 clients that send GET /metrics and never read ($label), for ${seconds}s"
    local rss_before rss_after peak_kib peak_mib after_ok=0 ok failed scraper sampler
    rss_before=$(rss_mib "$EXPORTER_PID")
    scrape_for "$seconds" "$EXPORTER_URL/metrics" "$out.scrapes" &
    scraper=$!
    max_send_queue "$EXPORTER_PORT" "$seconds" "$out.sendq" &
    sampler=$!
    "$CLIENT" --port "$EXPORTER_PORT" --slow-readers 500 --ramp "$ramp" --hold "$hold" \
      --duration "$seconds" --rss-pid "$EXPORTER_PID" >"$out.client"
    wait "$scraper" "$sampler"
    peak_kib=$(sed -n 's/.*peak_rss_kib=\([0-9-]*\).*/\1/p' "$out.client")
    sleep "$A_AFTER" # not readiness: the figure is the memory still held this long after
    rss_after=$(rss_mib "$EXPORTER_PID")
    one_scrape "$EXPORTER_URL/metrics" && after_ok=1
    read -r ok failed <"$out.scrapes"
    peak_mib=$(awk -v k="$peak_kib" 'BEGIN { printf "%.1f", k / 1024 }')
    figure "(a) 500 never-reading clients, $label: RSS before ${rss_before} MiB, peak" \
      "${peak_mib} MiB, ${A_AFTER}s after they left ${rss_after} MiB; scrapes during: $ok ok," \
      "$failed failed; scrape after: $( ((after_ok)) && echo ok || echo FAILED)"
    figure "    kernel send queues of its connections, at most: $(($(cat "$out.sendq") / 1048576)) MiB"
    figure "    client: $(cat "$out.client")"
    timed_goal "(a) $label: peak RSS < 150 MiB and the scrape after succeeds" \
      "$(awk -v p="$peak_mib" -v ok="$after_ok" 'BEGIN { print (p < 150 && ok == 1) ? 1 : 0 }')"
  }
  if ((SHORT)); then
    slow_readers "arriving over 1 s" 1 0 4
  else
    slow_readers "all at once" 0 0 40
    # Readers that arrive at different times each want a newer page; reconnecting every 15 s
    # (past the write-stall timeout) keeps them coming.
    slow_readers "arriving over 10 s, reconnecting every 15 s" 10 15 40
  fi
fi

# --- (b) -------------------------------------------------------------------------------------
if wants b; then
  log "(b) 700 idle and 700 slowloris connections, reopened when closed, for ${B_SECONDS}s"
  "$CLIENT" --port "$EXPORTER_PORT" --idle 700 --slowloris 700 --duration "$B_SECONDS" \
    >"$WORKDIR/b_client.txt" &
  attackers=$!
  sleep 1 # not readiness: the scraper starts once the attack is under way
  scrape_for $((B_SECONDS - 2)) "$EXPORTER_URL/metrics" "$WORKDIR/b_scrapes.txt"
  wait "$attackers"
  read -r b_ok b_failed <"$WORKDIR/b_scrapes.txt"
  b_pct=$(awk -v ok="$b_ok" -v f="$b_failed" 'BEGIN { printf "%.1f", ok + f ? 100 * ok / (ok + f) : 0 }')
  figure "(b) 700 idle + 700 slowloris: scrapes ok $b_ok of $((b_ok + b_failed)) (${b_pct} %)"
  figure "    client: $(cat "$WORKDIR/b_client.txt")"
  timed_goal "(b) at least 95 % of scrapes succeed" \
    "$(awk -v p="$b_pct" -v n="$((b_ok + b_failed))" 'BEGIN { print (p >= 95 && n > 0) ? 1 : 0 }')"
  curl -fsS -o "$WORKDIR/b_after.txt" "$EXPORTER_URL/metrics" &&
    figure "    exporter: $(grep -E '^smtp_exporter_http_connections_(rejected|evicted|timed_out)' \
      "$WORKDIR/b_after.txt" | tr '\n' ' ')"
  stop_exporter a_b_e
fi

# --- (c) -------------------------------------------------------------------------------------
if wants c; then
  log "(c) open-file limit 256, 300 idle HTTP connections, for ${C_SECONDS}s"
  wrapper=$WORKDIR/exporter_256fds
  printf '#!/bin/sh\nexec prlimit --nofile=256:256 -- %q "$@"\n' "$BINARY" >"$wrapper"
  chmod +x "$wrapper"
  start_exporter "$wrapper" "$config"
  wait_all_probed 2000
  curl -fsS -o "$WORKDIR/c_before.txt" "$EXPORTER_URL/metrics"
  "$CLIENT" --port "$EXPORTER_PORT" --idle 300 --duration "$C_SECONDS" >"$WORKDIR/c_client.txt"
  _scraped_after() { curl -fsS --max-time 10 -o "$WORKDIR/c_after.txt" "$EXPORTER_URL/metrics"; }
  wait_until 30 "a scrape after the idle connections left" _scraped_after
  join -a1 -a2 -e 0 -o 0,1.2,2.2 <(probe_totals "$WORKDIR/c_before.txt") \
    <(probe_totals "$WORKDIR/c_after.txt") | awk '{ d = $3 - $2; if (d) print $1, d }' \
    >"$WORKDIR/c_delta.txt"
  figure "(c) ulimit -n 256 + 300 idle connections, probes by result in ${C_SECONDS}s:" \
    "$(tr '\n' ' ' <"$WORKDIR/c_delta.txt")"
  figure "    client: $(cat "$WORKDIR/c_client.txt")"
  connect_errors=$(awk '$1 == "connect_error" { print $2 }' "$WORKDIR/c_delta.txt")
  successes=$(awk '$1 == "success" { print $2 }' "$WORKDIR/c_delta.txt")
  goal "(c) no connect_error, and probes succeed" \
    "$([[ ${connect_errors:-0} == 0 && ${successes:-0} -gt 0 ]] && echo 1 || echo 0)"
  stop_exporter c
fi

# --- (d) and (g): storms against an exporter with 10,000 targets ------------------------------
# load_window LETTER NAME: probes per second and the schedule lag's p99 over D_SECONDS.
load_window() {
  curl -fsS -o "$WORKDIR/$1_0.txt" "$EXPORTER_URL/metrics"
  sleep "$D_SECONDS" # the measuring window, not a wait for readiness
  curl -fsS -o "$WORKDIR/$1_1.txt" "$EXPORTER_URL/metrics"
  local probes
  probes=$(($(sum_probes "$WORKDIR/$1_1.txt") - $(sum_probes "$WORKDIR/$1_0.txt")))
  figure "$2: $((probes / D_SECONDS)) probes/s, schedule lag p99" \
    "$(lag_p99 "$WORKDIR/$1_0.txt" "$WORKDIR/$1_1.txt")"
}
# storm LETTER WHAT CURL_ARGS...: 4 clients looping curl CURL_ARGS during a load_window.
storm() {
  local letter=$1 what=$2 stop=$WORKDIR/$1.stop
  shift 2
  local clients=()
  for _ in 1 2 3 4; do
    (while [[ ! -e $stop ]]; do
      curl -s -o /dev/null --max-time 30 "$@" || true
    done) &
    clients+=($!)
  done
  load_window "${letter}_storm" "($letter) 4 clients looping $what"
  touch "$stop"
  wait "${clients[@]}"
}
for letter in d g; do
  wants "$letter" || continue
  if ((SHORT)); then
    figure "($letter) left out in short mode"
    continue
  fi
  log "($letter) 10,000 targets, ${D_SECONDS}s quiet, ${D_SECONDS}s under a storm"
  config10k=$WORKDIR/targets10000.yml
  [[ -e $config10k ]] || make_config "$config10k" 10000 10s 5s
  start_exporter "$BINARY" "$config10k"
  wait_all_probed 10000
  load_window "${letter}_quiet" "($letter) quiet"
  if [[ $letter == d ]]; then
    storm d "POST /-/reload" -X POST "$EXPORTER_URL/-/reload"
    figure "    reloads done: $(grep -c 'config reloaded' "$EXPORTER_LOG" || true)"
  else
    storm g "GET / (the status page)" "$EXPORTER_URL/"
  fi
  stop_exporter "$letter"
done

# --- (f) -------------------------------------------------------------------------------------
if wants f; then
  log "(f) a FIFO at the config path"
  fifo_config=$WORKDIR/fifo.yml
  make_config "$fifo_config" 1 5s 2s
  start_exporter "$BINARY" "$fifo_config"
  rm "$fifo_config"
  mkfifo "$fifo_config"
  reload_code=$(http_status "$EXPORTER_URL/-/reload" -X POST)
  healthy_code=$(http_status "$EXPORTER_URL/-/healthy")
  figure "(f) FIFO at the config path: POST /-/reload -> $reload_code, then /-/healthy ->" \
    "$healthy_code (000: no answer within 5 s)"
  # A process stuck opening the FIFO gets its end of file, so that it can be stopped.
  # shellcheck disable=SC2016 # $0 is the inner shell's
  timeout 2 bash -c ': >"$0"' "$fifo_config" || true
  stop_exporter f
fi

printf '\n==== summary\n' >&2
cat "$SUMMARY" >&2
if ((ASSERT)) && ((${#FAILED[@]})); then
  fail "goals not met: ${FAILED[*]}"
fi
