#!/usr/bin/env bash
# The exporter under load, against the paced floor (paced_client: the cheapest epoll client doing
# the same dialogue at the same rate), in a private network namespace. See tests/bench/README.md.
#
# Usage: tests/bench/run_load.sh BUILD_DIR
# Parts (PARTS, default all three):
#   ratio   REPEATS rounds of: the exporter with RATIO_TARGETS targets every RATIO_INTERVAL, CPU
#           per probe over WINDOW seconds, then paced_client at the same rate; the ratio per round
#   syscalls  system calls per probe of both (perf stat on the syscalls tracepoints: counted in
#           the kernel, without strace's slow-down), SYSCALL_TARGETS at 1 s (= per second)
#   callgrind  (not in the default PARTS) the exporter's user-space instructions per probe under
#           callgrind, CALLGRIND_TARGETS at 1 s, counters zeroed after the warm-up: repeatable to
#           a few instructions on a busy machine, the figure for what one change buys
#   growth  for each of SIZES targets at INTERVAL: CPU per probe and its ratio to the floor at the
#           same rate, share of one core, RSS and RSS per target, the /metrics scrape (gzip and
#           plain: time and size), schedule lag p99, and the greeting latency that DELAYED
#           targets, whose server waits DELAY_MS before its greeting, report during the load
# Environment (all optional): PARTS="ratio syscalls growth" SIZES="1000 10000 50000 100000"
#   INTERVAL=10 TIMEOUT=5s RATIO_TARGETS=2000 RATIO_INTERVAL=1 REPEATS=3 SYSCALL_TARGETS=500
#   CALLGRIND_TARGETS=200
#   WINDOW=20 DELAYED=10 DELAY_MS=150 METRICS="" (a `metrics:` block for defaults, e.g.
#   "{greeting_histogram: false}") OUT=DIR (default: a new /tmp/load.XXXXXX)
# Builds nothing: ninja -C BUILD_DIR smtp_exporter smtp_responder paced_client
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
BIN=$BUILD/tests/bench
EXPORTER=$BUILD/smtp_exporter
for exe in "$BIN/smtp_responder" "$BIN/paced_client" "$EXPORTER"; do
  [[ -x $exe ]] || { echo "missing $exe: ninja -C $BUILD $(basename "$exe")" >&2; exit 2; }
done
for tool in curl awk unshare ip; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

# A private network namespace: a fresh conntrack table and a private loopback (the host's table
# fills at about 2,000 new connections a second and then drops SYNs).
if [[ -z ${LOAD_IN_NETNS:-} ]]; then
  export LOAD_IN_NETNS=1
  # shellcheck disable=SC2016  # $0 and $1 are the inner shell's
  exec timeout 7200 unshare --net bash -c 'ip link set lo up && exec bash "$0" "$1"' "$0" "$BUILD"
fi

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

PARTS=${PARTS:-"ratio syscalls growth"}
SIZES=${SIZES:-"1000 10000 50000 100000"}
INTERVAL=${INTERVAL:-10}
TIMEOUT=${TIMEOUT:-5s}
RATIO_TARGETS=${RATIO_TARGETS:-2000}
RATIO_INTERVAL=${RATIO_INTERVAL:-1}
REPEATS=${REPEATS:-3}
SYSCALL_TARGETS=${SYSCALL_TARGETS:-500}
CALLGRIND_TARGETS=${CALLGRIND_TARGETS:-200}
WINDOW=${WINDOW:-20}
DELAYED=${DELAYED:-10}
DELAY_MS=${DELAY_MS:-150}
METRICS=${METRICS:-}
OUT=${OUT:-$(mktemp -d /tmp/load.XXXXXX)}
lib_init "$OUT"

# 10,000 connections a second for minutes: every local port, and TIME_WAIT stays on the
# responders' side (they close first).
echo "1024 65535" >/proc/sys/net/ipv4/ip_local_port_range

