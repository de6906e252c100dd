#!/usr/bin/env bash
# CPU per probe: run_probe (probe_bench) against a minimal C client (reference_client), both
# doing the same dialogue (220, EHLO -> 250, QUIT -> 221) against the same fast local responder,
# side by side in one run, in a private network namespace. See tests/bench/README.md.
#
# Usage: tests/bench/run_probe_cpu.sh BUILD_DIR
# Environment (all optional):
#   N=20000        probes per timed run
#   KS="1 50"      concurrencies to measure
#   REPEATS=3      timed rounds; the report gives the median of each figure
#   CG_N=2000      probes per callgrind run (K=1); a second run with CG_N/10 is subtracted
#   CALLGRIND=1    0 skips the callgrind part
#   STRACE=1       0 skips counting system calls per probe (strace -c, N=CG_N, each K)
#   OUT=DIR        where logs and callgrind files go (default: a new /tmp/probe_cpu.XXXXXX)
# Builds nothing. Every command is bounded by `timeout`; the responder is stopped at exit.
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
BIN=$BUILD/tests/bench
for exe in smtp_responder reference_client probe_bench; do
  [[ -x $BIN/$exe ]] || { echo "missing $BIN/$exe: ninja -C $BUILD $exe" >&2; exit 2; }
done

# Everything below runs in one private network namespace: a fresh conntrack table and a private
# loopback, so a load run neither fills the machine's nor is disturbed by it. The responder and the
# clients share it.
if [[ -z ${PROBE_CPU_IN_NETNS:-} ]]; then
  export PROBE_CPU_IN_NETNS=1
  # shellcheck disable=SC2016  # $0 and $1 are the inner shell's
  exec timeout 3600 unshare --net bash -c 'ip link set lo up && exec bash "$0" "$1"' "$0" "$BUILD"
fi

N=${N:-20000}
KS=${KS:-"1 50"}
REPEATS=${REPEATS:-3}
CG_N=${CG_N:-2000}
CALLGRIND=${CALLGRIND:-1}
STRACE=${STRACE:-1}
OUT=${OUT:-$(mktemp -d /tmp/probe_cpu.XXXXXX)}
mkdir -p "$OUT"
CLIENT_TIMEOUT=600  # seconds, per client run

# 240k+ connections go through this namespace; the server closes first, so TIME_WAIT stays on
# its side, but a wide port range keeps the client from ever waiting for a free port.
echo "1024 65535" > /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true