start_responder() {  # NAME ARGS... : sets RESPONDER_PORT
  local name=$1
  shift
  spawn "$name" "$OUT/$name.log" "$BIN/smtp_responder" --port-file "$OUT/$name.port" \
    --stats-file "$OUT/$name.stats" --lifetime 7200 "$@"
  wait_until 10 "$name's port file" test -s "$OUT/$name.port"
  RESPONDER_PORT=$(<"$OUT/$name.port")
}
start_responder fast
FAST_PORT=$RESPONDER_PORT
start_responder slow --delay-ms "$DELAY_MS"
SLOW_PORT=$RESPONDER_PORT
wait_until 5 "stats files" test -s "$OUT/fast.stats" -a -s "$OUT/slow.stats"

# --- measuring ---------------------------------------------------------------------------------

# CPU time of every thread of a process, in nanoseconds.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
quits() { awk -F'quits=' '{print $2}' "$OUT/$1.stats"; }
# Waits for the responder's next stats line (written as its clock's second turns), so that a
# window starts and ends right after a count.
wait_tick() {
  local before
  before=$(<"$OUT/fast.stats")
  poll_until_fast 3 _stats_changed "$before"
}
_stats_changed() { [[ $(<"$OUT/fast.stats") != "$1" ]]; }
poll_until_fast() {  # poll_until with 10 ms steps: window edges within 10 ms of the tick
  local end=$(($(now_us) + $1 * 1000000))
  shift
  until "$@"; do
    (($(now_us) >= end)) && return 1
    sleep 0.01
  done
}

gen_config() {  # FILE TARGETS INTERVAL_S TIMEOUT
  awk -v n="$2" -v d="$DELAYED" -v fast="$FAST_PORT" -v slow="$SLOW_PORT" -v iv="$3" -v to="$4" \
    -v metrics="$METRICS" 'BEGIN {
      printf "defaults:\n  interval: %ss\n  timeout: %s\n  helo_name: bench.client.local\n", iv, to
      if (metrics != "") printf "  metrics: %s\n", metrics
      print "targets:"
      for (i = 0; i < n; i++) {
        printf "  - name: t%06d\n    address: 127.0.0.1:%d\n", i, i < d ? slow : fast
      }
    }' >"$1"
}

# Bucket counts of the schedule lag histogram: "le count" lines.
lag_buckets() { awk -F'[{}"]' '/^smtp_exporter_schedule_lag_seconds_bucket/ {split($0, v, " "); print $3, v[2]}' "$1"; }
# The smallest bucket bound under which 99 % of the probes started between two scrapes.
lag_p99() {
  join <(lag_buckets "$1" | sort) <(lag_buckets "$2" | sort) |
    awk '{le[NR] = $1; d[NR] = $3 - $2; if ($1 == "+Inf") total = $3 - $2}
         END {best = "+Inf"; bestv = 1e99
              for (i = 1; i <= NR; i++) if (le[i] != "+Inf" && total > 0 && d[i] >= 0.99 * total && le[i] + 0 < bestv) {bestv = le[i] + 0; best = le[i]}
              printf "%s", best == "+Inf" ? ">5s" : "<=" best * 1000 "ms"}'
}
# The delayed targets' last greeting latency minus the injected delay, in ms: median/max (count).
greeting_error() {
  awk -v d="$DELAYED" -v delay="$DELAY_MS" -F'[{}"]' '
    /^smtp_greeting_seconds\{/ {n = substr($3, 2) + 0; if (n >= d) next
      split($0, v, " "); print v[2] * 1000 - delay}' "$1" | sort -g |
    awk '{e[NR] = $1} END {if (NR == 0) print "none"; else printf "%+.2f/%+.2fms(%d)", e[int((NR + 1) / 2)], e[NR], NR}'
}
# The same from paced_client's line: median/max.
reference_error() {
  awk -v delay="$DELAY_MS" '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
    END {if (v["greeting_ms_median"] == "") print "-"; else printf "%+.2f/%+.2fms", v["greeting_ms_median"] - delay, v["greeting_ms_max"] - delay}' "$1"
}
scrape() {  # URL FILE [gzip] : prints "seconds bytes", or "failed(CURL_EXIT) bytes-received"
  local header=() out
  [[ ${3:-} == gzip ]] && header=(-H 'Accept-Encoding: gzip')
  if out=$(curl -sf --max-time 120 "${header[@]}" -o "$2" -w '%{time_total} %{size_download}' "$1"); then
    echo "$out"
  else
    echo "failed($?) ${out#* }"
  fi
}

# run_exporter LABEL TARGETS INTERVAL_S TIMEOUT [syscalls|callgrind]: one exporter, measured over WINDOW
# seconds of its steady state. Appends a line to $OUT/exporter.txt and sets RESULT.
run_exporter() {
  local label=$1 targets=$2 interval=$3 timeout=$4 mode=${5:-}
  local dir=$OUT/$label
  mkdir -p "$dir"
  gen_config "$dir/config.yml" "$targets" "$interval" "$timeout"
  local port prefix=()
  port=$(pick_port)
  [[ $mode == callgrind ]] && prefix=(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out")
  spawn "exporter-$label" "$dir/exporter.log" "${prefix[@]}" "$EXPORTER" \
    --config.file="$dir/config.yml" --web.listen-address="127.0.0.1:$port" --log.level=warn
  local pid=$SPAWNED_PID url=http://127.0.0.1:$port
  wait_until 300 "exporter $label ready" curl -sf -o /dev/null "$url/-/ready"
  # Every target's first probe is spread over one interval; then a scrape to start the lag count.
  sleep "$((interval + 2))"
  scrape "$url/metrics" "$dir/before.prom" >/dev/null
  sleep 2
  local reference_pid=
  if [[ -z $mode ]]; then
    # The reference for greeting latency: paced_client measures the same delayed server meanwhile.
    "$BIN/paced_client" --port "$SLOW_PORT" --rate 5 --seconds "$WINDOW" >"$dir/reference.txt" 2>&1 &
    reference_pid=$!
  fi
  wait_tick
  local q0 c0 t0 perf_pid=
  q0=$(($(quits fast) + $(quits slow)))
  if [[ $mode == syscalls ]]; then
    # Attaches within milliseconds of the tick; stops right after the last one.
    perf stat -x, -e 'syscalls:sys_enter_*' -o "$dir/syscalls.csv" -p "$pid" &
    perf_pid=$!
  elif [[ $mode == callgrind ]]; then
    callgrind_control -z "$pid" >/dev/null
  fi
  c0=$(cpu_ns "$pid")
  t0=$(now_us)
  sleep "$WINDOW"
  wait_tick
  local q1 c1 t1
  c1=$(cpu_ns "$pid")
  t1=$(now_us)
  q1=$(($(quits fast) + $(quits slow)))
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
  elif [[ $mode == callgrind ]]; then
    callgrind_control -d "$pid" >/dev/null
  fi
  local rss
  rss=$(awk '/^VmRSS/ {print $2}' /proc/"$pid"/status)
  local gz plain
  gz=$(scrape "$url/metrics" "$dir/metrics.gz" gzip)
  plain=$(scrape "$url/metrics" "$dir/after.prom")
  local hwm
  hwm=$(awk '/^VmHWM/ {print $2}' /proc/"$pid"/status)
  stop_group "$pid" "exporter-$label"
  if [[ -n $reference_pid ]]; then wait "$reference_pid" || true; fi
  local probes=$((q1 - q0))
  ((probes > 0)) || fail "$label: no probes answered during the window"
  RESULT=$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) -v p="$probes" -v n="$targets" -v rss="$rss" \
    -v hwm="$hwm" -v gz="$gz" -v plain="$plain" -v lag="$(lag_p99 "$dir/before.prom" "$dir/after.prom")" \
    -v greet="$(greeting_error "$dir/after.prom")" \
    -v ref="$(reference_error "$dir/reference.txt" 2>/dev/null)" '
    function secs(s) { return s ~ /^[0-9.]+$/ ? sprintf("%.3f", s) : s }
    BEGIN {
      split(gz, g, " "); split(plain, q, " ")
      printf "targets=%d probes=%d probes_per_s=%.0f us_per_probe=%.1f core=%.1f%% rss_mib=%.0f rss_kib_per_target=%.2f hwm_mib=%.0f gzip_s=%s gzip_mb=%.1f plain_s=%s plain_mb=%.1f lag_p99=%s greeting_err=%s reference_err=%s\n",
        n, p, p * 1e6 / t, c / 1000 / p, c / 10 / t, rss / 1024, rss / n, hwm / 1024, secs(g[1]), g[2] / 1e6,
        secs(q[1]), q[2] / 1e6, lag, greet, ref == "" ? "-" : ref}')
  echo "$label $RESULT" | tee -a "$OUT/exporter.txt"
}

# run_floor LABEL RATE [syscalls]: paced_client at RATE probes a second for WINDOW seconds.
run_floor() {
  local label=$1 rate=$2 mode=${3:-}
  local prefix=()
  [[ $mode == syscalls ]] && prefix=(perf stat -x ',' -e 'syscalls:sys_enter_*' -o "$OUT/$label.csv" --)
  "${prefix[@]}" "$BIN/paced_client" --port "$FAST_PORT" --rate "$rate" --seconds "$WINDOW" \
    >"$OUT/$label.txt" 2>&1 || fail "$label: paced_client failed: $(cat "$OUT/$label.txt")"
  FLOOR=$(grep -o 'us_per_probe=[0-9.]*' "$OUT/$label.txt" | cut -d= -f2)
  echo "$label $(cat "$OUT/$label.txt")" | tee -a "$OUT/floor.txt"
}

field() { grep -o "$1=[^ ]*" <<<"$2" | cut -d= -f2-; }
median() { sort -g | awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# Calls per probe from perf stat's CSV (count,,syscalls:sys_enter_NAME,...): the total, then
# each call made at least 0.05 times a probe, most frequent first.
syscalls_per_probe() {  # FILE PROBES
  awk -F, -v p="$2" '$3 ~ /^syscalls:sys_enter_/ && $1 ~ /^[0-9]+$/ && $1 > 0 {
      sub(/^syscalls:sys_enter_/, "", $3); total += $1; if ($1 / p >= 0.05) printf "%.2f %s\n", $1 / p, $3}
    END {printf "%.2f total\n", total / p}' "$1" | sort -gr |
    awk '{printf "%s%s %s", NR == 1 ? "" : ", ", $2, $1} END {print ""}'
}

echo "output: $OUT (responders on 127.0.0.1:$FAST_PORT and :$SLOW_PORT (+${DELAY_MS} ms), private netns)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ " $PARTS " == *" ratio "* ]]; then
  rate=$((RATIO_TARGETS / RATIO_INTERVAL))
  echo
  echo "== CPU per probe against the paced floor: $RATIO_TARGETS targets every ${RATIO_INTERVAL}s ($rate probes/s), $REPEATS rounds of ${WINDOW}s"
  : >"$OUT/ratio.txt"
  for round in $(seq "$REPEATS"); do
    run_exporter "ratio$round" "$RATIO_TARGETS" "$RATIO_INTERVAL" 800ms
    exporter_us=$(field us_per_probe "$RESULT")
    run_floor "floor$round" "$rate"
    echo "$round $exporter_us $FLOOR" | tee -a "$OUT/ratio.txt" |
      awk '{printf "round %d: exporter %.1f us, floor %.1f us, ratio %.2f\n", $1, $2, $3, $2 / $3}'
  done
  printf "median: exporter %s us, floor %s us, ratio %s (range %s)\n" \
    "$(awk '{print $2}' "$OUT/ratio.txt" | median)" "$(awk '{print $3}' "$OUT/ratio.txt" | median)" \
    "$(awk '{print $2 / $3}' "$OUT/ratio.txt" | median)" \
    "$(awk '{r = $2 / $3; if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r} END {printf "%.2f-%.2f", lo, hi}' "$OUT/ratio.txt")"
fi

if [[ " $PARTS " == *" syscalls "* ]]; then
  command -v perf >/dev/null || fail "the syscalls part needs perf (linux-perf)"
  echo
  echo "== System calls per probe (perf stat, syscalls:sys_enter_*): $SYSCALL_TARGETS targets every 1s, ${WINDOW}s"
  run_exporter syscalls "$SYSCALL_TARGETS" 1 800ms syscalls >/dev/null
  echo "exporter: $(syscalls_per_probe "$OUT/syscalls/syscalls.csv" "$(field probes "$RESULT")")"
  run_floor floor_syscalls "$SYSCALL_TARGETS" syscalls >/dev/null
  echo "floor:    $(syscalls_per_probe "$OUT/floor_syscalls.csv" "$((SYSCALL_TARGETS * WINDOW))")"
fi

if [[ " $PARTS " == *" callgrind "* ]]; then
  command -v callgrind_control >/dev/null || fail "the callgrind part needs valgrind"
  echo
  echo "== The exporter's user-space instructions per probe (callgrind): $CALLGRIND_TARGETS targets every 1s, ${WINDOW}s"
  run_exporter callgrind "$CALLGRIND_TARGETS" 1 800ms callgrind >/dev/null
  dump=$(find "$OUT/callgrind" -name 'callgrind.out.*' -newer "$OUT/callgrind/before.prom" | sort | tail -n 1)
  python3 "$(dirname "$0")/callgrind_breakdown.py" "$dump" - "$(field probes "$RESULT")" 25 \
    >"$OUT/callgrind_breakdown.txt"
  sed -n '1,/^$/p' "$OUT/callgrind_breakdown.txt"
  echo "(functions and calls per probe: $OUT/callgrind_breakdown.txt)"
fi

if [[ " $PARTS " == *" growth "* ]]; then
  echo
  echo "== Growth: targets every ${INTERVAL}s (timeout $TIMEOUT), ${WINDOW}s windows${METRICS:+, metrics: $METRICS}"
  printf "%-8s %-8s %-9s %-9s %-6s %-7s %-8s %-8s %-8s %-15s %-15s %-8s %s\n" targets probes/s \
    "us/probe" "floor us" ratio "core" "RSS MiB" "KiB/tgt" "peak MiB" "gzip s (MB)" \
    "plain s (MB)" "lag p99" "greeting-delay median/max (n), reference"
  for n in $SIZES; do
    run_exporter "growth$n" "$n" "$INTERVAL" "$TIMEOUT" >/dev/null
    r=$RESULT
    run_floor "floor_growth$n" "$(field probes_per_s "$r")" >/dev/null
    printf "%-8s %-8s %-9s %-9s %-6s %-7s %-8s %-8s %-8s %-15s %-15s %-8s %s\n" "$n" \
      "$(field probes_per_s "$r")" "$(field us_per_probe "$r")" "$FLOOR" \
      "$(awk -v a="$(field us_per_probe "$r")" -v b="$FLOOR" 'BEGIN {printf "%.2f", a / b}')" \
      "$(field core "$r")" "$(field rss_mib "$r")" "$(field rss_kib_per_target "$r")" \
      "$(field hwm_mib "$r")" "$(field gzip_s "$r") ($(field gzip_mb "$r"))" \
      "$(field plain_s "$r") ($(field plain_mb "$r"))" "$(field lag_p99 "$r")" \
      "$(field greeting_err "$r"), $(field reference_err "$r")"
  done
fi
echo
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); raw lines: $OUT/exporter.txt, $OUT/floor.txt"