port_file=$OUT/port
rm -f "$port_file"
"$BIN/smtp_responder" --port-file "$port_file" --lifetime 3600 2>"$OUT/responder.log" &
responder=$!
trap 'kill "$responder" 2>/dev/null || true; wait "$responder" 2>/dev/null || true' EXIT
for _ in $(seq 100); do  # up to 10 s for the port file
  [[ -s $port_file ]] && break
  kill -0 "$responder" 2>/dev/null || { echo "responder died" >&2; cat "$OUT/responder.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s $port_file ]] || { echo "responder did not start" >&2; exit 1; }
PORT=$(cat "$port_file")

# run_timed NAME K ARGS... : runs one client under /usr/bin/time, appends
# "NAME K round user sys" to $OUT/cpu.txt; the client's own line goes to $OUT/clients.log.
failures=0
run_timed() {
  local name=$1 k=$2 round=$3
  shift 3
  local tf=$OUT/time.tmp
  local rc=0
  /usr/bin/time -f "%U %S" -o "$tf" timeout "$CLIENT_TIMEOUT" "$@" >>"$OUT/clients.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "FAILED ($rc): $*" | tee -a "$OUT/clients.log" >&2
    failures=$((failures + 1))
  fi
  # /usr/bin/time writes "Command exited with non-zero status" first when rc != 0.
  read -r user sys < <(tail -n 1 "$tf")
  echo "$name $k $round $user $sys" >>"$OUT/cpu.txt"
}

echo "output: $OUT  (responder on 127.0.0.1:$PORT in a private netns; N=$N, K in {$KS}, $REPEATS rounds)"
: >"$OUT/cpu.txt"
# Warm-up, not measured: the first thousands of connections in a fresh namespace cost more
# (socket slabs, port hash), and would land on whichever client runs first.
for exe in reference_client probe_bench; do
  timeout "$CLIENT_TIMEOUT" "$BIN/$exe" --port "$PORT" -n 5000 -k 50 >>"$OUT/clients.log" 2>&1 ||
    { echo "warm-up with $exe failed: see $OUT/clients.log" >&2; exit 1; }
done
for round in $(seq "$REPEATS"); do
  for k in $KS; do
    run_timed reference "$k" "$round" "$BIN/reference_client" --port "$PORT" -n "$N" -k "$k"
    run_timed probe "$k" "$round" "$BIN/probe_bench" --port "$PORT" -n "$N" -k "$k"
    if [[ $k -eq 1 ]]; then
      # The C client on an event loop too: separates the cost of being event-driven from the
      # probe's own.
      run_timed reference_epoll "$k" "$round" "$BIN/reference_client" --port "$PORT" -n "$N" \
        -k 1 --epoll
    fi
  done
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# CPU seconds per 1,000 probes of one client, one value per round.
per_thousand() { awk -v n="$1" -v k="$2" -v name="$3" '$1 == name && $2 == k {printf "%.4f\n", ($4 + $5) * 1000 / n}' "$OUT/cpu.txt"; }

echo
echo "CPU seconds (user+sys) per 1,000 probes, median of $REPEATS rounds (client processes only)"
printf "%-4s %-12s %-12s %-16s %-22s\n" K reference probe "probe/reference" "reference --epoll"
for k in $KS; do
  ref=$(per_thousand "$N" "$k" reference | median)
  pro=$(per_thousand "$N" "$k" probe | median)
  # The ratio is taken per round (same round, side by side), then the median.
  ratio=$(paste <(per_thousand "$N" "$k" reference) <(per_thousand "$N" "$k" probe) |
    awk '$1 > 0 {printf "%.3f\n", $2 / $1}' | median)
  epoll=-
  [[ $k -eq 1 ]] && epoll=$(per_thousand "$N" "$k" reference_epoll | median)
  printf "%-4s %-12s %-12s %-16s %-22s\n" "$k" "$ref" "$pro" "$ratio" "$epoll"
done
echo "(per-round values: $OUT/cpu.txt, columns: client K round user_s sys_s)"

if [[ $CALLGRIND -eq 1 ]]; then
  small=$((CG_N / 10))
  # Total instructions (Ir) a callgrind run counted, user space only.
  cg_total() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }
  cg_run() {  # cg_run NAME N EXE ARGS... : sets CG_IR
    local name=$1 n=$2
    shift 2
    local file=$OUT/callgrind.$name.$n.out
    timeout "$CLIENT_TIMEOUT" valgrind --tool=callgrind --callgrind-out-file="$file" \
      "$@" --port "$PORT" -n "$n" -k 1 >>"$OUT/clients.log" 2>>"$OUT/valgrind.log" || {
      echo "FAILED: callgrind $name $n" >&2
      failures=$((failures + 1))
    }
    CG_IR=$(cg_total "$file")
  }
  echo
  echo "Instructions per probe (callgrind, user space only, K=1): (Ir at N=$CG_N - Ir at N=$small) / $((CG_N - small))"
  declare -A per_probe
  for name in reference probe; do
    exe=$BIN/reference_client
    [[ $name == probe ]] && exe=$BIN/probe_bench
    cg_run "$name" "$CG_N" "$exe"
    big_ir=$CG_IR
    cg_run "$name" "$small" "$exe"
    small_ir=$CG_IR
    per_probe[$name]=$(awk -v b="$big_ir" -v s="$small_ir" -v n="$((CG_N - small))" 'BEGIN {printf "%.0f", (b - s) / n}')
    printf "%-10s Ir(N=%d)=%s Ir(N=%d)=%s per probe=%s\n" "$name" "$CG_N" "$big_ir" "$small" \
      "$small_ir" "${per_probe[$name]}"
  done
  awk -v p="${per_probe[probe]}" -v r="${per_probe[reference]}" \
    'BEGIN {if (r > 0) printf "instruction ratio probe/reference: %.1f\n", p / r}'
  # Where the probe's instructions go, per probe (start-up subtracted the same way).
  if command -v python3 >/dev/null; then
    python3 "$(dirname "$0")/callgrind_breakdown.py" "$OUT/callgrind.probe.$CG_N.out" \
      "$OUT/callgrind.probe.$small.out" "$((CG_N - small))" 25 >"$OUT/probe_breakdown.txt" || true
    echo
    echo "probe, by category (full list and top functions: $OUT/probe_breakdown.txt):"
    sed -n '1,/^$/p' "$OUT/probe_breakdown.txt"
  fi
fi

if [[ $STRACE -eq 1 ]] && command -v strace >/dev/null; then
  echo "System calls per probe (strace -c, N=$CG_N; start-up included: about 70 calls in all):"
  printf "%-4s %-10s %-10s %s\n" K reference probe "probe's calls per probe"
  for k in $KS; do
    for name in reference probe; do
      exe=$BIN/reference_client
      [[ $name == probe ]] && exe=$BIN/probe_bench
      timeout "$CLIENT_TIMEOUT" strace -c -o "$OUT/strace.$name.$k.txt" "$exe" --port "$PORT" \
        -n "$CG_N" -k "$k" >>"$OUT/clients.log" 2>&1 || {
        echo "FAILED: strace $name K=$k" >&2
        failures=$((failures + 1))
      }
    done
    # strace -c's table: "% time, seconds, usecs/call, calls, [errors,] syscall"; the total row
    # has the calls in column 4 as well.
    ref_calls=$(awk '$NF == "total" {print $4}' "$OUT/strace.reference.$k.txt")
    probe_calls=$(awk '$NF == "total" {print $4}' "$OUT/strace.probe.$k.txt")
    detail=$(awk -v n="$CG_N" '$1 ~ /^[0-9.]+$/ && $NF != "total" {
        c = $4; if (c / n >= 0.5) printf "%s %.1f, ", $NF, c / n }' "$OUT/strace.probe.$k.txt")
    printf "%-4s %-10.1f %-10.1f %s\n" "$k" "$(awk -v c="$ref_calls" -v n="$CG_N" 'BEGIN {print c / n}')" \
      "$(awk -v c="$probe_calls" -v n="$CG_N" 'BEGIN {print c / n}')" "${detail%, }"
  done
fi

echo
if [[ $failures -ne 0 ]]; then
  echo "$failures client run(s) FAILED: see $OUT/clients.log" >&2
  exit 1
fi
echo "all client runs succeeded ($OUT/clients.log)"
